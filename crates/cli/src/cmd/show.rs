//! `ventral show STAGE`: a stage's key, output and files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ventral_cas::{Damage, Digest, RunRecord, TreeEntry};
use ventral_dag::{DagError, LockInput, Lockfile, Params};

use super::{Ctx, Global, Output, emit};

/// `ventral show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stage.
    pub stage: String,
}

/// A stage as its lockfile entry and the store have it.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Shown {
    NeverRun {
        stage: String,
        never_run: bool,
        #[serde(skip)]
        lockfile: PathBuf,
    },
    Run(Box<Details>),
}

/// A stage that ran: its lockfile entry and what the store holds of its output.
#[derive(serde::Serialize)]
struct Details {
    stage: String,
    kind: String,
    code: String,
    runtime: Option<String>,
    key: Digest,
    output: Digest,
    path: PathBuf,
    params: Params,
    inputs: BTreeMap<String, Vec<LockInput>>,
    files: Option<Vec<TreeEntry>>,
    damage: Vec<Damage>,
    /// The store's record of the run that made the output: seconds, host, peak memory.
    run: Option<RunRecord>,
}

impl Output for Shown {
    fn text(&self) -> String {
        match self {
            Shown::NeverRun {
                stage, lockfile, ..
            } => format!("{stage}: never run (no entry in {})", lockfile.display()),
            Shown::Run(d) => {
                let Details {
                    stage,
                    kind,
                    code,
                    runtime,
                    key,
                    output,
                    path,
                    files,
                    damage,
                    run,
                    ..
                } = d.as_ref();
                let mut l = vec![
                    format!("stage   {stage}"),
                    format!("kind    {kind} (code {})", &code[..code.len().min(16)]),
                ];
                if let Some(rt) = runtime {
                    l.push(format!("runtime {rt}"));
                }
                l.push(format!("key     {key}"));
                l.push(format!("output  {output}"));
                l.push(format!("path    {}", path.display()));
                if let Some(r) = run {
                    let peak = r.peak_rss_bytes.map_or(String::new(), |b| {
                        format!(", peak memory {:.1} MiB", b as f64 / (1 << 20) as f64)
                    });
                    l.push(format!("ran     {:.2} s on {}{peak}", r.duration_s, r.host));
                }
                if let Some(files) = files {
                    let total: u64 = files.iter().map(|e| e.size).sum();
                    l.push(format!(
                        "files   {} ({:.1} kB)",
                        files.len(),
                        total as f64 / 1e3
                    ));
                    for e in files.iter().take(50) {
                        l.push(format!(
                            "  {:>12}  {}  {}",
                            e.size,
                            e.digest.short(12),
                            e.path
                        ));
                    }
                    if files.len() > 50 {
                        l.push(format!("  … {} more", files.len() - 50));
                    }
                }
                for d in damage {
                    l.push(format!("DAMAGED {d}"));
                }
                l.join("\n")
            }
        }
    }
}

/// Run `ventral show`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    let pipeline = ctx.pipeline(g)?;
    let stage = &a.stage;
    if pipeline.stage(stage).is_none() {
        return Err(DagError::Pipeline {
            file: g.pipeline.clone(),
            line: 0,
            stage: None,
            message: format!("no stage `{stage}` in this pipeline"),
        }
        .into());
    }
    let lf_path = ctx.ws.lockfile_path(&pipeline);
    let lf = Lockfile::load(&lf_path, &pipeline.name, &pipeline.profile)?;
    let shown = match lf.stages.get(stage) {
        None => Shown::NeverRun {
            stage: stage.clone(),
            never_run: true,
            lockfile: lf_path,
        },
        Some(entry) => Shown::Run(Box::new(Details {
            stage: stage.clone(),
            kind: entry.kind.clone(),
            code: entry.code.clone(),
            runtime: entry.runtime.clone(),
            key: entry.key,
            output: entry.output,
            path: ctx.ws.store.out_path(&entry.output),
            params: entry.params.clone(),
            inputs: entry.inputs.clone(),
            files: ctx
                .ws
                .store
                .read_tree(&entry.output)
                .ok()
                .map(|t| t.entries),
            damage: ctx.ws.store.check_tree(&entry.output),
            run: ctx.ws.store.get_run(&entry.key).ok().flatten(),
        })),
    };
    emit(g, &shown)?;
    Ok(ExitCode::SUCCESS)
}
