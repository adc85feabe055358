use std::path::PathBuf;

/// Errors of the stage engine.
///
/// [`DagError::Pipeline`] is a mistake in a pipeline file (the CLI exits 2 for it and
/// writes nothing); the others arise while running.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// A pipeline file is wrong: it names the file, the line and, when known, the stage.
    #[error("{}:{line}: {}{message}", file.display(), stage.as_ref().map(|s| format!("stage `{s}`: ")).unwrap_or_default())]
    Pipeline {
        /// The pipeline file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The stage concerned, if any.
        stage: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A lockfile that cannot be read.
    #[error("{}: {message}", file.display())]
    Lockfile {
        /// The lockfile.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A stage refused a param when it started ([`ventral_stage::ParamError`]): a value
    /// only its inputs could show to be bad.
    #[error("stage `{stage}`: {message}")]
    BadParam {
        /// The stage.
        stage: String,
        /// The refusal, naming the param.
        message: String,
    },
    /// A stage failed while running.
    #[error("stage `{stage}` failed: {message}")]
    StageFailed {
        /// The stage.
        stage: String,
        /// Why.
        message: String,
    },
    /// A job prepared by a build whose code identity for the kind differs from this one's.
    #[error(
        "stage `{stage}`: the job was prepared for code {job} of kind `{kind}`, but this build's is {here}; run it with the build that prepared it"
    )]
    CodeMismatch {
        /// The stage.
        stage: String,
        /// The kind.
        kind: String,
        /// The code identity the job carries.
        job: String,
        /// This build's code identity of the kind.
        here: String,
    },
    /// An input changed while its stage was running; the result was not recorded.
    #[error(
        "stage `{stage}`: input `{input}` changed while the stage ran; its result was discarded (run again)"
    )]
    InputChanged {
        /// The stage.
        stage: String,
        /// The input that changed.
        input: String,
    },
    /// An error of the object store.
    #[error(transparent)]
    Cas(#[from] ventral_cas::CasError),
    /// Something else, with context.
    #[error("{0}")]
    Other(String),
}

impl DagError {
    /// Whether this is a mistake in a pipeline file (exit code 2).
    pub fn is_pipeline_error(&self) -> bool {
        matches!(
            self,
            DagError::Pipeline { .. } | DagError::CodeMismatch { .. } | DagError::BadParam { .. }
        )
    }
}

/// Result alias for this crate.
pub type Result<T, E = DagError> = std::result::Result<T, E>;
