//! `ventral sql`: build the catalog from the workspace's lockfiles and hand queries to
//! `ventral-sql`. With no query, an interactive prompt with history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use ventral_dag::Workspace;
use ventral_sql::{Catalog, OutputFormat, SqlSession, write_results};

use super::{Ctx, Global};

/// `ventral sql`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query.
    pub query: Option<String>,
    /// Output format: table, csv, json or parquet.
    #[arg(long, default_value = "table")]
    pub format: OutputFormat,
    /// Write the result to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also read the stores under DIR (repeatable), e.g. one written by `ventral ingest`.
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<PathBuf>,
}

/// Run `ventral sql`: the results are written by the query engine in the format asked for
/// (`--json` is `--format json`).
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    let catalog = catalog(&ctx.ws, &a.paths)?;
    let session = SqlSession::new(&catalog)?;
    let format = if g.json { OutputFormat::Json } else { a.format };
    match &a.query {
        Some(q) => run_query(&session, q, format, a.output.as_deref())?,
        None => repl(&session, format, &ctx.ws.store.root().join("sql_history"))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Every stage output named by a lockfile in `lockfiles/`, plus `extra` folders.
pub fn catalog(ws: &Workspace, extra: &[PathBuf]) -> Result<Catalog> {
    Ok(Catalog::of_workspace(ws, extra)?)
}

/// Run one query and print or write its result.
pub fn run_query(
    session: &SqlSession,
    query: &str,
    format: OutputFormat,
    out: Option<&Path>,
) -> Result<()> {
    let batches = session.query(query)?;
    let mut stdout = std::io::stdout().lock();
    write_results(&batches, format, out, &mut stdout)?;
    stdout.flush()?;
    Ok(())
}

/// The interactive prompt: statements end with `;`; `.tables` lists tables; `.quit` leaves.
pub fn repl(session: &SqlSession, format: OutputFormat, history: &Path) -> Result<()> {
    let mut rl = rustyline::DefaultEditor::new().context("starting the prompt")?;
    let _ = rl.load_history(history);
    println!(
        "ventral sql — tables: {}. End statements with `;`, `.quit` to leave.",
        session.tables().join(", ")
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "ventral> "
        } else {
            "     ..> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                let t = line.trim();
                if buf.is_empty() && (t == ".quit" || t == ".exit" || t == "\\q") {
                    break;
                }
                if buf.is_empty() && t == ".tables" {
                    println!("{}", session.tables().join("\n"));
                    continue;
                }
                buf.push_str(&line);
                buf.push('\n');
                if t.ends_with(';') {
                    let q = std::mem::take(&mut buf);
                    let _ = rl.add_history_entry(q.trim());
                    if let Err(e) = run_query(session, &q, format, None) {
                        eprintln!("error: {e:#}");
                    }
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buf.clear(),
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = rl.save_history(history);
    Ok(())
}
