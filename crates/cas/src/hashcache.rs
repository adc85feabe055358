use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::atomic::atomic_write;
use crate::digest::{Digest, hash_file};
use crate::error::{IoContext, Result};

/// A file modified less than this long before it was hashed is not trusted from the cache
/// later: file-system timestamps are coarser than the clock, so a write landing just after
/// the hash could keep the same mtime ("racy" entries, as git calls them).
const RACY_NS: i128 = 50_000_000;

const HEADER: &str = "# ventral file-hash cache v1: inode size mtime_ns hashed_at_ns blake3 path";

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    hashed_at_ns: i128,
    digest: Digest,
}

/// File digests cached by (path, size, mtime, inode).
///
/// A hit costs one `stat`; a miss reads and hashes the file and records it. The cache is a
/// pure optimisation: a missing or unreadable cache file only costs re-hashing, and each
/// save replaces the file atomically.
#[derive(Debug)]
pub struct HashCache {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, Entry>>,
    dirty: AtomicBool,
    hits: AtomicU64,
    bytes_hashed: AtomicU64,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

impl HashCache {
    /// A cache that lives only in memory.
    pub fn in_memory() -> Self {
        HashCache {
            path: None,
            entries: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            bytes_hashed: AtomicU64::new(0),
        }
    }

    /// Load the cache from `path`. A missing file gives an empty cache; lines that do not
    /// parse are dropped (they only cost a re-hash).
    pub fn load(path: &Path) -> Self {
        let mut cache = HashCache::in_memory();
        cache.path = Some(path.to_path_buf());
        let Ok(text) = std::fs::read_to_string(path) else {
            return cache;
        };
        let map = cache.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.splitn(6, '\t');
            let parsed = (|| {
                let ino = parts.next()?.parse().ok()?;
                let size = parts.next()?.parse().ok()?;
                let mtime_ns = parts.next()?.parse().ok()?;
                let hashed_at_ns = parts.next()?.parse().ok()?;
                let digest = parts.next()?.parse().ok()?;
                let path = PathBuf::from(parts.next()?);
                Some((
                    path,
                    Entry {
                        ino,
                        size,
                        mtime_ns,
                        hashed_at_ns,
                        digest,
                    },
                ))
            })();
            if let Some((p, e)) = parsed {
                map.insert(p, e);
            }
        }
        cache
    }

    /// The digest of the file at `path`, from the cache when its size, mtime and inode are
    /// unchanged since it was hashed, else by reading it.
    pub fn hash_file(&self, path: &Path) -> Result<Digest> {
        let meta = std::fs::metadata(path).ctx("stat", path)?;
        if let Some(d) = self.lookup(path, &meta) {
            return Ok(d);
        }
        let hashed_at_ns = now_ns();
        let digest = hash_file(path)?;
        self.bytes_hashed.fetch_add(meta.len(), Ordering::Relaxed);
        self.record(path, &meta, hashed_at_ns, digest);
        Ok(digest)
    }

    /// The cached digest for `path` if `meta` still matches what was hashed.
    pub fn lookup_meta(&self, path: &Path, meta: &std::fs::Metadata) -> Option<Digest> {
        self.lookup(path, meta)
    }

    fn lookup(&self, path: &Path, meta: &std::fs::Metadata) -> Option<Digest> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.get(path)?;
        let m = mtime_ns(meta);
        if e.ino == meta.ino()
            && e.size == meta.len()
            && e.mtime_ns == m
            && e.mtime_ns + RACY_NS < e.hashed_at_ns
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Some(e.digest)
        } else {
            None
        }
    }

    fn record(&self, path: &Path, meta: &std::fs::Metadata, hashed_at_ns: i128, digest: Digest) {
        let Some(s) = path.to_str() else { return };
        if s.contains(['\t', '\n', '\r']) {
            return;
        }
        let entry = Entry {
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            hashed_at_ns,
            digest,
        };
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(path) != Some(&entry) {
            map.insert(path.to_path_buf(), entry);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Record a digest that the caller computed itself (for example while storing a file).
    pub fn insert(
        &self,
        path: &Path,
        digest: Digest,
        hashed_at_ns_before: Option<i128>,
    ) -> Result<()> {
        let meta = std::fs::metadata(path).ctx("stat", path)?;
        self.record(
            path,
            &meta,
            hashed_at_ns_before.unwrap_or_else(now_ns),
            digest,
        );
        Ok(())
    }

    /// How many lookups were answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// How many bytes were read to hash files that missed the cache.
    pub fn bytes_hashed(&self) -> u64 {
        self.bytes_hashed.load(Ordering::Relaxed)
    }

    /// Write the cache back if anything changed. Entries whose file no longer exists are
    /// dropped. The file is replaced atomically, so concurrent savers cannot corrupt it.
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = map.iter().filter(|(p, _)| p.exists()).collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(rows.len() * 128);
        out.push_str(HEADER);
        out.push('\n');
        for (p, e) in rows {
            if let Some(s) = p.to_str() {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    e.ino, e.size, e.mtime_ns, e.hashed_at_ns, e.digest, s
                ));
            }
        }
        atomic_write(path, out.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn age(path: &Path) {
        // Push the mtime well into the past so the entry is not "racy".
        let t = SystemTime::now() - Duration::from_secs(10);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    #[test]
    fn second_lookup_is_a_hit_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.bin");
        std::fs::write(&f, vec![7u8; 4096]).unwrap();
        age(&f);
        let cpath = dir.path().join("cache.tsv");
        let c = HashCache::load(&cpath);
        let d1 = c.hash_file(&f).unwrap();
        assert_eq!(c.hits(), 0);
        assert_eq!(c.bytes_hashed(), 4096);
        c.save().unwrap();
        let c2 = HashCache::load(&cpath);
        assert_eq!(c2.hash_file(&f).unwrap(), d1);
        assert_eq!(c2.hits(), 1);
        assert_eq!(c2.bytes_hashed(), 0);
    }

    #[test]
    fn modified_file_is_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"aaaa").unwrap();
        age(&f);
        let c = HashCache::in_memory();
        let d1 = c.hash_file(&f).unwrap();
        std::fs::write(&f, b"bbbb").unwrap(); // same size, new mtime
        let d2 = c.hash_file(&f).unwrap();
        assert_ne!(d1, d2);
        assert_eq!(d2, crate::hash_bytes(b"bbbb"));
    }

    #[test]
    fn racy_entry_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"aaaa").unwrap();
        let c = HashCache::in_memory();
        c.hash_file(&f).unwrap();
        c.hash_file(&f).unwrap();
        // Just written: the mtime is within the racy window, so both reads hashed.
        assert_eq!(c.hits(), 0);
    }

    #[test]
    fn garbage_cache_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cpath = dir.path().join("cache.tsv");
        std::fs::write(&cpath, "not\ta\tcache\n\u{0}\u{1}").unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"hello").unwrap();
        let c = HashCache::load(&cpath);
        assert_eq!(c.hash_file(&f).unwrap(), crate::hash_bytes(b"hello"));
    }
}
