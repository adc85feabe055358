//! I2n against Brain-Score's own `I2n` metric on generated probabilities and trials.

mod common;

use common::{Lcg, Npz, reference};
use ventral_metrics::i2n::{Probabilities, Trials, i2n};

fn check(seed: u64, n_obj: usize, per_obj: usize, trials_per_image: usize) {
    let Some(py) = common::python() else { return };
    let mut r = Lcg(seed);
    let objects: Vec<String> = (0..n_obj).map(|o| format!("object{o:02}")).collect();
    let images: Vec<String> = (0..n_obj * per_obj)
        .map(|i| format!("{:06x}", (i as u64 * 7919 + seed * 31) % 0xffffff))
        .collect();
    let truth_idx: Vec<usize> = (0..images.len()).map(|i| i % n_obj).collect();
    let difficulty: Vec<f64> = (0..images.len()).map(|_| r.next()).collect();
    // Model probabilities: a softmax favouring the truth, less so for hard images.
    let mut probs = Vec::new();
    for i in 0..images.len() {
        let logits: Vec<f64> = (0..n_obj)
            .map(|o| if o == truth_idx[i] { 3.0 * (1.0 - difficulty[i]) } else { 0.0 } + r.next() * 1.5)
            .collect();
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        probs.extend(logits.iter().map(|l| ((l.exp() / z) as f32) as f64));
    }
    let mut t = Trials::default();
    for (i, img) in images.iter().enumerate() {
        for _ in 0..trials_per_image {
            let mut d = r.below(n_obj - 1);
            if d >= truth_idx[i] {
                d += 1;
            }
            let correct = r.next() < 0.95 - 0.5 * difficulty[i] + 0.02 * d as f64;
            t.stimulus_id.push(img.clone());
            t.sample_obj.push(objects[truth_idx[i]].clone());
            t.dist_obj.push(objects[d].clone());
            t.truth.push(objects[truth_idx[i]].clone());
            t.choice.push(if correct {
                objects[truth_idx[i]].clone()
            } else {
                objects[d].clone()
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pp = dir.path().join("p.npz");
    let tp = dir.path().join("t.npz");
    let p32: Vec<f32> = probs.iter().map(|&v| v as f32).collect();
    Npz::new()
        .f32("probabilities", &p32, &[images.len(), n_obj])
        .str("stimulus_id", &images)
        .str("choice", &objects)
        .write(&pp);
    Npz::new()
        .str("stimulus_id", &t.stimulus_id)
        .str("sample_obj", &t.sample_obj)
        .str("dist_obj", &t.dist_obj)
        .str("choice", &t.choice)
        .str("truth", &t.truth)
        .write(&tp);
    let want = reference(
        &py,
        &serde_json::json!({"op": "i2n", "probabilities_npz": pp, "trials_npz": tp}),
    );
    let got = i2n(
        &Probabilities {
            values: &probs,
            stimulus_id: &images,
            choice: &objects,
        },
        &t,
        2,
        0,
    )
    .unwrap();
    let close = |a: f64, b: &serde_json::Value, what: &str| {
        let b = b.as_f64().unwrap_or(f64::NAN);
        assert!(
            (a - b).abs() < 1e-6,
            "seed {seed}: {what}: ours {a} vs Brain-Score {b}"
        );
    };
    for k in 0..2 {
        close(got.raw[k], &want["raw"][k], &format!("raw split {k}"));
    }
    close(got.score, &want["score"], "score");
    match (&got.ceiling_raw, want["ceiling"].is_null()) {
        (Some(c), false) => {
            for k in 0..2 {
                close(c[k], &want["ceiling_raw"][k], &format!("ceiling split {k}"));
            }
            close(got.ceiled.unwrap_or(f64::NAN), &want["ceiled"], "ceiled");
        }
        (None, true) => {}
        (ours, _) => panic!(
            "seed {seed}: ceiling ours {ours:?} vs Brain-Score {}",
            want["ceiling"]
        ),
    }
    eprintln!(
        "crosscheck i2n seed {seed}: score {:.9} (Brain-Score {}), ceiling {:?} (Brain-Score {})",
        got.score, want["score"], got.ceiling, want["ceiling"]
    );
}

#[test]
fn i2n_small() {
    check(11, 6, 5, 80);
}

#[test]
fn i2n_more_objects() {
    check(12, 10, 4, 120);
}
