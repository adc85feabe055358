//! The Slurm executor: `sbatch` job arrays of `ventral exec-stage KEY`.
//!
//! The engine calls [`SlurmExecutor::execute`] from its worker threads, one call per ready
//! stage, after writing the stage's job under the store. Calls that arrive together are
//! gathered for a moment and submitted as one job array per distinct resource request
//! (`--array=0-N%K`, K = `max_jobs`); each task looks up its key in the script and runs
//! `ventral exec-stage KEY` on its node. The calls then wait.
//!
//! **Completion is decided by the store**: a task is done when the node has written the
//! job's result (`jobs/KEY.result.json`) and the output tree it names is present and
//! healthy. `squeue` (all states, arrays expanded) is only asked, every `poll_seconds`, which
//! tasks ended without a result: a node failure, preemption or boot failure is resubmitted
//! up to `retries` times; anything else (the stage failed, `scancel`, time or memory limit)
//! fails the stage with Slurm's state and the last lines of the task's log. `sacct` is
//! asked about tasks `squeue` no longer knows, when it exists; it is never required.
//!
//! Every submitted task is recorded under the store (`slurm/KEY.json`: job id, attempt,
//! log). A driver that dies leaves its tasks running; the next driver that needs the same
//! key finds the record, sees the task still queued or running, and waits for it instead
//! of submitting it again (or takes its result, if it finished meanwhile). A driver that
//! receives SIGINT, SIGTERM or SIGHUP ([`crate::interrupt`]) cancels what it submitted.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use ventral_cas::{Digest, Store};
use ventral_dag::{DagError, Executed, Executor, Job, Resources};

use crate::config::ExecutorConfig;
use crate::{ClusterError, Result, interrupt};

/// How often the background thread wakes.
const TICK: Duration = Duration::from_millis(50);
/// How often results are looked for (a `stat` per task in flight).
const RESULT_EVERY: Duration = Duration::from_millis(250);
/// Calls arriving within this of each other go out in one array…
const GATHER_QUIET: Duration = Duration::from_millis(300);
/// …but none waits longer than this to be submitted.
const GATHER_MAX: Duration = Duration::from_secs(3);
/// Slurm's default `MaxArraySize` is 1001: indices 0..=1000.
const MAX_ARRAY: usize = 1000;
/// Lines of a failed task's log shown in the error.
const LOG_TAIL: usize = 20;

/// What the driver keeps for a task it submitted: `<store>/slurm/KEY.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The stage key.
    pub key: Digest,
    /// The stage.
    pub stage: String,
    /// Slurm's id of the task (`ARRAY_TASK`).
    pub job_id: String,
    /// 1 for the first submission, 2 after one resubmission…
    pub attempt: u32,
    /// When it was submitted (seconds since the epoch).
    pub submitted_unix: u64,
    /// The driver's host.
    pub host: String,
    /// The task's Slurm log (stdout and stderr of `exec-stage`).
    pub log: PathBuf,
}

/// Where the records of submitted tasks are kept.
pub fn records_dir(store: &Store) -> PathBuf {
    store.root().join("slurm")
}

fn record_path(store: &Store, key: &Digest) -> PathBuf {
    records_dir(store).join(format!("{key}.json"))
}

/// Where the tasks' Slurm logs go.
pub fn logs_dir(store: &Store) -> PathBuf {
    store.root().join("logs").join("slurm")
}

/// Every task record under the store (unreadable ones are skipped with a warning).
pub fn list_records(store: &Store) -> Vec<JobRecord> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir(records_dir(store)) else {
        return v;
    };
    for e in dir.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<JobRecord>(&b).ok())
        {
            Some(r) => v.push(r),
            None => tracing::warn!("{}: not a Slurm task record; ignored", p.display()),
        }
    }
    v.sort_by(|a, b| a.stage.cmp(&b.stage));
    v
}

