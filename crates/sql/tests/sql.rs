//! SQL over real stores written by ventral-store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use ventral_sql::{Catalog, SqlError, SqlSession, StoreRoot};
use ventral_store::{AssemblySpec, AssemblyWriter, write_parquet};

const N_STIM: usize = 30;
const CATS: [&str; 3] = ["animals", "boats", "cars"];

fn value(layer: usize, t: usize, s: usize, n: usize) -> f32 {
    ((layer * 7 + t * 3 + s * 5 + n) % 17) as f32 * 0.5
}

fn stim_coords() -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("stimulus_id", DataType::Utf8, false),
            Field::new("category_name", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(
                (0..N_STIM)
                    .map(|i| format!("img{i:03}"))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                (0..N_STIM).map(|i| CATS[i % 3]).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn neuroid_coords(n: usize, layer: &str) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("neuroid_id", DataType::Utf8, false),
            Field::new("layer", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("{layer}.{i}")).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(vec![layer; n])),
        ],
    )
    .unwrap()
}

/// Activations of a fake model: V4 (2 timesteps, 40 neuroids) and IT (2 timesteps, 24).
fn write_world(root: &Path) {
    for (li, (layer, width)) in [("V4", 40usize), ("IT", 24)].into_iter().enumerate() {
        for t in 0..2 {
            let dir = root.join(format!("{layer}-t{t}"));
            let mut spec = AssemblySpec::new(
                &format!("toy.{layer}.t{t}"),
                "activations",
                &["stimulus", "neuroid"],
                &[width as u64],
            );
            spec.chunk_rows = Some(8);
            spec.attrs.insert("model".into(), "toy".into());
            spec.attrs.insert("layer".into(), layer.into());
            spec.attrs.insert("timestep".into(), (t as i64).into());
            let mut w = AssemblyWriter::<f32>::create(&dir, spec).unwrap();
            let data: Vec<f32> = (0..N_STIM)
                .flat_map(|s| (0..width).map(move |n| value(li, t, s, n)))
                .collect();
            w.append(&data).unwrap();
            w.finish(vec![
                ("stimulus".into(), stim_coords()),
                ("neuroid".into(), neuroid_coords(width, layer)),
            ])
            .unwrap();
        }
    }
}

fn session(root: &Path) -> Result<SqlSession, SqlError> {
    SqlSession::new(&Catalog {
        roots: vec![StoreRoot {
            path: root.to_path_buf(),
            pipeline: Some("p".into()),
            stage: Some("extract".into()),
            key: Some("k".into()),
            digest: Some("d".into()),
            files: None,
            source: None,
        }],
        runs: vec![],
    })
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

fn one(s: &SqlSession, q: &str) -> RecordBatch {
    let batches = s.query(q).unwrap();
    let schema = batches[0].schema();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}

#[test]
fn readme_example_mean_it_activation_per_category_and_timestep() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    let b = one(
        &s,
        "SELECT s.category_name, a.timestep, avg(a.value) AS mean_activation
         FROM activations a JOIN stimuli s ON s.assembly = a.assembly AND s.stimulus_id = a.stimulus_id
         WHERE a.layer = 'IT'
         GROUP BY s.category_name, a.timestep ORDER BY s.category_name, a.timestep",
    );
    assert_eq!(b.num_rows(), 6);
    let cats = cast(b.column(0), &DataType::Utf8).unwrap();
    let cats = cats.as_any().downcast_ref::<StringArray>().unwrap();
    let ts = col::<Int64Array>(&b, "timestep");
    let means = col::<Float64Array>(&b, "mean_activation");
    for r in 0..6 {
        let (c, t) = (cats.value(r), ts.value(r) as usize);
        let ci = CATS.iter().position(|x| *x == c).unwrap();
        let mut sum = 0.0f64;
        let mut n = 0;
        for st in (0..N_STIM).filter(|i| i % 3 == ci) {
            for k in 0..24 {
                sum += value(1, t, st, k) as f64;
                n += 1;
            }
        }
        assert!((means.value(r) - sum / n as f64).abs() < 1e-9, "{c} t{t}");
    }
}

