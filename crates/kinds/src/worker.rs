//! The model kinds as the engine sees them, and the protocol with the `ventral-torch`
//! worker that runs them.
//!
//! Loading libtorch costs about a quarter of a second per process, so the `ventral` binary
//! never links it. A model stage's job goes, as one JSON [`WorkerRequest`] in a file, to
//! `ventral-torch run-stage FILE`, installed beside `ventral` (or named by
//! `$VENTRAL_TORCH`), which checks the job's code identity and runtime against its own,
//! runs the kind, and reports on stdout: `progress\t<message>` lines, and on failure one
//! `error\t<JSON string>` line. Its stderr goes to the stage's log. A crash in libtorch kills
//! the worker, never the engine; the worker dies with the process that started it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use ventral_model_spec::KindDecl;
use ventral_stage::{BoxError, ParamSpec, Params, StageContext, StageKind};

/// The file name of the worker executable.
pub const WORKER: &str = "ventral-torch";

/// Exit status of the worker when it refuses a job (another build's code, another runtime).
pub const EXIT_REFUSED: i32 = 2;

/// A model stage's job, as the worker receives it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// The kind.
    pub kind: String,
    /// The stage.
    pub stage: String,
    /// The code identity the job was prepared for.
    pub code: String,
    /// The declared runtime.
    pub runtime: Option<String>,
    /// The params.
    pub params: Params,
    /// Input paths by name.
    pub inputs: BTreeMap<String, Vec<PathBuf>>,
    /// The empty output folder.
    pub out_dir: PathBuf,
    /// The workspace root.
    pub workspace: PathBuf,
    /// The stage's log file.
    pub log: PathBuf,
    /// The folder kept for resumable work.
    pub resume_dir: PathBuf,
    /// The memory the stage asked for, in bytes.
    #[serde(default)]
    pub memory: Option<u64>,
}

/// Where the worker executable is: `$VENTRAL_TORCH`, else beside the running executable
/// (or one folder up, for test harnesses under `target/*/deps`), else on `PATH`.
pub fn worker_path() -> Result<PathBuf, String> {
    ventral_stage::process::find_worker(WORKER, "VENTRAL_TORCH")
}

/// A command that starts the worker with libtorch's CPU kernels pinned ([`ventral_model_spec::cpu_env`])
/// and that dies with this process.
pub fn worker_command(capability: &str) -> Result<Command, String> {
    let mut cmd = Command::new(worker_path()?);
    for (k, v) in ventral_model_spec::cpu_env(capability) {
        cmd.env(k, v);
    }
    // The worker would otherwise go on writing into the key's resume folder beside the
    // next run's worker.
    ventral_stage::process::die_with_parent(&mut cmd);
    Ok(cmd)
}

/// A model kind in a process without libtorch: declared by `ventral-model-spec`, run by
/// the worker.
pub struct ModelKind {
    decl: &'static KindDecl,
}

impl ModelKind {
    /// The stand-in for `decl`.
    pub fn new(decl: &'static KindDecl) -> Self {
        ModelKind { decl }
    }
}

impl StageKind for ModelKind {
    fn name(&self) -> &str {
        self.decl.name
    }
    fn code_crate(&self) -> &'static str {
        ventral_model_spec::IMPLEMENTED_IN
    }
    fn params(&self) -> Vec<ParamSpec> {
        (self.decl.params)()
    }
    fn doc(&self) -> &str {
        self.decl.doc
    }
    fn check(&self, params: &Params) -> Result<(), BoxError> {
        ventral_model_spec::check(self.decl, params)
    }
    fn runtime(&self, params: &Params) -> Result<Option<String>, BoxError> {
        ventral_model_spec::runtime(self.decl, params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        // A `manifest` input (a source manifest: `manifests/cornet.toml`, …) is checked
        // against every other input before the worker reads any of them.
        if let Some(m) = ctx.optional_input("manifest")? {
            for (name, paths) in ctx.inputs {
                if name != "manifest" {
                    for p in paths {
                        (ctx.progress)(&ventral_ingest::manifest::check(m, p)?);
                    }
                }
            }
        }
        let code = crate::code_identity(self.code_crate()).unwrap_or_default();
        let request = WorkerRequest {
            kind: self.decl.name.to_string(),
            stage: ctx.stage.to_string(),
            code: code.to_string(),
            runtime: ctx.runtime.map(str::to_string),
            params: ctx.params.clone(),
            inputs: ctx.inputs.clone(),
            out_dir: ctx.out_dir.to_path_buf(),
            workspace: ctx.workspace.to_path_buf(),
            log: ctx.log.to_path_buf(),
            resume_dir: ctx.resume_dir.to_path_buf(),
            memory: ctx.memory,
        };
        let runtime = ctx
            .runtime
            .ok_or("a model stage must declare a runtime")
            .and_then(|r| ventral_model_spec::Runtime::parse(r).map_err(|_| "bad runtime"))
            .map_err(|e| format!("{e}: {:?}", ctx.runtime))?;
        let capability = runtime
            .cpu
            .unwrap_or_else(|| ventral_model_spec::cpu_capability().to_string());
        // The job goes in a file (the worker may die before reading a pipe, and this
        // process must not die of SIGPIPE for it).
        let mut job = tempfile::Builder::new()
            .prefix("ventral-job-")
            .suffix(".json")
            .tempfile()?;
        job.write_all(&serde_json::to_vec(&request)?)?;
        job.flush()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ctx.log)
            .map_err(|e| format!("cannot open the stage log {}: {e}", ctx.log.display()))?;
        let mut child = worker_command(&capability)?
            .arg("run-stage")
            .arg(job.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the model worker: {e}"))?;
        let mut error: Option<BoxError> = None;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(msg) = line.strip_prefix("progress\t") {
                    (ctx.progress)(msg);
                } else if let Some(e) = line.strip_prefix("error\t") {
                    error = Some(
                        serde_json::from_str::<String>(e)
                            .unwrap_or_else(|_| e.to_string())
                            .into(),
                    );
                } else if let Some(e) = line.strip_prefix("param-error\t") {
                    let v: serde_json::Value =
                        serde_json::from_str(e).unwrap_or(serde_json::Value::Null);
                    error = Some(ventral_stage::ParamError::boxed(
                        v["param"].as_str().unwrap_or_default(),
                        v["message"].as_str().unwrap_or(e),
                    ));
                }
            }
        }
        let status = child.wait()?;
        if status.success() {
            return Ok(());
        }
        Err(match error {
            Some(e) => e,
            None => format!(
                "the model worker died ({status}) without saying why; its output is in {}",
                ctx.log.display()
            )
            .into(),
        })
    }
}
