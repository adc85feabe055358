//! `ventral-cluster`: executors that run a pipeline's stages beyond the driver's process.
//!
//! The engine (`ventral-dag`) stays the scheduler of the DAG: it decides which stages are
//! ready, writes each one's [`ventral_dag::Job`] under the store and hands it to an
//! [`ventral_dag::Executor`]. The [`process::ProcessExecutor`] runs each job as a
//! `ventral exec-stage KEY` process on this machine; the [`slurm::SlurmExecutor`] submits the ready jobs to Slurm as
//! job arrays of `ventral exec-stage KEY`, and decides completion from the store (the result
//! the node wrote and the output tree it stored), using `squeue` only to notice jobs that
//! died. The workspace's `ventral.toml` ([`config`]) chooses the executor and its settings.
//!
//! **Architecture invariant:** nothing here changes a key or an output. An executor only
//! decides *where* a job runs; what it computes is the job's, and the bytes are the same
//! whichever executor ran it.

pub mod config;
pub mod interrupt;
pub mod process;
pub mod slurm;

use std::path::PathBuf;

pub use config::{ExecutorConfig, ExecutorKind, RemoteConfig, WorkspaceConfig};
pub use process::ProcessExecutor;
pub use slurm::{JobRecord, SlurmExecutor};

/// What can go wrong outside a stage's own work.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The workspace config is unreadable or wrong; names the file and the field.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A Slurm command could not be run or refused.
    #[error("`{command}`: {message}")]
    Command {
        /// The command line (program and arguments).
        command: String,
        /// What happened.
        message: String,
    },
    /// Reading or writing a file of the store.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store.
    #[error(transparent)]
    Cas(#[from] ventral_cas::CasError),
}

/// This crate's results.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
