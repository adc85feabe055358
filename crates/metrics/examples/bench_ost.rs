//! `make bench` figures for the OST benchmark (issue 7): 1,318 images × 18 time bins × 512
//! features, 10 objects, 10 splits — Kar2019's size — on generated data, ours and (when the
//! cross-check venv is there: `$VENTRAL_CROSSCHECK_PYTHON`) Brain-Score's `OSTCorrelation`
//! on the same input in the same run. Images the monkey never solved carry no object signal,
//! so the reference evaluates every time bin (its worst case, and ours always).
//!
//! A second input has what a CORnet-S gives the benchmark: IT's two timesteps over the 18
//! bins (70–150 ms from `IT-t0`, 160–240 ms from `IT-t1`). The reference trains a readout per
//! bin regardless; ours fits once per distinct feature set.
//!
//! Usage: bench_ost [IMAGES FEATURES]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Lcg, Npz, peak_rss_mb};
use ventral_metrics::ost::{Bin, OstReadout, ost};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (n, p, k) = (
        a.first().copied().unwrap_or(1318),
        a.get(1).copied().unwrap_or(512),
        10,
    );
    let starts: Vec<f64> = (70..=240).step_by(10).map(f64::from).collect();
    let mut r = Lcg(3);
    let ids: Vec<String> = (0..n).map(|i| format!("img{i:05}")).collect();
    let labels: Vec<String> = (0..n).map(|i| format!("obj{:02}", (i * 7) % k)).collect();
    let monkey: Vec<f64> = (0..n)
        .map(|_| {
            if r.next() < 0.1 {
                f64::NAN
            } else {
                100.0 + 100.0 * r.next()
            }
        })
        .collect();
    let i1: Vec<f64> = (0..n).map(|_| 1.0 + 1.5 * r.next()).collect();
    let protos: Vec<f64> = (0..k * p).map(|_| r.normal()).collect();
    let mut bins = vec![vec![0f64; n * p]; starts.len()];
    for i in 0..n {
        let c = (i * 7) % k;
        for (b, &t) in starts.iter().enumerate() {
            let gain = if monkey[i].is_nan() {
                0.0
            } else {
                3.0 / (1.0 + (-(t - monkey[i] + 30.0) / 15.0).exp())
            };
            for f in 0..p {
                bins[b][i * p + f] = (protos[c * p + f] * gain + r.normal()) as f32 as f64;
            }
        }
    }
    let shared_from = |b: usize| if starts[b] < 155.0 { 4 } else { 13 };
    let run = |label: &str, shared: bool| {
        let views: Vec<Bin<'_>> = starts
            .iter()
            .enumerate()
            .map(|(b, &start)| Bin {
                start,
                values: &bins[if shared { shared_from(b) } else { b }],
                n_features: p,
            })
            .collect();
        let t = Instant::now();
        let got = ost(&views, &labels, &monkey, &i1, 10, 1, OstReadout::BrainScore).expect("OST");
        let ours = t.elapsed().as_secs_f64();
        println!(
            "ost ({label}): {n} images x {} bins x {p} features, {k} objects, 10 splits: {ours:.2} s (score {:.4}); peak RSS {:.0} MB",
            starts.len(),
            got.score,
            peak_rss_mb()
        );
        (ours, got.score)
    };
    let distinct = run("18 distinct bins", false);
    let shared = run("IT's 2 timesteps over 18 bins", true);
    let Some(py) = std::env::var("VENTRAL_CROSSCHECK_PYTHON")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
    else {
        println!("ost: no $VENTRAL_CROSSCHECK_PYTHON: the reference was not run");
        return;
    };
    for (label, (ours, score), is_shared) in [
        ("18 distinct bins", distinct, false),
        ("IT's 2 timesteps over 18 bins", shared, true),
    ] {
        let mut cube = vec![0f32; n * p * starts.len()];
        for (b, _) in starts.iter().enumerate() {
            let src = &bins[if is_shared { shared_from(b) } else { b }];
            for q in 0..n * p {
                cube[q * starts.len() + b] = src[q] as f32;
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (sp, tp) = (dir.path().join("s.npz"), dir.path().join("t.npz"));
        let bs: Vec<i64> = starts.iter().map(|&s| s as i64).collect();
        let be: Vec<i64> = bs.iter().map(|s| s + 10).collect();
        Npz::new()
            .f32("features", &cube, &[n, p, starts.len()])
            .str("stimulus_id", &ids)
            .str("image_label", &labels)
            .i64("time_bin_start", &bs)
            .i64("time_bin_end", &be)
            .write(&sp);
        Npz::new()
            .f64("ost", &monkey, &[n])
            .str("stimulus_id", &ids)
            .str("image_label", &labels)
            .f64("i1", &i1, &[n])
            .write(&tp);
        let t = Instant::now();
        let want = common::reference(
            std::path::Path::new(&py),
            &serde_json::json!({"op": "ost", "source_npz": sp, "target_npz": tp}),
        );
        let theirs = t.elapsed().as_secs_f64();
        let ref_score = want["score"].as_f64().unwrap_or(f64::NAN);
        println!(
            "ost ({label}): brainscore-vision 2.4.2 (TensorFlow 2.15 readout), same input, same run: {theirs:.1} s (score {ref_score:.4}): ours is {:.0}x faster (goal >= 100x), |score difference| {:.1e}",
            theirs / ours,
            (score - ref_score).abs()
        );
    }
}
