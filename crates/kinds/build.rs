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
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    // The compiler, the target and what else shapes the machine code: the profile, its
    // optimisation level and any RUSTFLAGS (`-C target-cpu=native` can change results).
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let toolchain = format!(
        "{version} {} profile={} opt-level={} rustflags={:?}",
        var("TARGET"),
        var("PROFILE"),
        var("OPT_LEVEL"),
        var("CARGO_ENCODED_RUSTFLAGS")
    );
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
