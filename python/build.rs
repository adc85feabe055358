//! Nothing to build: present so that `[build-dependencies]` (feature unification only, see
//! Cargo.toml) belong to this package's graph.

fn main() {}
