//! Embeds the code identity of every workspace crate (see `src/identity.rs`), computed from
//! the workspace's manifests, `Cargo.lock` and sources, with the compiler and target.

#[path = "src/identity.rs"]
#[allow(dead_code)]
mod identity;

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("../..");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let toolchain = identity::toolchain_from_build_env();
    let ws = identity::Workspace::load(&root, &toolchain)
        .unwrap_or_else(|e| panic!("code identities: {e}"));
    for p in ws.watched() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let mut out = String::new();
    let _ = writeln!(out, "/// The toolchain the identities were computed for.");
    let _ = writeln!(out, "pub const TOOLCHAIN: &str = {toolchain:?};");
    let _ = writeln!(
        out,
        "/// (crate, code identity, workspace crates of its closure, external crates), by crate."
    );
    let _ = writeln!(
        out,
        "pub const IDENTITIES: &[(&str, &str, &[&str], usize)] = &["
    );
    for name in ws.members().keys() {
        let id = ws
            .identity(name)
            .unwrap_or_else(|e| panic!("code identity of {name}: {e}"));
        let _ = writeln!(
            out,
            "    ({name:?}, {:?}, &{:?}, {}),",
            id.digest,
            id.workspace_closure,
            id.external.len()
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("identities.rs");
    std::fs::write(dest, out).expect("write identities.rs");
}
