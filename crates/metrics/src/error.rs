/// Errors of the metrics, naming the quantity and value at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    /// Inputs that cannot be scored, with the reason.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T, E = MetricError> = std::result::Result<T, E>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(MetricError::Invalid(msg.into()))
}
