//! `ventral run`: bring stages up to date.

use std::io::IsTerminal;
use std::process::ExitCode;

use std::ffi::OsString;

use anyhow::{Context, Result};
use ventral_cluster::{ExecutorKind, ProcessExecutor, SlurmExecutor};
use ventral_dag::{
    Action, Engine, Executor, LocalExecutor, NoProgress, Registry, RunOptions, RunReport,
};

use super::{Ctx, Global, LockArgs, Output, emit, status, with_engine};
use crate::{progress, report};

/// `ventral run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Stages to bring up to date (a matrix stage's name selects all its instances).
    pub stages: Vec<String>,
    /// Stages run at once (default: the number of cores).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Run the named stages (all, if none named) even if up to date.
    #[arg(long)]
    pub force: bool,
    /// Say what would run, and why, without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Where stages run: `local` (this process), `process` (each stage in a `ventral
    /// exec-stage` process of its own: isolated, its peak memory recorded) or `slurm`
    /// (`sbatch` job arrays of `ventral exec-stage`). Default: `[executor] kind` of the
    /// workspace's `ventral.toml`, else local.
    #[arg(long, value_name = "KIND")]
    pub executor: Option<ventral_cluster::ExecutorKind>,
    /// Resubmissions of a Slurm task lost to a node failure or preemption (default:
    /// `ventral.toml`'s `retries`, else 1).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    #[command(flatten)]
    pub remote: super::remote::RemoteArg,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// What a run did, with whether its outcomes were already shown live.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Ran {
    report: RunReport,
    #[serde(skip)]
    shown_live: bool,
}

impl Output for Ran {
    fn text(&self) -> String {
        let r = &self.report;
        let mut lines: Vec<String> = Vec::new();
        if !self.shown_live {
            lines.extend(
                r.stages
                    .iter()
                    .filter(|o| o.action != Action::UpToDate)
                    .map(report::outcome_line),
            );
        }
        lines.push(format!(
            "{} ran, {} restored, {} up to date, {} failed, {} skipped in {:.2} s",
            r.count(Action::Ran),
            r.count(Action::Restored),
            r.count(Action::UpToDate),
            r.count(Action::Failed),
            r.count(Action::Skipped),
            r.seconds
        ));
        lines.join("\n")
    }
}

/// Run `ventral run`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    with_engine(g, |ctx, registry, _, engine| {
        run(g, a, ctx, registry, engine)
    })
}

fn run(g: &Global, a: &Args, ctx: &Ctx, registry: &Registry, engine: &Engine) -> Result<ExitCode> {
    let config = ventral_cluster::WorkspaceConfig::load(&ctx.ws.root)?;
    let kind = a.executor.unwrap_or(config.executor.kind);
    super::plan_for(&config, kind);
    if a.dry_run {
        let targets = engine.select(&a.stages)?;
        let set = engine.graph().upstream_closure(&targets);
        let stages = engine.status(Some(&set))?;
        emit(
            g,
            &status::StatusReport {
                stages: status::with_slurm_tasks(&ctx.ws.store, stages),
                dry_run: true,
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opts = RunOptions {
        targets: a.stages.clone(),
        force: a.force,
        lock_timeout: a.lock.timeout(),
        ..RunOptions::default()
    };
    let local = LocalExecutor {
        store: &ctx.ws.store,
        registry,
    };
    let slurm;
    let process;
    let ventral_command = || -> Result<Vec<OsString>> {
        let exe = std::env::current_exe().context("finding the ventral binary")?;
        Ok(vec![
            exe.into(),
            "--workspace".into(),
            ctx.ws.root.clone().into(),
            "--store".into(),
            ctx.ws.store.root().to_path_buf().into(),
        ])
    };
    let executor: &dyn Executor = match kind {
        ExecutorKind::Local => &local,
        ExecutorKind::Process => {
            process = ProcessExecutor::new(ctx.ws.store.clone(), ventral_command()?);
            &process
        }
        ExecutorKind::Slurm => {
            let mut cfg = config.executor.clone();
            if let Some(r) = a.retries {
                cfg.retries = r;
            }
            // Stages wait on Slurm, not on this machine's cores.
            opts.jobs = cfg.max_jobs;
            let command = ventral_command()?;
            ventral_cluster::interrupt::install();
            slurm = SlurmExecutor::new(cfg, ctx.ws.store.clone(), command)
                .context("starting the Slurm executor")?;
            &slurm
        }
    };
    if let Some(j) = a.jobs {
        opts.jobs = j;
    }
    let remote = super::remote::open(ctx, a.remote.remote.as_deref())?;
    let cache = remote.as_ref().map(|r| super::remote::Cache {
        remote: r,
        store: &ctx.ws.store,
    });
    let cache = cache.as_ref().map(|c| c as &dyn ventral_dag::RemoteCache);
    let live = !g.json && std::io::stdout().is_terminal();
    let report = if live {
        let display = progress::Live::new(engine.select(&a.stages)?.len());
        let r = engine.run_with_remote(&opts, executor, &display, cache);
        display.finish();
        r?
    } else {
        engine.run_with_remote(&opts, executor, &NoProgress, cache)?
    };
    let (ok, bad_param) = (report.ok(), report.bad_param());
    // Each failure's reason also goes to stderr, where scripts keep diagnostics (stdout
    // holds the report, text or JSON).
    let failures: Vec<String> = report
        .stages
        .iter()
        .filter(|o| o.action == Action::Failed)
        .map(|o| {
            // The engine's error names the stage (`stage `x` failed: …`).
            match o.error.as_deref() {
                Some(why) => format!("ventral run: {}", why.trim_end()),
                None => format!("ventral run: stage `{}` failed", o.stage),
            }
        })
        .collect();
    emit(
        g,
        &Ran {
            report,
            shown_live: live,
        },
    )?;
    for f in &failures {
        eprintln!("{f}");
    }
    if let Some(sig) = ventral_cluster::interrupt::received() {
        return Ok(ExitCode::from(128 + sig as u8));
    }
    Ok(if bad_param {
        ExitCode::from(2)
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
