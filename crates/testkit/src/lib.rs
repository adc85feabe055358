//! `ventral-testkit`: what the tests of several crates share.

use std::io::Write;

pub mod campaign;
pub mod crosscheck;
pub mod http;
pub mod s3;
pub mod slurm;

/// Say that a test passes without running for want of `what` (a venv, `../shared/data`):
/// under CI, where every resource must be there, this fails the test; elsewhere it prints
/// `SKIPPED: what` and appends a line to `$VENTRAL_SKIP_LOG`, which `make test` counts.
pub fn skipped(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test: {what}"
    );
    eprintln!("SKIPPED: {what}");
    if let Some(log) = std::env::var_os("VENTRAL_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(
            f,
            "{}: {what}",
            std::thread::current().name().unwrap_or("?")
        );
    }
}

/// The repository's root, found at run time: the nearest ancestor holding `Cargo.lock` and
/// `crates/` of the running test's package folder (`$CARGO_MANIFEST_DIR`, which cargo sets
/// when it runs a test), else of the working directory, else the folder this crate was
/// compiled in. A test binary or this library reused from another checkout through a shared
/// target folder then still reads this checkout's files, not the other one's.
pub fn repo_root() -> std::path::PathBuf {
    use std::path::PathBuf;
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .into_iter()
        .flatten()
        .find_map(|s| {
            s.ancestors()
                .find(|d| d.join("Cargo.lock").is_file() && d.join("crates").is_dir())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The Python of a venv: `$var` if set, else `<repo>/<venv>/bin/python` (a local `make
/// setup`), else `~/.cache/ventral/<venv without its dot>/bin/python` (CI's).
pub fn venv_python(var: &str, venv: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let root = repo_root();
    let home = std::env::var("HOME").unwrap_or_default();
    [
        root.join(venv).join("bin/python"),
        PathBuf::from(home).join(format!(
            ".cache/ventral/{}/bin/python",
            venv.trim_start_matches('.')
        )),
    ]
    .into_iter()
    .find(|p| p.exists())
}
