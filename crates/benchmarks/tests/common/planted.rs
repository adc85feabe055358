//! A generated layer-commitment problem with planted answers, written as stores (for ours)
//! and as an `.npz` (for Brain-Score's `LayerSelection` in the reference venv): V4 sites read
//! one latent, IT sites another; the candidate layers are noise, V4's latent, IT's latent,
//! and a little of both, then more noise layers up to the count asked for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ventral_benchmarks::ScoreRow;
use ventral_benchmarks::commit::{RegionChoice, commit};
use ventral_metrics::neural::{NeuralOptions, Normalisation};
use ventral_store::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ventral_store::arrow::datatypes::{Field, Schema};
use ventral_store::{AssemblySpec, AssemblyWriter};
use ventral_testkit::crosscheck::{Lcg, Npz};

/// Sizes of a problem.
pub struct Sizes {
    pub objects: usize,
    pub per_object: usize,
    pub reps: usize,
    pub per_region: usize,
    pub layers: usize,
    pub features: usize,
}

/// Where a problem was written.
pub struct Problem {
    pub activations: PathBuf,
    pub recordings: PathBuf,
    pub npz: PathBuf,
    pub layers: Vec<String>,
}

fn table(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|c| c.1).collect()).unwrap()
}

fn strings(v: &[String]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn features(dir: &Path, ids: &[String], objects: &[String], values: &[f32], p: usize) {
    let mut spec = AssemblySpec::new("acts", "activations", &["stimulus", "neuroid"], &[p as u64]);
    spec.attrs.insert("model".into(), "planted".into());
    let mut w = AssemblyWriter::<f32>::create(dir, spec).unwrap();
    w.append(values).unwrap();
    let neuroids: Vec<String> = (0..p).map(|j| format!("f{j}")).collect();
    w.finish(vec![
        (
            "stimulus".into(),
            table(vec![
                ("stimulus_id", strings(ids)),
                ("object_name", strings(objects)),
            ]),
        ),
        (
            "neuroid".into(),
            table(vec![("neuroid_id", strings(&neuroids))]),
        ),
    ])
    .unwrap();
}

/// Write a problem of `z` sizes under `dir`.
pub fn planted(dir: &Path, z: &Sizes, seed: u64) -> Problem {
    let n = z.objects * z.per_object;
    let mut rng = Lcg(seed);
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    let objects: Vec<String> = (0..n).map(|i| format!("o{}", i / z.per_object)).collect();
    let latent = |rng: &mut Lcg| -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| (0..5).map(|_| rng.normal()).collect())
            .collect()
    };
    let (l4, lit) = (latent(&mut rng), latent(&mut rng));
    let q = 2 * z.per_region;
    let w: Vec<Vec<f64>> = (0..q)
        .map(|_| (0..5).map(|_| rng.normal()).collect())
        .collect();
    let mut responses = Vec::with_capacity(z.reps * n * q);
    for _ in 0..z.reps {
        for i in 0..n {
            for (j, wj) in w.iter().enumerate() {
                let src = if j < z.per_region { &l4[i] } else { &lit[i] };
                let v: f64 = src.iter().zip(wj).map(|(a, b)| a * b).sum::<f64>() + rng.normal();
                responses.push(v as f32);
            }
        }
    }
    let recordings = dir.join("rec");
    let mut spec = AssemblySpec::new(
        "rec",
        "neural",
        &["presentation", "neuroid", "time_bin"],
        &[q as u64, 1],
    );
    spec.chunk_rows = Some(256);
    let mut wr = AssemblyWriter::<f32>::create(&recordings, spec).unwrap();
    wr.append(&responses).unwrap();
    let rep_ids: Vec<String> = (0..z.reps * n).map(|k| ids[k % n].clone()).collect();
    let rep_objects: Vec<String> = (0..z.reps * n).map(|k| objects[k % n].clone()).collect();
    let rep: Vec<i64> = (0..z.reps * n).map(|k| (k / n) as i64).collect();
    let regions: Vec<String> = (0..q)
        .map(|j| if j < z.per_region { "V4" } else { "IT" }.to_string())
        .collect();
    let neuroid_ids: Vec<String> = (0..q).map(|j| format!("n{j:03}")).collect();
    wr.finish(vec![
        (
            "presentation".into(),
            table(vec![
                ("stimulus_id", strings(&rep_ids)),
                ("object_name", strings(&rep_objects)),
                ("repetition", Arc::new(Int64Array::from(rep.clone()))),
            ]),
        ),
        (
            "neuroid".into(),
            table(vec![
                ("neuroid_id", strings(&neuroid_ids)),
                ("region", strings(&regions)),
            ]),
        ),
        (
            "time_bin".into(),
            table(vec![
                ("time_bin_start", Arc::new(Int64Array::from(vec![70]))),
                ("time_bin_end", Arc::new(Int64Array::from(vec![170]))),
            ]),
        ),
    ])
    .unwrap();
    let mut layers: Vec<String> = ["noise", "v4_like", "it_like", "mixed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in layers.len()..z.layers {
        layers.push(format!("noise{k}"));
    }
    let p = z.features;
    let mut npz = Npz::new()
        .str("stimulus_id", &rep_ids)
        .str("object_name", &rep_objects)
        .i64("repetition", &rep)
        .f32("responses", &responses, &[z.reps * n, q])
        .str("region", &regions)
        .str("feature_stimulus_id", &ids)
        .str("feature_object_name", &objects);
    let activations = dir.join("acts");
    for (k, layer) in layers.iter().enumerate() {
        let mut v = Vec::with_capacity(n * p);
        for i in 0..n {
            for j in 0..p {
                let x = match (k, j) {
                    (1, 0..5) => l4[i][j],
                    (2, 0..5) => lit[i][j],
                    (3, 0..2) => l4[i][j] * 0.5,
                    (3, 2..4) => lit[i][j - 2] * 0.5,
                    _ => 0.0,
                } + rng.normal();
                v.push(x as f32);
            }
        }
        features(&activations.join(layer), &ids, &objects, &v, p);
        npz = npz.f32(&format!("layer_{k}"), &v, &[n, p]);
    }
    let npz_path = dir.join("problem.npz");
    npz.write(&npz_path);
    Problem {
        activations,
        recordings,
        npz: npz_path,
        layers,
    }
}

/// Our layer commitment of `p` for `regions`, as Brain-Score's `LayerSelection` scores
/// (r² / ceiling, its default PLS options).
pub fn commit_ours(p: &Problem, regions: &[String]) -> (Vec<RegionChoice>, Vec<ScoreRow>) {
    commit(
        "planted",
        &p.activations,
        &p.layers,
        &p.recordings,
        regions,
        &|r| format!("Planted.{r}-pls"),
        Normalisation::RSquaredOverC,
        &NeuralOptions::default(),
        &|_| {},
    )
    .expect("commit")
}
