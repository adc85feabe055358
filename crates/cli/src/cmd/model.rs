//! `ventral model …`, `train`, `eval`, `extract`: handed to the `ventral-torch` worker,
//! which loads libtorch; its output and exit status are the command's.

use std::process::ExitCode;

use anyhow::{Context, Result};
use ventral::model_args::{ModelAction, ModelCmd, ModelCommand};

use super::Global;

/// `ventral model`.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub action: ModelCmd,
}

/// The worker's action for `ventral model …`.
pub fn action_of_model(a: &ModelArgs) -> ModelAction {
    ModelAction::Model(a.action.clone())
}

/// Hand `action` to the worker and exit with its status.
pub fn forward(g: &Global, action: ModelAction) -> Result<ExitCode> {
    let workspace = std::path::absolute(g.workspace.as_deref().unwrap_or(".".as_ref()))
        .context("resolving the workspace folder")?;
    let cmd = ModelCommand {
        json: g.json,
        workspace: Some(workspace),
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
