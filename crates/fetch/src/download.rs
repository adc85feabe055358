//! Downloads: every file of the manifests asked for, concurrently, each in ranged chunks
//! when the server allows it.
//!
//! A file downloads to `<name>.part` beside its final place, with `<name>.part.json` holding
//! the URL, the size and validator (`ETag` / `Last-Modified`) the server gave, and which
//! chunks are complete; an interrupted fetch (a dropped connection, a killed process)
//! resumes from there if the server still gives the same size and validator. A chunk whose
//! connection drops is re-requested from the byte it reached, with backoff, a few times. A
//! complete `.part` is hashed with every algorithm its manifest names; only then is it
//! renamed to its name. A file already in place is verified once and stamped
//! (`.ventral-fetch/<name>.json`: size, mtime, blake3) so later fetches need not hash it.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::sources::{Checked, SourceFile, Sources, verify_file};
use crate::unpack::{TreeFile, Unpacked};
use crate::{FetchError, Result};

/// Progress, as it happens.
#[derive(Clone, Debug)]
pub enum Event {
    /// Bytes to transfer became known (sum over files; grows as servers answer).
    Total(u64),
    /// Bytes arrived (or were found already complete in a `.part`).
    Advance(u64),
    /// A file's outcome.
    Done(FileReport),
}

/// How to fetch.
#[derive(Clone)]
pub struct FetchOptions {
    /// The fetch root (`data/real`): each manifest's `to` is under it.
    pub root: PathBuf,
    /// A mirror: a file's URL becomes `<base>/<to>/<path>`.
    pub base_url: Option<String>,
    /// Requests in flight at once, over all files.
    pub concurrency: usize,
    /// Bytes per ranged request.
    pub chunk: u64,
    /// Attempts per chunk after the first.
    pub retries: u32,
    /// Where progress goes.
    pub progress: Option<Arc<dyn Fn(Event) + Send + Sync>>,
}

impl FetchOptions {
    /// Defaults: 8 requests in flight, 8 MiB chunks, 5 retries.
    pub fn new(root: &Path) -> Self {
        FetchOptions {
            root: root.to_path_buf(),
            base_url: None,
            concurrency: 8,
            chunk: 8 << 20,
            retries: 5,
            progress: None,
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Downloaded and verified now.
    Fetched,
    /// Already in place and verified.
    Present,
    /// Not downloadable and not in place: the manifest's `manual` text says what to do.
    Missing,
    /// The download or the verification failed; nothing is under the file's name.
    Failed,
}

/// One file's outcome.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileReport {
    /// The manifest's name.
    pub manifest: String,
    /// Where the file is.
    pub path: PathBuf,
    /// What happened.
    pub status: FileStatus,
    /// Bytes (when present).
    pub size: Option<u64>,
    /// blake3 (when present).
    pub blake3: Option<String>,
    /// Bytes transferred now.
    pub transferred: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Why it failed, or what to do when missing.
    pub message: Option<String>,
    /// Top-level entries unpacked from it.
    pub unpacked: Vec<String>,
}

/// The chunk map of a `.part` file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct PartState {
    url: String,
    size: u64,
    validator: Option<String>,
    chunk: u64,
    done: Vec<bool>,
}

/// A verified file's stamp, `<folder>/.ventral-fetch/<path>.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) blake3: String,
    /// The hashes it was verified against (a manifest edit invalidates the stamp).
    pub(crate) hashes: String,
    /// Top-level entries unpacked from it, if it is an archive.
    #[serde(default)]
    pub(crate) unpacked: Vec<String>,
    /// Every file unpacked from it, by path under the folder (none: fetched by a ventral
    /// that did not record them, or not an archive).
    #[serde(default)]
    pub(crate) tree: BTreeMap<String, TreeFile>,
}

impl Stamp {
    /// Whether the stamp still describes `meta`'s file, verified against `f`'s hashes.
    pub(crate) fn holds_for(&self, meta: &std::fs::Metadata, f: &SourceFile) -> bool {
        self.size == meta.len() && self.mtime_ns == mtime_ns(meta) && self.hashes == hashes_key(f)
    }
}

/// The hashes a stamp records it was verified against.
pub(crate) fn hashes_key(f: &SourceFile) -> String {
    serde_json::to_string(&f.hashes).unwrap_or_default()
}

