//! The reliability campaign: faults injected into a small pipeline of every heavy kind
//! (synth → brainio → imagenet → train → extract → neural → report) — a full disk at the
//! write points of each stage, SIGKILL at random points of each, the Slurm executor's
//! driver, jobs and tasks killed at random points of each, damaged objects and lockfiles, a
//! read-only store, and concurrent runs, gc, verify and SQL readers.
//!
//! `make test` runs a smoke subset (a few cases of each class). `make faults` runs the whole
//! campaign (`VENTRAL_FAULTS=full`), and every test appends its tally (cases, handled
//! cleanly, what was checked) as a JSON line to `$VENTRAL_FAULTS_LOG`, from which
//! `tools/reliability.py` writes the tables of RELIABILITY.md. A case that is not handled
//! cleanly fails the test, after the tally is written.

mod common;

use common::Ws;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ventral_testkit::campaign::{Lcg, Tally, full};
use ventral_testkit::slurm::Cluster;

/// Every heavy kind once, at a size that runs in seconds.
const PIPELINE: &str = include_str!("common/small_pipeline.toml");

/// The stages in an order that runs each after its inputs, with their kinds.
const STAGES: [(&str, &str); 7] = [
    ("world", "synth"),
    ("recordings", "brainio"),
    ("index", "imagenet"),
    ("train", "train"),
    ("acts", "extract"),
    ("it", "neural"),
    ("report", "report"),
];

fn setup_in(ws: &Ws) {
    ws.write("pipelines/p.toml", PIPELINE);
}

fn new_ws() -> Ws {
    let ws = Ws::new();
    setup_in(&ws);
    ws
}

/// Every stage's output digest, from the lockfile (none when there is no lockfile).
fn outputs(ws: &Ws) -> Result<BTreeMap<String, String>, String> {
    let path = ws.path().join("lockfiles/p.lock");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(BTreeMap::new());
    };
    let lf: toml::Table = toml::from_str(&text).map_err(|e| format!("lockfile: {e}"))?;
    let stages = lf
        .get("stages")
        .and_then(|s| s.as_table())
        .ok_or("lockfile without stages")?;
    stages
        .iter()
        .map(|(k, e)| {
            e.get("output")
                .and_then(|o| o.as_str())
                .map(|o| (k.clone(), o.to_string()))
                .ok_or_else(|| format!("lockfile: stage {k} without output"))
        })
        .collect()
}

/// The reference: an uninterrupted run's outputs.
fn reference() -> BTreeMap<String, String> {
    let ws = new_ws();
    ws.ok(&["run"]);
    let out = outputs(&ws).unwrap();
    assert_eq!(out.len(), STAGES.len());
    out
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// After a fault: the store verifies clean, the lockfile parses and records only outputs
/// equal to the reference's, and `status` works.
fn consistent(ws: &Ws, reference: &BTreeMap<String, String>) -> Result<(), String> {
    let v = ws.run(&["--json", "verify"]);
    if !v.status.success() {
        return Err(format!("verify after the fault: {}", text(&v)));
    }
    for (stage, out) in outputs(ws)? {
        if reference.get(&stage) != Some(&out) {
            return Err(format!(
                "the lockfile records {stage} = {out}, the reference {:?}",
                reference.get(&stage)
            ));
        }
    }
    let s = ws.run(&["status"]);
    if !s.status.success() {
        return Err(format!("status after the fault: {}", text(&s)));
    }
    Ok(())
}

/// Run everything and require the reference's outputs.
fn completes(ws: &Ws, reference: &BTreeMap<String, String>) -> Result<(), String> {
    let o = ws.run(&["run"]);
    if !o.status.success() {
        return Err(format!("the run after the fault failed: {}", text(&o)));
    }
    let got = outputs(ws)?;
    if &got != reference {
        return Err(format!(
            "after the fault the outputs differ from an uninterrupted run's: {got:?}"
        ));
    }
    consistent(ws, reference)
}

fn sh(cmd: &str, args: &[&str]) -> Result<(), String> {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {args:?}: {}", text(&o)))
    }
}

/// Replace `dst`'s contents with `src`'s (permissions, links and times kept).
fn restore(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(dst).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            make_writable(&p);
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    sh(
        "cp",
        &["-a", &format!("{}/.", src.display()), dst.to_str().unwrap()],
    )
    .unwrap();
}

