//! Where an assembly's files are read from: the storage layer under [`crate::Assembly`].
//!
//! A [`Source`] hands out a file's bytes — whole, or some byte ranges of it — by its
//! `/`-separated path below a root. [`LocalDir`] is a folder on disk; other crates supply
//! their own (the remote cache's trees of content-named objects, read where they lie). The
//! reader asks only for what it decodes: `zarr.json`, the coordinate tables it is asked for,
//! and the chunk files (or, in a shard, the index and the row bands) a read touches.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    MaybeBytes, MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
};

/// The bytes a [`Source`] hands out (cheap to clone and slice).
pub use zarrs::storage::Bytes;

/// Files by path below a root, for reading.
pub trait Source: Send + Sync + std::fmt::Debug + 'static {
    /// The whole file at `path`; `None` when there is no such file.
    fn read(&self, path: &str) -> std::io::Result<Option<Bytes>>;

    /// The byte ranges `ranges` of the file at `path`, in the order asked; `None` when there
    /// is no such file. A range past the end of the file is an error.
    fn read_ranges(&self, path: &str, ranges: &[Range<u64>])
    -> std::io::Result<Option<Vec<Bytes>>>;

    /// The size of the file at `path`; `None` when there is no such file.
    fn size(&self, path: &str) -> std::io::Result<Option<u64>>;

    /// The names of the folders directly under the folder `path` (`""` is the root), sorted;
    /// empty when there is no such folder.
    fn folders(&self, path: &str) -> Vec<String>;

    /// Where `path` is, for people: a file's path on disk, or a URL.
    fn locate(&self, path: &str) -> PathBuf;
}

/// `a/b` from a folder `a` (possibly empty) and a path `b` below it.
pub(crate) fn join(folder: &str, path: &str) -> String {
    match (folder.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => folder.to_string(),
        (false, false) => format!("{folder}/{path}"),
    }
}

/// A folder on disk.
#[derive(Clone, Debug)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The folder `root`.
    pub fn new(root: &Path) -> LocalDir {
        LocalDir {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

/// `Ok(None)` for a file that is not there.
fn absent_is_none<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Source for LocalDir {
    fn read(&self, path: &str) -> std::io::Result<Option<Bytes>> {
        absent_is_none(std::fs::read(self.path(path))).map(|b| b.map(Bytes::from))
    }

    fn read_ranges(
        &self,
        path: &str,
        ranges: &[Range<u64>],
    ) -> std::io::Result<Option<Vec<Bytes>>> {
        use std::os::unix::fs::FileExt;
        let Some(file) = absent_is_none(std::fs::File::open(self.path(path)))? else {
            return Ok(None);
        };
        ranges
            .iter()
            .map(|r| {
                let mut buf = vec![0u8; r.end.saturating_sub(r.start) as usize];
                file.read_exact_at(&mut buf, r.start)?;
                Ok(Bytes::from(buf))
            })
            .collect::<std::io::Result<Vec<Bytes>>>()
            .map(Some)
    }

    fn size(&self, path: &str) -> std::io::Result<Option<u64>> {
        absent_is_none(std::fs::metadata(self.path(path))).map(|m| m.map(|m| m.len()))
    }

    fn folders(&self, path: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path(path)) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    fn locate(&self, path: &str) -> PathBuf {
        self.path(path)
    }
}

/// A [`Source`]'s folder as zarrs storage (read-only), so that zarrs opens and decodes the
/// arrays our fast path does not.
pub(crate) struct SourceStorage {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) folder: String,
}

fn storage_error(e: std::io::Error) -> StorageError {
    StorageError::IOError(Arc::new(e))
}

impl ReadableStorageTraits for SourceStorage {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.source
            .read(&join(&self.folder, key.as_str()))
            .map_err(storage_error)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let path = join(&self.folder, key.as_str());
        let asked: Vec<ByteRange> = byte_ranges.collect();
        let from_end = asked
            .iter()
            .any(|r| matches!(r, ByteRange::Suffix(_) | ByteRange::FromStart(_, None)));
        let size = if from_end {
            match self.source.size(&path).map_err(storage_error)? {
                Some(n) => n,
                None => return Ok(None),
            }
        } else {
            u64::MAX
        };
        let ranges: Vec<Range<u64>> = asked.iter().map(|r| r.to_range(size)).collect();
        let Some(parts) = self
            .source
            .read_ranges(&path, &ranges)
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        Ok(Some(Box::new(parts.into_iter().map(Ok))))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.source
            .size(&join(&self.folder, key.as_str()))
            .map_err(storage_error)
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}
