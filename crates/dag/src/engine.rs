//! Status, planning and execution.
//!
//! For each stage, in dependency order: hash its inputs (through the file-hash cache),
//! compute its key, then
//! * **up to date** when the lockfile records that key and its output is healthy in the
//!   store;
//! * **restorable** when a run record for that key exists (the result of an earlier run,
//!   perhaps under other params): it is taken without running anything;
//! * **stale** otherwise, with the reasons (which param, input, code or runtime changed);
//! * **waiting** when an upstream stage must run first (its output, and so this key, is not
//!   known yet; if the upstream reproduces the same bytes, this stage will not run at all).
//!
//! Running executes stale stages through an [`Executor`], independent stages in parallel,
//! re-hashes the inputs afterwards (a file edited mid-run is never recorded against the old
//! result), records the run and rewrites the lockfile after every stage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use ventral_cas::{Digest, HashCache, Lease, RunRecord, Store, WorkspaceLock, hash_dir};

/// How long a stage key's lease lasts unless renewed (its holder renews it every third of
/// this): how long a driver that vanished on another host blocks that key.
const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often a driver waiting for another's lease looks again.
const LEASE_POLL: Duration = Duration::from_millis(250);

use crate::error::{DagError, Result};
use crate::graph::Graph;
use crate::key::KeyMaterial;
use crate::lockfile::{LockEntry, LockInput, Lockfile};
use crate::pipeline::{InputRef, Pipeline, StageSpec};
use crate::resources::Resources;
use ventral_stage::{Params, Registry, StageContext};

/// A workspace: its root folder, its store, and its `lockfiles/` folder.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The root; relative input paths and `publish` paths are relative to it.
    pub root: PathBuf,
    /// The object store.
    pub store: Store,
    /// Where lockfiles go.
    pub lockfiles: PathBuf,
}

impl Workspace {
    /// Open the workspace at `root` with its store at `store_root` (default `root/.ventral`).
    /// Nothing is created until something is written.
    pub fn open(root: &Path, store_root: Option<&Path>) -> Result<Workspace> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| DagError::Other(format!("workspace {}: {e}", root.display())))?;
        let store_root = store_root
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.join(".ventral"));
        Ok(Workspace {
            store: Store::at(&store_root),
            lockfiles: root.join("lockfiles"),
            root,
        })
    }

    /// The lockfile of `p`.
    pub fn lockfile_path(&self, p: &Pipeline) -> PathBuf {
        self.lockfiles.join(p.lockfile_name())
    }

    /// The workspace's file-hash cache.
    pub fn hash_cache(&self) -> HashCache {
        HashCache::load(&self.store.hash_cache_path())
    }

    /// This workspace's folder in the store: its lock (one `ventral run` per workspace at a
    /// time) and its registration (`workspace.json`: the root, so that `gc` of any workspace
    /// sharing the store keeps what this one's lockfiles name).
    pub fn registration_dir(&self) -> PathBuf {
        let id = ventral_cas::hash_bytes(self.root.as_os_str().as_encoded_bytes());
        self.store.root().join("workspaces").join(id.short(16))
    }

    /// Record this workspace in its store (see [`Workspace::registration_dir`]).
    pub fn register(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&serde_json::json!({ "root": self.root }))
            .map_err(|e| DagError::Other(e.to_string()))?;
        let path = self.registration_dir().join("workspace.json");
        if std::fs::read(&path).ok().as_deref() != Some(json.as_slice()) {
            ventral_cas::atomic_write(&path, &json)?;
        }
        Ok(())
    }

    /// The roots of every workspace registered in `store`.
    pub fn registered(store: &Store) -> Vec<PathBuf> {
        let dir = store.root().join("workspaces");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut roots: Vec<PathBuf> = entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("workspace.json")).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter_map(|v| v["root"].as_str().map(PathBuf::from))
            .collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// Take this workspace's run lock (see [`Workspace::registration_dir`]).
    pub fn lock(&self, command: &str, timeout: Duration) -> Result<WorkspaceLock> {
        WorkspaceLock::acquire(&self.registration_dir(), command, timeout).map_err(|e| match e {
            ventral_cas::CasError::Locked {
                holder, waited_s, ..
            } => ventral_cas::CasError::Locked {
                workspace: self.root.clone(),
                holder,
                waited_s,
            }
            .into(),
            e => e.into(),
        })
    }

    /// Every output digest recorded by any lockfile in `lockfiles/`.
    pub fn referenced_outputs(&self) -> Result<BTreeSet<Digest>> {
        let mut keep = BTreeSet::new();
        let Ok(dir) = std::fs::read_dir(&self.lockfiles) else {
            return Ok(keep);
        };
        for e in dir.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "lock") {
                let lf = Lockfile::load(&p, "", "")?;
                keep.extend(lf.stages.values().map(|s| s.output));
            }
        }
        Ok(keep)
    }
}

