//! The layer PCA against sklearn's `PCA(n_components, random_state=0)` as Brain-Score's
//! `LayerPCA` fits it (the reference venv's scikit-learn 1.5): on generated activations whose
//! leading components are well separated, the components (with sklearn's sign convention),
//! the explained variances and the projection of new images agree within 1e-4.

mod common;

use common::{Lcg, Npz, python, reference};
use ventral_metrics::pca::Pca;

#[test]
fn pca_matches_sklearn() {
    let Some(py) = python() else {
        return;
    };
    let (n, p, k, m) = (60, 700, 8, 15);
    let mut rng = Lcg(11);
    // Ten directions with well-separated variances, plus small isotropic noise.
    let dirs: Vec<Vec<f64>> = (0..10)
        .map(|_| (0..p).map(|_| rng.normal()).collect())
        .collect();
    let sample = |rng: &mut Lcg| -> Vec<f32> {
        let a: Vec<f64> = (0..10).map(|d| rng.normal() * (12.0 - d as f64)).collect();
        (0..p)
            .map(|j| {
                let v: f64 = (0..10).map(|d| a[d] * dirs[d][j]).sum::<f64>();
                (v + 0.05 * rng.normal() + 1.5) as f32
            })
            .collect()
    };
    let fit: Vec<f32> = (0..n).flat_map(|_| sample(&mut rng)).collect();
    let x: Vec<f32> = (0..m).flat_map(|_| sample(&mut rng)).collect();
    let t = tempfile::tempdir().unwrap();
    let npz = t.path().join("pca.npz");
    Npz::new()
        .f32("fit", &fit, &[n, p])
        .f32("x", &x, &[m, p])
        .write(&npz);
    let want = reference(
        &py,
        &serde_json::json!({"op": "pca", "npz": npz, "n_components": k}),
    );
    let ours = Pca::fit(&fit, n, p, k).unwrap();
    assert_eq!(ours.k, k);
    let flat = |v: &serde_json::Value| -> Vec<f64> {
        fn walk(v: &serde_json::Value, out: &mut Vec<f64>) {
            match v {
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                x => out.push(x.as_f64().unwrap()),
            }
        }
        let mut out = Vec::new();
        walk(v, &mut out);
        out
    };
    // sklearn keeps float32 input in float32: its values carry ~1e-6 relative error.
    let comps = flat(&want["components"]);
    for (i, (a, b)) in ours.components.iter().zip(&comps).enumerate() {
        assert!(
            (a - b).abs() < 1e-4,
            "component {} feature {}: {a} vs {b}",
            i / p,
            i % p
        );
    }
    for (a, b) in ours
        .explained_variance
        .iter()
        .zip(flat(&want["explained_variance"]))
    {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    let ours_t = ours.transform(&x, m).unwrap();
    let theirs_t = flat(&want["transformed"]);
    let scale = theirs_t.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    for (a, b) in ours_t.iter().zip(&theirs_t) {
        assert!(
            ((*a as f64) - b).abs() < 1e-4 * scale.max(1.0),
            "{a} vs {b}"
        );
    }
}
