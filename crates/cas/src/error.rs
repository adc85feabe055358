use std::path::PathBuf;

/// Errors of the object store. Each names the file or object at fault.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// An I/O operation on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing ("read", "rename", …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A string that should be a 64-hex-digit blake3 digest is not.
    #[error("`{0}` is not a blake3 digest (64 hex digits)")]
    BadDigest(String),
    /// A tree manifest that does not parse.
    #[error("tree manifest {digest}: line {line}: {message}")]
    BadTree {
        /// The tree's digest.
        digest: String,
        /// 1-based line in the manifest.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An object was asked for and is not in the store.
    #[error("object {0} is not in the store")]
    Missing(String),
    /// An object's bytes no longer hash to its name.
    #[error("object {digest} is damaged: {path} hashes to {actual}")]
    Damaged {
        /// The expected digest.
        digest: String,
        /// The file that holds the damaged bytes.
        path: PathBuf,
        /// What the bytes hash to now.
        actual: String,
    },
    /// A stage output holds something we refuse to store.
    #[error("{path}: {message}")]
    Unstorable {
        /// The offending path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The workspace lock could not be taken in time.
    #[error(
        "the workspace {workspace} is locked{holder}; waited {waited_s:.1} s (raise --lock-timeout to wait longer)"
    )]
    Locked {
        /// The workspace's store directory.
        workspace: PathBuf,
        /// A description of the holder, if it left one.
        holder: String,
        /// How long we waited.
        waited_s: f64,
    },
    /// A JSON record in the store does not parse.
    #[error("{path}: {message}")]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = CasError> = std::result::Result<T, E>;

/// Attach an operation and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| CasError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
