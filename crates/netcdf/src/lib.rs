//! `ventral-netcdf`: BrainIO DataAssemblies in netCDF4 (HDF5), read ([`read`]) into our
//! assemblies and written back ([`write`]), through `hdf5-metno` and libhdf5.
//!
//! libhdf5 is C that parses whatever it is given (fuzzing found inputs that crash it:
//! `fuzz/findings/netcdf`) and links about thirty shared libraries. So only the worker
//! executable built from this crate (`src/main.rs`) links it: `ventral-ingest` starts
//! `ventral-netcdf header|ingest|export …` for each file (`ventral_ingest::worker`), and a
//! crash is an error naming the file, never a crash of the engine.
//!
//! **Architecture invariant:** nothing in the workspace depends on this crate but the fuzz
//! targets and its own tests; every other process reaches it through the worker, and the
//! worker refuses a call prepared by another build (`ventral_ingest::worker::WORKER_CODE`).

pub mod fuzzing;
pub mod read;
pub mod write;

pub use read::{NcFile, ingest_netcdf};
pub use write::export_brainio;
