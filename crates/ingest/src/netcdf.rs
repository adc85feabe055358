//! BrainIO DataAssemblies in netCDF4 (HDF5): the types of their layout, and the entry points
//! that read them ([`read_header`], [`ingest_netcdf`]) — in the `ventral-netcdf` worker process.
//!
//! libhdf5 is C that parses whatever bytes it is given, and fuzzing found inputs that crash
//! it (`fuzz/findings/netcdf`); it also links about thirty shared libraries that every start
//! of a process would pay for. So no ventral process links it but `ventral-netcdf`
//! (`crates/netcdf`), which [`crate::worker`] starts for each file: a damaged file is then
//! an error naming the file, never a crash of the engine, and `ventral --version` stays
//! quick. The layout itself (which variable is the data, how dimensions and coordinates are
//! named) is described in `crates/netcdf/src/read.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, StringArray, UInt64Array};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;

/// The `NAME` netCDF gives a dimension that has no coordinate variable.
pub const DIM_ONLY_PREFIX: &str = "This is a netCDF dimension but not a netCDF variable.";

/// The element type of a variable, as written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NcType {
    /// Strings (variable or fixed length).
    Str,
    /// Signed integers of 1, 2, 4, 8 bytes.
    Int8,
    /// 16-bit.
    Int16,
    /// 32-bit.
    Int32,
    /// 64-bit.
    Int64,
    /// Unsigned integers.
    Uint8,
    /// 16-bit.
    Uint16,
    /// 32-bit.
    Uint32,
    /// 64-bit.
    Uint64,
    /// IEEE single.
    Float32,
    /// IEEE double.
    Float64,
}

/// One variable of the file (no values).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NcVariable {
    /// The name.
    pub name: String,
    /// Its dimensions.
    pub dims: Vec<String>,
    /// Its element type.
    pub dtype: NcType,
    /// Its attributes (encoding attributes left out), each `{"dtype", "value"}`.
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
}

/// A coordinate column's values.
#[derive(Clone, Debug)]
pub enum Column {
    /// Strings.
    Str(Vec<String>),
    /// Signed integers.
    Int(Vec<i64>),
    /// Unsigned integers.
    UInt(Vec<u64>),
    /// Single floats.
    F32(Vec<f32>),
    /// Double floats.
    F64(Vec<f64>),
}

impl Column {
    /// Length.
    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::UInt(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As an Arrow array.
    pub fn to_arrow(&self) -> ArrayRef {
        match self {
            Column::Str(v) => Arc::new(StringArray::from_iter_values(v)),
            Column::Int(v) => Arc::new(Int64Array::from(v.clone())),
            Column::UInt(v) => Arc::new(UInt64Array::from(v.clone())),
            Column::F32(v) => Arc::new(Float32Array::from(v.clone())),
            Column::F64(v) => Arc::new(Float64Array::from(v.clone())),
        }
    }

    /// The values as strings (ids).
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Column::Str(v) => v.clone(),
            Column::Int(v) => v.iter().map(|x| x.to_string()).collect(),
            Column::UInt(v) => v.iter().map(|x| x.to_string()).collect(),
            Column::F32(v) => v.iter().map(|x| x.to_string()).collect(),
            Column::F64(v) => v.iter().map(|x| x.to_string()).collect(),
        }
    }
}

/// What the store keeps of the original file so that [`crate::export`] writes it back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BrainioLayout {
    /// The file name it came from.
    pub source: String,
    /// The data variable (name, dims in file order, dtype, attributes).
    pub data: NcVariable,
    /// The coordinate variables in file order, with their original types.
    pub coords: Vec<NcVariable>,
    /// Global attributes.
    pub global_attrs: BTreeMap<String, Value>,
}

/// Options of [`ingest_netcdf`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IngestOptions {
    /// The identifier (default: the global `identifier` attribute, else the file stem).
    pub identifier: Option<String>,
    /// The producing stage key.
    pub producer: Option<String>,
    /// The stimulus-set store (see [`crate::stimuli`]) whose coordinate table is joined on
    /// `stimulus_id`, if any.
    pub stimuli: Option<PathBuf>,
    /// Elements per band read from the file (default 4 Mi).
    pub band_elements: Option<usize>,
}

/// What an ingest wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AssemblySummary {
    /// The identifier.
    pub identifier: String,
    /// The kind.
    pub kind: String,
    /// Dimension names in store order.
    pub dims: Vec<String>,
    /// Shape in store order.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: String,
    /// Coordinate columns per dimension.
    pub coords: BTreeMap<String, Vec<String>>,
    /// NaN values (legal data: kept).
    pub nan_count: u64,
}

impl NcType {
    /// A signed integer type.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            NcType::Int8 | NcType::Int16 | NcType::Int32 | NcType::Int64
        )
    }

    /// An unsigned integer type.
    pub fn is_unsigned(self) -> bool {
        matches!(
            self,
            NcType::Uint8 | NcType::Uint16 | NcType::Uint32 | NcType::Uint64
        )
    }
}

/// The structure of a BrainIO netCDF file (no values).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NcHeader {
    /// The file.
    pub path: PathBuf,
    /// The data variable.
    pub data: NcVariable,
    /// Lengths of the data variable's dimensions, in its order.
    pub shape: Vec<usize>,
    /// The coordinate variables (1-D, on the data variable's dims), in file order.
    pub coords: Vec<NcVariable>,
    /// Global attributes (each `{"dtype", "value"}`).
    pub global_attrs: BTreeMap<String, Value>,
}

impl NcHeader {
    /// A global attribute's value, when it is a string.
    pub fn global_str(&self, name: &str) -> Option<&str> {
        self.global_attrs
            .get(name)
            .and_then(|v| v.get("value"))
            .and_then(|v| v.as_str())
    }
}

/// Read the structure of the netCDF4 file at `path` (in the worker).
pub fn read_header(path: &Path) -> Result<NcHeader> {
    crate::worker::call(path, &[std::ffi::OsStr::new("header"), path.as_os_str()])
}

/// Ingest the BrainIO netCDF file `path` into a new assembly at `out` (which must not
/// exist), in the worker. On error nothing is left at `out`.
pub fn ingest_netcdf(path: &Path, out: &Path, opts: &IngestOptions) -> Result<AssemblySummary> {
    let json = serde_json::to_string(opts)
        .map_err(|e| crate::error::invalid(path, "options", e.to_string()))?;
    crate::worker::call(
        path,
        &[
            std::ffi::OsStr::new("ingest"),
            path.as_os_str(),
            out.as_os_str(),
            std::ffi::OsStr::new(&json),
        ],
    )
}
