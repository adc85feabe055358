//! What the reliability campaigns share (`crates/cli/tests/faults.rs`, `security.rs`, the
//! fuzz corpora's replays): a fixed random sequence, the tally of one class of cases that
//! `tools/reliability.py` turns into RELIABILITY.md's tables, and the corpus replay.

use std::io::Write;

/// The fixed sequence the campaigns draw their faults from.
pub use crate::crosscheck::Lcg;

/// The whole campaign (`make faults`: `VENTRAL_FAULTS=full`), or the smoke subset that
/// `make test` runs.
pub fn full() -> bool {
    std::env::var("VENTRAL_FAULTS").is_ok_and(|v| v == "full")
}

/// One class of cases: how many were tried and how many were handled cleanly.
pub struct Tally {
    pub campaign: &'static str,
    pub class: String,
    pub checked: &'static str,
    pub cases: usize,
    pub clean: usize,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Tally {
    pub fn new(campaign: &'static str, class: impl Into<String>, checked: &'static str) -> Tally {
        Tally {
            campaign,
            class: class.into(),
            checked,
            cases: 0,
            clean: 0,
            failures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Run one case; an `Err` is a case not handled cleanly, with what went wrong.
    pub fn case(&mut self, what: impl FnOnce() -> Result<(), String>) {
        self.cases += 1;
        match what() {
            Ok(()) => self.clean += 1,
            Err(e) => self.failures.push(e),
        }
    }

    /// Append the tally to `$VENTRAL_FAULTS_LOG` as a JSON line; then fail on any case not
    /// handled cleanly (and on a class without cases).
    pub fn finish(self) {
        if let Some(log) = std::env::var_os("VENTRAL_FAULTS_LOG") {
            let row = serde_json::json!({
                "campaign": self.campaign,
                "class": self.class,
                "checked": self.checked,
                "cases": self.cases,
                "clean": self.clean,
                "notes": self.notes,
                "failures": self.failures.iter().take(3).collect::<Vec<_>>(),
                "mode": if full() { "full" } else { "smoke" },
            });
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("VENTRAL_FAULTS_LOG");
            writeln!(f, "{row}").expect("VENTRAL_FAULTS_LOG");
        }
        assert!(
            self.cases > 0 && self.failures.is_empty(),
            "{} / {}: {} of {} cases not handled cleanly:\n{}",
            self.campaign,
            self.class,
            self.failures.len(),
            self.cases,
            self.failures.join("\n---\n")
        );
    }
}

/// Feed every input of a fuzz target's corpus and regressions (`fuzz/corpus/TARGET`,
/// `fuzz/regressions/TARGET`) to `f`, which must read or refuse it without panicking.
/// Fails when the target has no inputs at all; returns how many there were.
pub fn replay_corpus(target: &str, f: fn(&[u8])) -> usize {
    let root = crate::repo_root().join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != ".keep"))
            .collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            f(&data);
            n += 1;
        }
    }
    assert!(
        n > 0,
        "no inputs for the `{target}` fuzz target under {}",
        root.display()
    );
    n
}
