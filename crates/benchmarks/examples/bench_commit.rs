//! Layer commitment time for `make bench`: ours (`ventral_benchmarks::commit`) vs
//! brainscore-vision 2.4.2's own `LayerSelection` (crosscheck/reference.py in the reference
//! venv) on the same generated problem — 640 stimuli (64 objects × 10) × 4 repetitions, 100
//! V4 and 100 IT sites, 8 candidate layers of 1,000 features (a layer after Brain-Score's
//! PCA) — side by side, with the same answer checked. The reference's time is its whole
//! process minus its start-up (imports), measured by a second request that scores nothing.

#[path = "../tests/common/planted.rs"]
mod planted;

use std::time::Instant;

use ventral_testkit::crosscheck::{python, reference};

fn main() {
    let Some(py) = python() else {
        eprintln!("layer commitment: no reference venv, skipped");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let sizes = planted::Sizes {
        objects: 64,
        per_object: 10,
        reps: 4,
        per_region: 100,
        layers: 8,
        features: 1000,
    };
    let p = planted::planted(t.path(), &sizes, 7);
    let regions = vec!["V4".to_string(), "IT".to_string()];
    let t0 = Instant::now();
    let (choices, _) = planted::commit_ours(&p, &regions);
    let ours = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let want = reference(
        &py,
        &serde_json::json!({"op": "layer_selection", "npz": p.npz, "layers": p.layers, "regions": regions}),
    );
    let theirs_total = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let _ = reference(
        &py,
        &serde_json::json!({"op": "layer_selection", "npz": p.npz, "layers": p.layers, "regions": []}),
    );
    let startup = t2.elapsed().as_secs_f64();
    let theirs = (theirs_total - startup).max(1e-9);
    let same = choices
        .iter()
        .all(|c| want["regions"][&c.region]["best"].as_str() == Some(c.layer.as_str()));
    println!(
        "layer commitment (2 regions × 8 layers × 1,000 features, 640 stimuli): ours {ours:.2} s, brainscore-vision LayerSelection {theirs:.2} s (+ {startup:.1} s start-up), ratio {:.0}x; same layers chosen: {same}",
        theirs / ours
    );
}
