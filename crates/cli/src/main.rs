//! `ventral`: the command-line interface. Thin: it parses arguments, wires the stage kinds
//! of the domain crates into the engine, and prints results.

mod ingest;
mod progress;
mod report;
mod score;
mod sql;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use ventral::model_args::{ModelAction, ModelCommand};
use ventral_cas::Digest;
use ventral_dag::{
    Action, DagError, Engine, Job, LocalExecutor, Lockfile, NoProgress, Pipeline, RunOptions,
    Status, Workspace, execute_job,
};

/// ventral: the CORnet-S paper as a content-addressed pipeline.
#[derive(Parser, Debug)]
#[command(name = "ventral", version, about, long_about = None)]
struct Cli {
    /// Workspace root (default: the current folder).
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// The object store (default: <workspace>/.ventral).
    #[arg(long, global = true, env = "VENTRAL_HOME", value_name = "DIR")]
    store: Option<PathBuf>,
    /// The pipeline file, relative to the workspace.
    #[arg(
        short,
        long,
        global = true,
        env = "VENTRAL_PIPELINE",
        default_value = "pipelines/paper.toml"
    )]
    pipeline: PathBuf,
    /// The profile (default: the pipeline file's own `profile`).
    #[arg(long, global = true, env = "VENTRAL_PROFILE")]
    profile: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the stages that are stale (and the upstream they need).
    Run {
        /// Stages to bring up to date (a matrix stage's name selects all its instances).
        stages: Vec<String>,
        /// Stages run at once (default: the number of cores).
        #[arg(short, long)]
        jobs: Option<usize>,
        /// Run the named stages (all, if none named) even if up to date.
        #[arg(long)]
        force: bool,
        /// Say what would run, and why, without running anything.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for another run holding the workspace.
        #[arg(long, default_value_t = 600.0)]
        lock_timeout: f64,
    },
    /// List every stage as up to date or stale, and why.
    Status {
        /// Only these stages (and what they need).
        stages: Vec<String>,
    },
    /// Print the stage graph.
    Dag {
        /// As Graphviz dot.
        #[arg(long)]
        dot: bool,
    },
    /// Show a stage's key, output and files.
    Show {
        /// The stage.
        stage: String,
    },
    /// Re-hash the whole store; name and quarantine anything damaged.
    Verify {
        /// Seconds to wait for another run holding the workspace.
        #[arg(long, default_value_t = 600.0)]
        lock_timeout: f64,
    },
    /// Remove outputs no lockfile refers to.
    Gc {
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for another run holding the workspace.
        #[arg(long, default_value_t = 600.0)]
        lock_timeout: f64,
    },
    /// Execute one prepared job (`.ventral/jobs/KEY.json`); used by cluster executors.
    ExecStage {
        /// The stage key.
        key: String,
    },
    /// List the built-in stage kinds, their params and code identities.
    Kinds,
    /// Score activations against recordings directly, outside any pipeline.
    Score {
        #[command(subcommand)]
        benchmark: ScoreCmd,
    },
    /// Read the real formats into our stores: BrainIO, ILSVRC2012, MS COCO.
    Ingest {
        #[command(subcommand)]
        format: ingest::IngestCmd,
    },
    /// Write our stores in the real formats (BrainIO netCDF4).
    Export {
        #[command(subcommand)]
        format: ingest::ExportCmd,
    },
    /// Create or verify a dataset manifest (size and blake3 of every file).
    Manifest {
        #[command(subcommand)]
        action: ingest::ManifestCmd,
    },
    /// CORnet weights: import official checkpoints, describe models.
    Model {
        #[command(subcommand)]
        action: ventral::model_args::ModelCmd,
    },
    /// Train a CORnet on an image index (the paper's recipe by default); resumes from the
    /// last epoch found in the output folder.
    Train(ventral::model_args::TrainArgs),
    /// Top-1 and top-5 accuracy of weights on an image index split.
    Eval(ventral::model_args::EvalArgs),
    /// Activations of every layer for a stimulus set, a folder of images or a `.npy` batch,
    /// one store per area and timestep.
    Extract(ventral::model_args::ExtractArgs),
    /// Generate the synthetic world (the embedded default's data) into a folder.
    Synth {
        /// The output folder (must be new or empty).
        #[arg(short, long)]
        output: PathBuf,
        /// embedded or full.
        #[arg(long, default_value = "embedded")]
        size: String,
        /// The seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print a completion script for a shell (`ventral completions bash > /etc/bash_completion.d/ventral`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff: `ventral man | man -l -`).
    Man,
    /// Query the stores with SQL (read-only). With no query, an interactive prompt.
    ///
    /// Tables: assemblies, stimuli, neuroids, activations, scores, runs.
    Sql {
        /// The query.
        query: Option<String>,
        /// Output format: table, csv, json or parquet.
        #[arg(long, default_value = "table")]
        format: ventral_sql::OutputFormat,
        /// Write the result to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also read the stores under DIR (repeatable), e.g. one written by `ventral ingest`.
        #[arg(long = "path", value_name = "DIR")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ScoreCmd {
    /// PLS neural predictivity (MajajHong2015 recipe) and the internal-consistency ceiling.
    Neural {
        /// An activations store: dims (stimulus, neuroid), coordinate `stimulus_id`.
        #[arg(long)]
        source: PathBuf,
        /// A recordings store: dims (presentation, neuroid[, time_bin of length 1]),
        /// presentation coordinates `stimulus_id`, `object_name`, `repetition`.
        #[arg(long)]
        target: PathBuf,
        /// How the ceiling normalises: r/c (the 2019 paper), (r/c)^2, r^2/c.
        #[arg(long, default_value = "r/c")]
        normalisation: ventral_metrics::neural::Normalisation,
        /// Only the target's neuroids of this `region` (V4, IT).
        #[arg(long)]
        region: Option<String>,
        /// Average the target's time bins within START END (ms), e.g. 190 210.
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        time_bins: Option<Vec<f64>>,
        /// Only the target's neuroids with at least this internal consistency.
        #[arg(long)]
        min_consistency: Option<f64>,
    },
    /// I2n (Rajalingham2018): a logistic readout fitted on one activations store, choice
    /// probabilities on another, against human trials.
    I2n {
        /// Activations of the labelled fitting images (stimulus coordinate `object_name`).
        #[arg(long)]
        fitting: PathBuf,
        /// Activations of the test images.
        #[arg(long)]
        test: PathBuf,
        /// A trials store (presentation coordinates stimulus_id, sample_obj, dist_obj,
        /// choice, truth), e.g. an ingested dicarlo.Rajalingham2018.public.
        #[arg(long)]
        trials: PathBuf,
        /// Inverse L2 strength of the readout.
        #[arg(long, default_value_t = 1e-3)]
        c: f64,
    },
    /// Object solution times (Kar2019): IT activations per timestep against the monkey.
    Ost {
        /// A folder of `IT-t<k>` activation stores (`ventral extract`).
        #[arg(long)]
        activations: PathBuf,
        /// The monkey assembly (OST per image and decoder, coordinates i1, image_label).
        #[arg(long)]
        monkey: PathBuf,
        /// Use this decoder's OSTs (default: the mean over decoders).
        #[arg(long)]
        decoder: Option<String>,
        /// brain-score (Brain-Score's TensorFlow readout, step for step) or converged.
        #[arg(long, default_value = "brain-score")]
        readout: ventral_benchmarks::ost::OstReadout,
    },
}

fn main() -> ExitCode {
    ventral::init_process();
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let pipeline_error = e.chain().any(|c| {
                c.downcast_ref::<DagError>()
                    .is_some_and(DagError::is_pipeline_error)
            });
            ExitCode::from(if pipeline_error { 2 } else { 1 })
        }
    }
}

