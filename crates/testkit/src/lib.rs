//! `ventral-testkit`: what the tests of several crates share.

use std::io::Write;

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
