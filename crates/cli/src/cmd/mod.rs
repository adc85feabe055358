//! One module per command, as Cargo structures its own: each has its `#[derive(Args)]`
//! struct and an `exec`, and returns a typed result that [`emit`] prints as text or, with
//! `--json`, as JSON. Argument groups several commands share ([`LockArgs`]) are flattened.

pub mod completions;
pub mod dag;
pub mod exec_stage;
pub mod fetch;
pub mod gc;
pub mod ingest;
pub mod kinds;
pub mod model;
pub mod remote;
pub mod run;
pub mod score;
pub mod show;
pub mod sql;
pub mod status;
pub mod synth;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ventral_dag::{DagError, Engine, Pipeline, Registry, Workspace};

/// ventral: the CORnet-S paper as a content-addressed pipeline.
#[derive(Parser, Debug)]
#[command(name = "ventral", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

/// The options every command takes.
#[derive(Args, Debug)]
pub struct Global {
    /// Workspace root (default: the current folder).
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The object store (default: <workspace>/.ventral).
    #[arg(long, global = true, env = "VENTRAL_HOME", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The pipeline file, relative to the workspace.
    #[arg(
        short,
        long,
        global = true,
        env = "VENTRAL_PIPELINE",
        default_value = "pipelines/paper.toml"
    )]
    pub pipeline: PathBuf,
    /// The profile (default: the pipeline file's own `profile`).
    #[arg(long, global = true, env = "VENTRAL_PROFILE")]
    pub profile: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the stages that are stale (and the upstream they need).
    Run(run::Args),
    /// List every stage as up to date or stale, and why.
    Status(status::Args),
    /// Print the stage graph.
    Dag(dag::Args),
    /// Show a stage's key, output and files.
    Show(show::Args),
    /// Re-hash the whole store; name and quarantine anything damaged.
    Verify(verify::Args),
    /// Remove outputs no lockfile refers to.
    Gc(gc::Args),
    /// Upload stage results to a remote cache (`[remote.NAME]` in `ventral.toml`).
    Push(remote::PushArgs),
    /// Download the results of stages whose current key a remote cache has (every file
    /// verified); `ventral run` then restores them without running anything.
    Pull(remote::PullArgs),
    /// Check a remote cache (`verify`) or trim it to what lockfiles name (`gc`).
    Remote(remote::RemoteCmdArgs),
    /// Execute one prepared job (`.ventral/jobs/KEY.json`); used by cluster executors.
    ExecStage(exec_stage::Args),
    /// List the built-in stage kinds, their params and code identities.
    Kinds,
    /// Score activations against recordings directly, outside any pipeline.
    Score(score::Args),
    /// Read the real formats into our stores: BrainIO, ILSVRC2012, MS COCO, CIFAR-100.
    Ingest(ingest::IngestArgs),
    /// Write our stores in the real formats (BrainIO netCDF4).
    Export(ingest::ExportArgs),
    /// Download the paper's datasets and weights that `manifests/` names into `data/real/`,
    /// each verified against its publisher's hash (resumes interrupted downloads).
    Fetch(fetch::Args),
    /// Create or verify a dataset manifest (size and blake3 of every file).
    Manifest(ingest::ManifestArgs),
    /// CORnet weights: import official checkpoints, describe models.
    Model(model::ModelArgs),
    /// Train a CORnet on an image index (the paper's recipe by default); resumes from the
    /// last epoch found in the output folder.
    Train(ventral::model_args::TrainArgs),
    /// Top-1 and top-5 accuracy of weights on an image index split.
    Eval(ventral::model_args::EvalArgs),
    /// Activations of every layer for a stimulus set, a folder of images or a `.npy` batch,
    /// one store per area and timestep.
    Extract(ventral::model_args::ExtractArgs),
    /// Generate the synthetic world (the embedded default's data) into a folder.
    Synth(synth::Args),
    /// Print a completion script for a shell (`ventral completions bash > /etc/bash_completion.d/ventral`).
    Completions(completions::Args),
    /// Print the manual page (roff: `ventral man | man -l -`).
    Man,
    /// Query the stores with SQL (read-only). With no query, an interactive prompt.
    ///
    /// Tables: assemblies, stimuli, neuroids, activations, scores, runs.
    Sql(sql::Args),
}

