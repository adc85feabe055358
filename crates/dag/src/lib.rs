//! `ventral-dag`: the content-addressed stage engine.
//!
//! A pipeline is a TOML file of stages ([`pipeline`]). Each stage has a kind (a
//! [`StageKind`] registered by the binary, or the built-in `cmd`), params, and
//! inputs: workspace files, globs, folders, or other stages' outputs. The engine
//! ([`engine`]) expands matrices, orders the graph ([`graph`]), computes each stage's key —
//! blake3 of its kind, the kind's code identity, its runtime, its canonical params and its
//! input digests ([`key`]) — and runs only stages whose key has no result yet, writing
//! outputs to the object store of `ventral-cas` and the lockfile ([`lockfile`]).
//!
//! **Architecture invariant:** nothing here knows what a stage computes. Kinds are opaque
//! functions from (params, input paths) to an output folder.

pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod key;
pub mod lockfile;
pub mod pipeline;
pub mod resources;

pub use engine::{
    Action, Engine, Executed, Executor, Job, LocalExecutor, NoProgress, Progress, Reason,
    RemoteCache, RunOptions, RunReport, StageOutcome, StageStatus, Status, Workspace, execute_job,
};
pub use error::{DagError, Result};
pub use graph::Graph;
pub use lockfile::{LockEntry, LockInput, Lockfile};
pub use pipeline::{InputRef, Pipeline, StageSpec};
pub use resources::Resources;
pub use ventral_stage::{
    BoxError, ParamSpec, ParamType, Params, Registry, StageContext, StageKind, canonical, cmd,
};
