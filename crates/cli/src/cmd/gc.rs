//! `ventral gc`: remove outputs no lockfile refers to.

use std::process::ExitCode;

use anyhow::Result;
use ventral_cas::GcReport;

use super::{Ctx, Global, LockArgs, Output, emit};

/// `ventral gc`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only count what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Collected {
    report: GcReport,
    #[serde(skip)]
    dry_run: bool,
}

impl Output for Collected {
    fn text(&self) -> String {
        let r = &self.report;
        format!(
            "{}{} trees kept, {} trees and {} objects ({:.1} MB) removed, {} run records removed",
            if self.dry_run { "dry run: " } else { "" },
            r.trees_kept,
            r.trees_removed,
            r.objects_removed,
            r.bytes_freed as f64 / 1e6,
            r.runs_removed
        )
    }
}

/// Run `ventral gc`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    ctx.ws.store.ensure()?;
    let _lock =
        ventral_cas::WorkspaceLock::acquire(ctx.ws.store.root(), "ventral gc", a.lock.timeout())?;
    let keep = ctx.ws.referenced_outputs()?;
    let report = ctx.ws.store.gc(&keep, a.dry_run)?;
    emit(
        g,
        &Collected {
            report,
            dry_run: a.dry_run,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
