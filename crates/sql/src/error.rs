/// Errors of the SQL layer.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A store could not be opened or read.
    #[error(transparent)]
    Store(#[from] ventral_store::StoreError),
    /// A statement that would write or leave the workspace.
    #[error("ventral sql is read-only: {0}")]
    ReadOnly(String),
    /// A lockfile or an extra store folder of the catalog could not be read.
    #[error("{path}: {message}")]
    Catalog {
        /// The file or folder.
        path: String,
        /// Why.
        message: String,
    },
    /// A stored file is not what the store recorded (changed, truncated, bit rot).
    #[error(
        "{path}: damaged: {problem}; `ventral verify` quarantines it and the next `ventral run` recomputes it"
    )]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The query failed (parse, plan or execution).
    #[error("{0}")]
    Query(String),
    /// Writing results failed.
    #[error("{path}: {message}")]
    Output {
        /// Where we were writing.
        path: String,
        /// Why it failed.
        message: String,
    },
}

impl From<datafusion::error::DataFusionError> for SqlError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        // A store error raised inside a scan comes back wrapped: surface it as is.
        match e.find_root() {
            datafusion::error::DataFusionError::External(inner) => {
                SqlError::Query(inner.to_string())
            }
            root => SqlError::Query(root.to_string()),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl From<datafusion::arrow::error::ArrowError> for SqlError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        SqlError::Query(e.to_string())
    }
}