#[test]
fn filters_select_chunks_and_nothing_else_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    // Everything: 4 assemblies x ceil(30/8)=4 row chunks.
    let b = one(&s, "SELECT count(*) AS n FROM activations");
    assert_eq!(
        col::<Int64Array>(&b, "n").value(0),
        (N_STIM * (40 + 40 + 24 + 24)) as i64
    );
    assert_eq!(s.stats().chunks.load(Ordering::Relaxed), 16);
    s.reset_stats();
    // One layer, one timestep, two stimuli in the same row chunk: one chunk.
    let b = one(
        &s,
        "SELECT stimulus_id, neuroid, value FROM activations
         WHERE layer = 'IT' AND timestep = 1 AND stimulus_id IN ('img009', 'img010') ORDER BY stimulus_id, neuroid",
    );
    assert_eq!(b.num_rows(), 48);
    assert_eq!(s.stats().chunks.load(Ordering::Relaxed), 1);
    let v = col::<datafusion::arrow::array::Float32Array>(&b, "value");
    assert_eq!(v.value(24 + 5), value(1, 1, 10, 5));
    s.reset_stats();
    // A stimulus range across chunks and a neuroid range.
    let b = one(
        &s,
        "SELECT count(*) AS n FROM activations WHERE layer = 'V4' AND timestep = 0 AND stimulus_id = 'img029' AND neuroid BETWEEN 3 AND 7",
    );
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 5);
    assert_eq!(s.stats().chunks.load(Ordering::Relaxed), 1);
    s.reset_stats();
    // A layer that does not exist reads nothing.
    let b = one(
        &s,
        "SELECT count(*) AS n FROM activations WHERE layer = 'V1'",
    );
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 0);
    assert_eq!(s.stats().chunks.load(Ordering::Relaxed), 0);
}

#[test]
fn limit_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    let b = one(&s, "SELECT * FROM activations LIMIT 7");
    assert_eq!(b.num_rows(), 7);
    assert!(
        s.stats().chunks.load(Ordering::Relaxed) <= 2,
        "{}",
        s.stats().chunks.load(Ordering::Relaxed)
    );
}

#[test]
fn catalog_tables() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    let b = one(
        &s,
        "SELECT assembly, kind, shape, layer, timestep, stage FROM assemblies ORDER BY assembly",
    );
    assert_eq!(b.num_rows(), 4);
    assert_eq!(col::<StringArray>(&b, "shape").value(0), "30x24");
    assert_eq!(col::<StringArray>(&b, "stage").value(0), "extract");
    let b = one(&s, "SELECT count(*) AS n FROM neuroids WHERE layer = 'IT'");
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 48);
    let b = one(&s, "SELECT count(*) AS n FROM stimuli");
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 4 * N_STIM as i64);
    let b = one(&s, "SELECT count(*) AS n FROM scores");
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 0);
    let b = one(
        &s,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    let names: Vec<String> = (0..b.num_rows())
        .map(|i| col::<StringArray>(&b, "table_name").value(i).to_string())
        .collect();
    assert_eq!(
        names,
        [
            "activations",
            "assemblies",
            "neuroids",
            "runs",
            "scores",
            "stimuli"
        ]
    );
}

#[test]
fn writes_are_refused_and_files_outside_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    for q in [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO runs SELECT * FROM runs",
        "COPY (SELECT 1) TO '/tmp/ventral-out.csv'",
        "DROP TABLE runs",
        "SET datafusion.execution.batch_size = 1",
    ] {
        match s.query(q) {
            Err(SqlError::ReadOnly(m)) => assert!(m.contains("refused"), "{q}: {m}"),
            other => panic!("{q}: expected a read-only refusal, got {other:?}"),
        }
    }
    assert!(!Path::new("/tmp/ventral-out.csv").exists());
    assert!(s.query("SELECT * FROM '/etc/passwd'").is_err());
    assert!(s.query("SELECT * FROM 'file:///etc/passwd'").is_err());
}