fn make_writable(p: &Path) {
    let _ = Command::new("chmod").args(["-R", "u+w"]).arg(p).status();
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Bytes in use on the file system holding `p`.
fn used(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    (s.f_blocks - s.f_bfree) as u64 * s.f_frsize as u64
}

/// A tmpfs mounted on a fresh folder, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);
impl Tmpfs {
    fn new(size: u64) -> Tmpfs {
        let d = tempfile::tempdir().unwrap();
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                d.path().to_str().unwrap(),
            ],
        )
        .unwrap();
        Tmpfs(d)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn resize(&self, size: u64) -> Result<(), String> {
        sh(
            "mount",
            &[
                "-o",
                &format!("remount,size={size}"),
                self.path().to_str().unwrap(),
            ],
        )
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// A workspace in `dir` (which outlives it).
fn ws_in(dir: &Path) -> Ws {
    let ws = Ws {
        dir: tempfile::Builder::new()
            .prefix("ws")
            .tempdir_in(dir)
            .unwrap(),
        store: None,
    };
    std::fs::create_dir_all(ws.path().join("pipelines")).unwrap();
    setup_in(&ws);
    ws
}

/// A full disk at points spread over the bytes each stage writes: the run fails with "No
/// space" and the path, nothing partial is visible (verify, lockfile), and once space is
/// freed the next run completes with an uninterrupted run's outputs.
#[test]
fn a_full_disk_at_the_write_points_of_every_kind() {
    if !is_root() {
        common::skipped("not root: cannot mount a tmpfs");
        return;
    }
    let reference = reference();
    const ROOMY: u64 = 1 << 30;
    let fs = Tmpfs::new(ROOMY);
    let ws = ws_in(fs.path());
    let snap = tempfile::tempdir().unwrap();
    let points = if full() { 8 } else { 1 };
    let smoke = ["world", "train", "acts"];
    for (i, (stage, kind)) in STAGES.iter().enumerate() {
        if !full() && !smoke.contains(stage) {
            continue;
        }
        let mut t = Tally::new(
            "disk full",
            format!("`{kind}` (stage {stage})"),
            "exit 1 naming the path and \"No space\"; verify clean; no lockfile entry; the next run's outputs equal an uninterrupted run's",
        );
        // The stage's inputs, computed once and kept aside.
        restore(snap.path(), ws.path());
        setup_in(&ws);
        let before: Vec<&str> = STAGES[..i].iter().map(|s| s.0).collect();
        if !before.is_empty() {
            let mut a = vec!["run"];
            a.extend(before);
            ws.ok(&a);
        }
        restore(ws.path(), snap.path());
        let used0 = used(fs.path());
        ws.ok(&["run", stage]);
        let need = used(fs.path()).saturating_sub(used0).max(64 << 10);
        t.notes.push(format!("writes {} KiB", need >> 10));
        for k in 0..points {
            let frac = (k as f64 + 0.5) / points as f64;
            restore(snap.path(), ws.path());
            let size = (used(fs.path()) + (frac * need as f64) as u64).div_ceil(4096) * 4096;
            fs.resize(size).unwrap();
            let o = ws.run(&["run", stage]);
            fs.resize(ROOMY).unwrap();
            t.case(|| {
                let out = text(&o);
                if o.status.success() {
                    // Enough room after all (the stage's peak below its final size).
                    let got = outputs(&ws)?;
                    if got.get(*stage) != reference.get(*stage) {
                        return Err(format!("{stage} completed with other bytes: {got:?}"));
                    }
                } else {
                    if o.status.code() != Some(1) {
                        return Err(format!("exit {:?}: {out}", o.status.code()));
                    }
                    if !out.contains("No space left on device")
                        || !out.contains(&fs.path().display().to_string())
                    {
                        return Err(format!(
                            "the error names neither the path nor \"No space\": {out}"
                        ));
                    }
                    if outputs(&ws)?.contains_key(*stage) {
                        return Err(format!("{stage} is in the lockfile after failing: {out}"));
                    }
                    consistent(&ws, &reference)?;
                }
                completes(&ws, &reference)
                    .map_err(|e| format!("at {:.0} % of {stage}'s bytes: {e}", frac * 100.0))
            });
        }
        t.finish();
    }
}

/// SIGKILL at random points of every kind (through the local and the process executor):
/// after each kill the store verifies clean and the lockfile records nothing wrong; the
/// next run completes with an uninterrupted run's outputs.
#[test]
fn sigkill_at_random_points_of_every_kind() {
    let reference = reference();
    let ws = new_ws();
    ws.ok(&["run"]);
    let kills = if full() { 50 } else { 2 };
    let mut rng = Lcg(0x5eed_f417);
    for (stage, kind) in STAGES {
        let mut t = Tally::new(
            "SIGKILL",
            format!("`{kind}` (stage {stage})"),
            "verify clean and the lockfile right after every kill; the next run's outputs equal an uninterrupted run's",
        );
        // The shortest of three whole runs: a slow one (a busy machine) would put most kill
        // points after the end.
        let whole = (0..3)
            .map(|_| {
                let t0 = Instant::now();
                ws.ok(&["run", "--force", stage]);
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let mut mid = 0;
        for k in 0..kills {
            let delay = rng.next() * whole * 1.1;
            let executor = if k % 2 == 0 { "local" } else { "process" };
            let mut child = ws
                .cmd(&["run", "--force", "--executor", executor, stage])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_secs_f64(delay));
            if child.try_wait().unwrap().is_none() {
                mid += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            t.case(|| {
                consistent(&ws, &reference)
                    .map_err(|e| format!("kill {k} after {delay:.3} s ({executor}): {e}"))
            });
        }
        t.case(|| completes(&ws, &reference));
        t.notes.push(format!(
            "{mid} of {kills} kills found the run still going (a whole run: {whole:.2} s)"
        ));
        t.finish();
    }
}

/// The job ids of the Slurm tasks this workspace's driver has recorded as in flight.
fn slurm_jobs(ws: &Ws) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(ws.path().join(".ventral/slurm"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let v: serde_json::Value = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(id) = v["job_id"].as_str() {
            ids.push(id.to_string());
        }
    }
    ids
}

/// Wait until Slurm runs no job of `ids` any more (at most `limit`).
fn slurm_idle(cluster: &Cluster, ids: &[String], limit: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let mut busy = false;
        for id in ids {
            let o = Command::new("squeue")
                .env("SLURM_CONF", cluster.conf())
                .args(["-h", "-o", "%i", "-j", id])
                .output()
                .map_err(|e| format!("squeue: {e}"))?;
            busy |= !String::from_utf8_lossy(&o.stdout).trim().is_empty();
        }
        if !busy {
            return Ok(());
        }
        if t0.elapsed() > limit {
            return Err(format!("Slurm still runs {ids:?} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Slurm executor under faults, at random points of every kind's stage: the driver
/// SIGKILLed (its task runs on without it and is adopted or found done by the next run), the
/// task's job cancelled (`scancel`), and the task's processes killed on the node
/// (`scancel --signal=KILL --full`, as the OOM killer or a crashing node would). After each
/// fault, once Slurm has finished with the task, the store verifies clean and the lockfile
/// records nothing wrong; the next run through Slurm completes with an uninterrupted run's
/// outputs.
#[test]
fn slurm_faults_at_random_points_of_every_kind() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let reference = reference();
    let ws = new_ws();
    ws.write(
        "ventral.toml",
        "[executor]\nkind = \"slurm\"\npoll_seconds = 0.2\nmax_jobs = 4\n",
    );
    let slurm = |args: &[&str]| {
        let mut c = ws.cmd(args);
        c.env("SLURM_CONF", cluster.conf());
        c
    };
    let o = slurm(&["run"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        outputs(&ws).unwrap(),
        reference,
        "Slurm's run differs from a local one"
    );
    // The smoke subset: one case of each fault on the two stages of the model worker.
    let (stages, per_fault): (Vec<_>, usize) = if full() {
        (STAGES.to_vec(), 4)
    } else {
        (vec![STAGES[3], STAGES[4]], 1)
    };
    let mut rng = Lcg(0x51_0a7e);
    for (stage, kind) in stages {
        let mut t = Tally::new(
            "Slurm",
            format!("`{kind}` (stage {stage})"),
            "driver SIGKILL, scancel, task processes SIGKILLed: verify clean and the lockfile right once Slurm is done; the next run's outputs equal an uninterrupted run's",
        );
        let whole = (0..2)
            .map(|_| {
                let t0 = Instant::now();
                let o = slurm(&["run", "--force", stage]).output().unwrap();
                assert!(o.status.success(), "{}", text(&o));
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let mut hit = 0;
        for (k, fault) in ["driver SIGKILL", "scancel", "task SIGKILL"]
            .iter()
            .flat_map(|f| std::iter::repeat_n(*f, per_fault))
            .enumerate()
        {
            let delay = rng.next() * whole;
            let mut child = slurm(&["run", "--force", stage])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_secs_f64(delay));
            let jobs = slurm_jobs(&ws);
            if child.try_wait().unwrap().is_none() && !jobs.is_empty() {
                hit += 1;
            }
            match fault {
                "driver SIGKILL" => {
                    let _ = child.kill();
                }
                "scancel" => {
                    for id in &jobs {
                        let _ = Command::new("scancel")
                            .env("SLURM_CONF", cluster.conf())
                            .arg(id)
                            .status();
                    }
                }
                _ => {
                    for id in &jobs {
                        let _ = Command::new("scancel")
                            .env("SLURM_CONF", cluster.conf())
                            .args(["--signal=KILL", "--full", id])
                            .status();
                    }
                }
            }
            t.case(|| {
                let t0 = Instant::now();
                while child.try_wait().map_err(|e| e.to_string())?.is_none() {
                    if t0.elapsed() > Duration::from_secs(120) {
                        let _ = child.kill();
                        return Err(format!("{fault} {k}: the driver did not exit"));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                slurm_idle(&cluster, &jobs, Duration::from_secs(120))?;
                consistent(&ws, &reference)
                    .map_err(|e| format!("{fault} {k} after {delay:.3} s: {e}"))
            });
        }
        t.case(|| {
            let o = slurm(&["run"]).output().map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!("the run after the faults failed: {}", text(&o)));
            }
            if outputs(&ws)? != reference {
                return Err(
                    "after the faults the outputs differ from an uninterrupted run's".into(),
                );
            }
            consistent(&ws, &reference)
        });
        t.notes.push(format!(
            "{hit} of {} faults found the task in flight (a whole run through Slurm: {whole:.2} s)",
            3 * per_fault
        ));
        t.finish();
    }
}

/// A training run killed after its first checkpoint resumes from it and ends with the
/// weights of an uninterrupted run.
#[test]
fn training_killed_after_a_checkpoint_resumes_to_the_same_weights() {
    let reference = reference();
    let mut t = Tally::new(
        "SIGKILL",
        "`train` after a checkpoint, resumed",
        "the next run resumes after the checkpoint and writes an uninterrupted run's weights",
    );
    let tries = if full() { 5 } else { 1 };
    for _ in 0..tries {
        let ws = new_ws();
        ws.ok(&["run", "index"]);
        let mut child = ws
            .cmd(&["run", "train"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let resume = ws.store().join("resume");
        let deadline = Instant::now() + Duration::from_secs(60);
        let checkpoint = || -> bool {
            std::fs::read_dir(&resume)
                .into_iter()
                .flatten()
                .flatten()
                .any(|d| d.path().join("epochs/001").is_dir())
        };
        while !checkpoint() && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        t.case(|| {
            if !killed {
                return Err("training ended before it could be killed".into());
            }
            consistent(&ws, &reference)?;
            let o = ws.run(&["run", "train"]);
            let log = std::fs::read_dir(ws.store().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect::<String>();
            if !o.status.success() {
                return Err(format!("the resumed run failed: {}", text(&o)));
            }
            if !log.contains("resumed after epoch") {
                return Err(format!("no resume in the stage's log: {log}"));
            }
            let got = outputs(&ws)?;
            if got.get("train") != reference.get("train") {
                return Err(format!("resumed weights differ: {got:?}"));
            }
            Ok(())
        });
    }
    t.finish();
}

/// Every file of a stage's output, by the path inside the output.
fn files_of(ws: &Ws, stage: &str) -> (PathBuf, Vec<String>) {
    let show = ws.json(&["show", stage]);
    let root = PathBuf::from(show["path"].as_str().unwrap());
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    (root, files)
}

/// Damage `file` (a store object: read-only, hard-linked) in place.
fn damage(file: &Path, how: &str, rng: &mut Lcg) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut b = std::fs::read(file).unwrap();
    match how {
        "flip" => {
            if b.is_empty() {
                b.push(0);
            } else {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        "truncate" => b.truncate(b.len() / 2),
        "footer" => {
            let n = b.len();
            for x in &mut b[n.saturating_sub(8)..] {
                *x = !*x;
            }
        }
        _ => unreachable!("damage {how}"),
    }
    std::fs::write(file, b).unwrap();
}

/// How to damage a file, what the class is called, and which files of an output it takes.
type DamageClass = (&'static str, &'static str, fn(&str) -> bool);

/// A damaged object is found by `verify` (exit 1, the file named), never used by `run` (the
/// stage is recomputed, to the same bytes), and never read by `ventral sql` as numbers.
#[test]
fn damaged_objects_are_named_and_never_used() {
    let reference = reference();
    let base = new_ws();
    base.ok(&["run"]);
    let sum_query = "SELECT count(*) AS n, sum(value) AS s FROM activations WHERE layer = 'IT'";
    let sum_ref = base.ok(&["sql", "--format", "csv", sum_query]);
    let mut rng = Lcg(0xdead_beef);
    let per_stage = if full() { 4 } else { 1 };
    let stages: Vec<(&str, &str)> = if full() {
        STAGES.to_vec()
    } else {
        vec![STAGES[4]]
    };
    let mut classes: Vec<DamageClass> = vec![
        ("flip", "a flipped bit in any file", |_: &str| true),
        ("truncate", "a truncated Zarr chunk", |f: &str| {
            f.contains("/c/")
        }),
        ("footer", "a damaged Parquet footer", |f: &str| {
            f.ends_with(".parquet")
        }),
    ];
    if !full() {
        classes.truncate(1);
    }
    for (how, class, pick) in &classes {
        let mut t = Tally::new(
            "corruption",
            *class,
            "verify exits 1 naming the file; the next run recomputes to the same bytes",
        );
        for (stage, _) in &stages {
            let (_, files) = files_of(&base, stage);
            let candidates: Vec<&String> = files.iter().filter(|f| pick(f)).collect();
            if candidates.is_empty() {
                continue;
            }
            for _ in 0..per_stage {
                let ws = new_ws();
                restore(base.path(), ws.path());
                let (root, _) = files_of(&ws, stage);
                let rel = candidates[rng.below(candidates.len())].clone();
                damage(&root.join(&rel), how, &mut rng);
                t.case(|| {
                    let v = ws.run(&["verify"]);
                    let out = text(&v);
                    if v.status.code() != Some(1) || !out.contains(&rel) {
                        return Err(format!("{stage}/{rel} ({how}): verify said {out}"));
                    }
                    completes(&ws, &reference).map_err(|e| format!("{stage}/{rel}: {e}"))
                });
            }
        }
        t.finish();
    }

    // `ventral sql` on a damaged chunk names it instead of returning numbers; `run` of a
    // reader of the damaged store recomputes the store first or names it.
    let mut t = Tally::new(
        "corruption",
        "a flipped bit in a chunk `ventral sql` or a stage reads (every other case with the file's time restored, as bit rot leaves it)",
        "sql fails naming the chunk (never other numbers); a stage reading it recomputes its input first (bit rot: verify names it)",
    );
    let (_, files) = files_of(&base, "acts");
    let chunks: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("IT-t0/values/c/"))
        .collect();
    for k in 0..if full() { 8 } else { 2 } {
        let ws = new_ws();
        restore(base.path(), ws.path());
        let (root, _) = files_of(&ws, "acts");
        let rel = chunks[rng.below(chunks.len())].clone();
        damage(&root.join(&rel), "flip", &mut rng);
        let rot = k % 2 == 1;
        if rot {
            // The object's recorded time (and so a stat-based check) is as it was.
            sh(
                "touch",
                &["-d", "@1000000000", root.join(&rel).to_str().unwrap()],
            )
            .unwrap();
        }
        t.case(|| {
            let o = ws.run(&["sql", "--format", "csv", sum_query]);
            let out = text(&o);
            if o.status.success() || !out.contains(&rel) {
                let same = String::from_utf8_lossy(&o.stdout) == sum_ref;
                return Err(format!(
                    "sql on a damaged {rel} (same numbers: {same}): exit {:?}: {out}",
                    o.status.code()
                ));
            }
            if rot {
                let v = ws.run(&["verify"]);
                if v.status.code() != Some(1) || !text(&v).contains(&rel) {
                    return Err(format!("verify on bit rot in {rel}: {}", text(&v)));
                }
                return completes(&ws, &reference);
            }
            let r = ws.run(&["run", "--force", "it"]);
            if r.status.success() {
                let got = outputs(&ws)?;
                if got != reference {
                    return Err(format!("`it` used the damaged store: {got:?}"));
                }
            } else if !text(&r).contains(&rel) {
                return Err(format!(
                    "`run it` failed without naming {rel}: {}",
                    text(&r)
                ));
            }
            completes(&ws, &reference)
        });
    }
    t.finish();

    // A lockfile edited into nonsense: named by verify, status and run; never overwritten
    // with a partial one.
    let mut t = Tally::new(
        "corruption",
        "a lockfile edited into nonsense",
        "verify, status and run exit non-zero naming lockfiles/p.lock; the file is left as it is",
    );
    let good = std::fs::read_to_string(base.path().join("lockfiles/p.lock")).unwrap();
    let nonsense: Vec<String> = vec![
        "\u{0}\u{1}garbage\u{ff}".into(),
        good[..good.len() / 2].to_string(),
        "[stages.world]\noutput = 42\n".into(),
        good.replace("output = \"", "output = \"zz"),
        "pipeline = [1, 2\n".into(),
    ];
    for bad in nonsense
        .iter()
        .take(if full() { nonsense.len() } else { 2 })
    {
        let ws = new_ws();
        restore(base.path(), ws.path());
        ws.write("lockfiles/p.lock", bad);
        t.case(|| {
            for cmd in [&["verify"][..], &["status"], &["run"]] {
                let o = ws.run(cmd);
                if o.status.success() || !text(&o).contains("p.lock") {
                    return Err(format!("{cmd:?} on a bad lockfile: {}", text(&o)));
                }
            }
            if ws.read("lockfiles/p.lock") != *bad {
                return Err("the bad lockfile was rewritten".into());
            }
            Ok(())
        });
    }
    t.finish();
}

/// A store on a read-only file system: reads work, a run fails naming the path.
#[test]
fn a_read_only_store_is_read_and_never_half_written() {
    if !is_root() {
        common::skipped("not root: cannot bind-mount read-only");
        return;
    }
    let reference = reference();
    let mut t = Tally::new(
        "read-only",
        "the store on a read-only mount",
        "status and sql work; run --force exits non-zero naming the path; afterwards all is as before",
    );
    let ws = new_ws();
    ws.ok(&["run"]);
    let store = ws.store();
    let s = store.to_str().unwrap();
    sh("mount", &["--bind", s, s]).unwrap();
    sh("mount", &["-o", "remount,ro,bind", s]).unwrap();
    let lock_before = ws.read("lockfiles/p.lock");
    let results = (
        ws.run(&["status"]),
        ws.run(&["sql", "--format", "csv", "SELECT count(*) FROM assemblies"]),
        ws.run(&["run", "--force", "it"]),
    );
    let _ = Command::new("umount").arg(&store).status();
    t.case(|| {
        let (st, sql, run) = &results;
        if !st.status.success() || !sql.status.success() {
            return Err(format!("reads failed: {} {}", text(st), text(sql)));
        }
        if run.status.success() || !text(run).contains(".ventral") {
            return Err(format!("run on a read-only store: {}", text(run)));
        }
        if ws.read("lockfiles/p.lock") != lock_before {
            return Err("the lockfile changed".into());
        }
        completes(&ws, &reference)
    });
    t.finish();
}

/// Two runs, gc and verify on one workspace at once, then ten SQL readers while a stage
/// rewrites what they read: no failures, no torn reads, the reference's outputs.
#[test]
fn concurrent_runs_gc_verify_and_readers() {
    let reference = reference();
    let rounds = if full() { 5 } else { 1 };
    let mut t = Tally::new(
        "concurrency",
        "two runs, gc and verify at once",
        "every command exits 0; the outputs equal an uninterrupted run's; verify clean",
    );
    for _ in 0..rounds {
        let ws = new_ws();
        let spawn = |a: &[&str]| {
            ws.cmd(a)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let children = vec![
            spawn(&["run", "-j", "1"]),
            spawn(&["run"]),
            spawn(&["gc"]),
            spawn(&["verify"]),
            spawn(&["gc"]),
        ];
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        t.case(|| {
            for o in &outs {
                if !o.status.success() {
                    return Err(format!("a concurrent command failed: {}", text(o)));
                }
            }
            let got = outputs(&ws)?;
            if got != reference {
                return Err(format!("outputs {got:?}"));
            }
            consistent(&ws, &reference)
        });
    }
    t.finish();

    let mut t = Tally::new(
        "concurrency",
        "ten SQL readers while a stage rewrites their store",
        "every query exits 0 with the reference's numbers",
    );
    let ws = new_ws();
    ws.ok(&["run"]);
    let q = "SELECT count(*) AS n, sum(value) AS s FROM activations WHERE layer = 'V4'";
    let want = ws.ok(&["sql", "--format", "csv", q]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        got.push(ws.run(&["sql", "--format", "csv", q]));
                    }
                    got
                })
            })
            .collect();
        for _ in 0..rounds {
            ws.ok(&["run", "--force", "acts", "it"]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            for o in r.join().unwrap() {
                t.case(|| {
                    if o.status.success() && String::from_utf8_lossy(&o.stdout) == want {
                        Ok(())
                    } else {
                        Err(format!("a reader got: {}", text(&o)))
                    }
                });
            }
        }
    });
    t.finish();
}

/// `ventral remote verify` on the workspace's remote: clean (exit 0, nothing corrupt, every
/// run record complete).
fn remote_clean(ws: &Ws) -> Result<(), String> {
    let o = ws.run(&["--json", "remote", "verify", "--remote", "lab"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("remote verify: {e}: {}", text(&o)))?;
    let empty = |k: &str| v[k].as_array().is_some_and(|a| a.is_empty());
    if !o.status.success() || !empty("corrupt") || !empty("incomplete") {
        return Err(format!("remote verify after the fault: {v}"));
    }
    Ok(())
}

/// A workspace beside `ws`'s pipeline with an empty store and `remote` as its default
/// remote restores every stage and executes none, to the reference's outputs.
fn restores_everything(
    dir: &Path,
    remote: &Path,
    reference: &BTreeMap<String, String>,
) -> Result<(), String> {
    let b = ws_in(dir);
    b.write("ventral.toml", &remote_toml(remote, true));
    let o = b.run(&["--json", "run"]);
    if !o.status.success() {
        return Err(format!(
            "a run restoring from the remote failed: {}",
            text(&o)
        ));
    }
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    let ran = b.with_action(&r, "ran");
    if !ran.is_empty() {
        return Err(format!("restoring from the remote ran {ran:?}"));
    }
    if &outputs(&b)? != reference {
        return Err("the outputs restored from the remote differ from the reference".into());
    }
    consistent(&b, reference)
}

fn remote_toml(remote: &Path, default: bool) -> String {
    format!(
        "[remote.lab]\nurl = \"{}\"\ndefault = {default}\n",
        remote.display()
    )
}

/// `args` run in `ws` and SIGKILLed `kills` times at random points of a whole run (the
/// shortest of three), each run after `reset`; after each kill, `check(kill, delay)` is one
/// case of `t`. Returns how many kills found the command still going, and the whole run's
/// seconds.
#[allow(clippy::too_many_arguments)]
fn kill_at_random_points(
    ws: &Ws,
    args: &[&str],
    kills: usize,
    rng: &mut Lcg,
    reset: &dyn Fn(),
    t: &mut Tally,
    check: &dyn Fn(usize, f64) -> Result<(), String>,
) -> (usize, f64) {
    let whole = (0..3)
        .map(|_| {
            reset();
            let t0 = Instant::now();
            ws.ok(args);
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let mut mid = 0;
    for k in 0..kills {
        reset();
        let delay = rng.next() * whole * 1.1;
        let mut child = ws
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(delay));
        if child.try_wait().unwrap().is_none() {
            mid += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        t.case(|| check(k, delay));
    }
    (mid, whole)
}

/// `args` run in `ws` with the file system `fs` filled at `points` fractions of the bytes a
/// whole run writes there (measured first, after `reset`; each run after `reset`), room
/// restored after each; `check(fraction, output)` is one case of `t`.
#[allow(clippy::too_many_arguments)]
fn run_out_of_space(
    ws: &Ws,
    args: &[&str],
    fs: &Tmpfs,
    points: usize,
    reset: &dyn Fn(),
    t: &mut Tally,
    check: &dyn Fn(f64, &std::process::Output) -> Result<(), String>,
) {
    reset();
    let used0 = used(fs.path());
    ws.ok(args);
    let need = used(fs.path()).saturating_sub(used0).max(64 << 10);
    t.notes.push(format!("writes {} KiB", need >> 10));
    let roomy = 1 << 30;
    for k in 0..points {
        let frac = (k as f64 + 0.5) / points as f64;
        reset();
        let size = (used(fs.path()) + (frac * need as f64) as u64).div_ceil(4096) * 4096;
        fs.resize(size).unwrap();
        let o = ws.run(args);
        fs.resize(roomy).unwrap();
        t.case(|| check(frac, &o));
    }
}

/// A command that failed for want of space says so, names the file system, and exits 1
/// (or it had room enough after all).
fn failed_for_space(o: &std::process::Output, fs: &Path) -> Result<(), String> {
    if o.status.success() {
        return Ok(());
    }
    let out = text(o);
    if o.status.code() != Some(1) {
        return Err(format!("exit {:?}: {out}", o.status.code()));
    }
    if !out.contains("No space left on device") || !out.contains(&fs.display().to_string()) {
        return Err(format!(
            "the error names neither the path nor \"No space\": {out}"
        ));
    }
    Ok(())
}

/// The remote cache (a plain-path remote) under the campaign's faults: `ventral push` and
/// `ventral pull` SIGKILLed at random points, the remote's disk full during a push, the
/// local disk full during a pull. After each: the remote verifies clean (no run record
/// without its objects, no damaged object), the local store verifies clean, and the next
/// push or run completes; a workspace with an empty store then restores every stage from
/// the remote and executes none, to an uninterrupted run's outputs.
#[test]
fn remote_transfers_killed_or_out_of_space() {
    let reference = reference();
    let a = new_ws();
    a.ok(&["run"]);
    let scratch = tempfile::tempdir().unwrap();
    let kills = if full() { 20 } else { 2 };
    let mut rng = Lcg(0x7e_307e);
    let clear = |p: &Path| {
        let _ = std::fs::remove_dir_all(p);
        std::fs::create_dir_all(p).unwrap();
    };

    // SIGKILL of `push`.
    let remote = scratch.path().join("remote");
    a.write("ventral.toml", &remote_toml(&remote, false));
    let mut t = Tally::new(
        "SIGKILL",
        "`push` to a plain-path remote",
        "remote verify clean after every kill; the next push completes; an empty workspace then restores every stage from the remote, running none, to an uninterrupted run's outputs",
    );
    let (mid, whole) = kill_at_random_points(
        &a,
        &["push", "--remote", "lab"],
        kills,
        &mut rng,
        &|| clear(&remote),
        &mut t,
        &|k, delay| {
            let at = |e: String| format!("push killed after {delay:.3} s (kill {k}): {e}");
            remote_clean(&a).map_err(at)?;
            let o = a.run(&["push", "--remote", "lab"]);
            if !o.status.success() {
                return Err(at(format!("the next push failed: {}", text(&o))));
            }
            remote_clean(&a).map_err(at)?;
            restores_everything(scratch.path(), &remote, &reference).map_err(at)
        },
    );
    t.notes.push(format!(
        "{mid} of {kills} kills found the push still going (a whole push: {whole:.3} s)"
    ));
    t.finish();

    // SIGKILL of `pull` (the remote complete).
    let mut t = Tally::new(
        "SIGKILL",
        "`pull` from a plain-path remote",
        "verify clean and no lockfile entry that differs from the reference after every kill; the next run restores the rest, running none, to an uninterrupted run's outputs",
    );
    let b = ws_in(scratch.path());
    b.write("ventral.toml", &remote_toml(&remote, false));
    let empty_store = |b: &Ws| {
        let _ = std::fs::remove_dir_all(b.path().join(".ventral"));
        let _ = std::fs::remove_dir_all(b.path().join("lockfiles"));
    };
    let (mid, whole) = kill_at_random_points(
        &b,
        &["pull", "--remote", "lab"],
        kills,
        &mut rng,
        &|| empty_store(&b),
        &mut t,
        &|k, delay| {
            let at = |e: String| format!("pull killed after {delay:.3} s (kill {k}): {e}");
            consistent(&b, &reference).map_err(at)?;
            let o = b.run(&["--json", "run", "--remote", "lab"]);
            if !o.status.success() {
                return Err(at(format!("the next run failed: {}", text(&o))));
            }
            let r: serde_json::Value =
                serde_json::from_slice(&o.stdout).map_err(|e| at(e.to_string()))?;
            let ran = b.with_action(&r, "ran");
            if !ran.is_empty() {
                return Err(at(format!("the run after the kill ran {ran:?}")));
            }
            completes(&b, &reference).map_err(at)
        },
    );
    t.notes.push(format!(
        "{mid} of {kills} kills found the pull still going (a whole pull: {whole:.3} s)"
    ));
    t.finish();

    if !is_root() {
        common::skipped("not root: cannot mount a tmpfs for the remote's disk-full cases");
        return;
    }
    const ROOMY: u64 = 1 << 30;
    let points = if full() { 8 } else { 2 };

    // The remote's disk full during a push.
    let fs = Tmpfs::new(ROOMY);
    let remote = fs.path().join("remote");
    a.write("ventral.toml", &remote_toml(&remote, false));
    let mut t = Tally::new(
        "disk full",
        "the remote, during `push`",
        "exit 1 naming the remote's path and \"No space\"; remote verify clean; once space is freed the next push completes and an empty workspace restores everything from the remote",
    );
    run_out_of_space(
        &a,
        &["push", "--remote", "lab"],
        &fs,
        points,
        &|| clear(&remote),
        &mut t,
        &|frac, o| {
            let at = |e: String| format!("at {:.0} % of a push's bytes: {e}", frac * 100.0);
            failed_for_space(o, fs.path()).map_err(at)?;
            remote_clean(&a).map_err(at)?;
            let o = a.run(&["push", "--remote", "lab"]);
            if !o.status.success() {
                return Err(at(format!(
                    "the push after freeing space failed: {}",
                    text(&o)
                )));
            }
            restores_everything(scratch.path(), &remote, &reference).map_err(at)
        },
    );
    t.finish();

    // The local disk full during a pull.
    let remote = scratch.path().join("remote");
    let local = Tmpfs::new(ROOMY);
    let b = ws_in(local.path());
    b.write("ventral.toml", &remote_toml(&remote, false));
    let mut t = Tally::new(
        "disk full",
        "the local store, during `pull`",
        "exit 1 naming the path and \"No space\"; verify clean and no lockfile entry that differs from the reference; once space is freed the next run restores everything, running none",
    );
    run_out_of_space(
        &b,
        &["pull", "--remote", "lab"],
        &local,
        points,
        &|| empty_store(&b),
        &mut t,
        &|frac, o| {
            let at = |e: String| format!("at {:.0} % of a pull's bytes: {e}", frac * 100.0);
            failed_for_space(o, local.path()).map_err(at)?;
            consistent(&b, &reference).map_err(at)?;
            let o = b.run(&["--json", "run", "--remote", "lab"]);
            if !o.status.success() {
                return Err(at(format!(
                    "the run after freeing space failed: {}",
                    text(&o)
                )));
            }
            let r: serde_json::Value =
                serde_json::from_slice(&o.stdout).map_err(|e| at(e.to_string()))?;
            let ran = b.with_action(&r, "ran");
            if !ran.is_empty() {
                return Err(at(format!("the run after freeing space ran {ran:?}")));
            }
            completes(&b, &reference).map_err(at)
        },
    );
    t.finish();
}
