//! The `sql` fuzz target's corpus and regression inputs (`fuzz/`), replayed on the stable
//! toolchain: each statement must be planned as a read or refused, never panic, and no
//! accepted statement may plan a write.

use ventral_testkit::campaign::replay_corpus;

#[test]
fn sql_statements_never_panic_and_never_plan_a_write() {
    let n = replay_corpus("sql", ventral_sql::fuzzing::statement);
    assert!(n >= 50, "{n} inputs");
    // The session the inputs met holds the tables, and its filter refuses writes.
    use ventral_sql::fuzzing::accepted;
    assert!(accepted(
        "SELECT layer, avg(value) FROM activations JOIN stimuli USING (assembly, stimulus_id) GROUP BY layer"
    ));
    assert!(!accepted("DROP TABLE runs"));
    assert!(!accepted("COPY runs TO '/tmp/ventral-fuzz-copy.csv'"));
}