/// The stamp of `rel` in `folder`, if there is a readable one.
pub(crate) fn read_stamp(folder: &Path, rel: &str) -> Option<Stamp> {
    let text = std::fs::read_to_string(stamp_path(folder, rel)).ok()?;
    serde_json::from_str(&text).ok()
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

struct Ctx {
    client: reqwest::Client,
    sem: tokio::sync::Semaphore,
    opts: FetchOptions,
}

impl Ctx {
    fn emit(&self, e: Event) {
        if let Some(p) = &self.opts.progress {
            p(e);
        }
    }
}

/// Fetch every file of `manifests` into `opts.root`. Files fail independently: the result
/// lists each file's outcome; an `Err` is only for what stops everything (no runtime).
pub fn fetch(manifests: &[Sources], opts: &FetchOptions) -> Result<Vec<FileReport>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| FetchError::io(&opts.root, e))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("ventral/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Http {
            url: String::new(),
            message: e.to_string(),
        })?;
    let ctx = Arc::new(Ctx {
        client,
        sem: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
        opts: opts.clone(),
    });
    let mut reports = rt.block_on(async {
        let mut tasks = Vec::new();
        for m in manifests {
            for f in &m.files {
                let ctx = ctx.clone();
                let m = m.clone();
                let f = f.clone();
                tasks.push(tokio::spawn(async move {
                    let t0 = Instant::now();
                    let mut r = fetch_one(&ctx, &m, &f).await;
                    r.seconds = t0.elapsed().as_secs_f64();
                    ctx.emit(Event::Done(r.clone()));
                    r
                }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            match t.await {
                Ok(r) => out.push(r),
                Err(e) => out.push(FileReport {
                    manifest: String::new(),
                    path: PathBuf::new(),
                    status: FileStatus::Failed,
                    size: None,
                    blake3: None,
                    transferred: 0,
                    seconds: 0.0,
                    message: Some(format!("task failed: {e}")),
                    unpacked: Vec::new(),
                }),
            }
        }
        out
    });
    for m in manifests {
        crate::brainio::write_lookup(m, &m.folder(&opts.root))?;
    }
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(reports)
}

fn stamp_path(folder: &Path, rel: &str) -> PathBuf {
    folder.join(".ventral-fetch").join(format!("{rel}.json"))
}

/// The file at `dest` verified against `f`, trusting a matching stamp; with what was
/// unpacked from it, as the stamp records it.
fn verified(folder: &Path, f: &SourceFile, dest: &Path) -> Result<(Checked, Unpacked)> {
    let meta = std::fs::metadata(dest).map_err(|e| FetchError::io(dest, e))?;
    if let Some(s) = read_stamp(folder, &f.path)
        && s.holds_for(&meta, f)
    {
        return Ok((
            Checked {
                size: s.size,
                blake3: s.blake3,
            },
            Unpacked {
                top: s.unpacked,
                files: s.tree,
            },
        ));
    }
    let c = verify_file(dest, &f.hashes, f.size)?;
    write_stamp(folder, f, dest, &c, &Unpacked::default())?;
    Ok((c, Unpacked::default()))
}

fn write_stamp(
    folder: &Path,
    f: &SourceFile,
    dest: &Path,
    c: &Checked,
    unpacked: &Unpacked,
) -> Result<()> {
    let meta = std::fs::metadata(dest).map_err(|e| FetchError::io(dest, e))?;
    let s = Stamp {
        size: c.size,
        mtime_ns: mtime_ns(&meta),
        blake3: c.blake3.clone(),
        hashes: hashes_key(f),
        unpacked: unpacked.top.clone(),
        tree: unpacked.files.clone(),
    };
    let sp = stamp_path(folder, &f.path);
    if let Some(p) = sp.parent() {
        std::fs::create_dir_all(p).map_err(|e| FetchError::io(p, e))?;
    }
    std::fs::write(&sp, serde_json::to_vec_pretty(&s).unwrap_or_default())
        .map_err(|e| FetchError::io(&sp, e))
}

async fn fetch_one(ctx: &Ctx, m: &Sources, f: &SourceFile) -> FileReport {
    let folder = m.folder(&ctx.opts.root);
    let dest = folder.join(&f.path);
    let mut report = FileReport {
        manifest: m.manifest.name.clone(),
        path: dest.clone(),
        status: FileStatus::Failed,
        size: None,
        blake3: None,
        transferred: 0,
        seconds: 0.0,
        message: None,
        unpacked: Vec::new(),
    };
    match run_one(ctx, m, f, &folder, &dest, &mut report).await {
        Ok(()) => {}
        Err(e) => {
            report.status = FileStatus::Failed;
            report.message = Some(e.to_string());
        }
    }
    report
}

async fn run_one(
    ctx: &Ctx,
    m: &Sources,
    f: &SourceFile,
    folder: &Path,
    dest: &Path,
    report: &mut FileReport,
) -> Result<()> {
    if dest.is_file() {
        let present = {
            let (folder, f, d) = (folder.to_path_buf(), f.clone(), dest.to_path_buf());
            tokio::task::spawn_blocking(move || verified(&folder, &f, &d))
                .await
                .map_err(|e| FetchError::io(dest, std::io::Error::other(e)))?
        };
        match present {
            Ok((c, unpacked)) => {
                report.size = Some(c.size);
                report.blake3 = Some(c.blake3.clone());
                report.status = FileStatus::Present;
                report.unpacked = unpacked.top.clone();
                // Unpacked again when a folder is gone or the stamp does not record what
                // the archive held (what a stage checks the folder against).
                if f.unpack.is_some()
                    && (unpacked.top.is_empty()
                        || unpacked.files.is_empty()
                        || !all_exist(folder, &unpacked.top))
                {
                    report.unpacked = unpack_now(folder, f, dest, &c).await?;
                }
                return Ok(());
            }
            Err(e @ FetchError::Mismatch { .. }) if f.url.is_none() => return Err(e),
            Err(FetchError::Mismatch { .. }) => {
                tracing::warn!(
                    "{}: does not match its manifest; fetching it again",
                    dest.display()
                );
            }
            Err(e) => return Err(e),
        }
    }
    let Some(url) = url_of(ctx, m, f) else {
        report.status = FileStatus::Missing;
        report.message = m.manifest.manual.clone();
        return Ok(());
    };
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p).map_err(|e| FetchError::io(p, e))?;
    }
    let part = with_suffix(dest, ".part");
    report.transferred = download(ctx, &url, &part, f.size).await?;
    let checked = {
        let (part, hashes, size) = (part.clone(), f.hashes.clone(), f.size);
        tokio::task::spawn_blocking(move || verify_file(&part, &hashes, size))
            .await
            .map_err(|e| FetchError::io(dest, std::io::Error::other(e)))?
    };
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            let _ = std::fs::remove_file(with_suffix(dest, ".part.json"));
            return Err(match e {
                FetchError::Mismatch {
                    algo,
                    expected,
                    got,
                    ..
                } => FetchError::Mismatch {
                    path: dest.to_path_buf(),
                    algo,
                    expected,
                    got,
                },
                e => e,
            });
        }
    };
    std::fs::rename(&part, dest).map_err(|e| FetchError::io(dest, e))?;
    let _ = std::fs::remove_file(with_suffix(dest, ".part.json"));
    write_stamp(folder, f, dest, &checked, &Unpacked::default())?;
    report.size = Some(checked.size);
    report.blake3 = Some(checked.blake3.clone());
    report.status = FileStatus::Fetched;
    if f.unpack.is_some() {
        report.unpacked = unpack_now(folder, f, dest, &checked).await?;
    }
    Ok(())
}

