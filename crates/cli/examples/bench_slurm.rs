//! `make bench`: the Slurm executor's overhead over local execution, on a one-node cluster
//! started here (root, Debian's slurm-wlm and munge), for the 200-stage `cmd` pipeline of
//! `bench/engine.sh` (20 layers of 10; each stage reads two of the layer above).
//!
//! Prints, in one run on this machine: the local run, the Slurm run, the overhead per stage
//! and per layer (a layer is one job array), and beside them the same 20 waves submitted as
//! one `sbatch` job per stage and watched with `squeue` at the same poll interval, as
//! per-job cluster runners do.
//!
//! Usage: bench_slurm PATH/TO/ventral

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ventral_testkit::slurm::Cluster;

const LAYERS: usize = 20;
const WIDTH: usize = 10;
const POLL: f64 = 0.5;

fn pipeline() -> String {
    let mut p = String::new();
    for l in 0..LAYERS {
        for s in 0..WIDTH {
            p.push_str(&format!("[stages.l{l}s{s}]\nkind = \"cmd\"\n"));
            if l == 0 {
                p.push_str(&format!(
                    "cmd = \"cat ${{inputs.seed}} > ${{out}}/o.txt; echo {s} >> ${{out}}/o.txt\"\ninputs = {{ seed = \"data/seed{s}.txt\" }}\n"
                ));
            } else {
                let (a, prev) = ((s + 1) % WIDTH, l - 1);
                p.push_str(&format!(
                    "cmd = \"cat ${{inputs.a}} ${{inputs.b}} | sha1sum > ${{out}}/o.txt\"\ninputs = {{ a = \"stage:l{prev}s{s}/o.txt\", b = \"stage:l{prev}s{a}/o.txt\" }}\n"
                ));
            }
            p.push_str(&format!("params = {{ layer = {l}, slot = {s} }}\n\n"));
        }
    }
    p
}

fn workspace(dir: &Path, slurm: bool) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("pipelines/p.toml"), pipeline()).unwrap();
    for s in 0..WIDTH {
        std::fs::write(dir.join(format!("data/seed{s}.txt")), format!("seed {s}\n")).unwrap();
    }
    if slurm {
        std::fs::write(
            dir.join("ventral.toml"),
            format!("[executor]\nkind = \"slurm\"\npoll_seconds = {POLL}\n"),
        )
        .unwrap();
    }
}

fn timed_run(ventral: &Path, dir: &Path, cluster: &Cluster) -> f64 {
    let t0 = Instant::now();
    let o = Command::new(ventral)
        .current_dir(dir)
        .env("SLURM_CONF", cluster.conf())
        .env_remove("VENTRAL_HOME")
        .args(["-p", "pipelines/p.toml", "run"])
        .output()
        .expect("ventral");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "ventral run failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    secs
}

/// 20 waves of 10 single `sbatch` jobs, each wave watched with `squeue` until it is gone.
fn per_job_baseline(cluster: &Cluster, dir: &Path) -> f64 {
    let t0 = Instant::now();
    for l in 0..LAYERS {
        let mut ids = Vec::new();
        for s in 0..WIDTH {
            let o = Command::new("sbatch")
                .env("SLURM_CONF", cluster.conf())
                .current_dir(dir)
                .args([
                    "--parsable",
                    "--job-name=baseline",
                    &format!("--output={}/l{l}s{s}.out", dir.display()),
                    "--wrap",
                    &format!("echo {l} {s} | sha1sum > {}/l{l}s{s}.txt", dir.display()),
                ])
                .output()
                .expect("sbatch");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            ids.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        loop {
            let o = Command::new("squeue")
                .env("SLURM_CONF", cluster.conf())
                .args(["-h", "-o", "%i", "-j", &ids.join(",")])
                .output()
                .expect("squeue");
            if String::from_utf8_lossy(&o.stdout).trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_secs_f64(POLL));
        }
    }
    t0.elapsed().as_secs_f64()
}

fn main() {
    let ventral = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .expect("usage: bench_slurm PATH/TO/ventral");
    let ventral = std::fs::canonicalize(&ventral).expect("ventral binary");
    let Some(cluster) = Cluster::start() else {
        println!("slurm: no cluster could be started here (needs root, slurm-wlm, munge)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (local_dir, slurm_dir, base_dir) = (
        tmp.path().join("local"),
        tmp.path().join("slurm"),
        tmp.path().join("baseline"),
    );
    workspace(&local_dir, false);
    workspace(&slurm_dir, true);
    std::fs::create_dir_all(&base_dir).unwrap();
    let n = (LAYERS * WIDTH) as f64;
    let local = timed_run(&ventral, &local_dir, &cluster);
    let slurm = timed_run(&ventral, &slurm_dir, &cluster);
    let same = std::fs::read(local_dir.join("lockfiles/p.lock")).ok()
        == std::fs::read(slurm_dir.join("lockfiles/p.lock")).ok();
    let noop = timed_run(&ventral, &slurm_dir, &cluster);
    let base = per_job_baseline(&cluster, &base_dir);
    println!(
        "slurm executor, {} cmd stages in {LAYERS} layers of {WIDTH} (one-node cluster, {} cores, poll {POLL} s):",
        n,
        std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1)
    );
    println!("  local run                      {local:8.2} s");
    println!(
        "  slurm run                      {slurm:8.2} s   lockfile identical to the local run's: {same}"
    );
    println!(
        "  overhead per stage             {:8.3} s   per layer (one job array) {:.2} s",
        (slurm - local) / n,
        (slurm - local) / LAYERS as f64
    );
    println!("  no-op slurm run                {noop:8.2} s   (nothing submitted)");
    println!(
        "  one sbatch job per stage       {base:8.2} s   (the same 20 waves, squeue every {POLL} s; stages only, no engine)"
    );
    println!(
        "  ventral's own overhead         {:8.3} s per stage (slurm run − the bare waves, over {n} stages)",
        (slurm - base) / n
    );
    println!(
        "  ratio: per-job submission / ventral's arrays = {:.2}x",
        base / slurm
    );
}
