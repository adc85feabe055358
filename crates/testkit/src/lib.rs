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

/// The Python of a venv: `$var` if set, else `<repo>/<venv>/bin/python` (a local `make
/// setup`), else `~/.cache/ventral/<venv without its dot>/bin/python` (CI's).
pub fn venv_python(var: &str, venv: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
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