fn all_exist(folder: &Path, names: &[String]) -> bool {
    names.iter().all(|n| folder.join(n).exists())
}

async fn unpack_now(
    folder: &Path,
    f: &SourceFile,
    dest: &Path,
    c: &Checked,
) -> Result<Vec<String>> {
    let kind = f.unpack.clone().unwrap_or_default();
    let (folder, f, dest, c) = (
        folder.to_path_buf(),
        f.clone(),
        dest.to_path_buf(),
        c.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let scratch = folder
            .join(".ventral-fetch")
            .join(format!("{}.unpacking", f.path));
        let unpacked = crate::unpack::unpack(&dest, &kind, &folder, &scratch)?;
        write_stamp(&folder, &f, &dest, &c, &unpacked)?;
        Ok(unpacked.top)
    })
    .await
    .map_err(|e| FetchError::Archive {
        path: PathBuf::new(),
        message: e.to_string(),
    })?
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn url_of(ctx: &Ctx, m: &Sources, f: &SourceFile) -> Option<String> {
    let url = f.url.as_ref()?;
    Some(match &ctx.opts.base_url {
        Some(base) => {
            let to = m.manifest.to.trim_start_matches("./").trim_matches('/');
            let base = base.trim_end_matches('/');
            if to.is_empty() || to == "." {
                format!("{base}/{}", f.path)
            } else {
                format!("{base}/{to}/{}", f.path)
            }
        }
        None => url.clone(),
    })
}

