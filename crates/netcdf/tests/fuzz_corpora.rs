//! The netCDF fuzz target's corpus and regression inputs (`fuzz/`), replayed in-process on
//! the stable toolchain: each must be read or refused cleanly, never panic.

use std::path::Path;

use ventral_testkit::campaign::replay_corpus;

#[test]
fn netcdf_inputs_never_panic() {
    replay_corpus("netcdf", ventral_netcdf::fuzzing::netcdf);
}

/// The seed is ventral's own export of the store targets' seed: a missing seed is written
/// into `fuzz/corpus/` (commit it), a committed one must still be read whole.
#[test]
fn the_netcdf_seed_is_a_valid_input() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ventral_ingest::fuzzing::small_assembly(&store).unwrap();
    let nc_seed = corpus.join("netcdf/small.nc");
    if !nc_seed.exists() {
        std::fs::create_dir_all(nc_seed.parent().unwrap()).unwrap();
        ventral_netcdf::export_brainio(&store, &nc_seed).unwrap();
    }
    let back =
        ventral_netcdf::ingest_netcdf(&nc_seed, &dir.path().join("back"), &Default::default());
    assert!(back.is_ok(), "{:?}", back.err().map(|e| e.to_string()));
    let a = ventral_store::Assembly::open(&dir.path().join("back")).unwrap();
    assert_eq!(a.meta().shape, vec![12, 5]);
}
