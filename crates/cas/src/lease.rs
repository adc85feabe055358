//! Leases on stage keys: who is computing a key right now, recognisable as stale from any
//! host.
//!
//! A lease is a file `<store>/leases/<key>.json`, created exclusively (`O_EXCL`, which NFS
//! v3+, Lustre and GPFS honour; no `flock` needed) and holding its holder's host, pid,
//! command, a random token and an expiry. The holder renews the expiry every third of the
//! lease's lifetime from a thread of its own and removes the file when done. Anyone may take
//! over a lease that has expired, or whose holder is a process on this host that no longer
//! exists; taking over renames the stale file aside first and checks that it was the very
//! file judged stale, so two waiters never both win.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::atomic::atomic_write;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::lock::{hostname, pid_alive};

/// What a lease file says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseHolder {
    /// The key leased.
    pub key: Digest,
    /// Host of the holder.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// What it is doing (`ventral run`).
    pub command: String,
    /// Unique per acquisition.
    pub token: String,
    /// When it was taken (seconds since the epoch).
    pub since: u64,
    /// When it lapses unless renewed (seconds since the epoch).
    pub expires: u64,
}

impl LeaseHolder {
    /// Whether nobody holds this lease any more: expired, or its holder is a process of
    /// this host that is gone.
    pub fn is_stale(&self) -> bool {
        now() > self.expires || (self.host == hostname() && !pid_alive(self.pid))
    }
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, lease until {} s after the epoch)",
            self.command, self.pid, self.host, self.expires
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The folder of a store's leases.
pub fn leases_dir(store_root: &Path) -> PathBuf {
    store_root.join("leases")
}

fn lease_path(store_root: &Path, key: &Digest) -> PathBuf {
    leases_dir(store_root).join(format!("{key}.json"))
}

fn read(path: &Path) -> Option<LeaseHolder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Every lease in the store that is not stale.
pub fn live_leases(store_root: &Path) -> Vec<LeaseHolder> {
    let Ok(dir) = std::fs::read_dir(leases_dir(store_root)) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read(&e.path()))
        .filter(|h| !h.is_stale())
        .collect()
}

