//! The behavioural readout (multinomial L2 logistic regression after standardising) against
//! the classifier Brain-Score uses (sklearn, newton-cg, C = 1e-3) on generated features.

mod common;

use common::{Lcg, Npz, reference};
use ventral_metrics::logistic::Logistic;

fn check(seed: u64, n: usize, p: usize, k: usize, c: f64) {
    let Some(py) = common::python() else { return };
    let mut r = Lcg(seed);
    let centres: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..p).map(|_| r.next() * 2.0 - 1.0).collect())
        .collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i * 7 + seed as usize) % k;
        for (j, m) in centres[c].iter().enumerate() {
            x.push(m * 3.0 + (r.next() - 0.5) * 4.0 + j as f64 * 0.1);
        }
        y.push(format!("object{c:02}"));
    }
    let n_test = 40;
    let x_test: Vec<f64> = (0..n_test * p).map(|_| (r.next() - 0.5) * 6.0).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.npz");
    Npz::new()
        .f64("x", &x, &[n, p])
        .str("y", &y)
        .f64("x_test", &x_test, &[n_test, p])
        .write(&path);
    let m = Logistic::fit(&x, n, p, &y, c).unwrap();
    let got = m.predict_proba(&x_test, n_test).unwrap();
    let gap = |want: &serde_json::Value| {
        let classes: Vec<String> = want["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut worst = 0.0f64;
        for i in 0..n_test {
            for (col, name) in classes.iter().enumerate() {
                let ours = got[i * k + m.classes.iter().position(|c| c == name).unwrap()];
                let theirs = want["proba"][i][col].as_f64().unwrap();
                worst = worst.max((ours - theirs).abs());
            }
        }
        worst
    };
    // The optimum: sklearn's newton-cg run to convergence.
    let converged = gap(&reference(
        &py,
        &serde_json::json!({"op": "logistic", "npz": path, "c": c, "tol": 1e-12, "max_iter": 10000}),
    ));
    // Brain-Score's settings: newton-cg stops at sklearn's default tol (1e-4) — short of it.
    let default = gap(&reference(
        &py,
        &serde_json::json!({"op": "logistic", "npz": path, "c": c}),
    ));
    eprintln!(
        "crosscheck logistic seed {seed} ({n} x {p}, {k} classes, C {c}): max |p - sklearn converged| = {converged:.2e}; vs sklearn at its default tol (Brain-Score) = {default:.2e}"
    );
    assert!(
        converged < 1e-6,
        "seed {seed}: probabilities differ from the optimum by {converged}"
    );
    assert!(
        default < 1e-3,
        "seed {seed}: probabilities differ from Brain-Score's by {default}"
    );
}

#[test]
fn matches_brainscore_readout_small() {
    check(1, 120, 8, 4, 1e-3);
}

#[test]
fn matches_brainscore_readout_wide() {
    check(2, 300, 64, 6, 1e-3);
}

#[test]
fn matches_brainscore_readout_weakly_regularised() {
    check(3, 200, 16, 5, 1.0);
}
