//! Results read where they lie: a stage output in the remote as a [`ventral_store::Source`],
//! so that `ventral sql --remote` opens its stores and reads only the objects (and, in a
//! shard, the byte ranges) a query needs, without pulling the output.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::ObjectStoreExt;
use ventral_cas::{Digest, Tree, TreeEntry};
use ventral_store::{Bytes, Source};

use crate::{Remote, RemoteError, Result};

/// What [`RemoteTree`]s have read from their remote.
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Requests made (a whole object, or a set of byte ranges of one).
    pub requests: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
}

/// One stage output in a remote, read in place: its tree manifest was fetched and checked
/// against the output's digest; each file is read from its object when asked for. A whole
/// file is checked against its blake3 as it arrives (a mismatch is an error naming the
/// object; the remote is left as it is — a query does not write); byte ranges of a file
/// (row bands of a shard) are checked against the file's recorded size only, as a local
/// read of a few bands is.
pub struct RemoteTree {
    remote: Arc<Remote>,
    output: Digest,
    files: BTreeMap<String, TreeEntry>,
    folders: BTreeSet<String>,
    counters: Arc<ReadCounters>,
}

impl std::fmt::Debug for RemoteTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteTree({} in {:?})", self.output, self.remote)
    }
}

impl Remote {
    /// The output `output` as a [`RemoteTree`]: its manifest fetched and verified. Reads
    /// are counted in `counters` (shared by the trees of one query session).
    pub fn tree(
        self: &Arc<Self>,
        output: &Digest,
        counters: Arc<ReadCounters>,
    ) -> Result<RemoteTree> {
        let path = self.object(output);
        let bytes = self
            .get_object(&path)?
            .ok_or_else(|| RemoteError::Corrupt {
                remote: self.name.clone(),
                path: self.shown(&path),
                message: "the tree manifest of a recorded output is missing".into(),
            })?;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let got = ventral_cas::hash_bytes(&bytes);
        if got != *output {
            return Err(self.corrupt(&path, format!("its bytes hash to {got}")));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| self.corrupt(&path, format!("not a tree manifest: {e}")))?;
        let tree =
            Tree::parse(&output.to_hex(), text).map_err(|e| self.corrupt(&path, e.to_string()))?;
        let mut folders = BTreeSet::new();
        for e in &tree.entries {
            let mut parts: Vec<&str> = e.path.split('/').collect();
            parts.pop();
            for i in 1..=parts.len() {
                folders.insert(parts[..i].join("/"));
            }
        }
        Ok(RemoteTree {
            remote: self.clone(),
            output: *output,
            files: tree
                .entries
                .into_iter()
                .map(|e| (e.path.clone(), e))
                .collect(),
            folders,
            counters,
        })
    }

    /// An object's bytes, or `None` when it is absent. Runs on the remote's own runtime, so
    /// callers may block in any context (a query engine's worker threads included).
    fn get_object(&self, path: &object_store::path::Path) -> Result<Option<Bytes>> {
        let (store, p) = (self.store.clone(), path.clone());
        let got = self.on_runtime(async move {
            match store.get(&p).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map_err(self.err("read", path))
    }

    /// Byte ranges of an object, or `None` when it is absent.
    fn get_object_ranges(
        &self,
        path: &object_store::path::Path,
        ranges: &[Range<u64>],
    ) -> Result<Option<Vec<Bytes>>> {
        let (store, p, r) = (self.store.clone(), path.clone(), ranges.to_vec());
        let got = self.on_runtime(async move {
            match store.get_ranges(&p, &r).await {
                Ok(parts) => Ok(Some(parts)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map_err(self.err("read", path))
    }

    /// Run `fut` on the remote's runtime and wait for it from this thread, whatever runtime
    /// this thread belongs to.
    fn on_runtime<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = std::result::Result<T, object_store::Error>>
        + Send
        + 'static,
    ) -> std::result::Result<T, object_store::Error> {
        let handle = self.rt.spawn(fut);
        futures::executor::block_on(handle).unwrap_or_else(|e| {
            Err(object_store::Error::Generic {
                store: "remote",
                source: Box::new(e),
            })
        })
    }
}

fn io_error(e: RemoteError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl RemoteTree {
    /// The output's digest.
    pub fn output(&self) -> &Digest {
        &self.output
    }

    /// The error for an object the tree names and the remote lacks: never read as an
    /// absent (fill-value) chunk.
    fn missing(&self, object: &object_store::path::Path, path: &str) -> RemoteError {
        self.remote.corrupt(
            object,
            format!("missing: `{path}` of output {} names it", self.output),
        )
    }

    /// The recorded entry of the file `path`.
    fn entry(&self, path: &str) -> Option<&TreeEntry> {
        self.files.get(path)
    }
}

impl Source for RemoteTree {
    fn read(&self, path: &str) -> std::io::Result<Option<Bytes>> {
        let Some(e) = self.entry(path) else {
            return Ok(None);
        };
        let object = self.remote.object(&e.digest);
        let bytes = self
            .remote
            .get_object(&object)
            .map_err(io_error)?
            .ok_or_else(|| io_error(self.missing(&object, path)))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let got = ventral_cas::hash_bytes(&bytes);
        if got != e.digest {
            return Err(io_error(self.remote.corrupt(
                &object,
                format!(
                    "its bytes hash to {got} (`{path}` of output {})",
                    self.output
                ),
            )));
        }
        Ok(Some(bytes))
    }

    fn read_ranges(
        &self,
        path: &str,
        ranges: &[Range<u64>],
    ) -> std::io::Result<Option<Vec<Bytes>>> {
        let Some(e) = self.entry(path) else {
            return Ok(None);
        };
        let object = self.remote.object(&e.digest);
        if let Some(r) = ranges.iter().find(|r| r.end > e.size || r.start > r.end) {
            return Err(std::io::Error::other(format!(
                "{}: bytes {r:?} asked of a {}-byte file",
                self.remote.shown(&object),
                e.size
            )));
        }
        let parts = self
            .remote
            .get_object_ranges(&object, ranges)
            .map_err(io_error)?
            .ok_or_else(|| io_error(self.missing(&object, path)))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let n: usize = parts.iter().map(Bytes::len).sum();
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if parts
            .iter()
            .zip(ranges)
            .any(|(p, r)| p.len() as u64 != r.end - r.start)
        {
            return Err(io_error(self.remote.corrupt(
                &object,
                format!("shorter than the {} bytes recorded for `{path}`", e.size),
            )));
        }
        Ok(Some(parts))
    }

    fn size(&self, path: &str) -> std::io::Result<Option<u64>> {
        Ok(self.entry(path).map(|e| e.size))
    }

    fn folders(&self, path: &str) -> Vec<String> {
        let under = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        self.folders
            .range(under.clone()..)
            .take_while(|f| f.starts_with(&under))
            .filter_map(|f| f.strip_prefix(&under))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }

    fn locate(&self, path: &str) -> PathBuf {
        let manifest = self.remote.shown(&self.remote.object(&self.output));
        if path.is_empty() {
            manifest.into()
        } else {
            format!("{manifest}/{path}").into()
        }
    }
}
