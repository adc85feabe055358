//! `ventral-sql`: read-only SQL over a workspace's stores, with DataFusion.
//!
//! A [`SqlSession`] registers these tables:
//!
//! | table | one row per | from |
//! |---|---|---|
//! | `assemblies` | assembly store | each store's `zarr.json` |
//! | `stimuli` | (assembly, stimulus or presentation) | `coords/presentation.parquet` or `coords/stimulus.parquet` |
//! | `neuroids` | (assembly, neuroid) | `coords/neuroid.parquet` |
//! | `activations` | (assembly, stimulus, neuroid) value | the Zarr chunks of every `activations` assembly, streamed, with projection, limit and filter pushdown |
//! | `scores` | score value | `scores.parquet` of score stages |
//! | `runs` | stage of a lockfile | the lockfiles and run records |
//!
//! Filters on `assembly`, `model`, `layer`, `timestep`, `stimulus_id` and `neuroid` select
//! the chunks an `activations` scan decodes; nothing else is read. Statements that would
//! write (DDL, DML, `COPY`) are refused, and no table reads a path outside the workspace's
//! stores.
//!
//! **Architecture invariant:** this is the only crate that links DataFusion, and it changes
//! rarely: the binary calls [`SqlSession::new`], [`SqlSession::query`] and
//! [`write_results`], and instantiates no DataFusion generics itself.

mod activations;
mod catalog;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod output;
mod pushdown;
mod session;
pub use session::within;

pub use catalog::{Catalog, RunRow, StoreRoot};
pub use error::{Result, SqlError};
pub use output::{OutputFormat, write_results};
pub use session::{ScanStats, SqlSession};

/// Re-exported for callers that inspect results.
pub use datafusion::arrow::record_batch::RecordBatch;
