//! A one-node Slurm cluster for tests, from Debian's `slurm-wlm` and `munge`, run as root:
//! a `slurm.conf` in a temp folder (`proctrack/linuxproc`, `task/none`, no accounting),
//! `munged` with its own key and socket, `slurmctld` and `slurmd`. One cluster at a time
//! per process (tests that use one hold it, and so run one after another); dropping it
//! stops the daemons and waits for them to exit. The scheduler runs every second
//! (`sched_interval=1`; Slurm's default is 60 s, with event-driven passes that start queued
//! array tasks about every 3 s here), so that tests and benchmarks wait on our code rather
//! than on the scheduler's timer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running one-node cluster; commands find it through `SLURM_CONF` ([`Cluster::conf`]).
pub struct Cluster {
    dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

fn which(p: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| d.join(p).is_file())
            || Path::new("/usr/sbin").join(p).is_file()
    })
}

fn sbin(p: &str) -> PathBuf {
    let s = Path::new("/usr/sbin").join(p);
    if s.is_file() { s } else { PathBuf::from(p) }
}

fn pid_of(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

impl Cluster {
    /// Start a cluster, or say why not: `None` after [`crate::skipped`] (which fails under
    /// `CI`) when the daemons are not installed or this is not root.
    pub fn start() -> Option<Cluster> {
        for p in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
        ] {
            if !which(p) {
                crate::skipped(&format!(
                    "Slurm tests need `{p}` (apt-get install slurm-wlm munge)"
                ));
                return None;
            }
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            crate::skipped("Slurm tests start slurmd, which must run as root");
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("ventral-slurm-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for sub in ["state", "spool", "log", "munge"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mem_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|k| k.parse::<u64>().ok())
                    })
            })
            .map(|kb| kb / 1024 * 9 / 10)
            .unwrap_or(2048);
        // Ports of this process's own, so that two test processes' clusters do not meet.
        let port = 17000 + (std::process::id() % 2000) * 2;
        let conf = format!(
            "ClusterName=ventraltest\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nAuthInfo=socket={d}/munge/munge.socket\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             SlurmctldPort={port}\nSlurmdPort={port1}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n\
             DefMemPerCPU=256\nSchedulerParameters=sched_interval=1\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\nMinJobAge=600\nMaxArraySize=1001\nReturnToService=2\n\
             NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            d = d.display(),
            port1 = port + 1,
        );
        std::fs::write(d.join("slurm.conf"), conf).expect("slurm.conf");
        // munged insists on a key only its user can read.
        let mut key = vec![0u8; 1024];
        {
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut key))
                .expect("reading /dev/urandom");
        }
        let key_path = d.join("munge/munge.key");
        std::fs::write(&key_path, key).expect("munge key");
        let _ = Command::new("chmod").arg("600").arg(&key_path).status();
        let c = Cluster { dir, _turn: turn };
        let m = d.join("munge");
        c.daemon(
            Command::new(sbin("munged")).args([
                "--force".into(),
                format!("--socket={}", m.join("munge.socket").display()),
                format!("--pid-file={}", m.join("munged.pid").display()),
                format!("--log-file={}", m.join("munged.log").display()),
                format!("--seed-file={}", m.join("seed").display()),
                format!("--key-file={}", key_path.display()),
            ]),
            "munged",
        );
        c.daemon(&mut Command::new(sbin("slurmctld")), "slurmctld");
        c.daemon(&mut Command::new(sbin("slurmd")), "slurmd");
        // Wait until the node takes work.
        let t0 = Instant::now();
        loop {
            let out = Command::new("sinfo")
                .env("SLURM_CONF", c.conf())
                .args(["-h", "-o", "%T"])
                .output();
            if let Ok(o) = &out
                && o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == "idle"
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the test cluster did not come up in 60 s: sinfo says {:?}; logs in {}",
                out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()),
                c.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(c)
    }

    fn daemon(&self, cmd: &mut Command, name: &str) {
        let st = cmd
            .env("SLURM_CONF", self.conf())
            .status()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        assert!(
            st.success(),
            "{name} did not start ({st}); logs in {}",
            self.dir.path().join("log").display()
        );
    }

    /// The `slurm.conf` to put in `SLURM_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// The cluster's folder (logs under `log/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let d = self.dir.path().to_path_buf();
        for pidfile in [
            d.join("slurmd.pid"),
            d.join("slurmctld.pid"),
            d.join("munge/munged.pid"),
        ] {
            if let Some(pid) = pid_of(&pidfile) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                let t0 = Instant::now();
                while alive(pid) && t0.elapsed() < Duration::from_secs(20) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if alive(pid) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
    }
}
