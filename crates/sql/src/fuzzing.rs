//! The entry point of the `sql` fuzz target (`fuzz/fuzz_targets/sql.rs`, `make fuzz`), which
//! `tests/fuzz_corpora.rs` also replays on the stable toolchain.
//!
//! Whatever the bytes, the statement filter must accept them as a read or refuse them, and
//! never panic; a statement it accepts must plan to nothing that writes (no DDL, DML, `COPY`
//! or `SET`, also not inside `EXPLAIN` or a subquery) and read no table but the session's;
//! then the optimiser (with our aggregate push-down) and the physical planner must plan it
//! or refuse it, never panic. Nothing is executed: a cross join or a `generate_series` of
//! 10¹⁸ rows is a fine query that would only measure the fuzzer's patience.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use ventral_store::{AssemblySpec, AssemblyWriter};

use crate::{Catalog, RecordBatch, SqlSession, StoreRoot};

/// One statement, as the fuzzer gives it.
pub fn statement(data: &[u8]) {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let Some(s) = session() else {
        return;
    };
    s.runtime().block_on(async {
        let Ok(df) = s.accept(sql).await else {
            return;
        };
        let plan = df.logical_plan().clone();
        if let Some(what) = forbidden(&plan) {
            panic!("the statement filter accepted {what}: {sql:?}\n{plan}");
        }
        if let Ok(optimised) = df.clone().into_optimized_plan()
            && let Some(what) = forbidden(&optimised)
        {
            panic!("the optimiser turned a read into {what}: {sql:?}\n{optimised}");
        }
        let _ = df.create_physical_plan().await;
    });
}

/// Whether the fuzz session accepts `sql` as a read (for the replay test, which checks
/// that the session exists and the filter is the one the fuzzer sees).
pub fn accepted(sql: &str) -> bool {
    let s = session().expect("the fuzz session's store could not be written");
    s.runtime().block_on(async { s.accept(sql).await.is_ok() })
}

/// What in `plan` a read-only session must never plan: a write, a statement, or a scan of a
/// table that is not one of the session's.
fn forbidden(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|p| {
        let what = match p {
            LogicalPlan::Ddl(d) => Some(format!("DDL ({})", d.name())),
            LogicalPlan::Dml(d) => Some(format!("DML ({} on {})", d.op, d.table_name)),
            LogicalPlan::Copy(c) => Some(format!("COPY to {}", c.output_url)),
            LogicalPlan::Statement(st) => Some(format!("a statement ({})", st.name())),
            LogicalPlan::TableScan(t)
                if t.table_name.table().contains('/') || t.table_name.table().contains(':') =>
            {
                Some(format!("a scan of `{}`", t.table_name))
            }
            _ => None,
        };
        match what {
            Some(w) => {
                found = Some(w);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    found
}

/// The session every input is planned in: one small activations store (written once per
/// process under the temporary folder) behind every table.
fn session() -> Option<&'static SqlSession> {
    static SESSION: OnceLock<Option<SqlSession>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let root =
                std::env::temp_dir().join(format!("ventral-sql-fuzz-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            write_store(&root.join("toy-IT"))?;
            let catalog = Catalog {
                roots: vec![StoreRoot {
                    path: root.clone(),
                    pipeline: Some("fuzz".into()),
                    stage: Some("activations".into()),
                    key: None,
                    digest: None,
                    files: None,
                    source: None,
                }],
                runs: Vec::new(),
            };
            SqlSession::new(&catalog).ok()
        })
        .as_ref()
}

fn column(name: &str, values: Vec<String>) -> (Field, Arc<StringArray>) {
    (
        Field::new(name, DataType::Utf8, false),
        Arc::new(StringArray::from(values)),
    )
}

fn coords(name: &str, values: Vec<String>) -> Option<RecordBatch> {
    let (field, array) = column(name, values);
    RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).ok()
}

/// 8 stimuli × 4 neuroids of one layer at one timestep.
fn write_store(dir: &Path) -> Option<PathBuf> {
    let mut spec = AssemblySpec::new("toy.IT", "activations", &["stimulus", "neuroid"], &[4]);
    spec.chunk_rows = Some(4);
    spec.attrs.insert("model".into(), "toy".into());
    spec.attrs.insert("layer".into(), "IT".into());
    spec.attrs.insert("timestep".into(), 0i64.into());
    let mut w = AssemblyWriter::<f32>::create(dir, spec).ok()?;
    let data: Vec<f32> = (0..32u8).map(f32::from).collect();
    w.append(&data).ok()?;
    w.finish(vec![
        (
            "stimulus".into(),
            coords("stimulus_id", (0..8).map(|i| format!("img{i}")).collect())?,
        ),
        (
            "neuroid".into(),
            coords("neuroid_id", (0..4).map(|i| format!("IT.{i}")).collect())?,
        ),
    ])
    .ok()?;
    Some(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use datafusion::execution::context::SessionContext;

    use super::forbidden;

    /// The oracle flags every kind of write, also inside `EXPLAIN`, and no read.
    #[test]
    fn the_oracle_flags_writes_and_statements_and_not_reads() {
        let ctx = SessionContext::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let plan = |sql: &str| {
            rt.block_on(ctx.state().create_logical_plan(sql))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        for (sql, what) in [
            ("CREATE VIEW v AS SELECT 1", "DDL"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("SET datafusion.execution.batch_size = 1", "a statement"),
        ] {
            let found = forbidden(&plan(sql));
            assert!(
                found.as_deref().is_some_and(|f| f.starts_with(what)),
                "{sql}: {found:?}"
            );
        }
        for sql in [
            "SELECT 1",
            "EXPLAIN SELECT * FROM (VALUES (1), (2)) t(x) WHERE x IN (SELECT 1)",
        ] {
            assert_eq!(forbidden(&plan(sql)), None, "{sql}");
        }
    }
}
