//! `ventral sql` end to end: a store written by ventral-store, queried through the binary.

mod common;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::Ws;
use ventral_store::{AssemblySpec, AssemblyWriter};

fn write_store(ws: &Ws) {
    let dir = ws.path().join("stores/acts");
    let mut spec = AssemblySpec::new("demo.IT.t0", "activations", &["stimulus", "neuroid"], &[3]);
    spec.attrs.insert("model".into(), "demo".into());
    spec.attrs.insert("layer".into(), "IT".into());
    spec.attrs.insert("timestep".into(), 0i64.into());
    let mut w = AssemblyWriter::<f32>::create(&dir, spec).unwrap();
    w.append(&[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]).unwrap();
    let stim = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("stimulus_id", DataType::Utf8, false),
            Field::new("category_name", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(StringArray::from(vec!["cars", "faces"])),
        ],
    )
    .unwrap();
    let neu = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "neuroid_id",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from(vec!["n0", "n1", "n2"]))],
    )
    .unwrap();
    w.finish(vec![("stimulus".into(), stim), ("neuroid".into(), neu)])
        .unwrap();
}

#[test]
fn query_formats_and_refusals() {
    let ws = Ws::new();
    write_store(&ws);
    let q = "SELECT s.category_name, a.timestep, avg(a.value) AS m FROM activations a JOIN stimuli s \
             ON s.assembly = a.assembly AND s.stimulus_id = a.stimulus_id WHERE a.layer = 'IT' \
             GROUP BY 1, 2 ORDER BY 1";
    let csv = ws.ok(&["sql", "--path", "stores", "--format", "csv", q]);
    assert_eq!(csv, "category_name,timestep,m\ncars,0,2.0\nfaces,0,20.0\n");
    let json = ws.json(&["sql", "--path", "stores", q]);
    assert_eq!(json[1]["m"], 20.0);
    let table = ws.ok(&[
        "sql",
        "--path",
        "stores",
        "SELECT count(*) AS n FROM activations",
    ]);
    assert!(table.contains("| 6 |"), "{table}");
    ws.ok(&[
        "sql",
        "--path",
        "stores",
        "--format",
        "parquet",
        "-o",
        "out.parquet",
        q,
    ]);
    assert!(
        std::fs::read(ws.path().join("out.parquet"))
            .unwrap()
            .starts_with(b"PAR1")
    );
    let o = ws.run(&["sql", "--path", "stores", "CREATE TABLE x AS SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("read-only"));
    let o = ws.run(&["sql", "--path", "stores", "--format", "parquet", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1), "parquet needs -o");
}

#[test]
fn runs_table_lists_lockfile_stages() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.hello]\nkind = \"cmd\"\ncmd = \"echo hi > ${out}/h.txt\"\n",
    );
    ws.ok(&["run"]);
    let csv = ws.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT pipeline, stage, kind FROM runs",
    ]);
    assert_eq!(csv, "pipeline,stage,kind\np,hello,cmd\n");
}