impl Cmd {
    /// Run the command.
    pub fn exec(&self, g: &Global) -> Result<ExitCode> {
        match self {
            Cmd::Run(a) => run::exec(g, a),
            Cmd::Status(a) => status::exec(g, a),
            Cmd::Dag(a) => dag::exec(g, a),
            Cmd::Show(a) => show::exec(g, a),
            Cmd::Verify(a) => verify::exec(g, a),
            Cmd::Gc(a) => gc::exec(g, a),
            Cmd::Push(a) => remote::push(g, a),
            Cmd::Pull(a) => remote::pull(g, a),
            Cmd::Remote(a) => remote::exec_remote(g, a),
            Cmd::ExecStage(a) => exec_stage::exec(g, a),
            Cmd::Kinds => kinds::exec(g),
            Cmd::Score(a) => score::exec(g, a),
            Cmd::Ingest(a) => ingest::exec_ingest(g, a),
            Cmd::Export(a) => ingest::exec_export(g, a),
            Cmd::Manifest(a) => ingest::exec_manifest(g, a),
            Cmd::Fetch(a) => fetch::exec(g, a),
            Cmd::Model(a) => model::forward(g, model::action_of_model(a)),
            Cmd::Train(a) => model::forward(g, ventral::model_args::ModelAction::Train(a.clone())),
            Cmd::Eval(a) => model::forward(g, ventral::model_args::ModelAction::Eval(a.clone())),
            Cmd::Extract(a) => {
                model::forward(g, ventral::model_args::ModelAction::Extract(a.clone()))
            }
            Cmd::Synth(a) => synth::exec(g, a),
            Cmd::Completions(a) => completions::exec(a),
            Cmd::Man => completions::man(),
            Cmd::Sql(a) => sql::exec(g, a),
        }
    }
}

/// A command's result: serialised for `--json`, rendered as text otherwise.
pub trait Output: serde::Serialize {
    /// The text rendering (lines, without a final newline).
    fn text(&self) -> String;
}

/// Print `v` as `--json` asks.
pub fn emit(g: &Global, v: &impl Output) -> Result<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        let t = v.text();
        if !t.is_empty() {
            println!("{t}");
        }
    }
    Ok(())
}

/// How long to wait for another process holding the workspace.
#[derive(Args, Debug, Clone, Copy)]
pub struct LockArgs {
    /// Seconds to wait for another run holding the workspace.
    #[arg(long, default_value_t = 600.0)]
    pub lock_timeout: f64,
}

impl LockArgs {
    /// The timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.lock_timeout.max(0.0))
    }
}

/// Open the workspace, read the pipeline and plan it with every kind, then run `f` on them.
pub fn with_engine<T>(
    g: &Global,
    f: impl FnOnce(&Ctx, &Registry, &Pipeline, &Engine) -> Result<T>,
) -> Result<T> {
    let ctx = Ctx::open(g)?;
    let config = ventral_cluster::WorkspaceConfig::load(&ctx.ws.root)?;
    plan_for(&config, config.executor.kind);
    let registry = ventral_kinds::registry()?;
    let pipeline = ctx.pipeline(g)?;
    let engine = Engine::new(&ctx.ws, &registry, &pipeline)?;
    f(&ctx, &registry, &pipeline, &engine)
}

/// Plan for where the stages will run: on a Slurm cluster whose config names a
/// `gpu_partition`, a model stage's `device = "auto"` resolves to CUDA when this build's
/// libtorch has it (the stage then asks for a GPU and goes to that partition), whatever the
/// machine the driver runs on has; elsewhere it resolves on this machine.
pub(crate) fn plan_for(
    config: &ventral_cluster::WorkspaceConfig,
    kind: ventral_cluster::ExecutorKind,
) {
    ventral_model_spec::plan_for_gpu_nodes(
        kind == ventral_cluster::ExecutorKind::Slurm && config.executor.gpu_partition.is_some(),
    );
}

/// The workspace and the pipeline file a command works on.
pub struct Ctx {
    /// The workspace.
    pub ws: Workspace,
    /// The pipeline file's absolute path.
    pub pipeline_path: PathBuf,
}

impl Ctx {
    /// Open the workspace the global options name.
    pub fn open(g: &Global) -> Result<Ctx> {
        let root = g.workspace.clone().unwrap_or_else(|| PathBuf::from("."));
        let ws = Workspace::open(&root, g.store.as_deref())
            .with_context(|| format!("opening the workspace at {}", root.display()))?;
        let pipeline_path = if g.pipeline.is_absolute() {
            g.pipeline.clone()
        } else {
            ws.root.join(&g.pipeline)
        };
        Ok(Ctx { ws, pipeline_path })
    }

    /// Read and check the pipeline file.
    pub fn pipeline(&self, g: &Global) -> Result<Pipeline> {
        if !self.pipeline_path.exists() {
            return Err(DagError::Pipeline {
                file: g.pipeline.clone(),
                line: 0,
                stage: None,
                message: "no such pipeline file (choose one with -p FILE)".into(),
            }
            .into());
        }
        let mut p = Pipeline::load(&self.pipeline_path, g.profile.as_deref())?;
        // Messages name the file as the user spelled it.
        p.file = g.pipeline.clone();
        Ok(p)
    }
}
