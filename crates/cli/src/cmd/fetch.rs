//! `ventral fetch`: the files the source manifests in `manifests/` name, downloaded into the
//! `data/real/` layout `--profile real` reads, each verified against its publisher's hash.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use ventral_fetch::{Event, FetchOptions, FileReport, FileStatus, Sources};

use super::{Global, Output, emit};

/// `ventral fetch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sources to fetch, by manifest name (`ventral fetch --list` shows them).
    pub names: Vec<String>,
    /// Fetch every source.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// List the sources and what is in place, without downloading.
    #[arg(long)]
    pub list: bool,
    /// The folder the files go to (relative to the workspace).
    #[arg(long, default_value = "data/real", value_name = "DIR")]
    pub to: PathBuf,
    /// The folder of source manifests (relative to the workspace).
    #[arg(long, default_value = "manifests", value_name = "DIR")]
    pub manifests: PathBuf,
    /// A mirror holding the files in the `--to` layout: a file's URL becomes
    /// `<URL>/<folder>/<file>`.
    #[arg(long, env = "VENTRAL_FETCH_MIRROR", value_name = "URL")]
    pub base_url: Option<String>,
    /// Requests in flight at once.
    #[arg(short, long, default_value_t = 8)]
    pub jobs: usize,
    /// MiB per ranged request.
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub chunk_mib: u64,
}

/// Every source manifest in `dir`, by name (file-tree manifests are skipped).
pub fn source_manifests(dir: &Path) -> Result<Vec<Sources>> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the manifests folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).with_context(|| p.display().to_string())?;
        if Sources::is_sources(&text) {
            out.push(Sources::parse(&p, &text)?);
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct Fetched {
    root: PathBuf,
    files: Vec<FileReport>,
    bytes: u64,
    seconds: f64,
    /// Where to get what cannot be downloaded, by manifest.
    manual: Vec<(String, String)>,
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

impl Output for Fetched {
    fn text(&self) -> String {
        let mut out = Vec::new();
        for f in &self.files {
            let what = match f.status {
                FileStatus::Fetched => "fetched",
                FileStatus::Present => "present",
                FileStatus::Missing => "MISSING",
                FileStatus::Failed => "FAILED",
            };
            let rel = f.path.strip_prefix(&self.root).unwrap_or(&f.path);
            let mut line = format!("{what:8} {:<10} {}", f.manifest, rel.display());
            if let Some(s) = f.size {
                line.push_str(&format!("  {}", mb(s)));
            }
            if f.status == FileStatus::Fetched && f.seconds > 0.0 {
                line.push_str(&format!(
                    "  {:.1} MB/s",
                    f.transferred as f64 / 1e6 / f.seconds
                ));
            }
            if !f.unpacked.is_empty() {
                line.push_str(&format!("  → {}", f.unpacked.join(", ")));
            }
            if let (FileStatus::Failed, Some(m)) = (&f.status, &f.message) {
                line.push_str(&format!("\n         {m}"));
            }
            out.push(line);
        }
        for (name, text) in &self.manual {
            out.push(format!("\n{name}: {text}"));
        }
        out.push(format!(
            "{} files; {} transferred in {:.1} s",
            self.files.len(),
            mb(self.bytes),
            self.seconds
        ));
        out.join("\n")
    }
}

/// Run `ventral fetch`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ws = g.workspace.clone().unwrap_or_else(|| PathBuf::from("."));
    let under = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            ws.join(p)
        }
    };
    let all = source_manifests(&under(&a.manifests))?;
    let names: Vec<String> = all.iter().map(|m| m.manifest.name.clone()).collect();
    let chosen: Vec<Sources> = if a.all || a.list && a.names.is_empty() {
        all
    } else {
        if a.names.is_empty() {
            bail!(
                "name the sources to fetch, or --all (sources: {})",
                names.join(", ")
            );
        }
        let mut v = Vec::new();
        for n in &a.names {
            match all.iter().find(|m| &m.manifest.name == n) {
                Some(m) => v.push(m.clone()),
                None => bail!(
                    "no source `{n}` in {} (sources: {})",
                    a.manifests.display(),
                    names.join(", ")
                ),
            }
        }
        v
    };
    let root = under(&a.to);
    if a.list {
        return list(g, &chosen, &root);
    }
    let mut opts = FetchOptions::new(&root);
    opts.base_url = a.base_url.clone();
    opts.concurrency = a.jobs.max(1);
    opts.chunk = a.chunk_mib.max(1) << 20;
    let bar = (!g.json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    if let Some(b) = bar.clone() {
        opts.progress = Some(Arc::new(move |e| match e {
            Event::Total(n) => b.inc_length(n),
            Event::Advance(n) => b.inc(n),
            Event::Done(r) => b.set_message(format!(
                "{}",
                r.path.file_name().unwrap_or_default().to_string_lossy()
            )),
        }));
    }
    let t0 = std::time::Instant::now();
    let files = ventral_fetch::fetch(&chosen, &opts)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let bad = files
        .iter()
        .any(|f| matches!(f.status, FileStatus::Failed | FileStatus::Missing));
    let manual = chosen
        .iter()
        .filter(|m| {
            files
                .iter()
                .any(|f| f.manifest == m.manifest.name && f.status == FileStatus::Missing)
        })
        .filter_map(|m| {
            m.manifest
                .manual
                .clone()
                .map(|t| (m.manifest.name.clone(), t))
        })
        .collect();
    let out = Fetched {
        root,
        bytes: files.iter().map(|f| f.transferred).sum(),
        files,
        seconds: t0.elapsed().as_secs_f64(),
        manual,
    };
    emit(g, &out)?;
    Ok(if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Serialize)]
struct Listed {
    sources: Vec<ListedSource>,
}

#[derive(Serialize)]
struct ListedSource {
    name: String,
    description: String,
    folder: PathBuf,
    files: usize,
    present: usize,
    downloadable: usize,
    unpublished: Vec<String>,
}

impl Output for Listed {
    fn text(&self) -> String {
        self.sources
            .iter()
            .map(|s| {
                let mut l = format!(
                    "{:<12} {}/{} files in place ({} downloadable) → {}\n             {}",
                    s.name,
                    s.present,
                    s.files,
                    s.downloadable,
                    s.folder.display(),
                    s.description
                );
                if !s.unpublished.is_empty() {
                    l.push_str(&format!(
                        "\n             never published: {}",
                        s.unpublished.join(", ")
                    ));
                }
                l
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn list(g: &Global, chosen: &[Sources], root: &Path) -> Result<ExitCode> {
    let sources = chosen
        .iter()
        .map(|m| {
            let folder = m.folder(root);
            ListedSource {
                name: m.manifest.name.clone(),
                description: m.manifest.description.clone(),
                files: m.files.len(),
                present: m
                    .files
                    .iter()
                    .filter(|f| folder.join(&f.path).is_file())
                    .count(),
                downloadable: m.files.iter().filter(|f| f.url.is_some()).count(),
                unpublished: m.unpublished.iter().map(|u| u.identifier.clone()).collect(),
                folder,
            }
        })
        .collect();
    emit(g, &Listed { sources })?;
    Ok(ExitCode::SUCCESS)
}
