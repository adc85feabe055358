//! `ventral`: the command-line interface. Thin: it parses arguments, hands each command to
//! its module (`cmd/`), and prints results. It never loads libtorch: model commands and
//! model stages go to the `ventral-torch` worker.

mod cmd;
mod progress;
mod report;

use std::process::ExitCode;

use clap::Parser;
use ventral_dag::DagError;

/// The error and its causes, each cause once: an error whose message already quotes its
/// cause (`{path}: {source}`) does not repeat it.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

fn main() -> ExitCode {
    ventral::init_process();
    let cli = cmd::Cli::parse();
    match cli.command.exec(&cli.global) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            let pipeline_error = e.chain().any(|c| {
                c.downcast_ref::<DagError>()
                    .is_some_and(DagError::is_pipeline_error)
            });
            ExitCode::from(if pipeline_error { 2 } else { 1 })
        }
    }
}
