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
    /// This process's peak resident memory, or its children's if larger (a model stage's
    /// `ventral-torch` worker, a `cmd` stage's shell), in bytes.
    peak_rss_bytes: Option<u64>,
}

/// The larger of this process's and its waited-for children's peak resident set, in bytes.
///
/// This process's own peak is its `VmHWM` (the high-water mark of the memory image `exec`
/// gave it), not `getrusage(RUSAGE_SELF)`: Linux carries the forking parent's high-water
/// mark into a child's `ru_maxrss` across `fork` + `exec`, so every stage would report at
/// least the engine's peak. Its children (a model stage's `ventral-torch` worker, a `cmd`
/// stage's shell) are forked from this small process, so their `ru_maxrss` is theirs.
fn peak_rss() -> Option<u64> {
    let max_kib = |who| {
        // SAFETY: getrusage fills the struct it is given; a zeroed rusage is valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        (unsafe { libc::getrusage(who, &mut u) } == 0).then_some(u.ru_maxrss.max(0) as u64)
    };
    let own = vm_hwm_kib().or_else(|| max_kib(libc::RUSAGE_SELF))?;
    let children = max_kib(libc::RUSAGE_CHILDREN).unwrap_or(0);
    Some(own.max(children) * 1024)
}

/// `VmHWM` of /proc/self/status, in KiB (None where there is no procfs).
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
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
        peak_rss_bytes: peak_rss(),
    };
    ventral_cas::atomic_write(
        &ctx.ws.store.job_result_path(&key),
        serde_json::to_string(&result)?.as_bytes(),
    )?;
    emit(g, &result)?;
    Ok(ExitCode::SUCCESS)
}
