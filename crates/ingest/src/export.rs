//! Our assemblies back to BrainIO netCDF4, in the layout xarray and netCDF write, so that
//! `xarray.open_dataarray` and Brain-Score's loader open them — written by the
//! `ventral-netcdf` worker (`crates/netcdf/src/write.rs` says how).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What an export wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportSummary {
    /// The data variable's name.
    pub data_variable: String,
    /// Dimensions in file order.
    pub dims: Vec<String>,
    /// Shape in file order.
    pub shape: Vec<u64>,
    /// Coordinate variables written.
    pub coords: Vec<String>,
}

/// Export the assembly at `store` to the netCDF4 file `out` (replaced atomically; on error
/// nothing is left at `out`), in the worker.
pub fn export_brainio(store: &Path, out: &Path) -> Result<ExportSummary> {
    crate::worker::call(
        store,
        &[
            std::ffi::OsStr::new("export"),
            store.as_os_str(),
            out.as_os_str(),
        ],
    )
}
