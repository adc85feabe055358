//! `ventral-remote`: a remote cache of stage results shared by a lab, through the
//! `object_store` crate (S3 and S3-compatibles such as MinIO, Ceph or R2; Google Cloud
//! Storage; Azure; HTTP(S) read-only; a plain path on a shared disk).
//!
//! Layout under the remote's URL, everything named by content:
//! - `objects/<blake3>`: every file of every output, and each output's tree manifest;
//! - `runs/<key>.json`: the run record of a stage key, written **last** and only if absent
//!   (`PutMode::Create`), so an interrupted upload looks like a miss and two uploaders of
//!   one key never clobber each other (one wins; both succeed).
//!
//! A pull reads the run record, then the tree manifest, then every object, hashing each on
//! arrival; the files are laid out in a scratch folder of the local store and stored as a
//! tree, whose digest must be the record's output. Anything that does not hash to its name
//! is discarded and reported as [`RemoteError::Corrupt`]; the caller then computes the
//! stage itself.
//!
//! A result can also be read where it lies ([`Remote::tree`]): its files are fetched one by
//! one as a reader asks for them (`ventral sql --remote`), each whole file checked against
//! its name as it arrives.
//!
//! **Architecture invariant:** the remote holds only what the local store would: a result
//! is never taken from it without every byte verified, and a run record is never written
//! before the objects it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use ventral_cas::{Digest, RunRecord, Store, Tree};

mod read;
pub use read::{ReadCounters, RemoteTree};

/// Files at least this large go up as multipart uploads of parts this size.
const PART: usize = 8 << 20;
/// Transfers in flight at once.
const CONCURRENCY: usize = 8;
/// Parts of one multipart upload in flight at once (beside the other files' transfers).
const PARTS_IN_FLIGHT: usize = 2;

/// What can go wrong with a remote.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL or an option is wrong.
    #[error("remote `{remote}` ({url}): {message}")]
    Config {
        /// The remote's name.
        remote: String,
        /// Its URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The remote answered with an error.
    #[error("remote `{remote}`: {op} {path}: {source}")]
    Store {
        /// The remote's name.
        remote: String,
        /// What we were doing.
        op: &'static str,
        /// The object.
        path: String,
        /// The error.
        source: Box<object_store::Error>,
    },
    /// An object does not hash to its name (or a record does not parse): discarded.
    #[error("remote `{remote}`: {path} is corrupt: {message}")]
    Corrupt {
        /// The remote's name.
        remote: String,
        /// The object.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A local file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The local store.
    #[error(transparent)]
    Cas(#[from] ventral_cas::CasError),
}

/// This crate's results.
pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PushReport {
    /// Run records written (0 when the remote already had the key).
    pub records: usize,
    /// Objects uploaded.
    pub objects: usize,
    /// Objects the remote already had.
    pub objects_present: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Seconds.
    pub seconds: f64,
}

/// What a pull brought.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PullReport {
    /// Objects downloaded.
    pub objects: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Seconds.
    pub seconds: f64,
}

/// What [`Remote::verify`] found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Run records read.
    pub records: usize,
    /// Objects re-hashed.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Objects that do not hash to their name (removed from the remote where allowed).
    pub corrupt: Vec<String>,
    /// Run records that are not records of their key.
    pub bad_records: Vec<String>,
    /// Run records whose tree manifest or files are missing: `key: what` (a pull of them
    /// fails and the stage runs locally; the next push of the key uploads what is missing).
    pub incomplete: Vec<String>,
    /// Seconds.
    pub seconds: f64,
}

/// What [`Remote::gc`] removed (or would remove).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// Run records kept.
    pub records_kept: usize,
    /// Run records removed.
    pub records_removed: usize,
    /// Objects kept (reachable from a kept record, or younger than the grace period).
    pub objects_kept: usize,
    /// Objects removed.
    pub objects_removed: usize,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// Bytes that remain.
    pub bytes_kept: u64,
    /// Nothing was removed: this is what would go.
    pub dry_run: bool,
}

