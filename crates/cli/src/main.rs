//! `ventral`: the command-line interface. Thin: it parses arguments, hands each command to
//! its module (`cmd/`), and prints results. It never loads libtorch: model commands and
//! model stages go to the `ventral-torch` worker.

mod cmd;
mod progress;
mod report;

use std::process::ExitCode;

use clap::Parser;
use ventral_dag::DagError;

fn main() -> ExitCode {
    ventral::init_process();
    let cli = cmd::Cli::parse();
    match cli.command.exec(&cli.global) {
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