/// Why a stage is not up to date.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// No record of this stage in the lockfile.
    NeverRun,
    /// `--force`.
    Forced,
    /// The kind changed.
    KindChanged {
        /// Before.
        from: String,
        /// Now.
        to: String,
    },
    /// The source files implementing the kind changed.
    CodeChanged {
        /// The kind.
        kind: String,
    },
    /// The runtime (library versions, device) changed.
    RuntimeChanged {
        /// Before.
        from: Option<String>,
        /// Now.
        to: Option<String>,
    },
    /// A param was added.
    ParamAdded {
        /// Its name.
        name: String,
        /// Its value.
        value: String,
    },
    /// A param was removed.
    ParamRemoved {
        /// Its name.
        name: String,
    },
    /// A param changed.
    ParamChanged {
        /// Its name.
        name: String,
        /// Before.
        from: String,
        /// Now.
        to: String,
    },
    /// An input was added.
    InputAdded {
        /// The input's name.
        name: String,
    },
    /// An input was removed.
    InputRemoved {
        /// The input's name.
        name: String,
    },
    /// An input's content changed.
    InputChanged {
        /// The input's name.
        name: String,
        /// Which file, folder or stage.
        what: String,
    },
    /// An upstream stage must run first.
    UpstreamStale {
        /// That stage.
        stage: String,
    },
    /// The recorded output is not in the store.
    OutputMissing {
        /// The output tree.
        output: Digest,
    },
    /// The recorded output is damaged.
    OutputDamaged {
        /// A damaged file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The publish link is missing or points elsewhere.
    PublishOutdated {
        /// The link.
        path: String,
    },
    /// A result for exactly this key exists from an earlier run.
    CachedResult {
        /// When that run finished (seconds since the epoch).
        finished_unix: u64,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NeverRun => write!(f, "never run"),
            Reason::Forced => write!(f, "forced"),
            Reason::KindChanged { from, to } => write!(f, "kind changed: {from} -> {to}"),
            Reason::CodeChanged { kind } => write!(f, "code of kind `{kind}` changed"),
            Reason::RuntimeChanged { from, to } => write!(
                f,
                "runtime changed: {} -> {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ),
            Reason::ParamAdded { name, value } => write!(f, "param `{name}` added ({value})"),
            Reason::ParamRemoved { name } => write!(f, "param `{name}` removed"),
            Reason::ParamChanged { name, from, to } => {
                write!(f, "param `{name}` changed: {from} -> {to}")
            }
            Reason::InputAdded { name } => write!(f, "input `{name}` added"),
            Reason::InputRemoved { name } => write!(f, "input `{name}` removed"),
            Reason::InputChanged { name, what } => write!(f, "input `{name}` changed: {what}"),
            Reason::UpstreamStale { stage } => write!(f, "upstream `{stage}` must run first"),
            Reason::OutputMissing { output } => {
                write!(f, "output {} is not in the store", output.short(12))
            }
            Reason::OutputDamaged { path, problem } => {
                write!(f, "output damaged: {} {problem}", path.display())
            }
            Reason::PublishOutdated { path } => {
                write!(f, "publish link `{path}` is missing or stale")
            }
            Reason::CachedResult { .. } => write!(f, "a result for this exact key is cached"),
        }
    }
}

/// A stage's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing to do.
    UpToDate,
    /// A cached result for the current key exists; it will be taken without running.
    Restorable,
    /// It must run.
    Stale,
    /// An upstream stage must run first.
    Waiting,
}

impl Status {
    /// The word used in text output.
    pub fn word(self) -> &'static str {
        match self {
            Status::UpToDate => "up-to-date",
            Status::Restorable => "restorable",
            Status::Stale => "stale",
            Status::Waiting => "waiting",
        }
    }
}

/// One stage's status and why.
#[derive(Clone, Debug, Serialize)]
pub struct StageStatus {
    /// The stage.
    pub stage: String,
    /// Its kind.
    pub kind: String,
    /// Its state.
    pub status: Status,
    /// Why it is not up to date (empty when it is).
    pub reasons: Vec<Reason>,
    /// Its current key, when computable.
    pub key: Option<Digest>,
    /// The output it has (or would restore), when known.
    pub output: Option<Digest>,
}

/// What happened to a stage in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// It ran.
    Ran,
    /// A cached result for its key was taken.
    Restored,
    /// It was up to date.
    UpToDate,
    /// It failed.
    Failed,
    /// It was not attempted because something upstream failed.
    Skipped,
}

/// The result of one stage in a run.
#[derive(Clone, Debug, Serialize)]
pub struct StageOutcome {
    /// The stage.
    pub stage: String,
    /// What happened.
    pub action: Action,
    /// Its key.
    pub key: Option<Digest>,
    /// Its output.
    pub output: Option<Digest>,
    /// Wall-clock seconds spent on it.
    pub seconds: f64,
    /// Why it ran.
    pub reasons: Vec<Reason>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Whether it failed because it refused a param when it started (the run exits 2).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bad_param: bool,
}

/// What `run` did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// One outcome per stage considered, in dependency order.
    pub stages: Vec<StageOutcome>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

impl RunReport {
    /// Whether every stage succeeded.
    pub fn ok(&self) -> bool {
        self.stages
            .iter()
            .all(|s| !matches!(s.action, Action::Failed | Action::Skipped))
    }

    /// Whether a stage refused a param when it started (a bad value of the pipeline's, like
    /// those refused when it is read: the run exits 2).
    pub fn bad_param(&self) -> bool {
        self.stages.iter().any(|s| s.bad_param)
    }

    /// How many stages had each action.
    pub fn count(&self, a: Action) -> usize {
        self.stages.iter().filter(|s| s.action == a).count()
    }
}

