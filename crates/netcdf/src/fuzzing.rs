//! The entry point of the netCDF fuzz target in `fuzz/` (`make fuzz`), replayed by `make
//! test` over the committed corpus.

use ventral_ingest::fuzzing::Scratch;
use ventral_ingest::netcdf::IngestOptions;

/// A netCDF-4 (HDF5) DataAssembly, read as `ventral ingest brainio` reads one `.nc`: its
/// attributes, dimensions, coordinates and values. libhdf5 parses the container; what is
/// fuzzed is our handling of what it returns (a crash inside libhdf5 itself is recorded in
/// RELIABILITY.md and contained by the worker process, not fixed here).
pub fn netcdf(data: &[u8]) {
    let Some(s) = Scratch::new("netcdf") else {
        return;
    };
    let nc = s.path().join("a.nc");
    if std::fs::write(&nc, data).is_err() {
        return;
    }
    let opts = IngestOptions {
        band_elements: Some(4096),
        ..Default::default()
    };
    let _ = crate::read::ingest_netcdf(&nc, &s.path().join("out"), &opts);
}
