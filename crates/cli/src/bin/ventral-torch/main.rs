//! `ventral-torch`: the model worker. The only executable that loads libtorch; `ventral`
//! starts it for model stages (`run-stage FILE`, one JSON job) and model commands
//! (`command`, the parsed arguments as JSON). Not meant to be typed by users.

mod commands;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use ventral::model_args::ModelCommand;
use ventral_kinds::worker::{EXIT_REFUSED, WorkerRequest};
use ventral_stage::{StageContext, StageKind};

fn main() -> ExitCode {
    ventral::init_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run-stage") => match args.get(1) {
            Some(file) => run_stage(std::path::Path::new(file)),
            None => Err(anyhow::anyhow!("`run-stage` takes the job file")),
        },
        Some("command") => match args.get(1) {
            Some(json) => command(json),
            None => Err(anyhow::anyhow!("`command` takes the command as JSON")),
        },
        Some("--version") => {
            println!(
                "ventral-torch {} (libtorch {})",
                env!("CARGO_PKG_VERSION"),
                ventral_model_spec::Libtorch::BUILT.version
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(anyhow::anyhow!(
            "usage: ventral-torch run-stage JOB.json | ventral-torch command JSON (started by `ventral`)"
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The model kinds this worker runs.
fn model_kinds() -> Vec<Arc<dyn StageKind>> {
    use ventral_model::kinds::{EvaluateKind, ExtractKind, ImportKind, InitKind, TrainKind};
    vec![
        Arc::new(InitKind),
        Arc::new(ImportKind),
        Arc::new(TrainKind),
        Arc::new(EvaluateKind),
        Arc::new(ExtractKind),
    ]
}

/// Say why a job failed on stdout, where the engine reads it, and exit with `code`.
fn fail(message: &str, code: u8) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "error\t{}", serde_json::Value::from(message));
    let _ = out.flush();
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn run_stage(file: &std::path::Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the job {}", file.display()))?;
    let req: WorkerRequest = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => return Ok(fail(&format!("{}: not a job: {e}", file.display()), 1)),
    };
    let Some(kind) = model_kinds().into_iter().find(|k| k.name() == req.kind) else {
        return Ok(fail(&format!("`{}` is not a model kind", req.kind), 1));
    };
    let here = ventral_kinds::code_identity(kind.code_crate()).unwrap_or_default();
    if here != req.code {
        return Ok(fail(
            &format!(
                "the job was prepared for code {} of kind `{}`, but this worker's ({}) is {here}; run it with the build that prepared it",
                req.code,
                req.kind,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            EXIT_REFUSED as u8,
        ));
    }
    let stdout = std::sync::Mutex::new(std::io::stdout());
    let progress = |m: &str| {
        if let Ok(mut out) = stdout.lock() {
            // One line per message; a message's own newlines would split it.
            let _ = writeln!(out, "progress\t{}", m.replace('\n', " "));
            let _ = out.flush();
        }
    };
    let ctx = StageContext {
        stage: &req.stage,
        params: &req.params,
        inputs: &req.inputs,
        out_dir: &req.out_dir,
        workspace: &req.workspace,
        log: &req.log,
        runtime: req.runtime.as_deref(),
        resume_dir: &req.resume_dir,
        memory: req.memory,
        progress: &progress,
    };
    Ok(match kind.run(&ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<ventral_stage::ParamError>() {
            // A param refused when the stage started: the engine reports it as one.
            Some(p) => {
                let mut out = std::io::stdout().lock();
                let v = serde_json::json!({"param": p.param, "message": p.message});
                let _ = writeln!(out, "param-error\t{v}");
                let _ = out.flush();
                eprintln!("error: {p}");
                ExitCode::from(1)
            }
            None => fail(&e.to_string(), 1),
        },
    })
}

fn command(json: &str) -> Result<ExitCode> {
    let cmd: ModelCommand = serde_json::from_str(json).context("parsing the command")?;
    commands::run(&cmd)?;
    Ok(ExitCode::SUCCESS)
}
