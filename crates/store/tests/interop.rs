//! zarr-python, xarray, pyarrow and DuckDB read what we write (needs the project venv).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ventral_store::{AssemblySpec, AssemblyWriter, arrow};

/// The venv's Python: `$VENTRAL_PYTHON` (set by the Makefile), else `.venv` or the CI cache.
fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VENTRAL_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..");
    let home = std::env::var("HOME").unwrap_or_default();
    [
        root.join(".venv/bin/python"),
        PathBuf::from(home).join(".cache/ventral/venv/bin/python"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn value(r: usize, c: usize) -> f32 {
    ((r * 31 + c * 7) % 101) as f32 * 0.125
}

#[test]
fn python_tools_open_our_assemblies() {
    let Some(py) = python() else {
        ventral_testkit::skipped("no project venv (run `make test`)");
        return;
    };
    let (rows, cols) = (37usize, 13usize);
    // One store of plain chunks, one of shards of two-row bands (the last shard partial,
    // its last band fill value and not stored).
    let dir = tempfile::tempdir().unwrap();
    for inner_rows in [None, Some(2)] {
        let store = dir.path().join(format!("asm-{inner_rows:?}"));
        let mut spec = AssemblySpec::new(
            "interop",
            "neural",
            &["presentation", "neuroid"],
            &[cols as u64],
        );
        spec.chunk_rows = Some(8);
        spec.inner_rows = inner_rows;
        let mut w = AssemblyWriter::<f32>::create(&store, spec).unwrap();
        let mut data: Vec<f32> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| value(r, c)))
            .collect();
        data[cols + 2] = f32::NAN;
        w.append(&data).unwrap();
        let pres = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("stimulus_id", DataType::Utf8, false),
                Field::new("object_name", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(StringArray::from(
                    (0..rows).map(|r| format!("s{r}")).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    (0..rows)
                        .map(|r| ["a", "b", "c", "d"][r % 4])
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let neu = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("neuroid_id", DataType::Utf8, false),
                Field::new("region", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(StringArray::from(
                    (0..cols).map(|c| format!("n{c}")).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(vec!["IT"; cols])),
            ],
        )
        .unwrap();
        w.finish(vec![("presentation".into(), pres), ("neuroid".into(), neu)])
            .unwrap();
        let script = PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("tests/interop.py");
        let out = Command::new(&py)
            .arg(&script)
            .arg(&store)
            .arg(rows.to_string())
            .arg(cols.to_string())
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\": true"));
        let meta = std::fs::read_to_string(store.join("values/zarr.json")).unwrap();
        assert_eq!(meta.contains("sharding_indexed"), inner_rows.is_some());
    }
}
