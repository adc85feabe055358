//! The Slurm executor on a real one-node cluster (Debian's slurm-wlm and munge, started
//! by the test as root; under `CI` these tests must run).

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Ws;
use ventral_testkit::slurm::Cluster;

/// Ready stages in one array, a chain, a fan-in; `cmd` only.
const DIAMOND: &str = r#"
[stages.a]
kind = "cmd"
cmd = "seq 1 50 > ${out}/a.txt"

[stages.b]
kind = "cmd"
cmd = "seq 51 99 > ${out}/b.txt"

[stages.c]
kind = "cmd"
cmd = "echo c > ${out}/c.txt"
resources = { cpus = 1, mem = "100M", time = "5:00" }

[stages.join]
kind = "cmd"
cmd = "cat ${inputs.a} ${inputs.b} ${inputs.c} | sort -n > ${out}/all.txt"
inputs = { a = "stage:a/a.txt", b = "stage:b/b.txt", c = "stage:c/c.txt" }
publish = "results/join"

[stages.count]
kind = "cmd"
cmd = "wc -l < ${inputs.all} > ${out}/n.txt"
inputs = { all = "stage:join/all.txt" }
"#;

fn config(ws: &Ws) {
    ws.write(
        "ventral.toml",
        "[executor]\nkind = \"slurm\"\npoll_seconds = 0.5\nmax_jobs = 4\n",
    );
}

fn with_slurm(c: &mut Command, cluster: &Cluster) {
    c.env("SLURM_CONF", cluster.conf());
}

fn run(ws: &Ws, cluster: &Cluster, args: &[&str]) -> Output {
    let mut c = ws.cmd(args);
    with_slurm(&mut c, cluster);
    c.output().expect("spawn ventral")
}

fn spawn(ws: &Ws, cluster: &Cluster, args: &[&str]) -> Child {
    let mut c = ws.cmd(args);
    with_slurm(&mut c, cluster);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ventral")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn records(ws: &Ws) -> Vec<serde_json::Value> {
    let dir = ws.path().join(".ventral/slurm");
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let b = std::fs::read(e.path()).unwrap();
        v.push(serde_json::from_slice(&b).unwrap());
    }
    v
}