/// A lease held by this process; renewed until dropped, then removed.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    token: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Lease {
    /// Take the lease on `key` for `ttl` (renewed every `ttl / 3`), or say who holds it.
    pub fn try_acquire(
        store_root: &Path,
        key: &Digest,
        command: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<Lease, LeaseHolder>> {
        let dir = leases_dir(store_root);
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        let path = lease_path(store_root, key);
        let token = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let ttl_s = ttl.as_secs().max(3);
        let me = LeaseHolder {
            key: *key,
            host: hostname(),
            pid: std::process::id(),
            command: command.to_string(),
            token: token.clone(),
            since: now(),
            expires: now() + ttl_s,
        };
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let json = serde_json::to_vec(&me).unwrap_or_default();
                    f.write_all(&json).ctx("write", &path)?;
                    f.sync_all().ctx("fsync", &path)?;
                    return Ok(Ok(Self::renewing(path, me, ttl_s)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let Some(holder) = read(&path) else {
                        // Being written this instant, or unreadable: treat as held; a
                        // lease that stays unreadable is taken over once it is old.
                        let old = std::fs::metadata(&path)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|age| age > ttl * 2);
                        if old {
                            let _ = std::fs::remove_file(&path);
                            continue;
                        }
                        return Ok(Err(LeaseHolder {
                            key: *key,
                            host: "?".into(),
                            pid: 0,
                            command: "?".into(),
                            token: String::new(),
                            since: 0,
                            expires: now() + ttl_s,
                        }));
                    };
                    if !holder.is_stale() {
                        return Ok(Err(holder));
                    }
                    // Take over: move exactly the stale file aside.
                    let aside = dir.join(format!("{key}.stale-{token}"));
                    if std::fs::rename(&path, &aside).is_err() {
                        continue; // someone else moved it; look again
                    }
                    match read(&aside) {
                        Some(h) if h.token == holder.token => {
                            tracing::warn!("taking over the stale lease on {key} of {holder}");
                            let _ = std::fs::remove_file(&aside);
                        }
                        _ => {
                            // We moved a fresh lease another waiter had just taken: put it
                            // back (unless yet another lease appeared meanwhile).
                            if std::fs::hard_link(&aside, &path).is_ok() {
                                let _ = std::fs::remove_file(&aside);
                            }
                            let _ = std::fs::remove_file(&aside);
                            if let Some(h) = read(&path) {
                                return Ok(Err(h));
                            }
                        }
                    }
                }
                Err(e) => return Err(e).ctx("create", &path),
            }
        }
        Ok(Err(read(&path).unwrap_or(me)))
    }

    fn renewing(path: PathBuf, me: LeaseHolder, ttl_s: u64) -> Lease {
        let (tx, rx) = mpsc::channel::<()>();
        let p = path.clone();
        let token = me.token.clone();
        let renewer = std::thread::Builder::new()
            .name("lease".into())
            .spawn(move || {
                let mut me = me;
                let every = Duration::from_secs(ttl_s).div_f64(3.0);
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    // Renew only our own lease: one taken over while we were stalled is
                    // someone else's now.
                    if read(&p).is_none_or(|h| h.token != me.token) {
                        tracing::warn!("lost the lease {}", p.display());
                        break;
                    }
                    me.expires = now() + ttl_s;
                    if let Ok(json) = serde_json::to_vec(&me)
                        && let Err(e) = atomic_write(&p, &json)
                    {
                        tracing::warn!("renewing the lease {}: {e}", p.display());
                    }
                }
            })
            .ok();
        Lease {
            path,
            token,
            stop: Some(tx),
            renewer,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        if read(&self.path).is_some_and(|h| h.token == self.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &[u8]) -> Digest {
        crate::digest::hash_bytes(b)
    }

    #[test]
    fn one_holder_at_a_time_then_released() {
        let d = tempfile::tempdir().unwrap();
        let k = key(b"k");
        let a = Lease::try_acquire(d.path(), &k, "a", Duration::from_secs(60))
            .unwrap()
            .unwrap();
        let held = Lease::try_acquire(d.path(), &k, "b", Duration::from_secs(60))
            .unwrap()
            .unwrap_err();
        assert_eq!(held.command, "a");
        assert_eq!(live_leases(d.path()).len(), 1);
        drop(a);
        assert!(live_leases(d.path()).is_empty());
        assert!(
            Lease::try_acquire(d.path(), &k, "b", Duration::from_secs(60))
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn an_expired_lease_of_another_host_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let k = key(b"k");
        let stale = LeaseHolder {
            key: k,
            host: "another-node".into(),
            pid: 1,
            command: "ventral run".into(),
            token: "t".into(),
            since: 1,
            expires: now() - 5,
        };
        std::fs::create_dir_all(leases_dir(d.path())).unwrap();
        std::fs::write(
            lease_path(d.path(), &k),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        assert!(live_leases(d.path()).is_empty());
        let l = Lease::try_acquire(d.path(), &k, "me", Duration::from_secs(60))
            .unwrap()
            .unwrap();
        drop(l);
        // A live one of another host is not.
        let live = LeaseHolder {
            expires: now() + 60,
            ..stale
        };
        std::fs::write(lease_path(d.path(), &k), serde_json::to_vec(&live).unwrap()).unwrap();
        let h = Lease::try_acquire(d.path(), &k, "me", Duration::from_secs(60))
            .unwrap()
            .unwrap_err();
        assert_eq!(h.host, "another-node");
    }

    #[test]
    fn a_dead_holder_on_this_host_is_stale_at_once() {
        let d = tempfile::tempdir().unwrap();
        let k = key(b"k");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LeaseHolder {
            key: k,
            host: hostname(),
            pid,
            command: "ventral run".into(),
            token: "t".into(),
            since: now(),
            expires: now() + 600,
        };
        std::fs::create_dir_all(leases_dir(d.path())).unwrap();
        std::fs::write(lease_path(d.path(), &k), serde_json::to_vec(&dead).unwrap()).unwrap();
        assert!(
            Lease::try_acquire(d.path(), &k, "me", Duration::from_secs(60))
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn leases_are_renewed_while_held() {
        let d = tempfile::tempdir().unwrap();
        let k = key(b"k");
        let l = Lease::try_acquire(d.path(), &k, "a", Duration::from_secs(3))
            .unwrap()
            .unwrap();
        let first = read(&lease_path(d.path(), &k)).unwrap().expires;
        std::thread::sleep(Duration::from_millis(2200));
        let later = read(&lease_path(d.path(), &k)).unwrap().expires;
        assert!(later > first, "{first} -> {later}");
        drop(l);
    }
}
