//! The hidden brain: what it computes is known, so our metrics can be checked against it.
//!
//! - V4 sites read mid-level image features (oriented gradient energy in a 4 × 4 grid,
//!   [`crate::render::midlevel_features`]): a sparse weighting of six features, softplus.
//! - IT sites read object identity (the object's latent vector, which clusters by category)
//!   with a little pose tuning (preferred in-plane orientation) and a wide receptive field.
//! - Trial noise per site is set so that the split-half (Spearman–Brown) consistency of the
//!   repetition-averaged responses lands on a target ceiling: with signal variance `v` across
//!   images and `R` repetitions, half-means have noise variance `2σ²/R`, the split-half
//!   correlation is `r = v / (v + 2σ²/R)` and the ceiling `2r/(1+r)`; each site's target is
//!   drawn around the area's ceiling.
//! - Over time (10-ms bins from 70 ms), IT starts with an image-independent onset transient
//!   and object information appears at an image-specific latency (the ground-truth OST),
//!   later for harder images.

use crate::rng::Rng;
use crate::world::{LATENT, Object, Stimulus};

fn softplus(x: f64) -> f64 {
    if x > 20.0 { x } else { (1.0 + x.exp()).ln() }
}

/// One V4 site.
#[derive(Clone, Debug)]
pub struct V4Site {
    weights: Vec<(usize, f64)>,
    bias: f64,
}

/// One IT site.
#[derive(Clone, Debug)]
pub struct ItSite {
    w: Vec<f64>,
    kappa: f64,
    phi: f64,
    centre: (f64, f64),
    bias: f64,
}

/// The sites of both areas.
#[derive(Clone, Debug)]
pub struct Brain {
    /// V4.
    pub v4: Vec<V4Site>,
    /// IT.
    pub it: Vec<ItSite>,
}

impl Brain {
    /// Sites drawn from `seed`.
    pub fn new(seed: u64, n_v4: usize, n_it: usize, n_features: usize) -> Brain {
        let v4 = (0..n_v4)
            .map(|j| {
                let mut r = Rng::new(seed, "v4-site", j as u64);
                let weights = (0..6)
                    .map(|_| (r.below(n_features), r.normal() / 6f64.sqrt()))
                    .collect();
                V4Site {
                    weights,
                    bias: r.range(0.5, 1.5),
                }
            })
            .collect();
        let it = (0..n_it)
            .map(|j| {
                let mut r = Rng::new(seed, "it-site", j as u64);
                ItSite {
                    w: (0..LATENT)
                        .map(|_| r.normal() / (LATENT as f64).sqrt())
                        .collect(),
                    kappa: r.range(0.0, 0.3),
                    phi: r.range(0.0, 180.0),
                    centre: (r.range(-0.3, 0.3), r.range(-0.6, 0.6)),
                    bias: r.range(0.5, 1.5),
                }
            })
            .collect();
        Brain { v4, it }
    }

    /// Noise-free V4 responses `[image][site]` from standardised mid-level features.
    pub fn v4_true(&self, features: &[Vec<f64>]) -> Vec<Vec<f64>> {
        features
            .iter()
            .map(|f| {
                self.v4
                    .iter()
                    .map(|s| {
                        softplus(s.bias + s.weights.iter().map(|&(k, w)| w * f[k]).sum::<f64>())
                    })
                    .collect()
            })
            .collect()
    }

    /// Noise-free IT responses `[image][site]`.
    pub fn it_true(&self, stimuli: &[Stimulus], objects: &[&Object]) -> Vec<Vec<f64>> {
        stimuli
            .iter()
            .map(|st| {
                let z = &objects[st.object].latent;
                self.it
                    .iter()
                    .map(|s| {
                        let drive: f64 = s.w.iter().zip(z).map(|(a, b)| a * b).sum::<f64>() * 1.5;
                        let tune = s.kappa * (2.0 * (st.pose.rxy - s.phi).to_radians()).cos();
                        let d2 = (st.pose.ty - s.centre.0).powi(2)
                            + ((st.pose.tz - s.centre.1) / 2.0).powi(2);
                        let rf = (-d2 / (2.0 * 1.5 * 1.5)).exp();
                        softplus(s.bias + drive + tune) * (0.7 + 0.3 * rf)
                    })
                    .collect()
            })
            .collect()
    }
}