fn slurm_logs(ws: &Ws) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ws.path().join(".ventral/logs/slurm"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn squeue_state(cluster: &Cluster, id: &str) -> String {
    let o = Command::new("squeue")
        .env("SLURM_CONF", cluster.conf())
        .args(["-h", "-r", "-t", "all", "-o", "%T", "-j", id])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Wait until `stage`'s task is recorded and Slurm runs it; its job id.
fn wait_running(ws: &Ws, cluster: &Cluster, stage: &str) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(r) = records(ws).into_iter().find(|r| r["stage"] == stage) {
            let id = r["job_id"].as_str().unwrap().to_string();
            if squeue_state(cluster, &id) == "RUNNING" {
                return id;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "stage {stage} never ran on the cluster"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let t0 = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait"));
    while !waiter.is_finished() {
        assert!(
            t0.elapsed() < limit,
            "ventral (pid {pid}) did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    waiter.join().unwrap()
}

fn lockfile(ws: &Ws) -> String {
    ws.read("lockfiles/p.lock")
}

#[test]
fn slurm_runs_the_pipeline_to_the_same_lockfile_and_outputs_as_a_local_run() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let local = Ws::new();
    local.write("pipelines/p.toml", DIAMOND);
    local.ok(&["run"]);

    let ws = Ws::new();
    ws.write("pipelines/p.toml", DIAMOND);
    config(&ws);
    let o = run(&ws, &cluster, &["run", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "ran"),
        "{report}"
    );
    assert_eq!(lockfile(&ws), lockfile(&local));
    assert_eq!(
        ws.read("results/join/all.txt"),
        local.read("results/join/all.txt")
    );
    // a, b and c were ready together: one array of three tasks; join and count one each.
    let logs = slurm_logs(&ws);
    assert_eq!(logs.len(), 5, "{logs:?}");
    let arrays: std::collections::BTreeSet<&str> =
        logs.iter().map(|l| l.split('_').next().unwrap()).collect();
    assert!(
        arrays.len() <= 4,
        "a, b and c should share an array: {logs:?}"
    );
    // Nothing left in flight; the next run has nothing to do.
    assert!(records(&ws).is_empty());
    let o = run(&ws, &cluster, &["run", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        slurm_logs(&ws).len(),
        5,
        "an up-to-date run submitted something"
    );
    // `--executor local` overrides the config.
    let o = run(
        &ws,
        &cluster,
        &["run", "--executor", "local", "--force", "count"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(slurm_logs(&ws).len(), 5);
}

/// A stage that waits for `go` to exist in the workspace (not an input: same key).
const SLOW: &str = r#"
[stages.slow]
kind = "cmd"
cmd = "while [ ! -f go ]; do sleep 0.2; done; echo done > ${out}/o.txt"

[stages.after]
kind = "cmd"
cmd = "cat ${inputs.x} > ${out}/o.txt"
inputs = { x = "stage:slow/o.txt" }
"#;

/// A workspace running SLOW through Slurm, its driver, and the job id of `slow` once Slurm
/// runs it.
fn slow_run_in_flight(cluster: &Cluster) -> (Ws, Child, String) {
    let ws = Ws::new();
    ws.write("pipelines/p.toml", SLOW);
    config(&ws);
    let child = spawn(&ws, cluster, &["run"]);
    let id = wait_running(&ws, cluster, "slow");
    (ws, child, id)
}

#[test]
fn a_task_cancelled_with_scancel_is_reported_with_its_log_and_rerun_next_time() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (ws, child, id) = slow_run_in_flight(&cluster);
    let st = Command::new("scancel")
        .env("SLURM_CONF", cluster.conf())
        .arg(&id)
        .status()
        .unwrap();
    assert!(st.success());
    let o = wait_exit(child, Duration::from_secs(60));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("slow") && t.contains(&id) && t.contains("CANCELLED"),
        "{t}"
    );
    assert!(t.contains("last lines of") || t.contains("is empty"), "{t}");
    let status = ws.json(&["status"]);
    assert_eq!(status[0]["stage"], "slow");
    assert_eq!(status[0]["status"], "stale", "{status}");
    // The next run submits it again and completes.
    ws.write("go", "");
    let o = run(&ws, &cluster, &["run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(lockfile(&ws).contains("slow") && lockfile(&ws).contains("after"));
}

#[test]
fn a_killed_driver_s_running_task_is_adopted_not_submitted_twice() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (ws, mut first, id) = slow_run_in_flight(&cluster);
    first.kill().unwrap();
    let _ = first.wait();
    // The task runs on without its driver.
    assert_eq!(squeue_state(&cluster, &id), "RUNNING");
    let second = spawn(&ws, &cluster, &["run", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    ws.write("go", "");
    let o = wait_exit(second, Duration::from_secs(90));
    assert!(o.status.success(), "{}", text(&o));
    let logs = slurm_logs(&ws);
    // One task for `slow` (adopted), one for `after`.
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs.contains(&format!("{id}.out")), "{logs:?}");
    assert!(records(&ws).is_empty());
}

#[test]
fn sigint_to_the_driver_cancels_what_it_submitted() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (ws, child, id) = slow_run_in_flight(&cluster);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = wait_exit(child, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let t0 = Instant::now();
    while !squeue_state(&cluster, &id).starts_with("CANCELLED") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "task {id} still {}",
            squeue_state(&cluster, &id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(records(&ws).is_empty());
    assert!(!Path::new(&ws.path().join("go")).exists());
}

#[test]
fn a_failing_stage_fails_with_its_own_error_and_is_not_retried() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.bad]\nkind = \"cmd\"\ncmd = \"echo boom-from-the-node >&2; exit 3\"\n",
    );
    config(&ws);
    let o = run(&ws, &cluster, &["run", "--retries", "3"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("boom-from-the-node") && t.contains("FAILED"),
        "{t}"
    );
    assert_eq!(
        slurm_logs(&ws).len(),
        1,
        "a stage's own failure was retried"
    );
}

#[test]
fn without_slurm_the_executor_says_so() {
    let ws = Ws::new();
    ws.write("pipelines/p.toml", DIAMOND);
    let o = ws
        .cmd(&["run", "--executor", "slurm"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("sbatch") && t.contains("PATH"), "{t}");
    assert!(!ws.path().join("lockfiles/p.lock").exists());
    ws.write("ventral.toml", "[executor]\nkind = \"pbs\"\n");
    let o = ws.run(&["run"]);
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ventral.toml") && t.contains("pbs"), "{t}");
}

#[test]
fn a_task_lost_to_a_node_failure_is_resubmitted() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ws = Ws::new();
    ws.write("pipelines/p.toml", SLOW);
    // Slurm would requeue the job itself; without that, the executor must.
    ws.write(
        "ventral.toml",
        "[executor]\nkind = \"slurm\"\npoll_seconds = 0.5\nsbatch_args = [\"--no-requeue\"]\n",
    );
    let child = spawn(&ws, &cluster, &["run"]);
    let id = wait_running(&ws, &cluster, "slow");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let scontrol = |state: &str| {
        let st = Command::new("scontrol")
            .env("SLURM_CONF", cluster.conf())
            .args([
                "update",
                &format!("nodename={}", host.trim()),
                &format!("state={state}"),
            ])
            .args((state == "down").then_some("reason=test"))
            .status()
            .unwrap();
        if !st.success() && state == "resume" {
            // ReturnToService=2 may already have brought the node back
            // when slurmd re-registered; then Slurm refuses `resume`.
            let show = Command::new("scontrol")
                .env("SLURM_CONF", cluster.conf())
                .args(["show", "node", host.trim()])
                .output()
                .unwrap();
            let show = String::from_utf8_lossy(&show.stdout).to_string();
            assert!(!show.contains("State=DOWN"), "node still down: {show}");
            return;
        }
        assert!(st.success(), "scontrol update state={state}");
    };
    scontrol("down");
    let t0 = Instant::now();
    while squeue_state(&cluster, &id) != "NODE_FAIL" {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "task {id}: {}",
            squeue_state(&cluster, &id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    scontrol("resume");
    ws.write("go", "");
    let o = wait_exit(child, Duration::from_secs(120));
    assert!(o.status.success(), "{}", text(&o));
    let logs = slurm_logs(&ws);
    // slow twice (lost, then resubmitted), after once.
    assert_eq!(logs.len(), 3, "{logs:?}");
}
