//! `ventral sql`: build the catalog from the workspace's lockfiles and hand queries to
//! `ventral-sql`. With no query, an interactive prompt with history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use ventral_remote::ReadCounters;
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
    /// Read the outputs the lockfiles name that are not in the local store where they lie in
    /// the remote NAME (a `[remote.NAME]` of `ventral.toml`): only the files a query needs
    /// are fetched, each checked against its blake3; nothing is written locally.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

/// Run `ventral sql`: the results are written by the query engine in the format asked for
/// (`--json` is `--format json`).
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    let remote = match &a.remote {
        Some(name) => Some((
            Arc::new(super::remote::need(&ctx, Some(name))?),
            Arc::new(ReadCounters::default()),
        )),
        None => None,
    };
    let catalog = Catalog::of_workspace_with(
        &ctx.ws,
        &a.paths,
        remote.as_ref().map(|(r, c)| (r, c.clone())),
    )?;
    let session = SqlSession::new(&catalog)?;
    let format = if g.json { OutputFormat::Json } else { a.format };
    match &a.query {
        Some(q) => run_query(&session, q, format, a.output.as_deref())?,
        None => repl(&session, format, &ctx.ws.store.root().join("sql_history"))?,
    }
    if let Some((r, c)) = &remote {
        // What the query cost, on stderr (stdout holds the result).
        eprintln!(
            "read {} request(s), {} byte(s) from remote `{}`",
            c.requests.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
            r.name()
        );
    }
    Ok(ExitCode::SUCCESS)
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
