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

/// A stage's status, with the Slurm task computing it when there is one.
#[derive(serde::Serialize)]
pub struct StageLine {
    /// The status.
    #[serde(flatten)]
    pub status: StageStatus,
    /// The Slurm task in flight for the stage's current key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmTask>,
}

/// A task a driver submitted and recorded under the store.
#[derive(serde::Serialize)]
pub struct SlurmTask {
    /// Slurm's id (`ARRAY_TASK`).
    pub job_id: String,
    /// Slurm's state (`PENDING (Resources)`, `RUNNING`…), or `unknown` when `squeue` cannot
    /// be asked.
    pub state: String,
    /// The driver's host.
    pub host: String,
    /// When it was submitted (seconds since the epoch).
    pub submitted_unix: u64,
}

impl StageLine {
    /// Lines without Slurm tasks.
    pub fn plain(stages: Vec<StageStatus>) -> Vec<StageLine> {
        stages
            .into_iter()
            .map(|status| StageLine {
                status,
                slurm: None,
            })
            .collect()
    }
}

/// Attach the recorded Slurm tasks of the store to the stages whose key they compute.
pub fn with_slurm_tasks(store: &ventral_cas::Store, stages: Vec<StageStatus>) -> Vec<StageLine> {
    let records = ventral_cluster::slurm::list_records(store);
    if records.is_empty() {
        return StageLine::plain(stages);
    }
    let ids: Vec<String> = records.iter().map(|r| r.job_id.clone()).collect();
    let states = ventral_cluster::slurm::query_states(&ids).ok();
    stages
        .into_iter()
        .map(|status| {
            let slurm = records
                .iter()
                .find(|r| Some(r.key) == status.key)
                .map(|r| SlurmTask {
                    job_id: r.job_id.clone(),
                    state: match &states {
                        Some(m) => m
                            .get(&r.job_id)
                            .cloned()
                            .unwrap_or_else(|| "ended (no longer known to Slurm)".into()),
                        None => "unknown (squeue did not answer)".into(),
                    },
                    host: r.host.clone(),
                    submitted_unix: r.submitted_unix,
                });
            StageLine { status, slurm }
        })
        .collect()
}

/// The stages' status (also what `run --dry-run` prints).
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct StatusReport {
    /// One entry per stage.
    pub stages: Vec<StageLine>,
    /// Whether this is a dry run's answer.
    #[serde(skip)]
    pub dry_run: bool,
}

impl Output for StatusReport {
    fn text(&self) -> String {
        let mut lines: Vec<String> = self
            .stages
            .iter()
            .map(|l| {
                let mut line = report::status_line(&l.status);
                if let Some(t) = &l.slurm {
                    line.push_str(&format!(" [Slurm job {}: {}]", t.job_id, t.state));
                }
                line
            })
            .collect();
        let count = |st: Status| self.stages.iter().filter(|s| s.status.status == st).count();
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
    let stages = with_engine(g, |ctx, _, pipeline, engine| {
        let set: BTreeSet<usize> = if a.stages.is_empty() {
            (0..pipeline.stages.len()).collect()
        } else {
            engine.graph().upstream_closure(&engine.select(&a.stages)?)
        };
        Ok(with_slurm_tasks(&ctx.ws.store, engine.status(Some(&set))?))
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
