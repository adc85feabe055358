//! `ventral push`, `ventral pull`, and the remote cache `ventral run --remote` uses.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use ventral_cas::{Digest, RunRecord, Store};
use ventral_dag::{Lockfile, RemoteCache, Status};
use ventral_remote::Remote;

use super::{Ctx, Global, Output, emit, with_engine};

/// Which remote.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArg {
    /// The remote (a `[remote.NAME]` of the workspace's `ventral.toml`; default: the one
    /// marked `default = true`).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

/// Open the remote `name` (or the default one) of the workspace's config; None when no
/// name is given and there is no default.
pub fn open(ctx: &Ctx, name: Option<&str>) -> Result<Option<Remote>> {
    let cfg = ventral_cluster::WorkspaceConfig::load(&ctx.ws.root)?;
    let Some((name, r)) = cfg.remote(name).map_err(|e| anyhow!(e))? else {
        return Ok(None);
    };
    Ok(Some(
        Remote::open(&name, &r.url, &r.options)
            .with_context(|| format!("opening the remote `{name}`"))?,
    ))
}

/// The engine's view of a remote: pull before running, push after.
pub struct Cache<'a> {
    /// The remote.
    pub remote: &'a Remote,
    /// The local store.
    pub store: &'a Store,
}

impl RemoteCache for Cache<'_> {
    fn fetch(&self, key: &Digest, _stage: &str) -> std::result::Result<bool, String> {
        self.remote
            .pull(self.store, key, &|_| {})
            .map(|r| r.is_some())
            .map_err(|e| e.to_string())
    }

    fn offer(&self, rec: &RunRecord) -> std::result::Result<(), String> {
        self.remote
            .push(self.store, rec, &|_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `ventral push`.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Stages to upload (default: every stage the lockfile records).
    pub stages: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArg,
}

/// `ventral pull`.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Stages to fetch (with what they need; default: all).
    pub stages: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArg,
}

#[derive(serde::Serialize)]
struct Transfer {
    remote: String,
    direction: &'static str,
    stages: Vec<String>,
    /// Stages the other side already had.
    already: usize,
    objects: usize,
    bytes: u64,
    seconds: f64,
}

impl Transfer {
    fn new(remote: &Remote, direction: &'static str) -> Transfer {
        Transfer {
            remote: remote.name().to_string(),
            direction,
            stages: Vec::new(),
            already: 0,
            objects: 0,
            bytes: 0,
            seconds: 0.0,
        }
    }
}

impl Output for Transfer {
    fn text(&self) -> String {
        let rate = self.bytes as f64 / 1e6 / self.seconds.max(1e-9);
        format!(
            "{} {} stage{} {} `{}` ({} already there): {} objects, {:.1} MB in {:.2} s ({rate:.1} MB/s){}",
            self.direction,
            self.stages.len(),
            if self.stages.len() == 1 { "" } else { "s" },
            if self.direction == "pushed" {
                "to"
            } else {
                "from"
            },
            self.remote,
            self.already,
            self.objects,
            self.bytes as f64 / 1e6,
            self.seconds,
            if self.direction == "pulled" && !self.stages.is_empty() {
                "; `ventral run` now restores them"
            } else {
                ""
            }
        )
    }
}

pub(crate) fn need(ctx: &Ctx, name: Option<&str>) -> Result<Remote> {
    open(ctx, name)?.ok_or_else(|| {
        anyhow!(
            "no remote: name one with --remote, or mark one `default = true` in {}",
            ctx.ws
                .root
                .join(ventral_cluster::config::FILE_NAME)
                .display()
        )
    })
}

/// Run `ventral push`.
pub fn push(g: &Global, a: &PushArgs) -> Result<ExitCode> {
    let t = with_engine(g, |ctx, _, pipeline, engine| {
        let remote = need(ctx, a.remote.remote.as_deref())?;
        let selected: Vec<String> = engine
            .select(&a.stages)?
            .into_iter()
            .map(|i| pipeline.stages[i].name.clone())
            .collect();
        let lf = Lockfile::load(
            &ctx.ws.lockfile_path(pipeline),
            &pipeline.name,
            &pipeline.profile,
        )?;
        let mut t = Transfer::new(&remote, "pushed");
        let t0 = std::time::Instant::now();
        let bar = byte_bar(g, None);
        let tick = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n)
            }
        };
        for name in &selected {
            let Some(entry) = lf.stages.get(name) else {
                continue;
            };
            let Some(rec) = ctx.ws.store.get_run(&entry.key)? else {
                tracing::warn!("{name}: no run record for its key in the local store; not pushed");
                continue;
            };
            let r = remote
                .push(&ctx.ws.store, &rec, &tick)
                .with_context(|| format!("pushing {name}"))?;
            if r.records == 0 && r.objects == 0 {
                t.already += 1;
            } else {
                t.stages.push(name.clone());
            }
            t.objects += r.objects;
            t.bytes += r.bytes;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        t.seconds = t0.elapsed().as_secs_f64();
        Ok(t)
    })?;
    emit(g, &t)?;
    Ok(ExitCode::SUCCESS)
}

