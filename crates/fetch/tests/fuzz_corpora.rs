//! The `sources` fuzz target's corpus and regression inputs, replayed on the stable
//! toolchain: each input must parse or fail cleanly, never panic.

#[test]
fn source_manifest_inputs_never_panic() {
    ventral_testkit::campaign::replay_corpus("sources", ventral_fetch::fuzzing::sources);
}
