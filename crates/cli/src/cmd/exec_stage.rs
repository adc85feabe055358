//! `ventral exec-stage KEY`: execute one prepared job (what a cluster node runs).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ventral_cas::Digest;
use ventral_dag::{Job, execute_job};

use super::{Ctx, Global, Output, emit};

/// `ventral exec-stage`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stage key.
    pub key: String,
}

/// What the job produced (also written beside the job as `KEY.result.json`).
#[derive(serde::Serialize)]
struct Executed {
    key: Digest,
    stage: String,
    output: Digest,
}

impl Output for Executed {
    fn text(&self) -> String {
        format!("{} -> {}", self.stage, self.output)
    }
}

/// Run `ventral exec-stage`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    let registry = ventral_kinds::registry()?;
    let key: Digest = a.key.parse().context("KEY")?;
    ctx.ws.store.ensure()?;
    let path = ctx.ws.store.job_path(&key);
    let bytes =
        std::fs::read(&path).with_context(|| format!("reading the job {}", path.display()))?;
    let job: Job = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the job {}", path.display()))?;
    if job.key != key {
        bail!(
            "{}: the job is for key {}, not {key}",
            path.display(),
            job.key
        );
    }
    let output = execute_job(&ctx.ws.store, &registry, &job, &|m: &str| {
        tracing::info!("{m}")
    })?;
    let result = Executed {
        key,
        stage: job.stage.clone(),
        output,
    };
    ventral_cas::atomic_write(
        &ctx.ws.store.job_result_path(&key),
        serde_json::to_string(&result)?.as_bytes(),
    )?;
    emit(g, &result)?;
    Ok(ExitCode::SUCCESS)
}