struct Ctx {
    ws: Workspace,
    pipeline_path: PathBuf,
}

impl Ctx {
    fn open(cli: &Cli) -> Result<Ctx> {
        let root = cli.workspace.clone().unwrap_or_else(|| PathBuf::from("."));
        let ws = Workspace::open(&root, cli.store.as_deref())
            .with_context(|| format!("opening the workspace at {}", root.display()))?;
        let pipeline_path = if cli.pipeline.is_absolute() {
            cli.pipeline.clone()
        } else {
            ws.root.join(&cli.pipeline)
        };
        Ok(Ctx { ws, pipeline_path })
    }

    fn pipeline(&self, cli: &Cli) -> Result<Pipeline> {
        if !self.pipeline_path.exists() {
            return Err(DagError::Pipeline {
                file: cli.pipeline.clone(),
                line: 0,
                stage: None,
                message: "no such pipeline file (choose one with -p FILE)".into(),
            }
            .into());
        }
        let mut p = Pipeline::load(&self.pipeline_path, cli.profile.as_deref())?;
        // Messages name the file as the user spelled it.
        p.file = cli.pipeline.clone();
        Ok(p)
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn dispatch(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "ventral", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let registry = ventral_kinds::registry()?;
    if let Cmd::Kinds = cli.command {
        return kinds(cli, &registry);
    }
    if let Cmd::Score {
        benchmark:
            ScoreCmd::Neural {
                source,
                target,
                normalisation,
                region,
                time_bins,
                min_consistency,
            },
    } = &cli.command
    {
        let sel = ventral_benchmarks::neural::Selection {
            region: region.clone(),
            window: time_bins.as_ref().map(|t| (t[0], t[1])),
            min_consistency: *min_consistency,
        };
        let v = score::neural(source, target, *normalisation, &sel)?;
        if cli.json {
            print_json(&v)?;
        } else {
            println!(
                "neural: score {:.6} ± {:.6}, ceiling {:.6}, ceiled ({}) {:.6}",
                v["score"].as_f64().unwrap_or(f64::NAN),
                v["score_error"].as_f64().unwrap_or(f64::NAN),
                v["ceiling"].as_f64().unwrap_or(f64::NAN),
                v["normalisation"].as_str().unwrap_or_default(),
                v["ceiled"].as_f64().unwrap_or(f64::NAN)
            );
            println!("per split: {}", v["per_split"]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Cmd::Score { benchmark } = &cli.command {
        let v = match benchmark {
            ScoreCmd::I2n {
                fitting,
                test,
                trials,
                c,
            } => {
                let mut inputs = score::Inputs::new();
                let (fitting, test, trials) = (
                    inputs.store(fitting)?,
                    inputs.store(test)?,
                    inputs.store(trials)?,
                );
                let model = ventral_benchmarks::model_of(&test).map_err(|e| inputs.explain(e))?;
                let (r, _) = ventral_benchmarks::behaviour::score(
                    "i2n",
                    &model,
                    &fitting,
                    &test,
                    &trials,
                    "object_name",
                    *c,
                )
                .map_err(|e| inputs.explain(e))?;
                serde_json::to_value(&r)?
            }
            ScoreCmd::Ost {
                activations,
                monkey,
                decoder,
                readout,
            } => {
                let mut inputs = score::Inputs::new();
                let monkey = inputs.store(monkey)?;
                let (r, _) = ventral_benchmarks::ost::score(
                    "ost",
                    "model",
                    activations,
                    &monkey,
                    decoder.as_deref(),
                    *readout,
                )
                .map_err(|e| inputs.explain(e))?;
                serde_json::to_value(&r)?
            }
            ScoreCmd::Neural { .. } => unreachable!("handled above"),
        };
        if cli.json {
            print_json(&v)?;
        } else {
            println!(
                "{}: score {:.6} ± {:.6}, ceiling {:.6}, ceiled {:.6}",
                v["benchmark"].as_str().unwrap_or_default(),
                v["raw"].as_f64().unwrap_or(f64::NAN),
                v["raw_error"].as_f64().unwrap_or(f64::NAN),
                v["ceiling"].as_f64().unwrap_or(f64::NAN),
                v["ceiled"].as_f64().unwrap_or(f64::NAN)
            );
            println!("per split: {}", v["per_split"]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match &cli.command {
        Cmd::Ingest { format } => {
            let v = ingest::ingest(format)?;
            if cli.json {
                print_json(&v)?;
            } else {
                ingest::print_ingest(&v);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Export { format } => {
            let v = ingest::export(format)?;
            if cli.json {
                print_json(&v)?;
            } else {
                println!(
                    "wrote variable `{}` with dims ({}) shape {} and coordinates {}",
                    v["data_variable"].as_str().unwrap_or_default(),
                    v["dims"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default(),
                    v["shape"],
                    v["coords"]
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Synth { output, size, seed } => {
            let mut params = serde_json::Map::new();
            params.insert("size".into(), size.clone().into());
            params.insert("world".into(), serde_json::json!({ "seed": seed }));
            let cfg = ventral_synth::kind::config(&params).map_err(|e| anyhow::anyhow!("{e}"))?;
            let quiet = cli.json;
            let s = ventral_synth::generate(&cfg, output, &|m: &str| {
                if !quiet {
                    eprintln!("{m}");
                }
            })?;
            if cli.json {
                print_json(&serde_json::to_value(&s)?)?;
            } else {
                for (set, n) in &s.images {
                    println!("{set}: {n} images");
                }
                for (id, shape) in &s.assemblies {
                    println!("{id}: {shape:?}");
                }
                println!("{} bytes in {:.1} s", s.bytes, s.seconds);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Model { action } => return model_command(cli, ModelAction::Model(action.clone())),
        Cmd::Train(a) => return model_command(cli, ModelAction::Train(a.clone())),
        Cmd::Eval(a) => return model_command(cli, ModelAction::Eval(a.clone())),
        Cmd::Extract(a) => return model_command(cli, ModelAction::Extract(a.clone())),
        Cmd::Manifest { action } => {
            let v = ingest::manifest(action)?;
            if cli.json {
                print_json(&v)?;
            } else if v.get("manifest").is_some() {
                println!(
                    "{}: {} files, {} bytes of dataset {}",
                    v["manifest"].as_str().unwrap_or_default(),
                    v["files"],
                    v["bytes"],
                    v["dataset"].as_str().unwrap_or_default()
                );
            } else {
                println!("ok: {} files, {} bytes match", v["files"], v["bytes"]);
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let ctx = Ctx::open(cli)?;
    match &cli.command {
        Cmd::Run {
            stages,
            jobs,
            force,
            dry_run,
            lock_timeout,
        } => {
            let pipeline = ctx.pipeline(cli)?;
            let engine = Engine::new(&ctx.ws, &registry, &pipeline)?;
            if *dry_run {
                let targets = engine.select(stages)?;
                let set = engine.graph().upstream_closure(&targets);
                let status = engine.status(Some(&set))?;
                return print_status(cli, &status, true);
            }
            let mut opts = RunOptions {
                targets: stages.clone(),
                force: *force,
                lock_timeout: secs(*lock_timeout),
                ..RunOptions::default()
            };
            if let Some(j) = jobs {
                opts.jobs = *j;
            }
            let executor = LocalExecutor {
                store: &ctx.ws.store,
                registry: &registry,
            };
            let live = !cli.json && std::io::stdout().is_terminal();
            let report = if live {
                let display = progress::Live::new(engine.select(stages)?.len());
                let r = engine.run(&opts, &executor, &display);
                display.finish();
                r?
            } else {
                engine.run(&opts, &executor, &NoProgress)?
            };
            if cli.json {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                if !live {
                    for o in report
                        .stages
                        .iter()
                        .filter(|o| o.action != Action::UpToDate)
                    {
                        println!("{}", report::outcome_line(o));
                    }
                }
                println!(
                    "{} ran, {} restored, {} up to date, {} failed, {} skipped in {:.2} s",
                    report.count(Action::Ran),
                    report.count(Action::Restored),
                    report.count(Action::UpToDate),
                    report.count(Action::Failed),
                    report.count(Action::Skipped),
                    report.seconds
                );
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Status { stages } => {
            let pipeline = ctx.pipeline(cli)?;
            let engine = Engine::new(&ctx.ws, &registry, &pipeline)?;
            let set: BTreeSet<usize> = if stages.is_empty() {
                (0..pipeline.stages.len()).collect()
            } else {
                engine.graph().upstream_closure(&engine.select(stages)?)
            };
            let status = engine.status(Some(&set))?;
            print_status(cli, &status, false)
        }
        Cmd::Dag { dot } => {
            let pipeline = ctx.pipeline(cli)?;
            let engine = Engine::new(&ctx.ws, &registry, &pipeline)?;
            let g = engine.graph();
            if cli.json {
                let v: Vec<_> = g
                    .order
                    .iter()
                    .map(|&i| {
                        let s = &pipeline.stages[i];
                        json!({
                            "stage": s.name,
                            "kind": s.kind,
                            "deps": g.deps[i].iter().map(|&d| &pipeline.stages[d].name).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                print_json(&json!(v))?;
            } else if *dot {
                println!("digraph \"{}\" {{\n  rankdir=LR;", pipeline.name);
                for &i in &g.order {
                    let s = &pipeline.stages[i];
                    println!("  \"{}\" [label=\"{}\\n{}\"];", s.name, s.name, s.kind);
                    for &d in &g.deps[i] {
                        println!("  \"{}\" -> \"{}\";", pipeline.stages[d].name, s.name);
                    }
                }
                println!("}}");
            } else {
                for &i in &g.order {
                    let s = &pipeline.stages[i];
                    let deps: Vec<&str> = g.deps[i]
                        .iter()
                        .map(|&d| pipeline.stages[d].name.as_str())
                        .collect();
                    if deps.is_empty() {
                        println!("{} ({})", s.name, s.kind);
                    } else {
                        println!("{} ({}) <- {}", s.name, s.kind, deps.join(", "));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { stage } => show(cli, &ctx, stage),
        Cmd::Verify { lock_timeout } => {
            ctx.ws.store.ensure()?;
            let _lock = ventral_cas::WorkspaceLock::acquire(
                ctx.ws.store.root(),
                "ventral verify",
                secs(*lock_timeout),
            )?;
            let t0 = Instant::now();
            let report = ctx.ws.store.verify()?;
            let seconds = t0.elapsed().as_secs_f64();
            if cli.json {
                let mut v = serde_json::to_value(&report)?;
                v["seconds"] = json!(seconds);
                print_json(&v)?;
            } else {
                for d in &report.damaged {
                    println!("DAMAGED {d}");
                }
                println!(
                    "verified {} objects ({:.1} MB) and {} trees in {:.2} s: {} damaged, {} quarantined, {} run records dropped",
                    report.objects,
                    report.bytes as f64 / 1e6,
                    report.trees,
                    seconds,
                    report.damaged.len(),
                    report.quarantined.len(),
                    report.runs_dropped
                );
            }
            Ok(if report.damaged.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Gc {
            dry_run,
            lock_timeout,
        } => {
            ctx.ws.store.ensure()?;
            let _lock = ventral_cas::WorkspaceLock::acquire(
                ctx.ws.store.root(),
                "ventral gc",
                secs(*lock_timeout),
            )?;
            let keep = ctx.ws.referenced_outputs()?;
            let report = ctx.ws.store.gc(&keep, *dry_run)?;
            if cli.json {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                println!(
                    "{}{} trees kept, {} trees and {} objects ({:.1} MB) removed, {} run records removed",
                    if *dry_run { "dry run: " } else { "" },
                    report.trees_kept,
                    report.trees_removed,
                    report.objects_removed,
                    report.bytes_freed as f64 / 1e6,
                    report.runs_removed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ExecStage { key } => exec_stage(cli, &ctx, &registry, key),
        Cmd::Sql {
            query,
            format,
            output,
            paths,
        } => {
            let catalog = sql::catalog(&ctx.ws, paths)?;
            let session = ventral_sql::SqlSession::new(&catalog)?;
            let format = if cli.json {
                ventral_sql::OutputFormat::Json
            } else {
                *format
            };
            match query {
                Some(q) => sql::run_query(&session, q, format, output.as_deref())?,
                None => sql::repl(&session, format, &ctx.ws.store.root().join("sql_history"))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kinds
        | Cmd::Completions { .. }
        | Cmd::Man
        | Cmd::Score { .. }
        | Cmd::Ingest { .. }
        | Cmd::Export { .. }
        | Cmd::Manifest { .. }
        | Cmd::Model { .. }
        | Cmd::Synth { .. }
        | Cmd::Train(_)
        | Cmd::Eval(_)
        | Cmd::Extract(_) => unreachable!("handled above"),
    }
}

fn print_status(cli: &Cli, status: &[ventral_dag::StageStatus], dry_run: bool) -> Result<ExitCode> {
    if cli.json {
        print_json(&serde_json::to_value(status)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in status {
        println!("{}", report::status_line(s));
    }
    let count = |st: Status| status.iter().filter(|s| s.status == st).count();
    println!(
        "{}{} stages: {} up to date, {} restorable, {} stale, {} waiting on upstream",
        if dry_run {
            "dry run: nothing was run. "
        } else {
            ""
        },
        status.len(),
        count(Status::UpToDate),
        count(Status::Restorable),
        count(Status::Stale),
        count(Status::Waiting)
    );
    Ok(ExitCode::SUCCESS)
}

fn show(cli: &Cli, ctx: &Ctx, stage: &str) -> Result<ExitCode> {
    let pipeline = ctx.pipeline(cli)?;
    if pipeline.stage(stage).is_none() {
        return Err(DagError::Pipeline {
            file: cli.pipeline.clone(),
            line: 0,
            stage: None,
            message: format!("no stage `{stage}` in this pipeline"),
        }
        .into());
    }
    let lf_path = ctx.ws.lockfile_path(&pipeline);
    let lf = Lockfile::load(&lf_path, &pipeline.name, &pipeline.profile)?;
    let Some(entry) = lf.stages.get(stage) else {
        if cli.json {
            print_json(&json!({ "stage": stage, "never_run": true }))?;
        } else {
            println!("{stage}: never run (no entry in {})", lf_path.display());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let out = ctx.ws.store.out_path(&entry.output);
    let tree = ctx.ws.store.read_tree(&entry.output).ok();
    let damage = ctx.ws.store.check_tree(&entry.output);
    if cli.json {
        print_json(&json!({
            "stage": stage,
            "kind": entry.kind,
            "code": entry.code,
            "runtime": entry.runtime,
            "key": entry.key,
            "output": entry.output,
            "path": out,
            "params": entry.params,
            "inputs": entry.inputs,
            "files": tree.as_ref().map(|t| &t.entries),
            "damage": damage,
        }))?;
    } else {
        println!("stage   {stage}");
        println!(
            "kind    {} (code {})",
            entry.kind,
            &entry.code[..entry.code.len().min(16)]
        );
        if let Some(rt) = &entry.runtime {
            println!("runtime {rt}");
        }
        println!("key     {}", entry.key);
        println!("output  {}", entry.output);
        println!("path    {}", out.display());
        if let Some(t) = &tree {
            println!(
                "files   {} ({:.1} kB)",
                t.entries.len(),
                t.total_size() as f64 / 1e3
            );
            for e in t.entries.iter().take(50) {
                println!("  {:>12}  {}  {}", e.size, e.digest.short(12), e.path);
            }
            if t.entries.len() > 50 {
                println!("  … {} more", t.entries.len() - 50);
            }
        }
        for d in &damage {
            println!("DAMAGED {d}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn exec_stage(
    cli: &Cli,
    ctx: &Ctx,
    registry: &ventral_dag::Registry,
    key: &str,
) -> Result<ExitCode> {
    let key: Digest = key.parse().context("KEY")?;
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
    let output = execute_job(&ctx.ws.store, registry, &job, &|m: &str| {
        tracing::info!("{m}")
    })?;
    let result = json!({ "key": key, "stage": job.stage, "output": output });
    ventral_cas::atomic_write(
        &path.with_extension("result.json"),
        result.to_string().as_bytes(),
    )?;
    if cli.json {
        print_json(&result)?;
    } else {
        println!("{} -> {}", job.stage, output);
    }
    Ok(ExitCode::SUCCESS)
}

fn kinds(cli: &Cli, registry: &ventral_dag::Registry) -> Result<ExitCode> {
    let v: Vec<_> = registry
        .iter()
        .map(|(k, code)| {
            let (crates, external) = ventral_kinds::closure(k.code_crate());
            json!({
                "kind": k.name(),
                "code": code,
                "crate": k.code_crate(),
                "closure": crates,
                "external_crates": external,
                "doc": k.doc(),
                "params": k.params().iter().map(|p| json!({
                    "name": p.name, "type": p.ty.describe(), "required": p.required, "doc": p.doc,
                    "allowed": p.allowed, "default": p.default,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    if cli.json {
        print_json(&json!(v))?;
    } else {
        for (k, code) in registry.iter() {
            println!(
                "{}  (code {})  {}",
                k.name(),
                &code[..16.min(code.len())],
                k.doc()
            );
            for p in k.params() {
                let mut doc = p.doc.clone();
                if !p.allowed.is_empty() {
                    doc.push_str(&format!(" One of: {}.", p.allowed.join(", ")));
                }
                if let Some(d) = &p.default {
                    doc.push_str(&format!(" Default: {d}."));
                }
                println!(
                    "    {:<15} {:<20} {}{}",
                    p.name,
                    p.ty.describe(),
                    if p.required { "Required. " } else { "" },
                    doc
                );
            }
            let (crates, external) = ventral_kinds::closure(k.code_crate());
            println!(
                "    code: {} and {} external crates",
                crates.join(", "),
                external
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Hand a model command to the `ventral-torch` worker (which loads libtorch) and exit with
/// its status; its output is this command's.
fn model_command(cli: &Cli, action: ModelAction) -> Result<ExitCode> {
    let cmd = ModelCommand {
        json: cli.json,
        command: action,
    };
    let json = serde_json::to_string(&cmd)?;
    let status = ventral_kinds::worker::worker_command(ventral_model_spec::cpu_capability())
        .map_err(anyhow::Error::msg)?
        .arg("command")
        .arg(json)
        .status()
        .context("starting the model worker")?;
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // Die of the same signal (a closed pipe downstream ends both quietly).
        // SAFETY: restoring a signal's default action and raising it in this thread.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        eprintln!("error: the model worker was killed by signal {sig}");
    }
    Ok(match status.code() {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(1),
    })
}
