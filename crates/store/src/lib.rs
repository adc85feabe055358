//! `ventral-store`: assemblies on disk.
//!
//! An *assembly* is a value array with named dimensions — `(presentation, neuroid)`,
//! `(stimulus, neuroid)`, `(presentation, neuroid, time_bin)`, … — plus one coordinate table
//! per dimension. On disk it is a folder that zarr-python, xarray, pyarrow and DuckDB open
//! without us:
//!
//! ```text
//! <assembly>/zarr.json            Zarr v3 group; attributes["ventral"] = AssemblyMeta
//! <assembly>/values/zarr.json     Zarr v3 array (float32 or float64; blosc-lz4 or zstd),
//!                                 dimension_names
//! <assembly>/values/c/<i>/<j>…    chunks, split along the first dimension (and the second
//!                                 when rows are wide)
//! <assembly>/coords/<dim>.parquet one Parquet table per dimension, one row per index
//! ```
//!
//! [`AssemblyWriter`] streams rows in with bounded memory (one band of chunks at a time);
//! [`Assembly`] opens, checks and slices one. Every error names the store, and the chunk,
//! file or column at fault.
//!
//! The reader reads through a [`Source`]: a folder on disk ([`LocalDir`]), or anything that
//! hands out a file's bytes and byte ranges by path — the remote cache's trees, read where
//! they lie. It asks for the metadata, the coordinate tables it is asked for and the chunk
//! files (in a shard: the index and the row bands) a read touches, nothing else.

mod assembly;
mod coords;
mod error;
pub mod scores;
mod source;
mod writer;

pub use assembly::{Assembly, AssemblyMeta, DType, find_assemblies, find_assemblies_in};
pub use coords::{parquet_from_bytes, read_parquet, write_parquet};
pub use error::{Result, StoreError};
pub use source::{Bytes, LocalDir, Source};
pub use writer::{AssemblySpec, AssemblyWriter, Codec, StoreValue};

/// Re-exported so users of this crate build coordinate tables with the same arrow version.
pub use arrow;

/// The format tag in `attributes["ventral"]["format"]`.
pub const FORMAT: &str = "ventral-assembly v1";

#[cfg(test)]
mod tests;
