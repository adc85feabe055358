//! `make bench` figures for the neural benchmark (issue 7): one MajajHong-sized region —
//! 2,560 stimuli × 25,088 features → 168 neuroids, 10 splits, PLS-25 — plus the ceiling from
//! 50 repetitions, on generated data. Prints seconds and peak memory (VmHWM), then where the
//! time goes: averaging the repetitions, the one Gram matrix (its GFLOP/s beside this
//! machine's f64 FMA peak, measured here on every thread), and the ten fits.
//!
//! Usage: bench_neural [STIMULI FEATURES NEUROIDS REPS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Lcg, peak_rss_mb};

use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};
use ventral_metrics::pls::gram_of_rows;

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
    // Where the time goes, each part timed again on its own.
    let t = Instant::now();
    let _ = rec.average().unwrap();
    let t_avg = t.elapsed().as_secs_f64();
    let rows: Vec<usize> = (0..n).collect();
    let t = Instant::now();
    let g = gram_of_rows(&features, p, &rows);
    let t_gram = t.elapsed().as_secs_f64();
    std::hint::black_box(&g);
    // n(n+1)/2 inner products of p multiply-adds: the lower triangle with its diagonal.
    let gflop = (n * (n + 1) / 2) as f64 * p as f64 * 2.0 / 1e9;
    let peak = fma_peak_gflops();
    println!(
        "neural, of which: averaging {t_avg:.2} s; Gram {t_gram:.2} s ({gflop:.0} GFLOP, {:.0} GFLOP/s, {:.0} % of this machine's f64 FMA peak of {peak:.0} GFLOP/s on {} threads; at that peak {:.2} s); the ten fits and predictions {:.2} s",
        gflop / t_gram,
        100.0 * gflop / t_gram / peak,
        rayon::current_num_threads(),
        gflop / peak,
        (t_pls - t_avg - t_gram).max(0.0),
    );
    // No ratio here: Brain-Score's run at these sizes takes about 22 minutes.
    // `bench/python.py` (also in `make bench`) measures both side by side on a smaller
    // problem, and at these sizes with BENCH_REFERENCE=1.
}

/// f64 GFLOP/s of independent fused multiply-adds on every rayon thread at once (the widest
/// vectors the CPU has; 12 accumulators hide the FMA latency): the limit a GEMM approaches.
fn fma_peak_gflops() -> f64 {
    use rayon::prelude::*;
    const ITERS: u64 = 50_000_000;
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let flops: f64 = (0..threads).into_par_iter().map(|_| fma_loop(ITERS)).sum();
    flops / t.elapsed().as_secs_f64() / 1e9
}

/// Runs `iters` rounds of 12 vector FMAs; returns the floating-point operations done.
fn fma_loop(iters: u64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { fma512(iters) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { fma256(iters) };
        }
    }
    let mut acc = [1.0f64; 12];
    for _ in 0..iters {
        for a in &mut acc {
            *a = a.mul_add(0.999_999_9, 1e-9);
        }
    }
    std::hint::black_box(acc);
    iters as f64 * 12.0 * 2.0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: u64) -> f64 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_pd(0.999_999_9), _mm256_set1_pd(1e-9));
    let mut acc = [_mm256_set1_pd(1.0); 12];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm256_fmadd_pd(*a, m, c);
        }
    }
    std::hint::black_box(acc);
    iters as f64 * 12.0 * 4.0 * 2.0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: u64) -> f64 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm512_set1_pd(0.999_999_9), _mm512_set1_pd(1e-9));
    let mut acc = [_mm512_set1_pd(1.0); 12];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm512_fmadd_pd(*a, m, c);
        }
    }
    std::hint::black_box(acc);
    iters as f64 * 12.0 * 8.0 * 2.0
}