fn http(url: &str, message: impl std::fmt::Display) -> FetchError {
    FetchError::Http {
        url: url.to_string(),
        message: message.to_string(),
    }
}

/// Whether an HTTP status is worth retrying.
fn transient(s: reqwest::StatusCode) -> bool {
    s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS || s.as_u16() == 408
}

/// Size, validator, and whether ranges are served.
async fn probe(ctx: &Ctx, url: &str) -> Result<(Option<u64>, Option<String>, bool)> {
    let mut attempt = 0;
    loop {
        let r = {
            let _permit = ctx.sem.acquire().await;
            ctx.client.head(url).send().await
        };
        match r {
            Ok(r) if r.status().is_success() => {
                let h = r.headers();
                let size = h
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let validator = h
                    .get(reqwest::header::ETAG)
                    .or_else(|| h.get(reqwest::header::LAST_MODIFIED))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let ranges = h
                    .get(reqwest::header::ACCEPT_RANGES)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("bytes"));
                return Ok((size, validator, ranges));
            }
            // Some servers refuse HEAD: stream the whole file instead.
            Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => {
                return Ok((None, None, false));
            }
            Ok(r) if transient(r.status()) && attempt < ctx.opts.retries => {}
            Ok(r) => return Err(http(url, format!("HEAD: HTTP {}", r.status()))),
            Err(_) if attempt < ctx.opts.retries => {}
            Err(e) => return Err(http(url, format!("HEAD: {e}"))),
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(6))
}