fn read_record(store: &Store, key: &Digest) -> Option<JobRecord> {
    let b = std::fs::read(record_path(store, key)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// The output digest a node recorded for `key`, if that output is in the store and healthy.
pub fn finished_output(store: &Store, key: &Digest) -> Option<Digest> {
    #[derive(Deserialize)]
    struct Result {
        key: Digest,
        output: Digest,
    }
    let b = std::fs::read(store.job_result_path(key)).ok()?;
    let r: Result = serde_json::from_slice(&b).ok()?;
    (r.key == *key && store.check_tree(&r.output).is_empty()).then_some(r.output)
}

/// The peak memory the node's `exec-stage` measured for `key` (its `KEY.result.json`).
pub fn result_peak(store: &Store, key: &Digest) -> Option<u64> {
    #[derive(Deserialize)]
    struct Result {
        peak_rss_bytes: Option<u64>,
    }
    let b = std::fs::read(store.job_result_path(key)).ok()?;
    serde_json::from_slice::<Result>(&b).ok()?.peak_rss_bytes
}

/// How Slurm's state of a task reads for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateClass {
    /// Queued or running: wait.
    Active,
    /// Ended, but lost to the machine (node failure, preemption, boot failure): may be
    /// resubmitted.
    Lost,
    /// Ended otherwise.
    Ended,
}

/// Classify a Slurm job state (`squeue -o %T`, `sacct -o State`; `CANCELLED by 0` too).
pub fn classify(state: &str) -> StateClass {
    let s = state.split_whitespace().next().unwrap_or("");
    match s {
        "PENDING" | "RUNNING" | "SUSPENDED" | "COMPLETING" | "CONFIGURING" | "REQUEUED"
        | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESIZING" | "SIGNALING" | "STAGE_OUT" | "STOPPED"
        | "SPECIAL_EXIT" | "RESV_DEL_HOLD" | "POWER_UP_NODE" => StateClass::Active,
        "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" => StateClass::Lost,
        _ => StateClass::Ended,
    }
}

/// What a job asks of Slurm: its stage's `resources`, with one GPU added when the stage
/// names no `gpus` and its declared runtime is on CUDA (a model stage whose `device` is
/// `cuda`, or `auto` resolved to it): a stage keyed for a GPU must land on one, since the
/// node verifies the runtime.
pub fn effective_resources(job: &Job) -> Resources {
    let mut r = job.resources.clone();
    let on_cuda = job.runtime.as_deref().is_some_and(|rt| {
        rt.split_whitespace()
            .any(|w| w == "device=cuda" || w.starts_with("device=cuda:"))
    });
    if r.gpus.is_none() && on_cuda {
        r.gpus = Some(1);
    }
    r
}

/// The `sbatch` flags of a resource request under a config.
pub fn sbatch_flags(cfg: &ExecutorConfig, r: &Resources) -> Vec<String> {
    let gpus = r.gpus.unwrap_or(0);
    let partition = r
        .partition
        .clone()
        .or_else(|| (gpus > 0).then(|| cfg.gpu_partition.clone()).flatten())
        .or_else(|| cfg.partition.clone());
    let mut f = Vec::new();
    if let Some(p) = partition {
        f.push(format!("--partition={p}"));
    }
    if let Some(c) = r.cpus {
        f.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &r.mem {
        f.push(format!("--mem={m}"));
    }
    if gpus > 0 {
        f.push(format!("--gres=gpu:{gpus}"));
    }
    if let Some(t) = &r.time {
        f.push(format!("--time={t}"));
    }
    if let Some(a) = &cfg.account {
        f.push(format!("--account={a}"));
    }
    if let Some(q) = &cfg.qos {
        f.push(format!("--qos={q}"));
    }
    f.extend(cfg.sbatch_args.iter().cloned());
    f
}

fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script of an array: task `i` runs `command exec-stage keys[i]`.
pub fn array_script(command: &[OsString], tasks: &[(Digest, String)]) -> String {
    let mut s =
        String::from("#!/bin/sh\n# Written by ventral: one pipeline stage per array task.\n");
    s.push_str("case \"${SLURM_ARRAY_TASK_ID}\" in\n");
    for (i, (key, stage)) in tasks.iter().enumerate() {
        // Stage names are checked identifiers, but keep them out of the shell anyway.
        let label: String = stage
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect();
        s.push_str(&format!("  {i}) key={key} ;;  # {label}\n"));
    }
    s.push_str(
        "  *) echo \"ventral: no stage for array task ${SLURM_ARRAY_TASK_ID}\" >&2; exit 3 ;;\nesac\n",
    );
    s.push_str("exec");
    for a in command {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s.push_str(" exec-stage \"$key\"\n");
    s
}

/// Parse `squeue -h -r -o '%i|%T|%r'` lines into task id → state (with the reason when
/// Slurm gives one, e.g. `PENDING (Resources)`).
pub fn parse_squeue(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let mut it = l.trim().split('|');
            let id = it.next()?.trim();
            let state = it.next()?.trim();
            if id.is_empty() || state.is_empty() {
                return None;
            }
            let reason = it.next().map(str::trim).unwrap_or("");
            let s = if reason.is_empty() || reason == "None" {
                state.to_string()
            } else {
                format!("{state} ({reason})")
            };
            Some((id.to_string(), s))
        })
        .collect()
}

fn run_cmd(program: &str, args: &[String], stdin: Option<&str>) -> Result<String> {
    let line = || format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ClusterError::Command {
            command: line(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` is not on PATH (is this a Slurm login node?)")
            } else {
                e.to_string()
            },
        })?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(text.as_bytes())
            .map_err(|e| ClusterError::Command {
                command: line(),
                message: format!("writing its input: {e}"),
            })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ClusterError::Command {
            command: line(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ClusterError::Command {
            command: line(),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Slurm's state of each task in `ids` (`ARRAY_TASK` ids), from `squeue` (every state, so
/// that recently ended tasks show how they ended). Tasks Slurm no longer knows are absent.
pub fn query_states(ids: &[String]) -> Result<HashMap<String, String>> {
    let mut arrays: Vec<String> = ids
        .iter()
        .map(|i| i.split('_').next().unwrap_or(i).to_string())
        .collect();
    arrays.sort();
    arrays.dedup();
    if arrays.is_empty() {
        return Ok(HashMap::new());
    }
    let args = |jobs: &str| {
        vec![
            "-h".to_string(),
            "-r".to_string(),
            "-t".to_string(),
            "all".to_string(),
            "-o".to_string(),
            "%i|%T|%r".to_string(),
            "-j".to_string(),
            jobs.to_string(),
        ]
    };
    match run_cmd("squeue", &args(&arrays.join(",")), None) {
        Ok(out) => Ok(parse_squeue(&out)),
        // One purged id makes squeue refuse the whole list: ask per array.
        Err(e) if arrays.len() > 1 => {
            tracing::debug!("{e}; asking per job");
            let mut all = HashMap::new();
            for a in &arrays {
                if let Ok(out) = run_cmd("squeue", &args(a), None) {
                    all.extend(parse_squeue(&out));
                }
            }
            Ok(all)
        }
        Err(ClusterError::Command { message, .. }) if message.contains("Invalid job id") => {
            Ok(HashMap::new())
        }
        Err(e) => Err(e),
    }
}

/// How a task Slurm's queue no longer lists ended, from `sacct` when it is installed and
/// answers (it needs `slurmdbd`).
fn sacct_state(id: &str) -> Option<String> {
    let out = run_cmd(
        "sacct",
        &[
            "-n".into(),
            "-P".into(),
            "-X".into(),
            "-o".into(),
            "State".into(),
            "-j".into(),
            id.into(),
        ],
        None,
    )
    .ok()?;
    out.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            if lines.is_empty() {
                format!("{} is empty", path.display())
            } else {
                format!(
                    "last lines of {}:\n{}",
                    path.display(),
                    lines[start..].join("\n")
                )
            }
        }
        Err(e) => format!("no log at {}: {e}", path.display()),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

enum Phase {
    Queued,
    Submitted {
        job_id: String,
        log: PathBuf,
        running: bool,
    },
    Done(std::result::Result<Digest, String>),
}

struct Entry {
    stage: String,
    resources: Resources,
    attempts: u32,
    phase: Phase,
    notes: Vec<String>,
    waiters: usize,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    queue: Vec<Digest>,
    first_queued: Option<Instant>,
    last_queued: Option<Instant>,
    shutdown: bool,
    cancelled: Option<String>,
}

struct Shared {
    cfg: ExecutorConfig,
    store: Store,
    command: Vec<OsString>,
    state: Mutex<State>,
    cond: Condvar,
}

/// Runs jobs as Slurm array tasks (see the module docs).
pub struct SlurmExecutor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SlurmExecutor {
    /// An executor submitting `command… exec-stage KEY` (the `ventral` binary and the
    /// global options that open this workspace and store on a node) under `cfg`. Fails,
    /// naming the command, when `sbatch` cannot be run.
    pub fn new(cfg: ExecutorConfig, store: Store, command: Vec<OsString>) -> Result<SlurmExecutor> {
        run_cmd("sbatch", &["--version".to_string()], None)?;
        for dir in [records_dir(&store), logs_dir(&store)] {
            std::fs::create_dir_all(&dir).map_err(|source| ClusterError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let shared = Arc::new(Shared {
            cfg,
            store,
            command,
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
        });
        let bg = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("slurm-executor".into())
            .spawn(move || bg.background())
            .map_err(|e| ClusterError::Command {
                command: "slurm-executor thread".into(),
                message: e.to_string(),
            })?;
        Ok(SlurmExecutor {
            shared,
            thread: Some(thread),
        })
    }

    /// Cancel every task this executor submitted or adopted (`scancel`), failing their
    /// stages with `reason`. Also what a signal does.
    pub fn cancel_all(&self, reason: &str) {
        self.shared.cancel_all(reason);
    }
}

impl Drop for SlurmExecutor {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Executor for SlurmExecutor {
    fn execute(
        &self,
        job: &Job,
        progress: &(dyn Fn(&str) + Sync),
    ) -> ventral_dag::Result<Executed> {
        let sh = &self.shared;
        let key = job.key;
        let fail = |message: String| DagError::StageFailed {
            stage: job.stage.clone(),
            message,
        };
        let executed = |output: Digest| Executed {
            output,
            peak_rss_bytes: result_peak(&sh.store, &key),
        };
        if let Some(d) = finished_output(&sh.store, &key) {
            progress("its result is already in the store (a task of an earlier driver)");
            return Ok(executed(d));
        }
        let adopted = sh.adoptable(&key);
        {
            let mut st = sh.lock();
            if let Some(reason) = &st.cancelled {
                return Err(fail(reason.clone()));
            }
            if let Some(e) = st.entries.get_mut(&key) {
                // Another stage with the very same key is in flight: wait for it.
                e.waiters += 1;
            } else {
                let (phase, attempts, note) = match adopted {
                    Some(rec) => {
                        let note = format!(
                            "adopted Slurm job {} (submitted by a driver on {} that is gone)",
                            rec.job_id, rec.host
                        );
                        (
                            Phase::Submitted {
                                job_id: rec.job_id,
                                log: rec.log,
                                running: false,
                            },
                            rec.attempt,
                            note,
                        )
                    }
                    None => {
                        let now = Instant::now();
                        st.queue.push(key);
                        st.first_queued.get_or_insert(now);
                        st.last_queued = Some(now);
                        (Phase::Queued, 0, "waiting to be submitted to Slurm".into())
                    }
                };
                st.entries.insert(
                    key,
                    Entry {
                        stage: job.stage.clone(),
                        resources: effective_resources(job),
                        attempts,
                        phase,
                        notes: vec![note],
                        waiters: 1,
                    },
                );
            }
        }
        sh.cond.notify_all();
        let mut st = sh.lock();
        loop {
            let Some(e) = st.entries.get_mut(&key) else {
                return Err(fail("lost track of its Slurm task".into()));
            };
            let notes = std::mem::take(&mut e.notes);
            if let Phase::Done(r) = &e.phase {
                let r = r.clone();
                e.waiters -= 1;
                if e.waiters == 0 {
                    st.entries.remove(&key);
                }
                drop(st);
                for n in &notes {
                    progress(n);
                }
                return r.map(executed).map_err(fail);
            }
            if !notes.is_empty() {
                drop(st);
                for n in &notes {
                    progress(n);
                }
                st = sh.lock();
                continue;
            }
            st = match sh.cond.wait_timeout(st, Duration::from_secs(1)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record of an earlier driver's task for `key`, when that task is still queued or
    /// running (or Slurm cannot be asked: better to wait than to submit twice).
    fn adoptable(&self, key: &Digest) -> Option<JobRecord> {
        let rec = read_record(&self.store, key)?;
        match query_states(std::slice::from_ref(&rec.job_id)) {
            Ok(states) => match states.get(&rec.job_id).map(|s| classify(s)) {
                Some(StateClass::Active) => Some(rec),
                _ => {
                    let _ = std::fs::remove_file(record_path(&self.store, key));
                    None
                }
            },
            Err(e) => {
                tracing::warn!("{e}; waiting for the recorded task {}", rec.job_id);
                Some(rec)
            }
        }
    }

    fn background(self: Arc<Self>) {
        let poll = Duration::from_secs_f64(self.cfg.poll_seconds);
        let mut last_poll = Instant::now();
        let mut last_results = Instant::now();
        loop {
            std::thread::sleep(TICK);
            if let Some(sig) = interrupt::received()
                && self.lock().cancelled.is_none()
            {
                self.cancel_all(&format!(
                    "the driver received signal {sig}: its Slurm tasks were cancelled"
                ));
            }
            if self.lock().shutdown {
                break;
            }
            let batch = self.take_batch();
            if !batch.is_empty() {
                self.submit(batch);
            }
            if last_results.elapsed() >= RESULT_EVERY {
                self.collect_results();
                last_results = Instant::now();
            }
            if last_poll.elapsed() >= poll {
                self.poll_queue();
                last_poll = Instant::now();
            }
        }
    }

    fn take_batch(&self) -> Vec<Digest> {
        let mut st = self.lock();
        let due = match (st.first_queued, st.last_queued) {
            (Some(f), Some(l)) => l.elapsed() >= GATHER_QUIET || f.elapsed() >= GATHER_MAX,
            _ => false,
        };
        if !due || st.cancelled.is_some() {
            return Vec::new();
        }
        st.first_queued = None;
        st.last_queued = None;
        std::mem::take(&mut st.queue)
    }

    fn finish(&self, st: &mut State, key: &Digest, r: std::result::Result<Digest, String>) {
        if let Some(e) = st.entries.get_mut(key) {
            e.phase = Phase::Done(r);
        }
        let _ = std::fs::remove_file(record_path(&self.store, key));
    }

    fn submit(&self, batch: Vec<Digest>) {
        // Group by what is asked of the machine: one array per distinct set of flags.
        let mut groups: BTreeMap<Vec<String>, Vec<(Digest, String)>> = BTreeMap::new();
        {
            let st = self.lock();
            for key in batch {
                if let Some(e) = st.entries.get(&key) {
                    groups
                        .entry(sbatch_flags(&self.cfg, &e.resources))
                        .or_default()
                        .push((key, e.stage.clone()));
                }
            }
        }
        for (flags, tasks) in groups {
            for chunk in tasks.chunks(MAX_ARRAY) {
                for (key, _) in chunk {
                    // A result whose output is gone (collected) must not be taken later.
                    let _ = std::fs::remove_file(self.store.job_result_path(key));
                }
                let outcome = self.sbatch(&flags, chunk);
                let mut st = self.lock();
                match outcome {
                    Ok(array) => {
                        for (i, (key, stage)) in chunk.iter().enumerate() {
                            let job_id = format!("{array}_{i}");
                            let log = logs_dir(&self.store).join(format!("{job_id}.out"));
                            let Some(e) = st.entries.get_mut(key) else {
                                continue;
                            };
                            e.attempts += 1;
                            let rec = JobRecord {
                                key: *key,
                                stage: stage.clone(),
                                job_id: job_id.clone(),
                                attempt: e.attempts,
                                submitted_unix: now_unix(),
                                host: ventral_cas::hostname(),
                                log: log.clone(),
                            };
                            if let Ok(json) = serde_json::to_vec_pretty(&rec)
                                && let Err(err) =
                                    ventral_cas::atomic_write(&record_path(&self.store, key), &json)
                            {
                                tracing::warn!("recording Slurm task {job_id}: {err}");
                            }
                            e.notes.push(format!("submitted as Slurm job {job_id}"));
                            e.phase = Phase::Submitted {
                                job_id,
                                log,
                                running: false,
                            };
                        }
                    }
                    Err(err) => {
                        for (key, _) in chunk {
                            self.finish(&mut st, key, Err(format!("submitting to Slurm: {err}")));
                        }
                    }
                }
                drop(st);
                self.cond.notify_all();
            }
        }
    }

    fn sbatch(&self, flags: &[String], tasks: &[(Digest, String)]) -> Result<String> {
        let log = logs_dir(&self.store).join("%A_%a.out");
        let mut args = vec![
            "--parsable".to_string(),
            "--job-name=ventral".to_string(),
            format!("--output={}", log.display()),
            format!(
                "--array=0-{}%{}",
                tasks.len() - 1,
                self.cfg.max_jobs.min(tasks.len())
            ),
        ];
        args.extend(flags.iter().cloned());
        let script = array_script(&self.command, tasks);
        let out = run_cmd("sbatch", &args, Some(&script))?;
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = out
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ClusterError::Command {
                command: format!("sbatch {}", args.join(" ")),
                message: format!("unexpected answer `{}`", out.trim()),
            });
        }
        Ok(id)
    }

    fn submitted(&self) -> Vec<(Digest, String, PathBuf)> {
        self.lock()
            .entries
            .iter()
            .filter_map(|(k, e)| match &e.phase {
                Phase::Submitted { job_id, log, .. } => Some((*k, job_id.clone(), log.clone())),
                _ => None,
            })
            .collect()
    }

    fn collect_results(&self) {
        let subs = self.submitted();
        let done: Vec<(Digest, Digest)> = subs
            .iter()
            .filter_map(|(k, _, _)| finished_output(&self.store, k).map(|d| (*k, d)))
            .collect();
        if done.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (k, d) in done {
            self.finish(&mut st, &k, Ok(d));
        }
        drop(st);
        self.cond.notify_all();
    }

    fn poll_queue(&self) {
        let subs = self.submitted();
        if subs.is_empty() {
            return;
        }
        let ids: Vec<String> = subs.iter().map(|(_, id, _)| id.clone()).collect();
        let states = match query_states(&ids) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("asking Slurm about tasks in flight: {e}");
                return;
            }
        };
        for (key, id, log) in subs {
            let state = states.get(&id).cloned();
            if let Some(s) = &state
                && classify(s) == StateClass::Active
            {
                let mut st = self.lock();
                if let Some(e) = st.entries.get_mut(&key)
                    && let Phase::Submitted { running, .. } = &mut e.phase
                    && !*running
                    && s.starts_with("RUNNING")
                {
                    *running = true;
                    e.notes.push(format!("running as Slurm job {id}"));
                }
                continue;
            }
            // Ended, or gone from the queue: the store decides whether it succeeded.
            if let Some(d) = finished_output(&self.store, &key) {
                let mut st = self.lock();
                self.finish(&mut st, &key, Ok(d));
                continue;
            }
            let state = state
                .or_else(|| sacct_state(&id))
                .unwrap_or_else(|| "(no longer known to Slurm)".to_string());
            let mut st = self.lock();
            let retries = self.cfg.retries;
            let Some(e) = st.entries.get_mut(&key) else {
                continue;
            };
            if classify(&state) == StateClass::Lost && e.attempts <= retries {
                e.notes.push(format!(
                    "Slurm job {id} ended {state}: resubmitting (attempt {} of {})",
                    e.attempts + 1,
                    retries + 1
                ));
                e.phase = Phase::Queued;
                let now = Instant::now();
                st.queue.push(key);
                st.first_queued.get_or_insert(now);
                st.last_queued = Some(now);
                continue;
            }
            let msg = format!(
                "Slurm job {id} ended {state} without a result; {}",
                log_tail(&log, LOG_TAIL)
            );
            self.finish(&mut st, &key, Err(msg));
        }
        self.cond.notify_all();
    }

    fn cancel_all(&self, reason: &str) {
        let mut st = self.lock();
        st.cancelled = Some(reason.to_string());
        let ids: Vec<String> = st
            .entries
            .values()
            .filter_map(|e| match &e.phase {
                Phase::Submitted { job_id, .. } => Some(job_id.clone()),
                _ => None,
            })
            .collect();
        if !ids.is_empty()
            && let Err(e) = run_cmd("scancel", &ids, None)
        {
            tracing::warn!("cancelling {}: {e}", ids.join(" "));
        }
        let keys: Vec<Digest> = st
            .entries
            .iter()
            .filter(|(_, e)| !matches!(e.phase, Phase::Done(_)))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.finish(&mut st, &k, Err(reason.to_string()));
        }
        st.queue.clear();
        drop(st);
        self.cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_stage_then_the_config() {
        let cfg = ExecutorConfig {
            partition: Some("cpu".into()),
            gpu_partition: Some("gpu".into()),
            account: Some("lab".into()),
            sbatch_args: vec!["--constraint=x".into()],
            ..ExecutorConfig::default()
        };
        let none = sbatch_flags(&cfg, &Resources::default());
        assert_eq!(none, ["--partition=cpu", "--account=lab", "--constraint=x"]);
        let gpu = Resources {
            gpus: Some(2),
            mem: Some("16G".into()),
            time: Some("2:00:00".into()),
            cpus: Some(4),
            partition: None,
        };
        assert_eq!(
            sbatch_flags(&cfg, &gpu),
            [
                "--partition=gpu",
                "--cpus-per-task=4",
                "--mem=16G",
                "--gres=gpu:2",
                "--time=2:00:00",
                "--account=lab",
                "--constraint=x"
            ]
        );
        let own = Resources {
            partition: Some("big".into()),
            ..gpu
        };
        assert_eq!(sbatch_flags(&cfg, &own)[0], "--partition=big");
    }

    #[test]
    fn stages_keyed_for_cuda_ask_for_a_gpu() {
        let mut job = Job {
            key: ventral_cas::hash_bytes(b"k"),
            stage: "train".into(),
            kind: "train".into(),
            params: Default::default(),
            inputs: Default::default(),
            workspace: PathBuf::from("/w"),
            code: String::new(),
            runtime: Some("libtorch=2.11.0+cu130 device=cpu cpu=avx512".into()),
            resources: Resources::default(),
        };
        assert_eq!(effective_resources(&job).gpus, None);
        job.runtime = Some("libtorch=2.11.0+cu130 device=cuda cudnn=91000".into());
        assert_eq!(effective_resources(&job).gpus, Some(1));
        job.resources.gpus = Some(4);
        assert_eq!(effective_resources(&job).gpus, Some(4));
        job.runtime = None;
        job.resources.gpus = None;
        assert_eq!(effective_resources(&job).gpus, None);
    }

    #[test]
    fn script_maps_each_task_to_its_key_and_quotes_paths() {
        let k1 = ventral_cas::hash_bytes(b"a");
        let k2 = ventral_cas::hash_bytes(b"b");
        let cmd: Vec<OsString> = vec!["/opt/ven tral".into(), "--store".into(), "/s/it's".into()];
        let s = array_script(&cmd, &[(k1, "a".into()), (k2, "b@x".into())]);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(&format!("  0) key={k1} ;;  # a\n")));
        assert!(s.contains(&format!("  1) key={k2} ;;  # b@x\n")));
        assert!(
            s.ends_with("exec '/opt/ven tral' '--store' '/s/it'\\''s' exec-stage \"$key\"\n"),
            "{s}"
        );
    }

    #[test]
    fn squeue_lines_and_states() {
        let m = parse_squeue("12_0|COMPLETED|None\n12_1|PENDING|Resources\n\n13_0|CANCELLED|\n");
        assert_eq!(m["12_0"], "COMPLETED");
        assert_eq!(m["12_1"], "PENDING (Resources)");
        assert_eq!(m["13_0"], "CANCELLED");
        assert_eq!(classify(&m["12_1"]), StateClass::Active);
        assert_eq!(classify("RUNNING"), StateClass::Active);
        assert_eq!(classify("NODE_FAIL"), StateClass::Lost);
        assert_eq!(classify("PREEMPTED"), StateClass::Lost);
        assert_eq!(classify("CANCELLED by 0"), StateClass::Ended);
        assert_eq!(classify("OUT_OF_MEMORY"), StateClass::Ended);
        assert_eq!(classify("TIMEOUT"), StateClass::Ended);
    }

    #[test]
    fn results_count_only_with_their_output() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::at(d.path());
        store.ensure().unwrap();
        let key = ventral_cas::hash_bytes(b"k");
        assert_eq!(finished_output(&store, &key), None);
        let tmp = store.new_tmp_dir("t").unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let out = store.put_dir(tmp).unwrap();
        let res = store.job_result_path(&key);
        std::fs::create_dir_all(res.parent().unwrap()).unwrap();
        std::fs::write(
            &res,
            format!(r#"{{"key":"{key}","stage":"s","output":"{out}"}}"#),
        )
        .unwrap();
        assert_eq!(finished_output(&store, &key), Some(out));
        // A result for another key is not this one's.
        let other = ventral_cas::hash_bytes(b"other");
        std::fs::write(store.job_result_path(&other), std::fs::read(&res).unwrap()).unwrap();
        assert_eq!(finished_output(&store, &other), None);
        // An output that is gone is no result.
        let bogus = ventral_cas::hash_bytes(b"gone");
        std::fs::write(
            &res,
            format!(r#"{{"key":"{key}","stage":"s","output":"{bogus}"}}"#),
        )
        .unwrap();
        assert_eq!(finished_output(&store, &key), None);
    }
}
