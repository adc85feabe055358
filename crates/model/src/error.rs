use std::path::PathBuf;

/// Errors of the model crate; each names the file, tensor or knob at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An I/O error on a file.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint is not the `torch.save` format we read.
    #[error("{path}: {field}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Where in it (ZIP entry, pickle offset, key).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Weights do not fit the model: every missing, unexpected and mis-shaped key.
    #[error("{path}: the weights do not fit {model}:{}", list(.missing, .unexpected, .mismatched))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The model described.
        model: String,
        /// Keys the model needs that the file lacks.
        missing: Vec<String>,
        /// Keys the file has that the model lacks.
        unexpected: Vec<String>,
        /// `key: file shape vs model shape`.
        mismatched: Vec<String>,
    },
    /// A bad configuration value.
    #[error("model config `{field}`: {message}")]
    Config {
        /// The knob.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// libtorch reported an error.
    #[error("{context}: {message}")]
    Torch {
        /// What we were doing.
        context: String,
        /// libtorch's message.
        message: String,
    },
    /// Reading inputs or writing stores failed.
    #[error(transparent)]
    Store(#[from] ventral_store::StoreError),
    /// Reading a stimulus set or image index failed.
    #[error(transparent)]
    Ingest(#[from] ventral_ingest::IngestError),
}

fn list(missing: &[String], unexpected: &[String], mismatched: &[String]) -> String {
    let mut s = String::new();
    for (what, v) in [
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", mismatched),
    ] {
        if !v.is_empty() {
            let head: Vec<&str> = v.iter().take(10).map(String::as_str).collect();
            let more = if v.len() > 10 {
                format!(" (and {} more)", v.len() - 10)
            } else {
                String::new()
            };
            s.push_str(&format!(" {} {what}: {}{more};", v.len(), head.join(", ")));
        }
    }
    s
}

/// Result alias.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io {
        path: path.into(),
        message: e.to_string(),
    }
}

pub(crate) fn torch(context: impl Into<String>, e: impl std::fmt::Display) -> ModelError {
    ModelError::Torch {
        context: context.into(),
        message: e.to_string(),
    }
}

impl From<ventral_model_spec::config::ConfigError> for ModelError {
    fn from(e: ventral_model_spec::config::ConfigError) -> Self {
        ModelError::Config {
            field: e.field,
            message: e.message,
        }
    }
}
