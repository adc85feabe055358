//! What the session is built from: store roots and lockfile rows, gathered by the caller.

use std::path::PathBuf;

/// A folder that holds assemblies or score tables (usually a stage's output).
#[derive(Clone, Debug)]
pub struct StoreRoot {
    /// The folder.
    pub path: PathBuf,
    /// The pipeline whose lockfile names it, if any.
    pub pipeline: Option<String>,
    /// The stage that produced it, if any.
    pub stage: Option<String>,
    /// The stage key, if any.
    pub key: Option<String>,
    /// The output digest (a tree), if any.
    pub digest: Option<String>,
}

/// One stage of a lockfile, for the `runs` table.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    /// Pipeline name.
    pub pipeline: String,
    /// Profile.
    pub profile: String,
    /// Stage name.
    pub stage: String,
    /// Kind.
    pub kind: String,
    /// Stage key.
    pub key: String,
    /// Output digest.
    pub output: String,
    /// Code identity of the kind.
    pub code: String,
    /// Runtime, if any.
    pub runtime: Option<String>,
    /// Params as canonical JSON.
    pub params: String,
    /// Seconds the run took, from its run record.
    pub seconds: Option<f64>,
    /// When it finished (seconds since the epoch), from its run record.
    pub finished_unix: Option<i64>,
    /// Host it ran on.
    pub host: Option<String>,
}

/// Everything a session is built from.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Folders to search for stores.
    pub roots: Vec<StoreRoot>,
    /// Lockfile rows.
    pub runs: Vec<RunRow>,
}
