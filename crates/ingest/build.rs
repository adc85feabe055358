//! Embeds the code identity of `ventral-netcdf` (see `crates/kinds/src/identity.rs`), the
//! worker this crate hands netCDF files to: a worker from another build is refused rather
//! than trusted to compute what this build's keys promise.

#[path = "../kinds/src/identity.rs"]
#[allow(dead_code)]
mod identity;

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("../..");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-changed=../kinds/src/identity.rs");
    let toolchain = identity::toolchain_from_build_env();
    let ws = identity::Workspace::load(&root, &toolchain)
        .unwrap_or_else(|e| panic!("code identities: {e}"));
    let id = ws
        .identity("ventral-netcdf")
        .unwrap_or_else(|e| panic!("code identity of ventral-netcdf: {e}"));
    // Only the worker's closure: an edit elsewhere in the workspace does not rebuild this
    // crate.
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    for c in &id.workspace_closure {
        let dir = root.join(&ws.members()[c].dir);
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        if dir.join("build.rs").is_file() {
            println!("cargo:rerun-if-changed={}", dir.join("build.rs").display());
        }
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
    }
    println!("cargo:rustc-env=VENTRAL_NETCDF_CODE={}", id.digest);
}