/// Objects younger than this are never collected: a push may have uploaded them and not yet
/// its run record.
pub const GC_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One remote.
pub struct Remote {
    name: String,
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    /// What object paths are shown under in messages: `/` for a path on disk (where the
    /// object is a file the user can look at), else `scheme://bucket/`.
    shown_under: String,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({} = {})", self.name, self.url)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RemoteError + '_ {
    move |source| RemoteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Remote {
    /// Open the remote `name` at `url` (`s3://bucket/prefix`, `gs://…`, `az://…`,
    /// `https://…`, `file:///path`, or a plain path), with `options` for its builder
    /// (`endpoint`, `region`, `allow_http`, …) over the environment's (`AWS_*`,
    /// `GOOGLE_*`, `AZURE_*`).
    pub fn open(name: &str, url: &str, options: &BTreeMap<String, String>) -> Result<Remote> {
        let cfg = |message: String| RemoteError::Config {
            remote: name.to_string(),
            url: url.to_string(),
            message,
        };
        let parsed = if url.contains("://") {
            url::Url::parse(url).map_err(|e| cfg(e.to_string()))?
        } else {
            let p = Path::new(url);
            std::fs::create_dir_all(p).map_err(|e| cfg(format!("creating it: {e}")))?;
            let abs = std::fs::canonicalize(p).map_err(|e| cfg(e.to_string()))?;
            url::Url::from_directory_path(&abs).map_err(|()| cfg("not a usable path".into()))?
        };
        if parsed.scheme() == "file"
            && let Ok(p) = parsed.to_file_path()
        {
            std::fs::create_dir_all(&p).map_err(|e| cfg(format!("creating it: {e}")))?;
        }
        let mut opts: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| {
                ["AWS_", "GOOGLE_", "AZURE_"]
                    .iter()
                    .any(|p| k.starts_with(p))
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        opts.extend(options.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, opts).map_err(|e| cfg(e.to_string()))?;
        let shown_under = match parsed.scheme() {
            "file" => "/".to_string(),
            scheme => format!(
                "{scheme}://{}{}/",
                parsed.host_str().unwrap_or_default(),
                parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(8)
            .enable_all()
            .build()
            .map_err(|e| cfg(format!("starting its I/O runtime: {e}")))?;
        Ok(Remote {
            name: name.to_string(),
            url: url.to_string(),
            store: Arc::from(store),
            prefix,
            shown_under,
            rt,
        })
    }

    /// The remote's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn object(&self, d: &Digest) -> ObjPath {
        self.prefix.clone().join("objects").join(d.to_hex())
    }

    fn run(&self, key: &Digest) -> ObjPath {
        self.prefix.clone().join("runs").join(format!("{key}.json"))
    }

    fn err(
        &self,
        op: &'static str,
        path: &ObjPath,
    ) -> impl FnOnce(object_store::Error) -> RemoteError {
        let (remote, path) = (self.name.clone(), self.shown(path));
        move |source| RemoteError::Store {
            remote,
            op,
            path,
            source: Box::new(source),
        }
    }

    /// An object's path as the user finds it: a file's absolute path, or its URL.
    fn shown(&self, path: &ObjPath) -> String {
        format!("{}{path}", self.shown_under)
    }

    fn corrupt(&self, path: &ObjPath, message: String) -> RemoteError {
        RemoteError::Corrupt {
            remote: self.name.clone(),
            path: self.shown(path),
            message,
        }
    }

    /// The remote's run record for `key`, if it has one.
    pub fn get_record(&self, key: &Digest) -> Result<Option<RunRecord>> {
        self.rt.block_on(self.fetch_record(key))
    }

    async fn fetch_record(&self, key: &Digest) -> Result<Option<RunRecord>> {
        let path = self.run(key);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(self.err("read", &path))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err("read", &path)(e)),
        };
        let rec: RunRecord = serde_json::from_slice(&bytes)
            .map_err(|e| self.corrupt(&path, format!("not a run record: {e}")))?;
        if rec.key != *key {
            return Err(self.corrupt(&path, format!("names key {}", rec.key)));
        }
        Ok(Some(rec))
    }

    /// Upload the result `rec` from `local`: its objects (those the remote lacks), its tree
    /// manifest, then its run record if the remote has none for the key.
    pub fn push(
        &self,
        local: &Store,
        rec: &RunRecord,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<PushReport> {
        let t0 = Instant::now();
        let tree = local.read_tree(&rec.output)?;
        let mut files: Vec<(Digest, PathBuf)> = tree
            .entries
            .iter()
            .map(|e| (e.digest, local.object_path(&e.digest)))
            .collect();
        files.sort();
        files.dedup();
        let bytes = AtomicU64::new(0);
        let (uploaded, present) = self.rt.block_on(async {
            let results: Vec<bool> = futures::stream::iter(files.iter())
                .map(|(d, p)| self.upload_object(d, p, &bytes, progress))
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            // The manifest after the files it names.
            let manifest = local.object_path(&rec.output);
            let m = self
                .upload_object(&rec.output, &manifest, &bytes, progress)
                .await?;
            let up = results.iter().filter(|u| **u).count() + usize::from(m);
            Ok::<_, RemoteError>((up, results.len() + 1 - up))
        })?;
        // The record last, and only if absent: the first uploader of a key wins.
        let path = self.run(&rec.key);
        let json = serde_json::to_vec_pretty(rec).unwrap_or_default();
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let records = self.rt.block_on(async {
            match self
                .store
                .put_opts(&path, PutPayload::from(json), opts)
                .await
            {
                Ok(_) => Ok(1),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Ok(0),
                Err(e) => Err(self.err("write", &path)(e)),
            }
        })?;
        Ok(PushReport {
            records,
            objects: uploaded,
            objects_present: present,
            bytes: bytes.load(Ordering::Relaxed),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Upload one local object unless the remote has it; whether it was uploaded.
    async fn upload_object(
        &self,
        d: &Digest,
        file: &Path,
        bytes: &AtomicU64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<bool> {
        let path = self.object(d);
        match self.store.head(&path).await {
            Ok(meta) if meta.size == std::fs::metadata(file).map_err(io(file))?.len() => {
                return Ok(false);
            }
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err("look up", &path)(e)),
        }
        let size = std::fs::metadata(file).map_err(io(file))?.len();
        if (size as usize) < PART * 2 {
            let data = std::fs::read(file).map_err(io(file))?;
            self.store
                .put(&path, PutPayload::from(data))
                .await
                .map_err(self.err("write", &path))?;
        } else {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(self.err("start a multipart upload of", &path))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut f = std::fs::File::open(file).map_err(io(file))?;
            let mut buf = vec![0u8; PART];
            loop {
                use std::io::Read;
                let n = f.read(&mut buf).map_err(io(file))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(self.err("write a part of", &path))?;
                w.write(&buf[..n]);
                progress(n as u64);
            }
            w.finish().await.map_err(self.err("finish", &path))?;
            bytes.fetch_add(size, Ordering::Relaxed);
            return Ok(true);
        }
        bytes.fetch_add(size, Ordering::Relaxed);
        progress(size);
        Ok(true)
    }

    /// Download an object, hashing it on arrival, into `dest`; a mismatch is corruption.
    async fn download_object(
        &self,
        d: &Digest,
        dest: &Path,
        bytes: &AtomicU64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        use std::io::Write;
        let path = self.object(d);
        let r = self
            .store
            .get(&path)
            .await
            .map_err(self.err("read", &path))?;
        let mut stream = r.into_stream();
        let mut f = std::fs::File::create(dest).map_err(io(dest))?;
        let mut h = blake3::Hasher::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.err("read", &path))?;
            h.update(&chunk);
            f.write_all(&chunk).map_err(io(dest))?;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            progress(chunk.len() as u64);
        }
        let got = Digest(*h.finalize().as_bytes());
        if got != *d {
            let _ = std::fs::remove_file(dest);
            // It can never be right under this name: remove it (where the remote lets us),
            // so that the next upload of this content replaces it.
            let removed = self.store.delete(&path).await.is_ok();
            return Err(self.corrupt(
                &path,
                format!(
                    "its bytes hash to {got}{}",
                    if removed {
                        "; removed from the remote"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Every object and run record under a prefix (`objects` or `runs`): name, size, age.
    async fn list(&self, under: &str) -> Result<Vec<(ObjPath, u64, std::time::Duration)>> {
        let prefix = self.prefix.clone().join(under);
        let now = std::time::SystemTime::now();
        self.store
            .list(Some(&prefix))
            .map_ok(|m| {
                let age = now
                    .duration_since(std::time::SystemTime::from(m.last_modified))
                    .unwrap_or_default();
                (m.location, m.size, age)
            })
            .try_collect()
            .await
            .map_err(self.err("list", &prefix))
    }

    /// Re-hash every object against its name and check every run record's tree: the
    /// remote's own `ventral verify`. Corrupt objects are removed (they can never be right
    /// under their name), as a pull would.
    pub fn verify(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<VerifyReport> {
        let t0 = Instant::now();
        let mut report = VerifyReport::default();
        self.rt.block_on(async {
            let objects = self.list("objects").await?;
            let names: std::collections::BTreeSet<String> = objects
                .iter()
                .filter_map(|(p, _, _)| p.filename().map(str::to_string))
                .collect();
            // (object name, what is wrong) for each object that does not hash to its name.
            let results: Vec<Option<(String, String)>> = futures::stream::iter(objects.iter())
                .map(|(path, _, _)| async move {
                    let name = path.filename().unwrap_or_default().to_string();
                    let Ok(want) = name.parse::<Digest>() else {
                        return Ok::<_, RemoteError>(Some((
                            name,
                            format!("{path}: not a digest name"),
                        )));
                    };
                    let r = self.store.get(path).await.map_err(self.err("read", path))?;
                    let mut stream = r.into_stream();
                    let mut h = blake3::Hasher::new();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(self.err("read", path))?;
                        h.update(&chunk);
                        progress(chunk.len() as u64);
                    }
                    let got = Digest(*h.finalize().as_bytes());
                    if got == want {
                        return Ok(None);
                    }
                    let removed = self.store.delete(path).await.is_ok();
                    Ok(Some((
                        name,
                        format!(
                            "{path}: hashes to {got}{}",
                            if removed { "; removed" } else { "" }
                        ),
                    )))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            report.objects = objects.len();
            report.bytes = objects.iter().map(|o| o.1).sum();
            let (corrupt_names, mut corrupt): (std::collections::BTreeSet<_>, Vec<_>) =
                results.into_iter().flatten().unzip();
            corrupt.sort();
            report.corrupt = corrupt;
            let present = |d: &Digest| {
                let n = d.to_hex();
                names.contains(&n) && !corrupt_names.contains(&n)
            };
            for (path, _, _) in self.list("runs").await? {
                report.records += 1;
                let Some(key) = path
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .and_then(|k| k.parse::<Digest>().ok())
                else {
                    report.bad_records.push(format!("{path}: not a key name"));
                    continue;
                };
                let rec = match self.fetch_record(&key).await {
                    Ok(Some(r)) => r,
                    Ok(None) => continue,
                    Err(e) => {
                        report.bad_records.push(e.to_string());
                        continue;
                    }
                };
                if !present(&rec.output) {
                    report.incomplete.push(format!(
                        "{key} ({}): its tree manifest is missing",
                        rec.stage
                    ));
                    continue;
                }
                let tree = self.read_tree(&rec.output).await?;
                let missing = tree.entries.iter().filter(|e| !present(&e.digest)).count();
                if missing > 0 {
                    report.incomplete.push(format!(
                        "{key} ({}): {missing} of its {} files are missing",
                        rec.stage,
                        tree.entries.len()
                    ));
                }
            }
            Ok::<_, RemoteError>(())
        })?;
        report.seconds = t0.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn read_tree(&self, d: &Digest) -> Result<Tree> {
        let path = self.object(d);
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(self.err("read", &path))?
            .bytes()
            .await
            .map_err(self.err("read", &path))?;
        let text = String::from_utf8_lossy(&bytes);
        Tree::parse(&d.to_hex(), &text).map_err(|e| self.corrupt(&path, e.to_string()))
    }

    /// Remove the run records whose keys are not in `keep`, then every object no kept record
    /// reaches — except records and objects younger than [`GC_GRACE`] (another workspace's
    /// fresh result, or a push in progress, which uploads its objects before its record).
    /// With `dry_run`, only count.
    pub fn gc(&self, keep: &std::collections::BTreeSet<Digest>, dry_run: bool) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        self.rt.block_on(async {
            let mut reachable = std::collections::BTreeSet::new();
            for (path, _, age) in self.list("runs").await? {
                let key = path
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .and_then(|k| k.parse::<Digest>().ok());
                match key {
                    Some(k) if keep.contains(&k) || age < GC_GRACE => {
                        report.records_kept += 1;
                        if let Ok(Some(rec)) = self.fetch_record(&k).await {
                            reachable.insert(rec.output.to_hex());
                            if let Ok(tree) = self.read_tree(&rec.output).await {
                                reachable.extend(tree.entries.iter().map(|e| e.digest.to_hex()));
                            }
                        }
                    }
                    _ => {
                        report.records_removed += 1;
                        if !dry_run {
                            self.store
                                .delete(&path)
                                .await
                                .map_err(self.err("delete", &path))?;
                        }
                    }
                }
            }
            for (path, size, age) in self.list("objects").await? {
                let name = path.filename().unwrap_or_default().to_string();
                if reachable.contains(&name) || age < GC_GRACE {
                    report.objects_kept += 1;
                    report.bytes_kept += size;
                    continue;
                }
                report.objects_removed += 1;
                report.bytes_removed += size;
                if !dry_run {
                    self.store
                        .delete(&path)
                        .await
                        .map_err(self.err("delete", &path))?;
                }
            }
            Ok::<_, RemoteError>(())
        })?;
        Ok(report)
    }

    /// Bring the result for `key` into `local` (objects verified, stored as a tree, run
    /// record written): `None` when the remote has no record of the key.
    pub fn pull(
        &self,
        local: &Store,
        key: &Digest,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<(RunRecord, PullReport)>> {
        let t0 = Instant::now();
        let Some(rec) = self.get_record(key)? else {
            return Ok(None);
        };
        local.ensure()?;
        let bytes = AtomicU64::new(0);
        let tmp = local.new_tmp_dir("pull")?;
        let manifest_file = tmp.path().join(".manifest");
        let tree: Tree = self.rt.block_on(async {
            self.download_object(&rec.output, &manifest_file, &bytes, progress)
                .await?;
            let text = std::fs::read_to_string(&manifest_file).map_err(io(&manifest_file))?;
            let _ = std::fs::remove_file(&manifest_file);
            Tree::parse(&rec.output.to_hex(), &text)
                .map_err(|e| self.corrupt(&self.object(&rec.output), e.to_string()))
        })?;
        let out = tmp.path().join("out");
        for e in &tree.entries {
            if e.path.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(self.corrupt(
                    &self.object(&rec.output),
                    format!("unsafe path `{}`", e.path),
                ));
            }
            if let Some(parent) = out.join(&e.path).parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
        }
        std::fs::create_dir_all(&out).map_err(io(&out))?;
        self.rt.block_on(async {
            futures::stream::iter(tree.entries.iter())
                .map(|e| {
                    let dest = out.join(&e.path);
                    let bytes = &bytes;
                    async move {
                        self.download_object(&e.digest, &dest, bytes, progress)
                            .await
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
        })?;
        for e in tree.entries.iter().filter(|e| e.executable) {
            use std::os::unix::fs::PermissionsExt;
            let p = out.join(&e.path);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(io(&p))?;
        }
        // Store exactly the folder `out` (a scratch folder of its own).
        let dir = local.new_tmp_dir("pulled")?;
        std::fs::remove_dir(dir.path()).map_err(io(dir.path()))?;
        std::fs::rename(&out, dir.path()).map_err(io(&out))?;
        let stored = local.put_dir(dir)?;
        if stored != rec.output {
            return Err(self.corrupt(
                &self.object(&rec.output),
                format!("its files make the tree {stored}, not {}", rec.output),
            ));
        }
        local.put_run(&rec)?;
        Ok(Some((
            rec,
            PullReport {
                objects: tree.entries.len() + 1,
                bytes: bytes.load(Ordering::Relaxed),
                seconds: t0.elapsed().as_secs_f64(),
            },
        )))
    }
}
