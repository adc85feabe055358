//! `ventral status`: every stage as up to date or stale, and why.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use ventral_dag::{StageStatus, Status};

use super::{Global, Output, emit, with_engine};
use crate::report;

/// `ventral status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these stages (and what they need).
    pub stages: Vec<String>,
}

/// The stages' status (also what `run --dry-run` prints).
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct StatusReport {
    /// One entry per stage.
    pub stages: Vec<StageStatus>,
    /// Whether this is a dry run's answer.
    #[serde(skip)]
    pub dry_run: bool,
}

impl Output for StatusReport {
    fn text(&self) -> String {
        let mut lines: Vec<String> = self.stages.iter().map(report::status_line).collect();
        let count = |st: Status| self.stages.iter().filter(|s| s.status == st).count();
        lines.push(format!(
            "{}{} stages: {} up to date, {} restorable, {} stale, {} waiting on upstream",
            if self.dry_run {
                "dry run: nothing was run. "
            } else {
                ""
            },
            self.stages.len(),
            count(Status::UpToDate),
            count(Status::Restorable),
            count(Status::Stale),
            count(Status::Waiting)
        ));
        lines.join("\n")
    }
}

/// Run `ventral status`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let stages = with_engine(g, |_, _, pipeline, engine| {
        let set: BTreeSet<usize> = if a.stages.is_empty() {
            (0..pipeline.stages.len()).collect()
        } else {
            engine.graph().upstream_closure(&engine.select(&a.stages)?)
        };
        Ok(engine.status(Some(&set))?)
    })?;
    emit(
        g,
        &StatusReport {
            stages,
            dry_run: false,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
