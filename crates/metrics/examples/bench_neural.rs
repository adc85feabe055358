//! `make bench` figures for the neural benchmark (issue 7): one MajajHong-sized region —
//! 2,560 stimuli × 25,088 features → 168 neuroids, 10 splits, PLS-25 — plus the ceiling from
//! 50 repetitions, on generated data. Prints seconds and peak memory (VmHWM).
//!
//! Usage: bench_neural [STIMULI FEATURES NEUROIDS REPS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Lcg, peak_rss_mb};

use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (n, p, q, reps) = (
        a.first().copied().unwrap_or(2560),
        a.get(1).copied().unwrap_or(25088),
        a.get(2).copied().unwrap_or(168),
        a.get(3).copied().unwrap_or(50),
    );
    let mut r = Lcg(7);
    let stim: Vec<String> = (0..n)
        .map(|i| format!("{:040x}", (i as u128 + 1) * 0x9E37_79B9_7F4A_7C15))
        .collect();
    let objects: Vec<String> = (0..n).map(|i| format!("obj{:02}", i % 64)).collect();
    let features: Vec<f32> = (0..n * p).map(|_| r.normal().max(0.0) as f32).collect();
    // Responses: a random projection of 64 latent features plus noise, 50 repetitions.
    let latent: Vec<f64> = (0..n * 64).map(|_| r.normal()).collect();
    let w: Vec<f64> = (0..64 * q).map(|_| r.normal() / 8.0).collect();
    let mut values = Vec::with_capacity(n * reps * q);
    let (mut ps, mut po, mut pr) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        for i in 0..n {
            for j in 0..q {
                let s: f64 = (0..64).map(|k| latent[i * 64 + k] * w[k * q + j]).sum();
                values.push(s + 2.0 * r.normal());
            }
            ps.push(stim[i].clone());
            po.push(objects[i].clone());
            pr.push(rep as i64);
        }
    }
    let rec = Recordings {
        values,
        n_neuroids: q,
        stimulus_id: ps,
        object_name: po,
        repetition: pr,
    };
    let t = Instant::now();
    let avg = rec.average().unwrap();
    let src = Features {
        values: &features,
        n_features: p,
        stimulus_id: &stim,
    };
    let score = neural_predictivity(&src, &avg, &NeuralOptions::default()).unwrap();
    let t_pls = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ceiling = rec.internal_consistency(10, 1).unwrap();
    let t_ceil = t.elapsed().as_secs_f64();
    println!(
        "neural: {n} stimuli x {p} features -> {q} neuroids, 10 splits, PLS-25: {t_pls:.1} s (score {:.4}); ceiling from {reps} repetitions: {t_ceil:.2} s (ceiling {:.4}); peak RSS {:.0} MB",
        score.center,
        ceiling.center,
        peak_rss_mb()
    );
    // No ratio here: Brain-Score's run at these sizes takes about 22 minutes.
    // `bench/python.py` (also in `make bench`) measures both side by side on a smaller
    // problem, and at these sizes with BENCH_REFERENCE=1.
}
