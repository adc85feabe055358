//! Time windows and the reliable-neuroid filter of the neural benchmarks, and the transfer
//! readout, on small stores written here.

use std::path::Path;
use std::sync::Arc;

use ventral_benchmarks::neural::{Selection, load_recordings};
use ventral_store::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ventral_store::arrow::datatypes::{Field, Schema};
use ventral_store::{AssemblySpec, AssemblyWriter};

fn table(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|c| c.1).collect()).unwrap()
}

fn strings(v: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

/// Recordings: `stimuli` images × `reps` repetitions, neuroid 0 reliable (its value is the
/// stimulus index plus bin-specific offsets), neuroid 1 pure noise; bins start 70, 80, …
fn recordings(dir: &Path, stimuli: usize, reps: usize, bins: usize) {
    let mut spec = AssemblySpec::new(
        "rec",
        "neural",
        &["presentation", "neuroid", "time_bin"],
        &[2, bins as u64],
    );
    spec.chunk_rows = Some(7);
    let mut w = AssemblyWriter::<f32>::create(dir, spec).unwrap();
    let mut values = Vec::new();
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
    };
    for _ in 0..reps {
        for i in 0..stimuli {
            for b in 0..bins {
                values.push(i as f32 + 100.0 * b as f32 + 0.01 * noise());
            }
            for _ in 0..bins {
                values.push(noise());
            }
        }
    }
    w.append(&values).unwrap();
    let n = stimuli * reps;
    let pres = table(vec![
        (
            "stimulus_id",
            strings((0..n).map(|k| format!("s{:03}", k % stimuli))),
        ),
        (
            "object_name",
            strings((0..n).map(|k| format!("o{}", k % stimuli % 3))),
        ),
        (
            "repetition",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|k| (k / stimuli) as i64),
            )),
        ),
    ]);
    let neu = table(vec![
        ("neuroid_id", strings(["good".into(), "noise".into()])),
        ("region", strings(["IT".into(), "IT".into()])),
    ]);
    let tb = table(vec![
        (
            "time_bin_start",
            Arc::new(Int64Array::from_iter_values(
                (0..bins).map(|b| 70 + 10 * b as i64),
            )),
        ),
        (
            "time_bin_end",
            Arc::new(Int64Array::from_iter_values(
                (0..bins).map(|b| 80 + 10 * b as i64),
            )),
        ),
    ]);
    w.finish(vec![
        ("presentation".into(), pres),
        ("neuroid".into(), neu),
        ("time_bin".into(), tb),
    ])
    .unwrap();
}

#[test]
fn a_window_averages_exactly_its_bins_and_names_what_is_wrong() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("rec");
    recordings(&store, 5, 2, 4); // bins 70-80, 80-90, 90-100, 100-110
    let sel = Selection {
        region: Some("IT".into()),
        window: Some((80.0, 100.0)),
        min_consistency: None,
    };
    let (rec, start, ids) = load_recordings(&store, &sel).unwrap();
    assert_eq!(start, Some(80.0));
    assert_eq!(ids, ["good", "noise"]);
    // Neuroid 0 of stimulus 3: the mean of bins 1 and 2 = 3 + 150 (± noise).
    let v = rec.values[3 * 2];
    assert!((v - 153.0).abs() < 0.01, "{v}");
    // Several bins and no window: refused with the way out named.
    let all = Selection {
        window: None,
        ..sel.clone()
    };
    let e = load_recordings(&store, &all).unwrap_err().to_string();
    assert!(e.contains("4 time bins") && e.contains("time_bins"), "{e}");
    // A window no bin fits in.
    let none = Selection {
        window: Some((200.0, 210.0)),
        ..sel.clone()
    };
    let e = load_recordings(&store, &none).unwrap_err().to_string();
    assert!(e.contains("no time bin lies within 200–210 ms"), "{e}");
    // An unknown region.
    let v1 = Selection {
        region: Some("V1".into()),
        ..sel
    };
    let e = load_recordings(&store, &v1).unwrap_err().to_string();
    assert!(e.contains("no neuroid has region `V1`"), "{e}");
}

