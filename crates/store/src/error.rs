use std::path::PathBuf;

/// Errors of the assembly store; each names the store and what in it is at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on a file of a store.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The folder is not an assembly (no or foreign `zarr.json`).
    #[error("{path}: not a ventral assembly: {message}")]
    NotAnAssembly {
        /// The folder.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A Zarr operation failed.
    #[error("store {store}: {what}: {message}")]
    Zarr {
        /// The assembly folder.
        store: PathBuf,
        /// What we were doing ("chunk [3, 0] (values/c/3/0)", "open values", …).
        what: String,
        /// The zarrs error.
        message: String,
    },
    /// A Parquet coordinate file is unreadable or does not match the assembly.
    #[error("store {store}: {file}: {column}{message}")]
    Coords {
        /// The assembly folder.
        store: PathBuf,
        /// The Parquet file (relative to the store).
        file: String,
        /// The column at fault, with a colon, or empty.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A score store's file (`score.json`, `scores.parquet`, `eval.json`) is malformed.
    #[error("{file}: {}{message}", if field.is_empty() { String::new() } else { format!("field `{field}`: ") })]
    Format {
        /// The file.
        file: PathBuf,
        /// The field or column at fault, or empty.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A caller asked for something the assembly does not have.
    #[error("store {store}: {message}")]
    Request {
        /// The assembly folder.
        store: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
