use std::path::PathBuf;

/// Errors of the readers and writers; each names the file and the field (variable, column,
/// ZIP entry, attribute) at fault.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An I/O error on a file.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is readable but its content is not what the format requires.
    #[error("{file}: {field}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field, variable, column or entry at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Writing or reading one of our stores failed.
    #[error(transparent)]
    Store(#[from] ventral_store::StoreError),
    /// An error the `ventral-netcdf` worker reported, as it worded it.
    #[error("{message}")]
    Worker {
        /// The message (it names the file).
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// An [`IngestError::Io`] on `path`.
pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> IngestError {
    IngestError::Io {
        path: path.into(),
        message: e.to_string(),
    }
}

/// An [`IngestError::Invalid`] of `file`'s `field`.
pub fn invalid(
    file: impl Into<PathBuf>,
    field: impl Into<String>,
    message: impl Into<String>,
) -> IngestError {
    IngestError::Invalid {
        file: file.into(),
        field: field.into(),
        message: message.into(),
    }
}
