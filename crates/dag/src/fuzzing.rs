//! The entry points of the fuzz targets in `fuzz/` (`make fuzz`), which `make test` also
//! replays over the committed corpora and regression inputs: whatever the bytes, each must
//! return — an error is fine, a panic is a bug.

use std::path::Path;

use crate::{Graph, Lockfile, Pipeline};

/// A pipeline file: parsed (matrices, profiles and `${…}` expanded) under its default
/// profile and under `real`, then built into a graph (cycles, missing stages).
pub fn pipeline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for profile in [None, Some("real")] {
        if let Ok(p) = Pipeline::parse(Path::new("fuzz/pipeline.toml"), text, profile) {
            let _ = Graph::build(&p);
        }
    }
}

/// A lockfile.
pub fn lockfile(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Lockfile::parse(Path::new("fuzz/p.lock"), text);
    }
}
