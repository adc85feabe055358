//! `ventral verify`: re-hash the whole store.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use ventral_cas::VerifyReport;

use super::{Ctx, Global, LockArgs, Output, emit};

/// `ventral verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(serde::Serialize)]
struct Verified {
    #[serde(flatten)]
    report: VerifyReport,
    /// Lockfiles of the workspace that cannot be read, with why.
    lockfiles_damaged: Vec<String>,
    seconds: f64,
}

impl Output for Verified {
    fn text(&self) -> String {
        let r = &self.report;
        let mut l: Vec<String> = r.damaged.iter().map(|d| format!("DAMAGED {d}")).collect();
        l.extend(
            self.lockfiles_damaged
                .iter()
                .map(|e| format!("DAMAGED {e}")),
        );
        l.push(format!(
            "verified {} objects ({:.1} MB) and {} trees in {:.2} s: {} damaged, {} quarantined, {} run records dropped",
            r.objects,
            r.bytes as f64 / 1e6,
            r.trees,
            self.seconds,
            r.damaged.len(),
            r.quarantined.len(),
            r.runs_dropped
        ));
        l.join("\n")
    }
}

/// Run `ventral verify`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    ctx.ws.store.ensure()?;
    let _lock = ventral_cas::WorkspaceLock::acquire(
        ctx.ws.store.root(),
        "ventral verify",
        a.lock.timeout(),
    )?;
    let t0 = Instant::now();
    let report = ctx.ws.store.verify()?;
    let lockfiles_damaged = unreadable_lockfiles(&ctx.ws.lockfiles);
    let damaged = !report.damaged.is_empty() || !lockfiles_damaged.is_empty();
    emit(
        g,
        &Verified {
            report,
            lockfiles_damaged,
            seconds: t0.elapsed().as_secs_f64(),
        },
    )?;
    Ok(if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every `*.lock` in `dir` that does not parse as a lockfile, with the parser's message.
fn unreadable_lockfiles(dir: &std::path::Path) -> Vec<String> {
    ventral_dag::Lockfile::list(dir)
        .iter()
        .filter_map(|f| {
            ventral_dag::Lockfile::load(f, "", "")
                .err()
                .map(|e| format!("{}: {e}", f.display()))
        })
        .collect()
}
