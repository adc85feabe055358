//! `ventral score neural` on stores written by ventral-store.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::Ws;
use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};
use ventral_store::{AssemblySpec, AssemblyWriter};

const N: usize = 96;
const P: usize = 40;
const Q: usize = 6;
const REPS: usize = 4;

fn feature(i: usize, k: usize) -> f32 {
    (((i * 37 + k * 11) % 23) as f32 - 11.0) / 7.0
}

/// A coordinate table with one string column.
fn one_column(name: &str, values: Vec<String>) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(values))],
    )
    .unwrap()
}

fn ids() -> Vec<String> {
    (0..N).map(|i| format!("stim{:03}", (i * 29) % N)).collect()
}

fn write(ws: &Ws, with_objects: bool) -> (Vec<f32>, Recordings) {
    let stim = ids();
    let features: Vec<f32> = (0..N)
        .flat_map(|i| (0..P).map(move |k| feature(i, k)))
        .collect();
    let mut spec = AssemblySpec::new(
        "model.IT",
        "activations",
        &["stimulus", "neuroid"],
        &[P as u64],
    );
    spec.chunk_rows = Some(32);
    let mut w = AssemblyWriter::<f32>::create(&ws.path().join("source"), spec).unwrap();
    w.append(&features).unwrap();
    w.finish(vec![
        ("stimulus".into(), one_column("stimulus_id", stim.clone())),
        (
            "neuroid".into(),
            one_column("neuroid_id", (0..P).map(|k| format!("f{k}")).collect()),
        ),
    ])
    .unwrap();
    // Recordings: a linear read-out of the features plus deterministic "noise".
    let mut values = Vec::new();
    let (mut ps, mut po, mut pr) = (vec![], vec![], vec![]);
    for rep in 0..REPS {
        for (i, id) in stim.iter().enumerate() {
            for j in 0..Q {
                let s: f32 = (0..P)
                    .map(|k| feature(i, k) * (((j + k) % 5) as f32 - 2.0))
                    .sum();
                values.push((s + ((i * 7 + j * 3 + rep * 13) % 9) as f32 - 4.0) as f64);
            }
            ps.push(id.clone());
            po.push(format!("obj{}", i % 8));
            pr.push(rep as i64);
        }
    }
    let spec = AssemblySpec::new(
        "rec.IT",
        "neural",
        &["presentation", "neuroid"],
        &[Q as u64],
    );
    let mut w = AssemblyWriter::<f32>::create(&ws.path().join("target"), spec).unwrap();
    w.append(&values.iter().map(|&v| v as f32).collect::<Vec<_>>())
        .unwrap();
    let mut fields = vec![
        Field::new("stimulus_id", DataType::Utf8, false),
        Field::new("repetition", DataType::Int64, false),
    ];
    let mut cols: Vec<Arc<dyn arrow::array::Array>> = vec![
        Arc::new(StringArray::from(ps.clone())),
        Arc::new(Int64Array::from(pr.clone())),
    ];
    if with_objects {
        fields.push(Field::new("object_name", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from(po.clone())));
    }
    w.finish(vec![
        (
            "presentation".into(),
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap(),
        ),
        (
            "neuroid".into(),
            one_column("neuroid_id", (0..Q).map(|j| format!("n{j}")).collect()),
        ),
    ])
    .unwrap();
    (
        features,
        Recordings {
            values,
            n_neuroids: Q,
            stimulus_id: ps,
            object_name: po,
            repetition: pr,
        },
    )
}

#[test]
fn scores_stores_like_the_library() {
    let ws = Ws::new();
    let (features, rec) = write(&ws, true);
    let v = ws.json(&[
        "score", "neural", "--source", "source", "--target", "target",
    ]);
    let stim = ids();
    let f = Features {
        values: &features,
        n_features: P,
        stimulus_id: &stim,
    };
    let want = neural_predictivity(&f, &rec.average().unwrap(), &NeuralOptions::default()).unwrap();
    let ceiling = rec.internal_consistency(10, 1).unwrap();
    assert_eq!(v["score"].as_f64().unwrap(), want.center);
    assert_eq!(v["ceiling"].as_f64().unwrap(), ceiling.center);
    assert_eq!(v["ceiled"].as_f64().unwrap(), want.center / ceiling.center);
    assert!(
        want.center > 0.5,
        "a linear read-out must predict well: {}",
        want.center
    );
    let text = ws.ok(&[
        "score",
        "neural",
        "--source",
        "source",
        "--target",
        "target",
        "--normalisation",
        "r^2/c",
    ]);
    assert!(text.starts_with("neural: score "), "{text}");
}

#[test]
fn missing_coordinate_is_named() {
    let ws = Ws::new();
    write(&ws, false);
    let o = ws.run(&[
        "score", "neural", "--source", "source", "--target", "target",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("target") && err.contains("object_name"),
        "{err}"
    );
}

/// Errors about BrainIO `.nc` inputs name the user's files, never the temporary stores they
/// were read into.
#[test]
fn errors_about_netcdf_inputs_name_the_users_files() {
    let Some(data) = common::shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let nc = data.join("brainio-netcdf");
    let source = nc.join("resnet18-objectome240-features.nc");
    let target = nc.join("alexnet-probabilities.nc");
    let o = ws.run(&[
        "score",
        "neural",
        "--source",
        source.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        !err.contains("ventral-score-") && !err.contains("input-0"),
        "{err}"
    );
    assert!(
        err.contains("resnet18-objectome240-features.nc")
            || err.contains("alexnet-probabilities.nc"),
        "{err}"
    );
}
