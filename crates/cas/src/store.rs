use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::OBJECT_MTIME;
use crate::atomic::{atomic_write, fsync_dir, unique_suffix};
use crate::digest::{Digest, hash_bytes, hash_file};
use crate::error::{CasError, IoContext, Result};
use crate::lock::hostname;
use crate::tree::{Tree, TreeEntry, list_files};

/// What one stage execution produced, kept under `runs/<key>.json` so that a result is
/// reused whenever the same key comes round again (even after the lockfile moved on).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RunRecord {
    /// The stage key.
    pub key: Digest,
    /// The stage's name when it ran.
    pub stage: String,
    /// The stage kind.
    pub kind: String,
    /// The output tree.
    pub output: Digest,
    /// Wall-clock seconds the execution took.
    pub duration_s: f64,
    /// When it finished (seconds since the epoch).
    pub finished_unix: u64,
    /// The host it ran on.
    pub host: String,
    /// The peak resident memory of the process that ran it (with its children), in bytes,
    /// where the stage had a process of its own (`exec-stage`: the Slurm and process
    /// executors); none for a stage run in the engine's process beside others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// Something wrong that [`Store::verify`] or [`Store::check_tree`] found.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct Damage {
    /// The file at fault.
    pub path: PathBuf,
    /// The object it should hold, when known.
    pub object: Option<Digest>,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// What [`Store::verify`] did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Objects re-hashed.
    pub objects: usize,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Materialised trees checked.
    pub trees: usize,
    /// Every problem found.
    pub damaged: Vec<Damage>,
    /// Where damaged things were moved so that nothing uses them.
    pub quarantined: Vec<PathBuf>,
    /// Run records dropped because their output is gone.
    pub runs_dropped: usize,
}

/// What [`Store::gc`] removed (or would remove, on a dry run).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// Trees kept.
    pub trees_kept: usize,
    /// Trees removed.
    pub trees_removed: usize,
    /// Objects removed.
    pub objects_removed: usize,
    /// Bytes those objects held.
    pub bytes_freed: u64,
    /// Run records removed.
    pub runs_removed: usize,
}

/// A scratch folder inside the store's `tmp/`. Removed when dropped unless it was handed to
/// [`Store::put_dir`]. Its name carries host and pid so that a later run can tell the
/// leftovers of a killed process from the work of a live one.
#[derive(Debug)]
pub struct TmpDir {
    path: PathBuf,
}

impl TmpDir {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.path.exists() {
            let _ = make_writable(&self.path);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The object store rooted at a workspace's `.ventral/` (or `$VENTRAL_HOME`).
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

const SUBDIRS: [&str; 7] = [
    "objects",
    "out",
    "runs",
    "jobs",
    "tmp",
    "quarantine",
    "logs",
];

impl Store {
    /// Open (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store::at(root);
        s.ensure()?;
        Ok(s)
    }

