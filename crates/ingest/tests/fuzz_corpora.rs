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
fn netcdf_inputs_never_panic() {
    replay_corpus("netcdf", ventral_ingest::fuzzing::netcdf);
}

#[test]
fn zarr_assembly_inputs_never_panic() {
    replay_corpus("zarr_assembly", ventral_ingest::fuzzing::zarr_assembly);
}

/// A small neural assembly in ventral's store: two row chunks, each a shard of three bands.
fn small_assembly(dir: &Path) {
    use std::sync::Arc;
    use ventral_store::arrow::array::{ArrayRef, StringArray};
    use ventral_store::arrow::datatypes::{DataType, Field, Schema};
    use ventral_store::arrow::record_batch::RecordBatch;
    let ids = |prefix: &str, col: &str, n: usize| {
        let values: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(col, DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(values)) as ArrayRef],
        )
        .unwrap()
    };
    let mut spec =
        ventral_store::AssemblySpec::new("fuzz.seed", "neural", &["presentation", "neuroid"], &[5]);
    spec.chunk_rows = Some(6);
    spec.inner_rows = Some(2);
    let mut w = ventral_store::AssemblyWriter::<f32>::create(dir, spec).unwrap();
    let values: Vec<f32> = (0..12 * 5).map(|i| i as f32 * 0.5 - 3.0).collect();
    w.append(&values).unwrap();
    w.finish(vec![
        ("presentation".into(), ids("s", "stimulus_id", 12)),
        ("neuroid".into(), ids("n", "neuroid_id", 5)),
    ])
    .unwrap();
}

/// The seeds of the store targets are ventral's own files, written here: a missing seed is
/// written into `fuzz/corpus/` (commit it), a committed one must still be read whole.
#[test]
fn the_store_seeds_are_valid_inputs() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    small_assembly(&store);
    let zarr_seed = corpus.join("zarr_assembly/small-sharded.bin");
    if !zarr_seed.exists() {
        std::fs::create_dir_all(zarr_seed.parent().unwrap()).unwrap();
        std::fs::write(&zarr_seed, ventral_ingest::fuzzing::pack(&store).unwrap()).unwrap();
    }
    assert_eq!(
        ventral_ingest::fuzzing::read_assembly(&std::fs::read(&zarr_seed).unwrap()),
        Ok(60)
    );
    let nc_seed = corpus.join("netcdf/small.nc");
    if !nc_seed.exists() {
        std::fs::create_dir_all(nc_seed.parent().unwrap()).unwrap();
        ventral_ingest::export::export_brainio(&store, &nc_seed).unwrap();
    }
    let back = ventral_ingest::netcdf::ingest_netcdf(
        &nc_seed,
        &dir.path().join("back"),
        &Default::default(),
    );
    assert!(back.is_ok(), "{:?}", back.err().map(|e| e.to_string()));
    let a = ventral_store::Assembly::open(&dir.path().join("back")).unwrap();
    assert_eq!(a.meta().shape, vec![12, 5]);
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