fn features(dir: &Path, rows: &[Vec<f32>], ids: &[String], labels: Option<&[String]>) {
    let p = rows[0].len() as u64;
    let mut spec = AssemblySpec::new("f", "activations", &["stimulus", "neuroid"], &[p]);
    spec.attrs.insert("model".into(), "toy".into());
    let mut w = AssemblyWriter::<f32>::create(dir, spec).unwrap();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    w.append(&flat).unwrap();
    let mut cols = vec![("stimulus_id", strings(ids.iter().cloned()))];
    if let Some(l) = labels {
        cols.push(("label", strings(l.iter().cloned())));
    }
    let neu = table(vec![(
        "neuroid_id",
        strings((0..p).map(|k| format!("f{k}"))),
    )]);
    w.finish(vec![
        ("stimulus".into(), table(cols)),
        ("neuroid".into(), neu),
    ])
    .unwrap();
}

#[test]
fn the_reliability_filter_keeps_the_reliable_neuroid_only() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("rec");
    recordings(&store, 30, 4, 2);
    let ids: Vec<String> = (0..30).map(|i| format!("s{i:03}")).collect();
    let rows: Vec<Vec<f32>> = (0..30)
        .map(|i| vec![i as f32, (i * i % 7) as f32, (i % 5) as f32])
        .collect();
    let f = t.path().join("f");
    features(&f, &rows, &ids, None);
    let sel = Selection {
        region: Some("IT".into()),
        window: Some((70.0, 90.0)),
        min_consistency: Some(0.9),
    };
    let opts = ventral_metrics::neural::NeuralOptions {
        n_components: 2,
        ..Default::default()
    };
    let (r, rows) = ventral_benchmarks::neural::score(
        "b",
        "toy",
        &f,
        &store,
        &sel,
        ventral_metrics::neural::Normalisation::ROverC,
        &opts,
    )
    .unwrap();
    assert_eq!(r.neuroids, 1);
    assert!(r.ceiling > 0.99, "{}", r.ceiling);
    assert!(
        rows.iter()
            .filter_map(|x| x.neuroid_id.as_deref())
            .all(|n| n == "good")
    );
    let none = Selection {
        min_consistency: Some(1.5),
        ..sel
    };
    let e = ventral_benchmarks::neural::score(
        "b",
        "toy",
        &f,
        &store,
        &none,
        ventral_metrics::neural::Normalisation::ROverC,
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no neuroid has an internal consistency of at least 1.5"),
        "{e}"
    );
}

#[test]
fn transfer_separates_separable_classes_and_picks_c_on_validation() {
    let t = tempfile::tempdir().unwrap();
    // Four classes, each a direction in 6-d feature space, plus deterministic jitter.
    let make = |n: usize, salt: usize| {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 4;
            let row: Vec<f32> = (0..6)
                .map(|k| {
                    let signal = if k == c { 2.0 } else { 0.0 };
                    let jitter = (((i * 7 + k * 13 + salt) % 17) as f32 - 8.0) / 10.0;
                    signal + jitter
                })
                .collect();
            rows.push(row);
            labels.push(format!("class{c}"));
        }
        let ids: Vec<String> = (0..n).map(|i| format!("{salt}-{i:04}")).collect();
        (rows, ids, labels)
    };
    let (rows, ids, labels) = make(200, 0);
    features(&t.path().join("train"), &rows, &ids, Some(&labels));
    let (rows, ids, labels) = make(80, 5);
    features(&t.path().join("test"), &rows, &ids, Some(&labels));
    let grid = ventral_benchmarks::transfer::log_grid(0.0005, 0.05, 10);
    let (r, rows) = ventral_benchmarks::transfer::score(
        "toy-transfer",
        "toy",
        &t.path().join("train"),
        &t.path().join("test"),
        "label",
        &grid,
        0,
    )
    .unwrap();
    assert_eq!(r.classes, 4);
    assert_eq!(r.images, [200, 80]);
    assert!(r.raw > 0.9, "accuracy {}", r.raw);
    assert!(grid.contains(&r.c));
    assert_eq!(r.validation.len(), 10);
    let best = r.validation.iter().map(|v| v.1).fold(0.0, f64::max);
    assert_eq!(
        r.validation.iter().find(|v| v.0 == r.c).map(|v| v.1),
        Some(best)
    );
    assert!(
        rows.iter()
            .any(|x| x.quantity == "ceiled" && x.value == r.raw)
    );
    // A label column that is not there, and a bad grid: named.
    let e = ventral_benchmarks::transfer::score(
        "x",
        "toy",
        &t.path().join("train"),
        &t.path().join("test"),
        "fine",
        &grid,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`fine`"), "{e}");
    let e = ventral_benchmarks::transfer::score(
        "x",
        "toy",
        &t.path().join("train"),
        &t.path().join("test"),
        "label",
        &[0.0],
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("C grid"), "{e}");
}
