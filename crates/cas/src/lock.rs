use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::atomic::atomic_write;
use crate::error::{CasError, IoContext, Result};

const POLL: Duration = Duration::from_millis(50);

/// Who holds (or last held) a workspace lock.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// What it is doing (`ventral run`, `ventral gc`, …).
    pub command: String,
    /// When it took the lock (seconds since the epoch).
    pub since: u64,
}

impl LockHolder {
    fn me(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Whether this holder is a process on this host that no longer exists.
    pub fn is_dead_here(&self) -> bool {
        self.host == hostname() && !pid_alive(self.pid)
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process `pid` exists on this host.
pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// An exclusive lock on a workspace's store, held until dropped.
///
/// It is an advisory `flock` on `<store>/lock`: the kernel releases it when the holder dies,
/// even by SIGKILL, so a crashed run never leaves a stale lock behind. On file systems
/// without `flock`, it falls back to an exclusively created `<store>/lock.excl` holding pid
/// and host; a holder on this host whose pid is gone is recognised as stale and replaced.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: Option<File>,
    excl: Option<PathBuf>,
}

impl WorkspaceLock {
    /// Take the lock, waiting up to `timeout`. `command` is recorded for whoever waits.
    pub fn acquire(store_root: &Path, command: &str, timeout: Duration) -> Result<WorkspaceLock> {
        std::fs::create_dir_all(store_root).ctx("create directory", store_root)?;
        let path = store_root.join("lock");
        let info = store_root.join("lock.info");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open", &path)?;
        let start = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    let me = LockHolder::me(command);
                    let json = serde_json::to_vec(&me).unwrap_or_default();
                    atomic_write(&info, &json)?;
                    return Ok(WorkspaceLock {
                        _file: Some(file),
                        excl: None,
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    tracing::debug!(
                        "flock unsupported on {} ({e}); using lock.excl",
                        path.display()
                    );
                    return Self::acquire_excl(store_root, command, timeout);
                }
            }
            let holder = read_holder(&info);
            if !announced {
                tracing::warn!(
                    "waiting for the workspace lock{} (up to {:.0} s)",
                    describe(&holder),
                    timeout.as_secs_f64()
                );
                announced = true;
            }
            if start.elapsed() >= timeout {
                return Err(CasError::Locked {
                    workspace: store_root.to_path_buf(),
                    holder: describe(&holder),
                    waited_s: start.elapsed().as_secs_f64(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    fn acquire_excl(store_root: &Path, command: &str, timeout: Duration) -> Result<WorkspaceLock> {
        let path = store_root.join("lock.excl");
        let start = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let me = LockHolder::me(command);
                    let json = serde_json::to_vec(&me).unwrap_or_default();
                    f.write_all(&json).ctx("write", &path)?;
                    f.sync_all().ctx("fsync", &path)?;
                    return Ok(WorkspaceLock {
                        _file: None,
                        excl: Some(path),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = read_holder(&path);
                    if holder.as_ref().is_some_and(LockHolder::is_dead_here) {
                        tracing::warn!("removing a stale lock{}", describe(&holder));
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if start.elapsed() >= timeout {
                        return Err(CasError::Locked {
                            workspace: store_root.to_path_buf(),
                            holder: describe(&holder),
                            waited_s: start.elapsed().as_secs_f64(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(e).ctx("create", &path),
            }
        }
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        if let Some(p) = &self.excl {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn describe(h: &Option<LockHolder>) -> String {
    match h {
        Some(h) => format!(
            " by `{}` (pid {} on {}, since {} s after the epoch)",
            h.command, h.pid, h.host, h.since
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_times_out_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let a = WorkspaceLock::acquire(dir.path(), "first", Duration::ZERO).unwrap();
        let err =
            WorkspaceLock::acquire(dir.path(), "second", Duration::from_millis(120)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("locked by `first`"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(a);
        WorkspaceLock::acquire(dir.path(), "second", Duration::ZERO).unwrap();
    }

    #[test]
    fn stale_excl_lock_of_dead_pid_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above pid_max's hard ceiling).
        let dead = LockHolder {
            pid: 4_194_304 + 17,
            host: hostname(),
            command: "crashed".into(),
            since: 0,
        };
        std::fs::write(
            dir.path().join("lock.excl"),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        let l = WorkspaceLock::acquire_excl(dir.path(), "new", Duration::from_millis(100)).unwrap();
        let now: LockHolder =
            serde_json::from_slice(&std::fs::read(dir.path().join("lock.excl")).unwrap()).unwrap();
        assert_eq!(now.command, "new");
        drop(l);
        assert!(!dir.path().join("lock.excl").exists());
    }

    #[test]
    fn live_excl_lock_on_other_host_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let other = LockHolder {
            pid: 1,
            host: "some-other-node".into(),
            command: "ventral run".into(),
            since: 0,
        };
        std::fs::write(
            dir.path().join("lock.excl"),
            serde_json::to_vec(&other).unwrap(),
        )
        .unwrap();
        let err =
            WorkspaceLock::acquire_excl(dir.path(), "new", Duration::from_millis(60)).unwrap_err();
        assert!(err.to_string().contains("some-other-node"));
    }
}