/// Options of [`Engine::run`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Stages to bring up to date (with what they need); empty: all.
    pub targets: Vec<String>,
    /// Stages run at once.
    pub jobs: usize,
    /// Run the targets even if up to date.
    pub force: bool,
    /// How long to wait for the workspace lock.
    pub lock_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            targets: Vec::new(),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            force: false,
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// Receives live events of a run (the CLI draws them).
pub trait Progress: Sync {
    /// A stage starts running (or restoring).
    fn started(&self, _stage: &str, _what: &str) {}
    /// A running stage reports something.
    fn message(&self, _stage: &str, _msg: &str) {}
    /// A stage is done.
    fn finished(&self, _outcome: &StageOutcome) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Everything needed to execute one stage anywhere that sees the store: written to
/// `jobs/<key>.json`, so that `ventral exec-stage KEY` can run it on another node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The stage key.
    pub key: Digest,
    /// The stage's name.
    pub stage: String,
    /// The kind.
    pub kind: String,
    /// The params.
    pub params: Params,
    /// Input paths by name.
    pub inputs: BTreeMap<String, Vec<PathBuf>>,
    /// The workspace root.
    pub workspace: PathBuf,
    /// The code identity of the kind in the build that prepared the job (part of the key;
    /// empty in jobs written before it was recorded, which are refused).
    #[serde(default)]
    pub code: String,
    /// The runtime the key declares (library versions, resolved device), if any.
    #[serde(default)]
    pub runtime: Option<String>,
    /// What the stage asks of the machine (for cluster executors; not part of the key).
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
}

/// A cache of results beyond the local store (a lab's remote): asked before a stage runs,
/// offered each result after.
pub trait RemoteCache: Sync {
    /// Bring the result for `key` into the local store (its run record included) if the
    /// cache has it; `Ok(false)` on a miss. A corrupt copy is an error (reported; the stage
    /// then runs).
    fn fetch(&self, key: &Digest, stage: &str) -> std::result::Result<bool, String>;
    /// Offer a result just computed (a failure is reported, never fails the stage).
    fn offer(&self, rec: &RunRecord) -> std::result::Result<(), String>;
}

/// Runs jobs. The local executor runs them in this process; a cluster executor submits
/// `ventral exec-stage KEY` and reads back the output digest.
pub trait Executor: Sync {
    /// Execute `job` and return its output tree (and what was measured of the run).
    fn execute(&self, job: &Job, progress: &(dyn Fn(&str) + Sync)) -> Result<Executed>;
}

/// What an executor returns for a job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Executed {
    /// The output tree.
    pub output: Digest,
    /// The peak resident memory of the stage's own process (with its children), where it
    /// had one.
    pub peak_rss_bytes: Option<u64>,
}

impl From<Digest> for Executed {
    fn from(output: Digest) -> Self {
        Executed {
            output,
            peak_rss_bytes: None,
        }
    }
}

/// Runs each job in this process.
pub struct LocalExecutor<'a> {
    /// The store outputs go to.
    pub store: &'a Store,
    /// The kinds.
    pub registry: &'a Registry,
}

impl Executor for LocalExecutor<'_> {
    fn execute(&self, job: &Job, progress: &(dyn Fn(&str) + Sync)) -> Result<Executed> {
        // In the engine's process beside other stages: no memory figure of its own.
        execute_job(self.store, self.registry, job, progress).map(Executed::from)
    }
}

/// Execute a job: run its kind into a fresh scratch folder and store that folder as a tree.
/// A pure function of the job (which its key determines). Nothing becomes visible in the
/// store unless the kind succeeds.
pub fn execute_job(
    store: &Store,
    registry: &Registry,
    job: &Job,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Digest> {
    let kind = registry
        .get(&job.kind)
        .ok_or_else(|| DagError::StageFailed {
            stage: job.stage.clone(),
            message: format!("unknown kind `{}`", job.kind),
        })?;
    let code = registry.code_identity(&job.kind).unwrap_or_default();
    if code != job.code {
        return Err(DagError::CodeMismatch {
            stage: job.stage.clone(),
            kind: job.kind.clone(),
            job: job.code.clone(),
            here: code.to_string(),
        });
    }
    let tmp = store.new_tmp_dir(&job.stage)?;
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out)
        .map_err(|e| DagError::Other(format!("{}: {e}", out.display())))?;
    let log = store.log_path(&job.key);
    let resume_dir = store.resume_path(&job.key);
    // What a kind reports goes to the stage's log as well as to the screen, so that the
    // log says what a run did (resumed after a checkpoint, skipped work, …).
    let logged = |m: &str| {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = writeln!(f, "ventral: {m}");
        }
        progress(m);
    };
    let ctx = StageContext {
        stage: &job.stage,
        params: &job.params,
        inputs: &job.inputs,
        out_dir: &out,
        workspace: &job.workspace,
        log: &log,
        runtime: job.runtime.as_deref(),
        resume_dir: &resume_dir,
        memory: job.resources.mem_bytes(),
        progress: &logged,
    };
    kind.run(&ctx)
        .map_err(|e| match e.downcast_ref::<ventral_stage::ParamError>() {
            Some(p) => DagError::BadParam {
                stage: job.stage.clone(),
                message: p.to_string(),
            },
            None => DagError::StageFailed {
                stage: job.stage.clone(),
                message: e.to_string(),
            },
        })?;
    let out_tmp = store.new_tmp_dir(&format!("{}-out", job.stage))?;
    // Move the output folder itself into a scratch folder of its own, so that put_dir
    // takes exactly what the kind wrote.
    std::fs::remove_dir(out_tmp.path())
        .map_err(|e| DagError::Other(format!("{}: {e}", out_tmp.path().display())))?;
    std::fs::rename(&out, out_tmp.path())
        .map_err(|e| DagError::Other(format!("{}: {e}", out.display())))?;
    let digest = store.put_dir(out_tmp)?;
    if resume_dir.exists() {
        let _ = std::fs::remove_dir_all(&resume_dir);
    }
    Ok(digest)
}

