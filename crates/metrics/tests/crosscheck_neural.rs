//! Neural predictivity and its ceiling against Brain-Score's own code (brainscore-vision
//! 2.4.2 in the crosscheck venv), on generated problems of several shapes, seeds and missing
//! values. Agreement within 1e-6.

mod common;

use common::{Lcg, Npz, reference};
use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};

struct Problem {
    features: Vec<f32>,
    p: usize,
    stim: Vec<String>,
    objects: Vec<String>,
    rec: Recordings,
}

fn problem(
    seed: u64,
    n_obj: usize,
    per_obj: usize,
    p: usize,
    q: usize,
    reps: usize,
    nan_frac: f64,
) -> Problem {
    let mut r = Lcg(seed);
    let n = n_obj * per_obj;
    let stim: Vec<String> = (0..n)
        .map(|i| format!("{:08x}", (i as u64 * 2654435761 + seed) % 0xffff_ffff))
        .collect();
    let objects: Vec<String> = (0..n).map(|i| format!("obj{:02}", i % n_obj)).collect();
    let features: Vec<f32> = (0..n * p).map(|_| (r.normal() + 0.3) as f32).collect();
    let w: Vec<f64> = (0..p * q).map(|_| r.normal() / (p as f64).sqrt()).collect();
    let mut values = Vec::new();
    let (mut ps, mut po, mut prep) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        for i in 0..n {
            for j in 0..q {
                let signal: f64 = (0..p)
                    .map(|k| features[i * p + k] as f64 * w[k * q + j])
                    .sum();
                let mut v = if j == q - 1 {
                    1.5
                } else {
                    signal + 0.8 * r.normal()
                };
                if r.next() < nan_frac {
                    v = f64::NAN;
                }
                values.push(v as f32 as f64);
            }
            ps.push(stim[i].clone());
            po.push(objects[i].clone());
            prep.push(rep as i64);
        }
    }
    Problem {
        features,
        p,
        stim,
        objects,
        rec: Recordings {
            values,
            n_neuroids: q,
            stimulus_id: ps,
            object_name: po,
            repetition: prep,
        },
    }
}

fn check(seed: u64, n_obj: usize, per_obj: usize, p: usize, q: usize, reps: usize, nan_frac: f64) {
    let pr = problem(seed, n_obj, per_obj, p, q, reps, nan_frac);
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("source.npz");
    let tgt = dir.path().join("target.npz");
    let n = pr.stim.len();
    Npz::new()
        .f32("features", &pr.features, &[n, pr.p])
        .str("stimulus_id", &pr.stim)
        .str("object_name", &pr.objects)
        .write(&src);
    let q = pr.rec.n_neuroids;
    let vals32: Vec<f32> = pr.rec.values.iter().map(|&v| v as f32).collect();
    Npz::new()
        .f32("responses", &vals32, &[pr.rec.stimulus_id.len(), q])
        .str("stimulus_id", &pr.rec.stimulus_id)
        .str("object_name", &pr.rec.object_name)
        .i64("repetition", &pr.rec.repetition)
        .str(
            "neuroid_id",
            &(0..q).map(|j| format!("n{j:03}")).collect::<Vec<_>>(),
        )
        .write(&tgt);
    let want = reference(
        &py,
        &serde_json::json!({"op": "neural", "source_npz": src, "target_npz": tgt}),
    );

    let averaged = pr.rec.average().unwrap();
    let got_ids: Vec<&str> = averaged.stimulus_id.iter().map(String::as_str).collect();
    let want_ids: Vec<&str> = want["averaged_stimulus_id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got_ids, want_ids, "row order after averaging");
    let src_f = Features {
        values: &pr.features,
        n_features: pr.p,
        stimulus_id: &pr.stim,
    };
    let score = neural_predictivity(&src_f, &averaged, &NeuralOptions::default()).unwrap();
    let ceiling = pr.rec.internal_consistency(10, 1).unwrap();
    let close = |a: f64, b: &serde_json::Value, what: &str| {
        let b = b.as_f64().unwrap_or(f64::NAN);
        assert!(
            (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-6,
            "seed {seed} ({n_obj}x{per_obj}, p={p}, q={q}): {what}: ours {a} vs Brain-Score {b}"
        );
    };
    for (k, v) in score.per_split.iter().enumerate() {
        close(
            *v,
            &want["score"]["per_split"][k],
            &format!("score split {k}"),
        );
    }
    close(score.center, &want["score"]["center"], "score");
    close(score.error, &want["score"]["error"], "score error");
    for (k, v) in ceiling.per_split.iter().enumerate() {
        close(
            *v,
            &want["ceiling"]["per_split"][k],
            &format!("ceiling split {k}"),
        );
    }
    close(ceiling.center, &want["ceiling"]["center"], "ceiling");
    eprintln!(
        "crosscheck neural seed {seed}: score {:.9} (Brain-Score {}), ceiling {:.9} (Brain-Score {})",
        score.center, want["score"]["center"], ceiling.center, want["ceiling"]["center"]
    );
}

#[test]
fn more_features_than_stimuli() {
    check(1, 8, 20, 400, 9, 4, 0.0);
}

#[test]
fn fewer_features_than_stimuli_with_nan() {
    check(2, 6, 30, 40, 7, 6, 0.02);
}

#[test]
fn uneven_classes_and_many_neuroids() {
    check(3, 5, 23, 150, 30, 3, 0.01);
}
