//! The fuzz targets' corpora and regression inputs (`fuzz/corpus`, `fuzz/regressions`),
//! replayed on the stable toolchain: each input must parse or fail cleanly, never panic.

use ventral_testkit::campaign::replay_corpus as replay;

#[test]
fn pipeline_inputs_never_panic() {
    replay("pipeline", ventral_dag::fuzzing::pipeline);
}

#[test]
fn lockfile_inputs_never_panic() {
    replay("lockfile", ventral_dag::fuzzing::lockfile);
}
