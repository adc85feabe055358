//! `ventral-fetch`: the paper's datasets and weights, from the source manifests in
//! `manifests/` to the `data/real/` layout `--profile real` reads.
//!
//! - [`sources`]: the manifest format (URLs and the publishers' own hashes), and verifying a
//!   file against it;
//! - [`download`]: parallel ranged downloads over HTTPS (reqwest, rustls), resumed after an
//!   interruption from a `.part` file and its chunk map, every file verified before it is
//!   renamed to its name;
//! - [`unpack`]: archives unpacked where the pipelines expect folders;
//! - [`brainio`]: the BrainIO catalog (`lookup.csv`) written for the files fetched;
//! - [`check`]: a stage's input checked against a source manifest before the stage reads
//!   it (what `ventral fetch` verified, and a folder it unpacked, still as it was).
//!
//! **Architecture invariant:** a file is visible under its name only once every hash its
//! manifest gives has matched; a partial or corrupt download lives only under a `.part`
//! name, and a mismatch removes it.

pub mod brainio;
pub mod check;
pub mod download;
#[doc(hidden)]
pub mod fuzzing;
pub mod sources;
pub mod unpack;

use std::path::{Path, PathBuf};

pub use check::{InputCheck, check_input};
pub use download::{Event, FetchOptions, FileReport, FileStatus, fetch};
pub use sources::{Hashes, SourceFile, Sources, verify_file};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A manifest is malformed.
    #[error("{path}: {field}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The field (or line).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A file does not match its manifest.
    #[error("{path}: {algo} mismatch: expected {expected}, got {got}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// `sha1`, `md5`, `sha256`, `sha256_prefix`, `blake3` or `size`.
        algo: String,
        /// What the manifest says.
        expected: String,
        /// What the file hashes to.
        got: String,
    },
    /// The server refused or the transfer failed for good.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// An archive could not be unpacked.
    #[error("{path}: {message}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A folder unpacked from an archive no longer holds what the archive held.
    #[error("{path}: {message} (unpacked from {archive})")]
    Unpacked {
        /// The file.
        path: PathBuf,
        /// The archive it came from.
        archive: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A local file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl FetchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        FetchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, FetchError>;