/// What a run hands each stage: where jobs execute, who shows progress, which remote
/// cache is asked.
#[derive(Clone, Copy)]
struct Drivers<'r> {
    executor: &'r dyn Executor,
    progress: &'r dyn Progress,
    remote: Option<&'r dyn RemoteCache>,
}

/// Inputs resolved for one stage: digests for the key, paths for the job.
struct Resolved {
    digests: BTreeMap<String, Vec<LockInput>>,
    paths: BTreeMap<String, Vec<PathBuf>>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The engine over one pipeline.
pub struct Engine<'a> {
    ws: &'a Workspace,
    registry: &'a Registry,
    pipeline: &'a Pipeline,
    graph: Graph,
    cache: HashCache,
}

impl<'a> Engine<'a> {
    /// Validate the pipeline against the registry and build its graph.
    pub fn new(ws: &'a Workspace, registry: &'a Registry, pipeline: &'a Pipeline) -> Result<Self> {
        pipeline.validate(registry)?;
        let graph = Graph::build(pipeline)?;
        Ok(Engine {
            ws,
            registry,
            pipeline,
            graph,
            cache: ws.hash_cache(),
        })
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The file-hash cache (for statistics).
    pub fn cache(&self) -> &HashCache {
        &self.cache
    }

    fn input_error(&self, s: &StageSpec, message: String) -> DagError {
        DagError::Pipeline {
            file: self.pipeline.file.clone(),
            line: s.inputs_line,
            stage: Some(s.name.clone()),
            message,
        }
    }

    /// Check, before anything runs, that every workspace input of the stages in `set` exists.
    fn check_path_inputs(&self, set: &BTreeSet<usize>) -> Result<()> {
        for &i in set {
            let s = &self.pipeline.stages[i];
            for (name, refs) in &s.inputs {
                for r in refs {
                    if let InputRef::Path(p) = r {
                        let abs = self.ws.root.join(p);
                        if has_glob(p) {
                            let pattern = abs.to_string_lossy().to_string();
                            let any = glob::glob(&pattern)
                                .map_err(|e| {
                                    self.input_error(
                                        s,
                                        format!("input `{name}`: bad glob `{p}`: {e}"),
                                    )
                                })?
                                .next()
                                .is_some();
                            if !any {
                                return Err(self.input_error(
                                    s,
                                    format!("input `{name}`: `{p}` matches nothing"),
                                ));
                            }
                        } else if !abs.exists() {
                            return Err(self
                                .input_error(s, format!("input `{name}`: `{p}` does not exist")));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn hash_path(&self, abs: &Path) -> Result<Digest> {
        let meta = std::fs::metadata(abs)
            .map_err(|e| DagError::Other(format!("{}: {e}", abs.display())))?;
        Ok(if meta.is_dir() {
            hash_dir(abs, &self.cache)?.digest()
        } else {
            self.cache.hash_file(abs)?
        })
    }

    fn rel_or_abs(&self, p: &Path) -> String {
        p.strip_prefix(&self.ws.root)
            .map(|r| r.to_string_lossy().to_string())
            .unwrap_or_else(|_| p.to_string_lossy().to_string())
    }

    /// Hash the inputs of stage `i`, given the outputs of the stages it reads.
    fn resolve(&self, i: usize, outputs: &HashMap<usize, Digest>) -> Result<Resolved> {
        let s = &self.pipeline.stages[i];
        let mut digests = BTreeMap::new();
        let mut paths = BTreeMap::new();
        for (name, refs) in &s.inputs {
            let mut ds = Vec::new();
            let mut ps = Vec::new();
            for r in refs {
                match r {
                    InputRef::Stage { stage, sub } => {
                        let j = self.graph.index_of(stage).ok_or_else(|| {
                            self.input_error(s, format!("unknown stage `{stage}`"))
                        })?;
                        let out = *outputs.get(&j).ok_or_else(|| {
                            DagError::Other(format!("internal: output of `{stage}` unknown"))
                        })?;
                        let (digest, path) = match sub {
                            None => (out, self.ws.store.out_path(&out)),
                            Some(sub) => {
                                let tree = self.ws.store.read_tree(&out)?;
                                let d = tree.sub_digest(sub).ok_or_else(|| {
                                    self.input_error(s, format!("input `{name}`: the output of stage `{stage}` has no `{sub}`"))
                                })?;
                                (d, self.ws.store.out_path(&out).join(sub))
                            }
                        };
                        ds.push(LockInput {
                            source: r.source(),
                            member: None,
                            digest,
                        });
                        ps.push(path);
                    }
                    InputRef::Path(p) if has_glob(p) => {
                        let pattern = self.ws.root.join(p).to_string_lossy().to_string();
                        let mut matches: Vec<PathBuf> = glob::glob(&pattern)
                            .map_err(|e| {
                                self.input_error(s, format!("input `{name}`: bad glob `{p}`: {e}"))
                            })?
                            .filter_map(std::result::Result::ok)
                            .collect();
                        matches.sort();
                        if matches.is_empty() {
                            return Err(self
                                .input_error(s, format!("input `{name}`: `{p}` matches nothing")));
                        }
                        for m in matches {
                            ds.push(LockInput {
                                source: p.clone(),
                                member: Some(self.rel_or_abs(&m)),
                                digest: self.hash_path(&m)?,
                            });
                            ps.push(m);
                        }
                    }
                    InputRef::Path(p) => {
                        let abs = self.ws.root.join(p);
                        if !abs.exists() {
                            return Err(self
                                .input_error(s, format!("input `{name}`: `{p}` does not exist")));
                        }
                        ds.push(LockInput {
                            source: p.clone(),
                            member: None,
                            digest: self.hash_path(&abs)?,
                        });
                        ps.push(abs);
                    }
                }
            }
            digests.insert(name.clone(), ds);
            paths.insert(name.clone(), ps);
        }
        Ok(Resolved { digests, paths })
    }

    fn entry_for(&self, i: usize, r: &Resolved, output: Digest) -> Result<(LockEntry, Digest)> {
        let s = &self.pipeline.stages[i];
        let kind = self.registry.get(&s.kind).expect("validated");
        let code = self.registry.code_identity(&s.kind).expect("validated");
        let runtime = kind
            .runtime(&s.params)
            .map_err(|e| self.pipeline.stage_error(s, format!("{e}")))?;
        let material = KeyMaterial {
            kind: &s.kind,
            code,
            runtime: runtime.as_deref(),
            params: &s.params,
            inputs: &r.digests,
        };
        let key = material.key();
        Ok((
            LockEntry {
                kind: s.kind.clone(),
                code: code.to_string(),
                runtime,
                key,
                output,
                params: s.params.clone(),
                inputs: r.digests.clone(),
            },
            key,
        ))
    }

    /// Why the recorded `old` entry differs from the `new` one.
    fn diff(old: Option<&LockEntry>, new: &LockEntry) -> Vec<Reason> {
        let Some(old) = old else {
            return vec![Reason::NeverRun];
        };
        let mut v = Vec::new();
        if old.kind != new.kind {
            v.push(Reason::KindChanged {
                from: old.kind.clone(),
                to: new.kind.clone(),
            });
        } else if old.code != new.code {
            v.push(Reason::CodeChanged {
                kind: new.kind.clone(),
            });
        }
        if old.runtime != new.runtime {
            v.push(Reason::RuntimeChanged {
                from: old.runtime.clone(),
                to: new.runtime.clone(),
            });
        }
        let show = crate::canonical::to_string;
        for (k, val) in &new.params {
            match old.params.get(k) {
                None => v.push(Reason::ParamAdded {
                    name: k.clone(),
                    value: show(val),
                }),
                Some(o) if o != val => v.push(Reason::ParamChanged {
                    name: k.clone(),
                    from: show(o),
                    to: show(val),
                }),
                _ => {}
            }
        }
        for k in old.params.keys().filter(|k| !new.params.contains_key(*k)) {
            v.push(Reason::ParamRemoved { name: k.clone() });
        }
        for (k, list) in &new.inputs {
            match old.inputs.get(k) {
                None => v.push(Reason::InputAdded { name: k.clone() }),
                Some(o) if o != list => {
                    let what = describe_input_change(o, list);
                    v.push(Reason::InputChanged {
                        name: k.clone(),
                        what,
                    });
                }
                _ => {}
            }
        }
        for k in old.inputs.keys().filter(|k| !new.inputs.contains_key(*k)) {
            v.push(Reason::InputRemoved { name: k.clone() });
        }
        v
    }

    /// Whether the output `d` is healthy; else the reason it is not.
    fn output_problem(&self, d: &Digest) -> Option<Reason> {
        let damage = self.ws.store.check_tree(d);
        let first = damage.into_iter().next()?;
        if !self.ws.store.out_path(d).exists() || first.path == self.ws.store.object_path(d) {
            Some(Reason::OutputMissing { output: *d })
        } else {
            Some(Reason::OutputDamaged {
                path: first.path,
                problem: first.problem,
            })
        }
    }

    fn publish_ok(&self, s: &StageSpec, output: &Digest) -> bool {
        let Some(p) = &s.publish else { return true };
        let link = self.ws.root.join(p);
        match std::fs::read_link(&link) {
            Ok(target) => {
                let resolved = link.parent().map(|d| d.join(&target)).unwrap_or(target);
                std::fs::canonicalize(resolved).ok()
                    == std::fs::canonicalize(self.ws.store.out_path(output)).ok()
            }
            Err(_) => false,
        }
    }

    /// Point the publish link of `s` at `output`, atomically. A real file or folder at that
    /// path is never replaced.
    fn publish(&self, s: &StageSpec, output: &Digest) -> Result<()> {
        let Some(p) = &s.publish else { return Ok(()) };
        let link = self.ws.root.join(p);
        if let Ok(meta) = std::fs::symlink_metadata(&link)
            && !meta.file_type().is_symlink()
        {
            return Err(DagError::StageFailed {
                stage: s.name.clone(),
                message: format!(
                    "cannot publish to `{p}`: a file or folder that ventral did not make is there; move it away"
                ),
            });
        }
        let parent = link.parent().unwrap_or(&self.ws.root);
        std::fs::create_dir_all(parent)
            .map_err(|e| DagError::Other(format!("{}: {e}", parent.display())))?;
        let target = self.ws.store.out_path(output);
        let target = relative_to(&target, parent).unwrap_or(target);
        // One name per link: runs hold the workspace lock, and a run killed right here
        // leaves a dangling temp link that the next publish replaces.
        let tmp = parent.join(format!(
            ".{}.ventral-link",
            link.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        ));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .map_err(|e| DagError::Other(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &link)
            .map_err(|e| DagError::Other(format!("{}: {e}", link.display())))?;
        Ok(())
    }

    /// The status of the stages in `set` (all when `None`), in dependency order.
    pub fn status(&self, set: Option<&BTreeSet<usize>>) -> Result<Vec<StageStatus>> {
        let lf = Lockfile::load(
            &self.ws.lockfile_path(self.pipeline),
            &self.pipeline.name,
            &self.pipeline.profile,
        )?;
        let all: BTreeSet<usize> = (0..self.pipeline.stages.len()).collect();
        let set = set.unwrap_or(&all);
        self.check_path_inputs(set)?;
        let mut known: HashMap<usize, Digest> = HashMap::new();
        let mut out = Vec::new();
        for &i in self.graph.order.iter().filter(|i| set.contains(i)) {
            let s = &self.pipeline.stages[i];
            let waiting: Vec<usize> = self.graph.deps[i]
                .iter()
                .copied()
                .filter(|d| !known.contains_key(d))
                .collect();
            if !waiting.is_empty() {
                out.push(StageStatus {
                    stage: s.name.clone(),
                    kind: s.kind.clone(),
                    status: Status::Waiting,
                    reasons: waiting
                        .iter()
                        .map(|&d| Reason::UpstreamStale {
                            stage: self.pipeline.stages[d].name.clone(),
                        })
                        .collect(),
                    key: None,
                    output: None,
                });
                continue;
            }
            let r = self.resolve(i, &known)?;
            let (entry, key) = self.entry_for(i, &r, Digest([0; 32]))?;
            let old = lf.stages.get(&s.name);
            let (status, reasons, output) = self.judge(s, old, &entry, key)?;
            if let Some(o) = output
                && status != Status::Stale
            {
                known.insert(i, o);
            }
            out.push(StageStatus {
                stage: s.name.clone(),
                kind: s.kind.clone(),
                status,
                reasons,
                key: Some(key),
                output,
            });
        }
        self.log_cache_stats("status");
        let _ = self.cache.save();
        Ok(out)
    }

    fn log_cache_stats(&self, what: &str) {
        tracing::info!(
            "{what}: file-hash cache: {} hits, {} bytes hashed",
            self.cache.hits(),
            self.cache.bytes_hashed()
        );
    }

    /// Decide what a stage with current entry `new` (key `key`) needs.
    fn judge(
        &self,
        s: &StageSpec,
        old: Option<&LockEntry>,
        new: &LockEntry,
        key: Digest,
    ) -> Result<(Status, Vec<Reason>, Option<Digest>)> {
        if let Some(old) = old.filter(|o| o.key == key) {
            match self.output_problem(&old.output) {
                None => {
                    if self.publish_ok(s, &old.output) {
                        return Ok((Status::UpToDate, vec![], Some(old.output)));
                    }
                    let p = s.publish.clone().unwrap_or_default();
                    return Ok((
                        Status::Restorable,
                        vec![Reason::PublishOutdated { path: p }],
                        Some(old.output),
                    ));
                }
                Some(problem) => return Ok((Status::Stale, vec![problem], None)),
            }
        }
        let mut reasons = Self::diff(old, new);
        if let Some(rec) = self.ws.store.get_run(&key).ok().flatten()
            && self.output_problem(&rec.output).is_none()
        {
            reasons.push(Reason::CachedResult {
                finished_unix: rec.finished_unix,
            });
            return Ok((Status::Restorable, reasons, Some(rec.output)));
        }
        Ok((Status::Stale, reasons, None))
    }

    /// Resolve the indices of `names` (all stages when empty), naming unknown ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<usize>> {
        if names.is_empty() {
            return Ok((0..self.pipeline.stages.len()).collect());
        }
        let mut v = Vec::new();
        for n in names {
            if let Some(i) = self.graph.index_of(n) {
                v.push(i);
                continue;
            }
            // A matrix base selects all its instances.
            let inst: Vec<usize> = self
                .pipeline
                .stages
                .iter()
                .enumerate()
                .filter(|(_, s)| &s.base == n)
                .map(|(i, _)| i)
                .collect();
            if inst.is_empty() {
                return Err(DagError::Pipeline {
                    file: self.pipeline.file.clone(),
                    line: 0,
                    stage: None,
                    message: format!("no stage `{n}` in this pipeline"),
                });
            }
            v.extend(inst);
        }
        Ok(v)
    }

    /// Bring the selected stages up to date.
    pub fn run(
        &self,
        opts: &RunOptions,
        executor: &dyn Executor,
        progress: &dyn Progress,
    ) -> Result<RunReport> {
        self.run_with_remote(opts, executor, progress, None)
    }

    /// [`Engine::run`], asking `remote` for each stale stage's result before running it
    /// and offering it every result computed.
    pub fn run_with_remote(
        &self,
        opts: &RunOptions,
        executor: &dyn Executor,
        progress: &dyn Progress,
        remote: Option<&dyn RemoteCache>,
    ) -> Result<RunReport> {
        let started = Instant::now();
        let targets = self.select(&opts.targets)?;
        let set = self.graph.upstream_closure(&targets);
        let forced: BTreeSet<usize> = if opts.force {
            targets.iter().copied().collect()
        } else {
            BTreeSet::new()
        };
        self.check_path_inputs(&set)?;
        self.ws.store.ensure()?;
        // One run per workspace (its lockfile); runs of other workspaces sharing the store
        // go on beside it, each stage key computed once thanks to its lease.
        let _lock = self.ws.lock("ventral run", opts.lock_timeout)?;
        self.ws.register()?;
        let cleaned = self.ws.store.clean_tmp()?;
        if cleaned > 0 {
            tracing::info!("removed {cleaned} leftovers of killed runs from the store's tmp/");
        }
        let lf_path = self.ws.lockfile_path(self.pipeline);
        let mut lockfile = Lockfile::load(&lf_path, &self.pipeline.name, &self.pipeline.profile)?;
        lockfile.pipeline = self.pipeline.name.clone();
        lockfile.profile = self.pipeline.profile.clone();
        let names: BTreeSet<&str> = self
            .pipeline
            .stages
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        lockfile.stages.retain(|k, _| names.contains(k.as_str()));
        let old_lock = lockfile.clone();

        let mut outcomes: BTreeMap<usize, StageOutcome> = BTreeMap::new();
        let mut outputs: HashMap<usize, Digest> = HashMap::new();
        let mut pending: BTreeSet<usize> = set.clone();
        let mut running: BTreeSet<usize> = BTreeSet::new();
        let mut failed = false;
        let jobs = opts.jobs.max(1);
        let position: HashMap<usize, usize> = self
            .graph
            .order
            .iter()
            .enumerate()
            .map(|(p, &i)| (i, p))
            .collect();

        std::thread::scope(|scope| -> Result<()> {
            let (work_tx, work_rx) = mpsc::channel::<(usize, HashMap<usize, Digest>)>();
            let work_rx = Arc::new(Mutex::new(work_rx));
            let (done_tx, done_rx) =
                mpsc::channel::<(usize, Result<(StageOutcome, Option<LockEntry>)>)>();
            for _ in 0..jobs {
                let rx = Arc::clone(&work_rx);
                let tx = done_tx.clone();
                let old_lock = &old_lock;
                let forced = &forced;
                scope.spawn(move || {
                    loop {
                        let msg = rx.lock().map(|r| r.recv());
                        let Ok(Ok((i, deps))) = msg else { break };
                        let result = self.process(
                            i,
                            &deps,
                            old_lock,
                            forced.contains(&i),
                            Drivers {
                                executor,
                                progress,
                                remote,
                            },
                        );
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            loop {
                // Dispatch every ready stage, in dependency order.
                if !failed {
                    let mut ready: Vec<usize> = pending
                        .iter()
                        .copied()
                        .filter(|&i| self.graph.deps[i].iter().all(|d| outputs.contains_key(d)))
                        .collect();
                    ready.sort_by_key(|i| position[i]);
                    for i in ready {
                        pending.remove(&i);
                        running.insert(i);
                        let deps: HashMap<usize, Digest> = self.graph.deps[i]
                            .iter()
                            .map(|d| (*d, outputs[d]))
                            .collect();
                        let _ = work_tx.send((i, deps));
                    }
                }
                if running.is_empty() {
                    break;
                }
                let Ok((i, result)) = done_rx.recv() else {
                    break;
                };
                running.remove(&i);
                let s = &self.pipeline.stages[i];
                match result {
                    Ok((outcome, entry)) => {
                        if let Some(o) = outcome.output {
                            outputs.insert(i, o);
                        }
                        if let Some(e) = entry {
                            lockfile.stages.insert(s.name.clone(), e);
                            lockfile.save(&lf_path)?;
                        }
                        progress.finished(&outcome);
                        outcomes.insert(i, outcome);
                    }
                    Err(e) => {
                        failed = true;
                        let outcome = StageOutcome {
                            stage: s.name.clone(),
                            action: Action::Failed,
                            key: None,
                            output: None,
                            seconds: 0.0,
                            reasons: vec![],
                            bad_param: matches!(e, DagError::BadParam { .. }),
                            error: Some(e.to_string()),
                        };
                        progress.finished(&outcome);
                        outcomes.insert(i, outcome);
                    }
                }
            }
            drop(work_tx);
            Ok(())
        })?;
        for i in pending {
            outcomes.insert(
                i,
                StageOutcome {
                    stage: self.pipeline.stages[i].name.clone(),
                    action: Action::Skipped,
                    key: None,
                    output: None,
                    seconds: 0.0,
                    reasons: vec![],
                    error: None,
                    bad_param: false,
                },
            );
        }
        if lockfile != old_lock {
            lockfile.save(&lf_path)?;
        }
        self.log_cache_stats("run");
        let _ = self.cache.save();
        let mut stages: Vec<StageOutcome> = outcomes.into_values().collect();
        stages.sort_by_key(|o| {
            self.graph
                .index_of(&o.stage)
                .map(|i| position[&i])
                .unwrap_or(usize::MAX)
        });
        Ok(RunReport {
            stages,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Bring one stage up to date (on a worker thread).
    fn process(
        &self,
        i: usize,
        deps: &HashMap<usize, Digest>,
        old_lock: &Lockfile,
        forced: bool,
        with: Drivers<'_>,
    ) -> Result<(StageOutcome, Option<LockEntry>)> {
        let Drivers {
            executor,
            progress,
            remote,
        } = with;
        let t0 = Instant::now();
        let s = &self.pipeline.stages[i];
        let before = self.resolve(i, deps)?;
        let (mut entry, key) = self.entry_for(i, &before, Digest([0; 32]))?;
        let old = old_lock.stages.get(&s.name);
        if !forced {
            let (status, reasons, output) = self.judge(s, old, &entry, key)?;
            if let (Status::UpToDate | Status::Restorable, Some(out)) = (status, output) {
                if status == Status::Restorable {
                    progress.started(&s.name, "restoring");
                }
                self.publish(s, &out)?;
                entry.output = out;
                let action = if status == Status::UpToDate {
                    Action::UpToDate
                } else {
                    Action::Restored
                };
                let changed = old != Some(&entry);
                return Ok((
                    StageOutcome {
                        stage: s.name.clone(),
                        action,
                        key: Some(key),
                        output: Some(out),
                        seconds: t0.elapsed().as_secs_f64(),
                        reasons,
                        error: None,
                        bad_param: false,
                    },
                    changed.then_some(entry),
                ));
            }
        }
        let reasons = if forced {
            vec![Reason::Forced]
        } else {
            let mut r = Self::diff(old, &entry);
            if r.is_empty()
                && let Some(o) = old
            {
                r.extend(self.output_problem(&o.output));
            }
            r
        };
        if !forced && let Some(remote) = remote {
            match remote.fetch(&key, &s.name) {
                Ok(true) => progress.message(&s.name, "fetched from the remote cache"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("{}: {e}; computing it here", s.name);
                    progress.message(&s.name, &format!("remote cache: {e}; computing it here"));
                }
            }
        }
        // Only one driver computes a key at a time: wait for whoever holds its lease, then
        // take the result they stored instead of computing it again.
        let mut announced = false;
        let _lease = loop {
            if !forced
                && let Some(rec) = self.ws.store.get_run(&key).ok().flatten()
                && self.output_problem(&rec.output).is_none()
            {
                if announced {
                    progress.started(&s.name, "restoring");
                }
                self.publish(s, &rec.output)?;
                entry.output = rec.output;
                let changed = old != Some(&entry);
                return Ok((
                    StageOutcome {
                        stage: s.name.clone(),
                        action: Action::Restored,
                        key: Some(key),
                        output: Some(rec.output),
                        seconds: t0.elapsed().as_secs_f64(),
                        reasons: vec![Reason::CachedResult {
                            finished_unix: rec.finished_unix,
                        }],
                        error: None,
                        bad_param: false,
                    },
                    changed.then_some(entry),
                ));
            }
            match Lease::try_acquire(self.ws.store.root(), &key, "ventral run", LEASE_TTL)? {
                Ok(l) => {
                    // The holder may have finished between our look and our taking it
                    // (a record whose output is damaged is no result: compute it again).
                    if !forced
                        && self
                            .ws
                            .store
                            .get_run(&key)
                            .ok()
                            .flatten()
                            .is_some_and(|rec| self.output_problem(&rec.output).is_none())
                    {
                        drop(l);
                        continue;
                    }
                    break l;
                }
                Err(holder) => {
                    if !announced {
                        progress.message(&s.name, &format!("being computed by {holder}: waiting"));
                        tracing::info!(
                            "{}: key {key} is being computed by {holder}; waiting",
                            s.name
                        );
                        announced = true;
                    }
                    std::thread::sleep(LEASE_POLL);
                }
            }
        };
        progress.started(&s.name, "running");
        let job = Job {
            key,
            stage: s.name.clone(),
            kind: s.kind.clone(),
            params: s.params.clone(),
            inputs: before.paths.clone(),
            workspace: self.ws.root.clone(),
            code: entry.code.clone(),
            runtime: entry.runtime.clone(),
            resources: s.resources.clone(),
        };
        let job_json =
            serde_json::to_vec_pretty(&job).map_err(|e| DagError::Other(e.to_string()))?;
        ventral_cas::atomic_write(&self.ws.store.job_path(&key), &job_json)?;
        let name = s.name.clone();
        let report = move |m: &str| progress.message(&name, m);
        let Executed {
            output,
            peak_rss_bytes,
        } = executor.execute(&job, &report)?;
        // The inputs must be what they were when the stage started.
        let after = self.resolve(i, deps)?;
        for (k, list) in &after.digests {
            if before.digests.get(k) != Some(list) {
                return Err(DagError::InputChanged {
                    stage: s.name.clone(),
                    input: k.clone(),
                });
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let record = RunRecord {
            key,
            stage: s.name.clone(),
            kind: s.kind.clone(),
            output,
            duration_s: seconds,
            finished_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            host: ventral_cas::hostname(),
            peak_rss_bytes,
        };
        self.ws.store.put_run(&record)?;
        if let Some(remote) = remote
            && let Err(e) = remote.offer(&record)
        {
            tracing::warn!("{}: uploading to the remote cache: {e}", s.name);
            progress.message(&s.name, &format!("not uploaded to the remote cache: {e}"));
        }
        let _ = std::fs::remove_file(self.ws.store.job_path(&key));
        let _ = std::fs::remove_file(self.ws.store.job_result_path(&key));
        self.publish(s, &output)?;
        entry.output = output;
        Ok((
            StageOutcome {
                stage: s.name.clone(),
                action: Action::Ran,
                key: Some(key),
                output: Some(output),
                seconds,
                reasons,
                error: None,
                bad_param: false,
            },
            Some(entry),
        ))
    }
}

fn describe_input_change(old: &[LockInput], new: &[LockInput]) -> String {
    let key = |i: &LockInput| (i.source.clone(), i.member.clone());
    let old_map: BTreeMap<_, _> = old.iter().map(|i| (key(i), i.digest)).collect();
    let new_map: BTreeMap<_, _> = new.iter().map(|i| (key(i), i.digest)).collect();
    let mut parts = Vec::new();
    for (k, d) in &new_map {
        let label = k.1.clone().unwrap_or_else(|| k.0.clone());
        match old_map.get(k) {
            None => parts.push(format!("{label} added")),
            Some(o) if o != d => parts.push(format!("{label} content changed")),
            _ => {}
        }
    }
    for k in old_map.keys().filter(|k| !new_map.contains_key(*k)) {
        parts.push(format!(
            "{} removed",
            k.1.clone().unwrap_or_else(|| k.0.clone())
        ));
    }
    if parts.is_empty() {
        "order changed".into()
    } else {
        parts.join(", ")
    }
}

/// `target` relative to `base`, when both are absolute.
fn relative_to(target: &Path, base: &Path) -> Option<PathBuf> {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut p = PathBuf::new();
    for _ in common..b.len() {
        p.push("..");
    }
    for c in &t[common..] {
        p.push(c);
    }
    Some(p)
}
