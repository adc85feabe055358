//! The ingest fuzz targets' corpora and regression inputs (`fuzz/`), replayed on the stable
//! toolchain: each input must be read or refused cleanly, never panic.

use std::path::Path;

use ventral_testkit::campaign::replay_corpus;

#[test]
fn cifar_inputs_never_panic() {
    replay_corpus("cifar", ventral_ingest::fuzzing::cifar);
}

#[test]
fn coco_inputs_never_panic() {
    replay_corpus("coco", ventral_ingest::fuzzing::coco);
}

#[test]
fn stimulus_set_inputs_never_panic() {
    replay_corpus("stimulus_set", ventral_ingest::fuzzing::stimulus_set);
}

#[test]
fn zarr_assembly_inputs_never_panic() {
    replay_corpus("zarr_assembly", ventral_ingest::fuzzing::zarr_assembly);
}

/// The seed of the Zarr target is ventral's own store (the netCDF seed: `crates/netcdf/tests`), written here: a missing seed is
/// written into `fuzz/corpus/` (commit it), a committed one must still be read whole.
#[test]
fn the_store_seeds_are_valid_inputs() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ventral_ingest::fuzzing::small_assembly(&store).unwrap();
    let zarr_seed = corpus.join("zarr_assembly/small-sharded.bin");
    if !zarr_seed.exists() {
        std::fs::create_dir_all(zarr_seed.parent().unwrap()).unwrap();
        std::fs::write(&zarr_seed, ventral_ingest::fuzzing::pack(&store).unwrap()).unwrap();
    }
    assert_eq!(
        ventral_ingest::fuzzing::read_assembly(&std::fs::read(&zarr_seed).unwrap()),
        Ok(60)
    );
}

/// The seeds reach past validation (a fuzzer starting from refused inputs explores little).
#[test]
fn the_seeds_are_valid_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read(root.join("stimulus_set/two-images.bin")).unwrap();
    let n = u16::from_le_bytes([seed[0], seed[1]]) as usize;
    std::fs::write(dir.path().join("s.csv"), &seed[2..2 + n]).unwrap();
    std::fs::write(dir.path().join("s.zip"), &seed[2 + n..]).unwrap();
    let s = ventral_ingest::stimuli::ingest_stimulus_set(
        &dir.path().join("s.csv"),
        &dir.path().join("s.zip"),
        "seed",
        &dir.path().join("out"),
    );
    assert!(s.is_ok(), "{:?}", s.err().map(|e| e.to_string()));
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
        .save(images.join("a.png"))
        .unwrap();
    let c = ventral_ingest::coco::ingest_coco(
        &images,
        &root.join("coco/one-image.json"),
        false,
        &dir.path().join("coco"),
    );
    assert!(c.is_ok(), "{:?}", c.err().map(|e| e.to_string()));
}