/// Download `url` to `part`, resuming what a previous attempt left; returns the bytes
/// transferred now.
async fn download(ctx: &Ctx, url: &str, part: &Path, expected: Option<u64>) -> Result<u64> {
    let (size, validator, ranges) = probe(ctx, url).await?;
    if let (Some(s), Some(e)) = (size, expected)
        && s != e
    {
        return Err(http(
            url,
            format!("the server gives {s} bytes, the manifest says {e}"),
        ));
    }
    let state_path = with_suffix(part, ".json");
    let (Some(size), true) = (size, ranges) else {
        return whole(ctx, url, part).await;
    };
    if let Some(total) = Some(size) {
        ctx.emit(Event::Total(total));
    }
    let chunk = ctx.opts.chunk.max(1);
    let n = size.div_ceil(chunk).max(1) as usize;
    let fresh = PartState {
        url: url.to_string(),
        size,
        validator: validator.clone(),
        chunk,
        done: vec![false; n],
    };
    let state = match std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str::<PartState>(&t).ok())
    {
        Some(s)
            if s.url == fresh.url
                && s.size == size
                && s.validator == validator
                && s.chunk == chunk
                && s.done.len() == n
                && part.is_file() =>
        {
            s
        }
        _ => {
            let _ = std::fs::remove_file(part);
            fresh
        }
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(part)
        .map_err(|e| FetchError::io(part, e))?;
    file.set_len(size).map_err(|e| FetchError::io(part, e))?;
    let already: u64 = (0..n)
        .filter(|&i| state.done[i])
        .map(|i| chunk_range(i, chunk, size).1 - chunk_range(i, chunk, size).0)
        .sum();
    ctx.emit(Event::Advance(already));
    save_state(&state_path, &state)?;
    let file = Arc::new(file);
    let state = Arc::new(Mutex::new(state));
    let pending: Vec<usize> = {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        (0..n).filter(|&i| !s.done[i]).collect()
    };
    let results = futures::stream::iter(pending.into_iter().map(|i| {
        let (file, state, state_path) = (file.clone(), state.clone(), state_path.clone());
        async move {
            let (start, end) = chunk_range(i, chunk, size);
            let got = fetch_range(ctx, url, &file, part, start, end).await?;
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.done[i] = true;
            save_state(&state_path, &s)?;
            Ok::<u64, FetchError>(got)
        }
    }))
    .buffer_unordered(ctx.opts.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut transferred = 0;
    for r in results {
        transferred += r?;
    }
    file.sync_all().map_err(|e| FetchError::io(part, e))?;
    Ok(transferred)
}

fn chunk_range(i: usize, chunk: u64, size: u64) -> (u64, u64) {
    let start = i as u64 * chunk;
    (start, (start + chunk).min(size))
}

fn save_state(path: &Path, s: &PartState) -> Result<()> {
    let tmp = with_suffix(path, ".tmp");
    std::fs::write(&tmp, serde_json::to_vec(s).unwrap_or_default())
        .map_err(|e| FetchError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| FetchError::io(path, e))
}

/// Bytes `[start, end)` of `url` into `file` at the same offsets, re-requesting from the byte
/// reached when a connection drops.
async fn fetch_range(
    ctx: &Ctx,
    url: &str,
    file: &std::fs::File,
    part: &Path,
    start: u64,
    end: u64,
) -> Result<u64> {
    let mut pos = start;
    let mut attempt = 0;
    while pos < end {
        let outcome = async {
            let _permit = ctx.sem.acquire().await;
            let r = ctx
                .client
                .get(url)
                .header(reqwest::header::RANGE, format!("bytes={pos}-{}", end - 1))
                .send()
                .await
                .map_err(|e| (true, e.to_string()))?;
            let status = r.status();
            if status != reqwest::StatusCode::PARTIAL_CONTENT {
                return Err((
                    transient(status),
                    format!("GET bytes {pos}-{}: HTTP {status}", end - 1),
                ));
            }
            let mut body = r.bytes_stream();
            while let Some(b) = body.next().await {
                let b = b.map_err(|e| (true, format!("connection lost at byte {pos}: {e}")))?;
                let take = (b.len() as u64).min(end - pos) as usize;
                file.write_all_at(&b[..take], pos)
                    .map_err(|e| (false, format!("{}: {e}", part.display())))?;
                pos += take as u64;
                ctx.emit(Event::Advance(take as u64));
                if pos >= end {
                    break;
                }
            }
            if pos < end {
                return Err((true, format!("connection closed at byte {pos} of {end}")));
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {}
            Err((true, m)) if attempt < ctx.opts.retries => {
                attempt += 1;
                tracing::debug!("{url}: {m}; retry {attempt}");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err((_, m)) => return Err(http(url, m)),
        }
    }
    Ok(end - start)
}

/// A server without ranges (or size): one GET, restarted from byte 0 on a failure.
async fn whole(ctx: &Ctx, url: &str, part: &Path) -> Result<u64> {
    let mut attempt = 0;
    loop {
        let outcome: std::result::Result<u64, (bool, String)> = async {
            let _permit = ctx.sem.acquire().await;
            let r = ctx
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| (true, e.to_string()))?;
            let status = r.status();
            if !status.is_success() {
                return Err((transient(status), format!("GET: HTTP {status}")));
            }
            if let Some(n) = r.content_length() {
                ctx.emit(Event::Total(n));
            }
            let mut out = std::fs::File::create(part)
                .map_err(|e| (false, format!("{}: {e}", part.display())))?;
            let mut n = 0u64;
            let mut body = r.bytes_stream();
            while let Some(b) = body.next().await {
                let b = b.map_err(|e| (true, format!("connection lost at byte {n}: {e}")))?;
                std::io::Write::write_all(&mut out, &b)
                    .map_err(|e| (false, format!("{}: {e}", part.display())))?;
                n += b.len() as u64;
                ctx.emit(Event::Advance(b.len() as u64));
            }
            out.sync_all()
                .map_err(|e| (false, format!("{}: {e}", part.display())))?;
            Ok(n)
        }
        .await;
        match outcome {
            Ok(n) => return Ok(n),
            Err((true, m)) if attempt < ctx.opts.retries => {
                attempt += 1;
                tracing::debug!("{url}: {m}; retry {attempt}");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err((_, m)) => return Err(http(url, m)),
        }
    }
}
