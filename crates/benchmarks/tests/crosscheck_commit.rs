//! Layer commitment against Brain-Score's own `LayerSelection` (brainscore-vision 2.4.2, in
//! the crosscheck venv, fed the same activations: its `LayerScores` wraps each candidate
//! layer as a `LayerMappedModel` and scores it with a `NeuralBenchmark` — PLS-25, Pearson,
//! r² / ceiling): the same layer chosen per region, every layer's score within 1e-4. The
//! generated problem plants V4's and IT's signals in different layers, so the choice is
//! determined, and includes a layer carrying a little of both.

#[path = "common/planted.rs"]
mod planted;

use ventral_testkit::crosscheck::{python, reference};

#[test]
fn commitment_matches_brainscore_layer_selection() {
    let Some(py) = python() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let sizes = planted::Sizes {
        objects: 8,
        per_object: 10,
        reps: 4,
        per_region: 15,
        layers: 4,
        features: 40,
    };
    let p = planted::planted(t.path(), &sizes, 2024);
    let regions = vec!["V4".to_string(), "IT".to_string()];
    let (choices, rows) = planted::commit_ours(&p, &regions);
    assert!(rows.iter().all(|r| r.layer.is_some()));
    let want = reference(
        &py,
        &serde_json::json!({"op": "layer_selection", "npz": p.npz, "layers": p.layers, "regions": regions}),
    );
    for c in &choices {
        let theirs = &want["regions"][&c.region];
        let scores: Vec<f64> = theirs["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), c.scores.len());
        for ((layer, ours), theirs) in c.scores.iter().zip(&scores) {
            assert!(
                (ours - theirs).abs() < 1e-4,
                "{} {layer}: ours {ours}, Brain-Score {theirs}",
                c.region
            );
        }
        assert_eq!(c.layer, theirs["best"].as_str().unwrap(), "{}", c.region);
    }
    assert_eq!(choices[0].layer, "v4_like");
    assert_eq!(choices[1].layer, "it_like");
}