/// Standardise features column-wise (mean 0, std 1 across images).
pub fn standardise(features: &mut [Vec<f64>]) {
    let n = features.len().max(1) as f64;
    let d = features.first().map_or(0, Vec::len);
    for k in 0..d {
        let m = features.iter().map(|f| f[k]).sum::<f64>() / n;
        let v = features.iter().map(|f| (f[k] - m).powi(2)).sum::<f64>() / n;
        let s = v.sqrt().max(1e-9);
        for f in features.iter_mut() {
            f[k] = (f[k] - m) / s;
        }
    }
}

/// Per-site noise standard deviations that put each site's split-half ceiling near
/// `target` (drawn per site with spread .04) given `reps` repetitions.
pub fn noise_for_ceiling(
    truth: &[Vec<f64>],
    target: f64,
    reps: usize,
    seed: u64,
    stream: &str,
) -> Vec<f64> {
    let n = truth.len().max(1) as f64;
    let sites = truth.first().map_or(0, Vec::len);
    (0..sites)
        .map(|j| {
            let m = truth.iter().map(|t| t[j]).sum::<f64>() / n;
            let v = truth.iter().map(|t| (t[j] - m).powi(2)).sum::<f64>() / n;
            let mut r = Rng::new(seed, stream, j as u64);
            let c = (target + 0.04 * r.normal()).clamp(0.3, 0.99);
            let rh = c / (2.0 - c);
            (v * (1.0 - rh) / rh * (reps as f64 / 2.0)).sqrt()
        })
        .collect()
}

/// Trial responses `[rep][image][site]` = truth + noise.
pub fn trials(
    truth: &[Vec<f64>],
    sigma: &[f64],
    reps: usize,
    seed: u64,
    stream: &str,
) -> Vec<Vec<Vec<f64>>> {
    (0..reps)
        .map(|rep| {
            truth
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut r = Rng::new(seed, stream, (rep * 1_000_000 + i) as u64);
                    t.iter()
                        .zip(sigma)
                        .map(|(x, s)| x + s * r.normal())
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The 10-ms bins of the time-resolved recordings: starts 70, 80, …, 240 ms.
pub fn time_bins() -> Vec<i64> {
    (70..250).step_by(10).collect()
}

/// The ground-truth object solution time of an image (ms).
pub fn latency(st: &Stimulus, seed: u64, index: usize) -> f64 {
    let mut r = Rng::new(seed, "latency", index as u64);
    (100.0 + 110.0 * st.difficulty + 6.0 * r.normal()).clamp(90.0, 230.0)
}

/// IT over time: `[bin][image][site]` noise-free. Each site's response is its mean, a
/// stimulus-independent onset transient near 85 ms, an early visual component `early`
/// (feed-forward, image-specific but not object-specific) peaking near 105 ms and gone by
/// 170 ms — scaled to the site's identity signal —, and the object-identity response
/// `truth` that arrives at each image's latency. So early bins (90–110 ms) carry image
/// information without identity, and late bins (190–210 ms) identity alone.
pub fn it_over_time(
    truth: &[Vec<f64>],
    early: &[Vec<f64>],
    latencies: &[f64],
) -> Vec<Vec<Vec<f64>>> {
    let sites = truth.first().map_or(0, Vec::len);
    let n = truth.len().max(1) as f64;
    let stats = |rows: &[Vec<f64>], j: usize| {
        let m = rows.iter().map(|t| t[j]).sum::<f64>() / n;
        let v = rows.iter().map(|t| (t[j] - m).powi(2)).sum::<f64>() / n;
        (m, v.sqrt())
    };
    let mean: Vec<f64> = (0..sites).map(|j| stats(truth, j).0).collect();
    let early_z: Vec<(f64, f64)> = (0..sites)
        .map(|j| {
            let (m, s) = stats(early, j);
            (m, stats(truth, j).1 / s.max(1e-12))
        })
        .collect();
    time_bins()
        .iter()
        .map(|&t0| {
            let t = t0 as f64 + 5.0;
            let gain = (-((t - 105.0) / 25.0).powi(2)).exp();
            truth
                .iter()
                .zip(early)
                .zip(latencies)
                .map(|((row, e), &lat)| {
                    let on = 1.0 / (1.0 + (-(t - lat) / 6.0).exp());
                    let onset = 0.5 * (-((t - 85.0) / 12.0).powi(2)).exp();
                    row.iter()
                        .zip(e)
                        .zip(&mean)
                        .zip(&early_z)
                        .map(|(((x, ej), m), (em, scale))| {
                            m + onset + gain * (ej - em) * scale + (x - m) * on
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Standard normal CDF (for the behaviour model).
pub fn phi(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 on erf.
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    0.5 * (1.0 + if z >= 0.0 { y } else { -y })
}