#[test]
fn damaged_chunk_and_bad_coords_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    std::fs::write(dir.path().join("IT-t1/values/c/2/0"), b"not zstd").unwrap();
    let s = session(dir.path()).unwrap();
    let e = s
        .query("SELECT sum(value) FROM activations WHERE layer = 'IT'")
        .unwrap_err()
        .to_string();
    assert!(e.contains("IT-t1") && e.contains("values/c/2/0"), "{e}");
    // A coordinate table without its id column: the session refuses, naming file and column.
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["x"; N_STIM])) as Arc<dyn Array>],
    )
    .unwrap();
    write_parquet(&dir.path().join("V4-t0/coords/stimulus.parquet"), &bad).unwrap();
    let e = session(dir.path()).err().unwrap().to_string();
    assert!(
        e.contains("V4-t0") && e.contains("coords/stimulus.parquet") && e.contains("stimulus_id"),
        "{e}"
    );
    // A missing store.
    std::fs::remove_file(dir.path().join("V4-t1/values/zarr.json")).unwrap();
    std::fs::remove_dir_all(dir.path().join("V4-t0")).unwrap();
    let e = session(dir.path()).err().unwrap().to_string();
    assert!(e.contains("V4-t1") && e.contains("values/zarr.json"), "{e}");
}

/// Every cell as text, floats rounded to 9 significant digits.
fn cells(b: &RecordBatch) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); b.num_rows()];
    for c in b.columns() {
        let as_text: Vec<String> = if c.data_type().is_floating() {
            let f = cast(c, &DataType::Float64).unwrap();
            let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
            (0..f.len())
                .map(|i| format!("{:.9e}", f.value(i)))
                .collect()
        } else {
            let s = cast(c, &DataType::Utf8).unwrap();
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            (0..s.len()).map(|i| s.value(i).to_string()).collect()
        };
        for (r, v) in as_text.into_iter().enumerate() {
            out[r].push(v);
        }
    }
    out
}

fn explain(s: &SqlSession, q: &str) -> String {
    let b = one(s, &format!("EXPLAIN {q}"));
    cells(&b)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn aggregates_of_value_come_from_per_stimulus_partials_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let pushed = session(dir.path()).unwrap();
    let plain = session(dir.path()).unwrap();
    plain.without_aggregate_pushdown();
    let rewritten = [
        "SELECT s.category_name, a.timestep, avg(a.value) AS m FROM activations a JOIN stimuli s ON s.assembly = a.assembly AND s.stimulus_id = a.stimulus_id WHERE a.layer = 'IT' GROUP BY s.category_name, a.timestep ORDER BY 1, 2",
        "SELECT layer, timestep, sum(value), count(*), count(value), min(value), max(value) FROM activations GROUP BY layer, timestep ORDER BY 1, 2",
        "SELECT category_name, count(value) AS n, avg(value) AS m FROM activations JOIN stimuli USING (assembly, stimulus_id) WHERE activations.stimulus_id IN ('img001', 'img004', 'img007') GROUP BY category_name ORDER BY 1",
        "SELECT avg(value), max(value) FROM activations",
        "SELECT stimulus_id, avg(value) FROM activations WHERE layer = 'V4' AND timestep = 1 GROUP BY stimulus_id HAVING avg(value) > 3 ORDER BY 1",
    ];
    let untouched = [
        // A filter on neuroid, a grouping by neuroid, an aggregate the rule does not know.
        "SELECT layer, avg(value) FROM activations WHERE neuroid < 5 GROUP BY layer ORDER BY 1",
        "SELECT neuroid, avg(value) FROM activations WHERE layer = 'IT' GROUP BY neuroid ORDER BY 1",
        "SELECT layer, stddev(value) FROM activations GROUP BY layer ORDER BY 1",
    ];
    for q in rewritten.iter().chain(&untouched) {
        let (a, b) = (one(&pushed, q), one(&plain, q));
        assert_eq!(a.schema(), b.schema(), "{q}");
        assert_eq!(cells(&a), cells(&b), "{q}");
        assert!(a.num_rows() > 0, "{q}");
    }
    for q in rewritten {
        assert!(
            explain(&pushed, q).contains("value_sum"),
            "not rewritten: {q}\n{}",
            explain(&pushed, q)
        );
        assert!(!explain(&plain, q).contains("value_sum"), "{q}");
    }
    for q in untouched {
        assert!(!explain(&pushed, q).contains("value_sum"), "rewritten: {q}");
    }
    // The stimulus filter still selects chunks: 3 stimuli in chunks of 8 rows → 1 row
    // chunk per store, every column chunk of it.
    pushed.reset_stats();
    one(&pushed, rewritten[2]);
    let decoded = pushed.stats().chunks.load(Ordering::Relaxed);
    plain.reset_stats();
    one(&plain, rewritten[2]);
    assert_eq!(decoded, plain.stats().chunks.load(Ordering::Relaxed));
}