    /// The store at `root`, without creating anything (reads of a store that does not
    /// exist yet find nothing; call [`Store::ensure`] before writing).
    pub fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// Create the store's folders if they are missing.
    pub fn ensure(&self) -> Result<()> {
        for d in SUBDIRS {
            let p = self.root.join(d);
            std::fs::create_dir_all(&p).ctx("create directory", &p)?;
        }
        Ok(())
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object with digest `d` lives.
    pub fn object_path(&self, d: &Digest) -> PathBuf {
        let h = d.to_hex();
        self.root.join("objects").join(&h[..2]).join(&h[2..])
    }

    /// Where the tree `d` is materialised, read-only.
    pub fn out_path(&self, tree: &Digest) -> PathBuf {
        self.root.join("out").join(tree.to_hex())
    }

    /// The file-hash cache's path.
    pub fn hash_cache_path(&self) -> PathBuf {
        self.root.join("cache").join("files.tsv")
    }

    /// Where a stage's log for `key` goes.
    pub fn log_path(&self, key: &Digest) -> PathBuf {
        self.root.join("logs").join(format!("{key}.log"))
    }

    /// The folder a stage with key `key` may keep work in between attempts (a training
    /// run's epoch checkpoints), on the store's own file system so that it can be renamed
    /// into an output.
    pub fn resume_path(&self, key: &Digest) -> PathBuf {
        self.root.join("resume").join(key.to_string())
    }

    /// Where the job description for `key` goes.
    pub fn job_path(&self, key: &Digest) -> PathBuf {
        self.root.join("jobs").join(format!("{key}.json"))
    }

    /// Where `ventral exec-stage` records the output of the job for `key`.
    pub fn job_result_path(&self, key: &Digest) -> PathBuf {
        self.root.join("jobs").join(format!("{key}.result.json"))
    }

    fn run_path(&self, key: &Digest) -> PathBuf {
        self.root.join("runs").join(format!("{key}.json"))
    }

    /// A fresh scratch folder in `tmp/`.
    pub fn new_tmp_dir(&self, label: &str) -> Result<TmpDir> {
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let path = self.root.join("tmp").join(format!(
            "{label}.{}.{}.{}",
            hostname(),
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&path).ctx("create directory", &path)?;
        Ok(TmpDir { path })
    }

    /// Remove what killed processes on this host left in `tmp/`. Returns how many.
    pub fn clean_tmp(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let host = hostname();
        let mut n = 0;
        for entry in std::fs::read_dir(&tmp).ctx("list", &tmp)? {
            let entry = entry.ctx("list", &tmp)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let mut parts = name.rsplitn(4, '.');
            let (_n, pid, h) = (parts.next(), parts.next(), parts.next());
            let dead = match (h, pid.and_then(|p| p.parse::<u32>().ok())) {
                (Some(h), Some(pid)) if h == host => {
                    let holder = crate::lock::LockHolder {
                        pid,
                        host: host.clone(),
                        command: String::new(),
                        since: 0,
                    };
                    holder.is_dead_here()
                }
                // Unknown names or other hosts: only when a day old.
                _ => entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(86_400)),
            };
            if dead {
                let p = entry.path();
                let _ = make_writable(&p);
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.ctx("remove", &p)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Store a byte string as an object.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = hash_bytes(bytes);
        let obj = self.object_path(&d);
        if obj.exists() {
            return Ok(d);
        }
        let tmp = self.new_tmp_dir("bytes")?;
        let f = tmp.path().join("obj");
        {
            let mut file = File::create(&f).ctx("create", &f)?;
            file.write_all(bytes).ctx("write", &f)?;
            file.sync_all().ctx("fsync", &f)?;
        }
        seal(&f, false)?;
        link_into(&f, &obj)?;
        Ok(d)
    }

    /// Move the files of `dir` (a scratch folder of this store) into the store as a tree,
    /// materialise it under `out/<tree>/`, and return the tree's digest. Symbolic links and
    /// special files are refused. Nothing is visible under `out/` until it is complete.
    pub fn put_dir(&self, dir: TmpDir) -> Result<Digest> {
        let files = list_files(dir.path(), false)?;
        let entries = files
            .par_iter()
            .map(|(rel, abs)| self.absorb_file(rel, abs))
            .collect::<Result<Vec<_>>>()?;
        let tree = Tree::new(entries);
        let manifest = tree.to_manifest();
        let digest = self.put_bytes(manifest.as_bytes())?;
        sync_fs(&self.root)?;
        let dest = self.out_path(&digest);
        let _aside;
        if dest.exists() {
            if self.check_tree(&digest).is_empty() {
                return Ok(digest);
            }
            // A damaged copy of this very tree (its files share inodes with objects that
            // were changed in place): move it aside and put the fresh one in its place.
            let trash = self.new_tmp_dir("damaged")?;
            std::fs::rename(&dest, trash.path().join("tree")).ctx("move aside", &dest)?;
            _aside = trash;
        }
        match std::fs::rename(dir.path(), &dest) {
            Ok(()) => {}
            Err(_) if dest.exists() => return Ok(digest),
            Err(e) => return Err(e).ctx("rename into place", &dest),
        }
        fsync_dir(&self.root.join("out"))?;
        Ok(digest)
    }

    /// Hash one file of a folder being stored and make it (or a link to an equal object)
    /// read-only, stamped, and present in `objects/`.
    fn absorb_file(&self, rel: &str, abs: &Path) -> Result<TreeEntry> {
        let meta = std::fs::metadata(abs).ctx("stat", abs)?;
        let executable = meta.permissions().mode() & 0o111 != 0;
        let digest = hash_file(abs)?;
        let obj = self.object_path(&digest);
        if executable {
            // Executable files keep their own inode (objects are never executable).
            if !obj.exists() {
                let tmp = self.new_tmp_dir("copy")?;
                let t = tmp.path().join("obj");
                std::fs::copy(abs, &t).ctx("copy", abs)?;
                seal(&t, false)?;
                link_into(&t, &obj)?;
            }
            seal(abs, true)?;
        } else if obj.exists() && !sound_object(&obj, meta.len()) {
            // An object changed in place (its size or stamp is not what sealing left): the
            // fresh file replaces it instead of being linked to it.
            std::fs::remove_file(&obj).ctx("remove a damaged object", &obj)?;
            seal(abs, false)?;
            link_into(abs, &obj)?;
        } else if obj.exists() {
            std::fs::remove_file(abs).ctx("remove", abs)?;
            if std::fs::hard_link(&obj, abs).is_err() {
                std::fs::copy(&obj, abs).ctx("copy", &obj)?;
                seal(abs, false)?;
            }
        } else {
            seal(abs, false)?;
            link_into(abs, &obj)?;
        }
        Ok(TreeEntry {
            path: rel.to_string(),
            digest,
            size: meta.len(),
            executable,
        })
    }

    /// Read and parse the manifest of tree `d`, checking that it hashes to `d`.
    pub fn read_tree(&self, d: &Digest) -> Result<Tree> {
        let p = self.object_path(d);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CasError::Missing(d.to_hex()));
            }
            Err(e) => return Err(e).ctx("read", &p),
        };
        let actual = hash_bytes(&bytes);
        if actual != *d {
            return Err(CasError::Damaged {
                digest: d.to_hex(),
                path: p,
                actual: actual.to_hex(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| CasError::BadTree {
            digest: d.to_hex(),
            line: 0,
            message: "not UTF-8".into(),
        })?;
        Tree::parse(&d.to_hex(), &text)
    }

    /// A cheap integrity check of the materialised tree `d`: its manifest hashes right and
    /// every file is present with the recorded size and the untouched object mtime. An empty
    /// list means healthy. `verify` is the thorough check that re-hashes everything.
    pub fn check_tree(&self, d: &Digest) -> Vec<Damage> {
        let tree = match self.read_tree(d) {
            Ok(t) => t,
            Err(e) => {
                return vec![Damage {
                    path: self.object_path(d),
                    object: Some(*d),
                    problem: e.to_string(),
                }];
            }
        };
        self.check_files(d, &tree)
    }

    /// [`Store::check_tree`] for a manifest the caller has already read: every file of the
    /// materialised tree `d` present with its recorded size and the untouched object mtime.
    pub fn check_files(&self, d: &Digest, tree: &Tree) -> Vec<Damage> {
        let root = self.out_path(d);
        let mut damage = Vec::new();
        for e in &tree.entries {
            let p = root.join(&e.path);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if !m.is_file() => damage.push(Damage {
                    path: p,
                    object: Some(e.digest),
                    problem: "is not a regular file".into(),
                }),
                Ok(m) if m.len() != e.size => damage.push(Damage {
                    path: p,
                    object: Some(e.digest),
                    problem: format!("size {} where {} was stored", m.len(), e.size),
                }),
                Ok(m) if m.mtime() != OBJECT_MTIME || m.mtime_nsec() != 0 => damage.push(Damage {
                    path: p,
                    object: Some(e.digest),
                    problem: "was modified after it was stored".into(),
                }),
                Ok(_) => {}
                Err(_) => damage.push(Damage {
                    path: p,
                    object: Some(e.digest),
                    problem: "is missing".into(),
                }),
            }
        }
        damage
    }

    /// Record a run.
    pub fn put_run(&self, rec: &RunRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(rec).map_err(|e| CasError::BadRecord {
            path: self.run_path(&rec.key),
            message: e.to_string(),
        })?;
        atomic_write(&self.run_path(&rec.key), &json)
    }

    /// The run record for `key`, if one exists and its output tree is materialised.
    pub fn get_run(&self, key: &Digest) -> Result<Option<RunRecord>> {
        let p = self.run_path(key);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("read", &p),
        };
        let rec: RunRecord = serde_json::from_slice(&bytes).map_err(|e| CasError::BadRecord {
            path: p.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(rec))
    }

    /// Every object digest in `objects/`.
    fn list_objects(&self) -> Result<Vec<(Digest, PathBuf)>> {
        let mut out = Vec::new();
        let objects = self.root.join("objects");
        for fan in std::fs::read_dir(&objects).ctx("list", &objects)? {
            let fan = fan.ctx("list", &objects)?;
            let fan_name = fan.file_name().to_string_lossy().to_string();
            for obj in std::fs::read_dir(fan.path()).ctx("list", &fan.path())? {
                let obj = obj.ctx("list", &fan.path())?;
                let name = format!("{fan_name}{}", obj.file_name().to_string_lossy());
                match name.parse::<Digest>() {
                    Ok(d) => out.push((d, obj.path())),
                    Err(_) => out.push((Digest([0; 32]), obj.path())),
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn list_trees(&self) -> Result<Vec<(Option<Digest>, PathBuf)>> {
        let out_dir = self.root.join("out");
        let mut v = Vec::new();
        for e in std::fs::read_dir(&out_dir).ctx("list", &out_dir)? {
            let e = e.ctx("list", &out_dir)?;
            v.push((e.file_name().to_string_lossy().parse().ok(), e.path()));
        }
        v.sort();
        Ok(v)
    }

    fn quarantine(&self, path: &Path, report: &mut VerifyReport) -> Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let dest = self.root.join("quarantine").join(format!(
            "{name}.{}.{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::rename(path, &dest).ctx("move to quarantine", path)?;
        report.quarantined.push(dest);
        Ok(())
    }

    /// Re-hash every object and every materialised file; move whatever is damaged to
    /// `quarantine/` so that nothing uses it again, and drop run records whose output is
    /// gone. The next run recomputes what was lost.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let objects = self.list_objects()?;
        let checked: Vec<(PathBuf, Option<Damage>, u64)> = objects
            .par_iter()
            .map(|(d, p)| {
                let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let damage = match hash_file(p) {
                    Ok(actual) if actual == *d => None,
                    Ok(actual) => Some(Damage {
                        path: p.clone(),
                        object: Some(*d),
                        problem: format!("hashes to {actual}"),
                    }),
                    Err(e) => Some(Damage {
                        path: p.clone(),
                        object: Some(*d),
                        problem: e.to_string(),
                    }),
                };
                (p.clone(), damage, size)
            })
            .collect();
        report.objects = checked.len();
        for (p, damage, size) in checked {
            report.bytes += size;
            if let Some(d) = damage {
                report.damaged.push(d);
                self.quarantine(&p, &mut report)?;
            }
        }
        for (digest, path) in self.list_trees()? {
            report.trees += 1;
            let problems = match digest {
                None => vec![Damage {
                    path: path.clone(),
                    object: None,
                    problem: "is not named after a tree digest".into(),
                }],
                Some(d) => self.verify_tree(&d, &path),
            };
            if !problems.is_empty() {
                report.damaged.extend(problems);
                let _ = make_writable(&path);
                self.quarantine(&path, &mut report)?;
            }
        }
        let runs = self.root.join("runs");
        for e in std::fs::read_dir(&runs).ctx("list", &runs)? {
            let e = e.ctx("list", &runs)?;
            let keep = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
                .is_some_and(|r| self.out_path(&r.output).is_dir());
            if !keep {
                std::fs::remove_file(e.path()).ctx("remove", &e.path())?;
                report.runs_dropped += 1;
            }
        }
        Ok(report)
    }

    fn verify_tree(&self, d: &Digest, root: &Path) -> Vec<Damage> {
        let tree = match self.read_tree(d) {
            Ok(t) => t,
            Err(e) => {
                return vec![Damage {
                    path: root.to_path_buf(),
                    object: Some(*d),
                    problem: format!("manifest unusable: {e}"),
                }];
            }
        };
        let mut problems: Vec<Damage> = tree
            .entries
            .par_iter()
            .filter_map(|e| {
                let p = root.join(&e.path);
                let obj = self.object_path(&e.digest);
                let same_inode = match (std::fs::metadata(&p), std::fs::metadata(&obj)) {
                    (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                    _ => false,
                };
                // A file that shares its inode with a healthy object was checked above.
                if same_inode {
                    return None;
                }
                match hash_file(&p) {
                    Ok(actual) if actual == e.digest => None,
                    Ok(actual) => Some(Damage {
                        path: p,
                        object: Some(e.digest),
                        problem: format!("hashes to {actual}"),
                    }),
                    Err(err) => Some(Damage {
                        path: p,
                        object: Some(e.digest),
                        problem: err.to_string(),
                    }),
                }
            })
            .collect();
        if let Ok(files) = list_files(root, false) {
            let known: BTreeSet<&str> = tree.entries.iter().map(|e| e.path.as_str()).collect();
            for (rel, abs) in files {
                if !known.contains(rel.as_str()) {
                    problems.push(Damage {
                        path: abs,
                        object: None,
                        problem: "is not part of the stored tree".into(),
                    });
                }
            }
        }
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        problems
    }

    /// Remove every tree not in `keep`, every object no kept tree refers to, and run
    /// records whose output is removed. With `dry_run`, only count.
    pub fn gc(&self, keep: &BTreeSet<Digest>, dry_run: bool) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut live: BTreeSet<Digest> = BTreeSet::new();
        for (digest, path) in self.list_trees()? {
            match digest {
                Some(d) if keep.contains(&d) => {
                    report.trees_kept += 1;
                    live.insert(d);
                    if let Ok(t) = self.read_tree(&d) {
                        live.extend(t.entries.iter().map(|e| e.digest));
                    }
                }
                _ => {
                    report.trees_removed += 1;
                    if !dry_run {
                        let _ = make_writable(&path);
                        std::fs::remove_dir_all(&path).ctx("remove", &path)?;
                    }
                }
            }
        }
        for (d, p) in self.list_objects()? {
            if !live.contains(&d) {
                report.objects_removed += 1;
                report.bytes_freed += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                if !dry_run {
                    std::fs::remove_file(&p).ctx("remove", &p)?;
                }
            }
        }
        let runs = self.root.join("runs");
        for e in std::fs::read_dir(&runs).ctx("list", &runs)? {
            let e = e.ctx("list", &runs)?;
            let keep_run = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
                .is_some_and(|r| keep.contains(&r.output));
            if !keep_run {
                report.runs_removed += 1;
                if !dry_run {
                    std::fs::remove_file(e.path()).ctx("remove", &e.path())?;
                }
            }
        }
        if !dry_run {
            // A job written in the last day may still be waiting in a cluster's queue for a
            // node to run it (its driver gone): keep it.
            let jobs = self.root.join("jobs");
            let recent = |p: &Path| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(24 * 3600))
            };
            for e in std::fs::read_dir(&jobs).ctx("list", &jobs)?.flatten() {
                if !recent(&e.path()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            self.clean_tmp()?;
        }
        Ok(report)
    }
}

/// Make `path` read-only (keeping it executable if asked) and stamp its mtime.
fn seal(path: &Path, executable: bool) -> Result<()> {
    let mode = if executable { 0o555 } else { 0o444 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ctx("chmod", path)?;
    let t = UNIX_EPOCH + Duration::from_secs(OBJECT_MTIME as u64);
    let f = File::options().read(true).open(path).ctx("open", path)?;
    f.set_times(
        std::fs::FileTimes::new()
            .set_modified(t)
            .set_accessed(SystemTime::now()),
    )
    .ctx("set mtime", path)
}

/// Whether an object looks as sealing left it: a regular file of `size` bytes with the
/// object stamp (the cheap check; `verify` re-hashes).
fn sound_object(obj: &Path, size: u64) -> bool {
    std::fs::symlink_metadata(obj).is_ok_and(|m| {
        m.is_file() && m.len() == size && m.mtime() == OBJECT_MTIME && m.mtime_nsec() == 0
    })
}

/// Hard-link `src` at `obj` (creating the fan-out folder); an existing `obj` is fine.
fn link_into(src: &Path, obj: &Path) -> Result<()> {
    if let Some(parent) = obj.parent() {
        std::fs::create_dir_all(parent).ctx("create directory", parent)?;
    }
    match std::fs::hard_link(src, obj) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => {
            // No hard links here (another file system?): copy, then rename in.
            let tmp = obj.with_extension(format!("tmp{}.{}", std::process::id(), unique_suffix()));
            std::fs::copy(src, &tmp).ctx("copy", src)?;
            std::fs::rename(&tmp, obj).ctx("rename into place", obj)
        }
    }
}

/// Flush the file system holding `root`, once for a whole tree rather than per file.
fn sync_fs(root: &Path) -> Result<()> {
    let f = File::open(root).ctx("open", root)?;
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs takes a valid open descriptor, which `f` holds until the call returns.
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx("syncfs", root);
    }
    Ok(())
}

/// Give the owner write permission on a folder tree, so it can be removed by non-root users.
fn make_writable(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        for e in std::fs::read_dir(path)? {
            make_writable(&e?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join(".ventral")).unwrap();
        (dir, s)
    }

    fn write_tree(s: &Store, files: &[(&str, &[u8])]) -> Digest {
        let t = s.new_tmp_dir("t").unwrap();
        for (p, b) in files {
            let full = t.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, b).unwrap();
        }
        s.put_dir(t).unwrap()
    }

    #[test]
    fn put_dir_materialises_and_dedups() {
        let (_d, s) = store();
        let a = write_tree(&s, &[("x.txt", b"hello"), ("sub/y", b"world")]);
        let b = write_tree(&s, &[("sub/y", b"world"), ("x.txt", b"hello")]);
        assert_eq!(a, b);
        let out = s.out_path(&a);
        assert_eq!(std::fs::read(out.join("sub/y")).unwrap(), b"world");
        assert!(s.check_tree(&a).is_empty());
        let tree = s.read_tree(&a).unwrap();
        assert_eq!(tree.entries.len(), 2);
        assert!(
            std::fs::read_dir(s.root().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        // The materialised file shares its inode with the object.
        let m1 = std::fs::metadata(out.join("x.txt")).unwrap();
        let m2 = std::fs::metadata(s.object_path(&crate::hash_bytes(b"hello"))).unwrap();
        assert_eq!(m1.ino(), m2.ino());
    }

    #[test]
    fn check_tree_notices_modification_and_verify_quarantines() {
        let (_d, s) = store();
        let t = write_tree(&s, &[("a", b"aaaa"), ("b", b"bbbb")]);
        let f = s.out_path(&t).join("a");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&f, b"AAAA").unwrap(); // same size, new content
        let quick = s.check_tree(&t);
        assert_eq!(quick.len(), 1, "{quick:?}");
        assert!(quick[0].problem.contains("modified"));
        let rec = RunRecord {
            key: crate::hash_bytes(b"k"),
            stage: "s".into(),
            kind: "k".into(),
            output: t,
            duration_s: 0.0,
            finished_unix: 0,
            host: "h".into(),
            peak_rss_bytes: None,
        };
        s.put_run(&rec).unwrap();
        let report = s.verify().unwrap();
        assert!(
            report
                .damaged
                .iter()
                .any(|d| d.object == Some(crate::hash_bytes(b"aaaa"))),
            "{report:?}"
        );
        assert!(!s.out_path(&t).exists(), "damaged tree must be quarantined");
        assert_eq!(report.runs_dropped, 1);
        assert!(s.get_run(&rec.key).unwrap().is_none());
        // A second verify finds a clean store.
        let again = s.verify().unwrap();
        assert!(again.damaged.is_empty(), "{again:?}");
    }

    #[test]
    fn symlinks_are_refused() {
        let (_d, s) = store();
        let t = s.new_tmp_dir("t").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("l")).unwrap();
        let err = s.put_dir(t).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }

    #[test]
    fn gc_keeps_only_referenced() {
        let (_d, s) = store();
        let keep = write_tree(&s, &[("a", b"shared"), ("b", b"kept")]);
        let drop_ = write_tree(&s, &[("a", b"shared"), ("c", b"dropped")]);
        let r = s.gc(&BTreeSet::from([keep]), false).unwrap();
        assert_eq!(r.trees_removed, 1);
        assert!(s.out_path(&keep).exists());
        assert!(!s.out_path(&drop_).exists());
        assert!(s.object_path(&crate::hash_bytes(b"shared")).exists());
        assert!(!s.object_path(&crate::hash_bytes(b"dropped")).exists());
        assert!(s.verify().unwrap().damaged.is_empty());
    }

    #[test]
    fn gc_keeps_jobs_a_cluster_may_still_run() {
        let (_d, s) = store();
        let key = crate::hash_bytes(b"k");
        let (fresh, old) = (s.job_path(&key), s.job_path(&crate::hash_bytes(b"old")));
        std::fs::create_dir_all(fresh.parent().unwrap()).unwrap();
        std::fs::write(&fresh, b"{}").unwrap();
        std::fs::write(&old, b"{}").unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        s.gc(&BTreeSet::new(), false).unwrap();
        assert!(fresh.exists(), "a job written today was removed");
        assert!(!old.exists(), "a job two days old was kept");
    }

    #[test]
    fn executable_bit_is_kept() {
        let (_d, s) = store();
        let t = s.new_tmp_dir("t").unwrap();
        let f = t.path().join("run.sh");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = s.put_dir(t).unwrap();
        let tree = s.read_tree(&d).unwrap();
        assert!(tree.entries[0].executable);
        let m = std::fs::metadata(s.out_path(&d).join("run.sh")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o555);
        assert!(s.check_tree(&d).is_empty());
        assert!(s.verify().unwrap().damaged.is_empty());
    }
}
