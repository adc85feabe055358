//! The fuzz targets' corpora and regression inputs (`fuzz/corpus`, `fuzz/regressions`),
//! replayed on the stable toolchain: each input must parse or fail cleanly, never panic.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            f(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn pipeline_inputs_never_panic() {
    assert!(replay("pipeline", ventral_dag::fuzzing::pipeline) > 0);
}

#[test]
fn lockfile_inputs_never_panic() {
    assert!(replay("lockfile", ventral_dag::fuzzing::lockfile) > 0);
}