#[test]
fn filters_the_scan_applies_in_full_and_those_it_does_not_give_the_same_rows() {
    // The scan applies equality/IN on the store columns and stimulus_id, and neuroid ranges,
    // itself (DataFusion does not re-check them); anything else it only uses to prune, and
    // DataFusion applies it above the scan. Each query is paired with one whose answer is
    // the same when every filter is applied in full.
    let dir = tempfile::tempdir().unwrap();
    write_world(dir.path());
    let s = session(dir.path()).unwrap();
    let n = |q: &str| col::<Int64Array>(&one(&s, q), "n").value(0);
    let pairs = [
        (
            "SELECT count(*) AS n FROM activations WHERE (layer = 'IT' AND value > 3) OR (layer = 'V4' AND value < 1)",
            "SELECT sum(CASE WHEN (layer = 'IT' AND value > 3) OR (layer = 'V4' AND value < 1) THEN 1 ELSE 0 END) AS n FROM activations",
        ),
        (
            "SELECT count(*) AS n FROM activations WHERE layer = 'IT' AND (timestep = 1 OR value > 2)",
            "SELECT sum(CASE WHEN timestep = 1 OR value > 2 THEN 1 ELSE 0 END) AS n FROM activations WHERE layer = 'IT'",
        ),
        (
            "SELECT count(*) AS n FROM activations WHERE stimulus_id IN ('img001', 'img002') OR neuroid = 3",
            "SELECT sum(CASE WHEN stimulus_id IN ('img001', 'img002') OR neuroid = 3 THEN 1 ELSE 0 END) AS n FROM activations",
        ),
        (
            "SELECT count(*) AS n FROM activations WHERE layer = 'V4' AND timestep = 0 AND stimulus_id = 'img029' AND neuroid BETWEEN 3 AND 7",
            "SELECT sum(CASE WHEN layer = 'V4' AND timestep = 0 AND stimulus_id = 'img029' AND neuroid >= 3 AND neuroid <= 7 THEN 1 ELSE 0 END) AS n FROM activations",
        ),
        (
            "SELECT count(*) AS n FROM activations WHERE CAST(neuroid AS SMALLINT) = 3 AND layer = 'IT'",
            "SELECT sum(CASE WHEN neuroid = 3 THEN 1 ELSE 0 END) AS n FROM activations WHERE layer = 'IT'",
        ),
    ];
    for (q, reference) in pairs {
        assert_eq!(n(q), n(reference), "{q}");
        assert!(n(q) > 0, "{q}");
    }
    // Bounds at the ends of i64 select nothing, or everything, without overflowing.
    assert_eq!(
        n("SELECT count(*) AS n FROM activations WHERE neuroid > 9223372036854775807"),
        0
    );
    assert_eq!(
        n("SELECT count(*) AS n FROM activations WHERE neuroid < -9223372036854775808"),
        0
    );
    assert_eq!(
        n("SELECT count(*) AS n FROM activations WHERE neuroid <= 9223372036854775807"),
        n("SELECT count(*) AS n FROM activations")
    );
}