/// Run `ventral pull`: fetch every selected stage whose current key the remote has, in
/// dependency order (a fetched result makes its readers' keys known).
pub fn pull(g: &Global, a: &PullArgs) -> Result<ExitCode> {
    let t = with_engine(g, |ctx, _, pipeline, engine| {
        let remote = need(ctx, a.remote.remote.as_deref())?;
        let set = engine.graph().upstream_closure(&engine.select(&a.stages)?);
        let mut t = Transfer::new(&remote, "pulled");
        let t0 = std::time::Instant::now();
        let bar = byte_bar(g, None);
        let tick = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n)
            }
        };
        let mut tried = std::collections::BTreeSet::new();
        loop {
            let mut progressed = false;
            for st in engine.status(Some(&set))? {
                let Some(key) = st.key else { continue };
                match st.status {
                    Status::Stale if tried.insert(key) => {
                        if let Some((_, r)) = remote
                            .pull(&ctx.ws.store, &key, &tick)
                            .with_context(|| format!("pulling {}", st.stage))?
                        {
                            t.stages.push(st.stage.clone());
                            t.objects += r.objects;
                            t.bytes += r.bytes;
                            progressed = true;
                        }
                    }
                    Status::UpToDate | Status::Restorable if tried.insert(key) => t.already += 1,
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        let _ = pipeline;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        t.seconds = t0.elapsed().as_secs_f64();
        Ok(t)
    })?;
    emit(g, &t)?;
    Ok(ExitCode::SUCCESS)
}

/// `ventral remote`.
#[derive(clap::Args, Debug)]
pub struct RemoteCmdArgs {
    #[command(subcommand)]
    pub action: RemoteCmd,
}

/// What to do with a remote.
#[derive(clap::Subcommand, Debug)]
pub enum RemoteCmd {
    /// Re-hash every object of the remote against its name and check every run record's
    /// files (corrupt objects are removed, as a pull would); prints its size.
    Verify {
        #[command(flatten)]
        remote: RemoteArg,
    },
    /// Remove the run records no given lockfile names, and the objects no kept record
    /// reaches (anything written in the last day stays: another workspace's fresh result,
    /// or a push in progress).
    Gc {
        /// The lockfiles whose results stay (default: this workspace's `lockfiles/*.lock`).
        #[arg(long = "keep", value_name = "LOCKFILE")]
        keep: Vec<std::path::PathBuf>,
        /// Only say what would go.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: RemoteArg,
    },
}

#[derive(serde::Serialize)]
struct Verified {
    remote: String,
    #[serde(flatten)]
    report: ventral_remote::VerifyReport,
}

impl Output for Verified {
    fn text(&self) -> String {
        let r = &self.report;
        let mut l = vec![format!(
            "remote `{}`: {} run records, {} objects, {:.1} MB re-hashed in {:.1} s",
            self.remote,
            r.records,
            r.objects,
            r.bytes as f64 / 1e6,
            r.seconds
        )];
        for c in &r.corrupt {
            l.push(format!("CORRUPT    {c}"));
        }
        for c in &r.bad_records {
            l.push(format!("BAD RECORD {c}"));
        }
        for c in &r.incomplete {
            l.push(format!("INCOMPLETE {c}"));
        }
        if r.corrupt.is_empty() && r.bad_records.is_empty() && r.incomplete.is_empty() {
            l.push("ok: every object hashes to its name and every record's files are there".into());
        }
        l.join("\n")
    }
}

#[derive(serde::Serialize)]
struct Collected {
    remote: String,
    #[serde(flatten)]
    report: ventral_remote::GcReport,
}

impl Output for Collected {
    fn text(&self) -> String {
        let r = &self.report;
        format!(
            "remote `{}`: {} {} run records and {} objects ({:.1} MB); kept {} records and {} objects ({:.1} MB)",
            self.remote,
            if r.dry_run { "would remove" } else { "removed" },
            r.records_removed,
            r.objects_removed,
            r.bytes_removed as f64 / 1e6,
            r.records_kept,
            r.objects_kept,
            r.bytes_kept as f64 / 1e6
        )
    }
}

/// A byte counter on stderr (bytes, rate, elapsed) while a transfer runs, when stderr is a
/// terminal and no `--json` was asked.
fn byte_bar(g: &Global, total: Option<u64>) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if g.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let b =
        indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{elapsed_precise} {spinner} {bytes} {bytes_per_sec}"
    };
    b.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Some(b)
}

/// Run `ventral remote`.
pub fn exec_remote(g: &Global, a: &RemoteCmdArgs) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    match &a.action {
        RemoteCmd::Verify { remote } => {
            let r = need(&ctx, remote.remote.as_deref())?;
            let bar = byte_bar(g, None);
            let report = r.verify(&|n| {
                if let Some(b) = &bar {
                    b.inc(n)
                }
            })?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let bad = !(report.corrupt.is_empty()
                && report.bad_records.is_empty()
                && report.incomplete.is_empty());
            emit(
                g,
                &Verified {
                    remote: r.name().to_string(),
                    report,
                },
            )?;
            Ok(if bad {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        RemoteCmd::Gc {
            keep,
            dry_run,
            remote,
        } => {
            let r = need(&ctx, remote.remote.as_deref())?;
            let files: Vec<std::path::PathBuf> = if keep.is_empty() {
                let dir = ctx.ws.root.join("lockfiles");
                let mut v: Vec<_> = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "lock"))
                    .collect();
                v.sort();
                v
            } else {
                keep.clone()
            };
            if files.is_empty() {
                anyhow::bail!("no lockfile to keep the results of: name them with --keep");
            }
            let mut keys = std::collections::BTreeSet::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let lf = Lockfile::parse(f, &text)?;
                keys.extend(lf.stages.values().map(|e| e.key));
            }
            let report = r.gc(&keys, *dry_run)?;
            emit(
                g,
                &Collected {
                    remote: r.name().to_string(),
                    report,
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
