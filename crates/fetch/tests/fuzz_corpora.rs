//! The `sources` fuzz target's corpus and regression inputs, replayed on the stable
//! toolchain: each input must parse or fail cleanly, never panic.

use std::path::Path;

#[test]
fn source_manifest_inputs_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("sources")) else {
            continue;
        };
        for e in entries.flatten() {
            ventral_fetch::fuzzing::sources(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
    }
    assert!(n > 0);
}
