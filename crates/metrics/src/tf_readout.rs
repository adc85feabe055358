//! Brain-Score's OST readout, `TFProbabilitiesClassifier`, reproduced step for step without
//! TensorFlow: a softmax layer trained with Adam (lr 1e-4, β 0.9/0.999, ε 1e-8) on
//! mini-batches of 64 shuffled by numpy's `RandomState(0)`, at most 40 epochs, L2 of
//! `0.5 · 0.463` on weights and biases, features z-scored as sklearn's `StandardScaler` does
//! in float32. The readout is far from converged after 40 epochs at that learning rate, so
//! its answer depends on its starting point: the weights start from TensorFlow's own
//! `VarianceScaling(seed=0)` draw — a truncated normal from the Philox4x32-10 stream with the
//! seeds TF derives for op seed 0 (`(87654321, 0)`), reproduced bit for bit (Box–Muller in
//! float32 with glibc's `logf`/`sinf`/`cosf`, |x| < 2 kept, 256 Philox draws reserved per
//! group of four outputs) —, and the biases from 1. Arithmetic is float32 throughout, as in
//! TF; only the summation order of the matrix products differs, which moves probabilities
//! by about 1e-7.

// Index loops mirror the formulas (rows × features × classes).
#![allow(clippy::needless_range_loop)]

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::error::{MetricError, Result};
use crate::rng::RandomState;

/// TensorFlow's Philox4x32-10 counter-based generator (`tensorflow/core/lib/random/philox_random.h`).
#[derive(Clone, Debug)]
pub struct Philox {
    key: [u32; 2],
    counter: [u32; 4],
}

impl Philox {
    /// `PhiloxRandom(seed_lo, seed_hi)`.
    pub fn new(seed_lo: u64, seed_hi: u64) -> Self {
        Philox {
            key: [seed_lo as u32, (seed_lo >> 32) as u32],
            counter: [0, 0, seed_hi as u32, (seed_hi >> 32) as u32],
        }
    }

    /// Advance the 128-bit counter by `count` blocks.
    pub fn skip(&mut self, count: u64) {
        let lo = count as u32;
        let mut hi = (count >> 32) as u32;
        self.counter[0] = self.counter[0].wrapping_add(lo);
        if self.counter[0] < lo {
            hi = hi.wrapping_add(1);
        }
        self.counter[1] = self.counter[1].wrapping_add(hi);
        if self.counter[1] < hi {
            self.counter[2] = self.counter[2].wrapping_add(1);
            if self.counter[2] == 0 {
                self.counter[3] = self.counter[3].wrapping_add(1);
            }
        }
    }

    /// The next block of four outputs.
    pub fn next_block(&mut self) -> [u32; 4] {
        const M_A: u64 = 0xD251_1F53;
        const M_B: u64 = 0xCD9E_8D57;
        const W_A: u32 = 0x9E37_79B9;
        const W_B: u32 = 0xBB67_AE85;
        let mut c = self.counter;
        let mut k = self.key;
        for round in 0..10 {
            let p0 = M_A * c[0] as u64;
            let p1 = M_B * c[2] as u64;
            c = [
                (p1 >> 32) as u32 ^ c[1] ^ k[0],
                p1 as u32,
                (p0 >> 32) as u32 ^ c[3] ^ k[1],
                p0 as u32,
            ];
            if round < 9 {
                k = [k[0].wrapping_add(W_A), k[1].wrapping_add(W_B)];
            }
        }
        self.skip(1);
        c
    }
}

/// A float in [0, 1) from the low 23 bits (TF's `Uint32ToFloat`).
fn uint32_to_float(x: u32) -> f32 {
    f32::from_bits((127 << 23) | (x & 0x7f_ffff)) - 1.0
}

/// TF's `BoxMullerFloat`.
fn box_muller(x0: u32, x1: u32) -> (f32, f32) {
    let u1 = uint32_to_float(x0).max(1.0e-7);
    // `2.0f * M_PI * u` is computed in double and rounded once.
    let v1 = (2.0 * std::f64::consts::PI * uint32_to_float(x1) as f64) as f32;
    let u2 = (-2.0f32 * u1.ln()).sqrt();
    (v1.sin() * u2, v1.cos() * u2)
}

/// `n` standard normals truncated to (−2, 2), as TF's `TruncatedNormal` op fills a tensor
/// with seeds `(seed, seed2)` the first time it runs.
pub fn truncated_normal(n: usize, seed: u64, seed2: u64) -> Vec<f32> {
    let base = Philox::new(seed, seed2);
    let mut out = Vec::with_capacity(n + 4);
    let mut group = 0u64;
    while out.len() < n {
        // Each group of 4 outputs owns 256 Philox blocks (kReservedSamplesPerOutput).
        let mut g = base.clone();
        g.skip(group * 256);
        let (mut block, mut used) = ([0u32; 4], 4);
        let mut one = || {
            if used == 4 {
                block = g.next_block();
                used = 0;
            }
            used += 1;
            block[used - 1]
        };
        let mut got = 0;
        while got < 4 {
            let (a, b) = box_muller(one(), one());
            for f in [a, b] {
                if f.abs() < 2.0 && got < 4 {
                    out.push(f);
                    got += 1;
                }
            }
        }
        group += 1;
    }
    out.truncate(n);
    out
}

/// The seeds TF uses for an op seed of 0 and no graph seed.
pub const TF_SEEDS: (u64, u64) = (87_654_321, 0);

/// One Adam update (TF's `ApplyAdam`, float32), with the L2 term's gradient added.
struct AdamStep {
    decay: f32,
    alpha: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

impl AdamStep {
    /// Element-wise over equal-length slices (written so that it vectorises).
    #[inline(never)]
    fn apply(&self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let n = theta.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        let (d, a, b1, b2, e) = (
            self.decay,
            self.alpha,
            1.0 - self.beta1,
            1.0 - self.beta2,
            self.eps,
        );
        for q in 0..n {
            let grad = g[q] + d * theta[q];
            let mq = m[q] + (grad - m[q]) * b1;
            let vq = v[q] + (grad * grad - v[q]) * b2;
            m[q] = mq;
            v[q] = vq;
            theta[q] -= (mq * a) / (vq.sqrt() + e);
        }
    }
}

/// A fitted readout.
#[derive(Clone, Debug)]
pub struct TfReadout {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `p × k`, row-major.
    w: Vec<f32>,
    b: Vec<f32>,
    /// Classes in order of first appearance among the training labels (TF's label indices).
    pub classes: Vec<String>,
    p: usize,
}

/// Training settings (the reference's defaults).
#[derive(Clone, Debug)]
pub struct TfReadoutOptions {
    /// Adam's learning rate (1e-4).
    pub lr: f32,
    /// Epochs at most (40).
    pub max_epochs: usize,
    /// Mini-batch size (64).
    pub batch: usize,
    /// Weight decay (0.463; the L2 term is `0.5 · decay · Σ θ²`).
    pub weight_decay: f32,
    /// Stop after an epoch whose last batch's cross-entropy is below this (1e-4).
    pub tol: f32,
}

impl Default for TfReadoutOptions {
    fn default() -> Self {
        TfReadoutOptions {
            lr: 1e-4,
            max_epochs: 40,
            batch: 64,
            weight_decay: 0.463,
            tol: 1e-4,
        }
    }
}

/// Softmax of `z` (one row) in place, float32.
fn softmax(z: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0f32;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

impl TfReadout {
    fn transform(&self, x: &[f64], n: usize) -> Vec<f32> {
        let p = self.p;
        let mut out = Vec::with_capacity(n * p);
        for i in 0..n {
            for j in 0..p {
                // numpy: `X -= mean_` then `X /= scale_`, each in float64, stored as float32.
                let t = (x[i * p + j] - self.mean[j]) as f32;
                out.push((t as f64 / self.scale[j]) as f32);
            }
        }
        out
    }

    fn logits(&self, xs: &[f32], i: usize, z: &mut [f32]) {
        let (p, k) = (self.p, self.classes.len());
        z.copy_from_slice(&self.b);
        for j in 0..p {
            let v = xs[i * p + j];
            let row = &self.w[j * k..(j + 1) * k];
            for c in 0..k {
                z[c] += v * row[c];
            }
        }
    }

    /// Fit on `x` (`n × p`, row-major) with labels `y`.
    pub fn fit(
        x: &[f64],
        n: usize,
        p: usize,
        y: &[String],
        opts: &TfReadoutOptions,
    ) -> Result<TfReadout> {
        if n == 0 || p == 0 || x.len() != n * p || y.len() != n {
            return Err(MetricError::Invalid(format!(
                "readout: {} values for {n} samples × {p} features, {} labels",
                x.len(),
                y.len()
            )));
        }
        let mut classes: Vec<String> = Vec::new();
        let labels: Vec<usize> = y
            .iter()
            .map(|l| match classes.iter().position(|c| c == l) {
                Some(i) => i,
                None => {
                    classes.push(l.clone());
                    classes.len() - 1
                }
            })
            .collect();
        let k = classes.len();
        // sklearn's StandardScaler: float64 statistics (float32 results in `transform`).
        let (mean, scale) = crate::logistic::scaler(x, n, p);
        let stddev = ((1.0 / (p as f64).max(1.0)).sqrt() / 0.879_625_661_034_239_8) as f32;
        let w: Vec<f32> = truncated_normal(p * k, TF_SEEDS.0, TF_SEEDS.1)
            .into_iter()
            .map(|v| v * stddev + 0.0)
            .collect();
        let mut r = TfReadout {
            mean,
            scale,
            w,
            b: vec![1.0; k],
            classes,
            p,
        };
        let xs = r.transform(x, n);
        let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let (mut mw, mut vw) = (vec![0f32; p * k], vec![0f32; p * k]);
        let (mut mb, mut vb) = (vec![0f32; k], vec![0f32; k]);
        let (mut b1p, mut b2p) = (beta1, beta2);
        let mut rng = RandomState::new(0);
        let bs_max = opts.batch.max(1);
        let mut xb = vec![0f32; bs_max * p];
        let mut zb = vec![0f32; bs_max * k];
        let mut gw = vec![0f32; p * k];
        let mut gb = vec![0f32; k];
        for _epoch in 0..opts.max_epochs {
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let mut last_loss = f32::INFINITY;
            for batch in order.chunks(bs_max) {
                let m = batch.len();
                let inv = 1.0 / m as f32;
                for (r_, &i) in batch.iter().enumerate() {
                    xb[r_ * p..(r_ + 1) * p].copy_from_slice(&xs[i * p..(i + 1) * p]);
                }
                // Logits of the batch: X_b · W (+ b below), one GEMM.
                matmul(
                    MatMut::from_row_major_slice_mut(&mut zb[..m * k], m, k),
                    Accum::Replace,
                    MatRef::from_row_major_slice(&xb[..m * p], m, p),
                    MatRef::from_row_major_slice(&r.w, p, k),
                    1.0f32,
                    Par::Seq,
                );
                let mut loss = 0.0f32;
                gb.iter_mut().for_each(|g| *g = 0.0);
                for (r_, &i) in batch.iter().enumerate() {
                    let z = &mut zb[r_ * k..(r_ + 1) * k];
                    for c in 0..k {
                        z[c] += r.b[c];
                    }
                    softmax(z);
                    loss -= z[labels[i]].max(f32::MIN_POSITIVE).ln();
                    z[labels[i]] -= 1.0;
                    for c in 0..k {
                        z[c] *= inv;
                        gb[c] += z[c];
                    }
                }
                // ∂/∂W of the mean cross-entropy: X_bᵀ · G, one GEMM.
                matmul(
                    MatMut::from_row_major_slice_mut(&mut gw, p, k),
                    Accum::Replace,
                    MatRef::from_row_major_slice(&xb[..m * p], m, p).transpose(),
                    MatRef::from_row_major_slice(&zb[..m * k], m, k),
                    1.0f32,
                    Par::Seq,
                );
                last_loss = loss * inv;
                // The L2 term's gradient, then TF's ApplyAdam in float32.
                let decay = opts.weight_decay;
                let alpha = opts.lr * (1.0 - b2p).sqrt() / (1.0 - b1p);
                let step = AdamStep {
                    decay,
                    alpha,
                    beta1,
                    beta2,
                    eps,
                };
                step.apply(&mut r.w, &gw, &mut mw, &mut vw);
                step.apply(&mut r.b, &gb, &mut mb, &mut vb);
                b1p *= beta1;
                b2p *= beta2;
            }
            if last_loss < opts.tol {
                break;
            }
        }
        Ok(r)
    }

    /// Class probabilities (`n × classes`, row-major, columns in [`TfReadout::classes`]).
    pub fn predict_proba(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        if x.len() != n * self.p {
            return Err(MetricError::Invalid(format!(
                "readout: {} values for {n} samples × {} features",
                x.len(),
                self.p
            )));
        }
        let xs = self.transform(x, n);
        let k = self.classes.len();
        let mut z = vec![0f32; k];
        let mut out = Vec::with_capacity(n * k);
        for i in 0..n {
            self.logits(&xs, i, &mut z);
            softmax(&mut z);
            out.extend(z.iter().map(|&v| v as f64));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_and_truncated_normal_follow_tensorflow() {
        // TF 2.15: tf.compat.v1.keras.initializers.VarianceScaling(seed=0) for shape
        // [24, 5] gives these first values (= truncated_normal(...) * stddev).
        let stddev = ((1.0f64 / 24.0).sqrt() / 0.879_625_661_034_239_8) as f32;
        let w: Vec<f32> = truncated_normal(120, TF_SEEDS.0, TF_SEEDS.1)
            .into_iter()
            .map(|v| v * stddev)
            .collect();
        let want = [
            -0.092_627_704_143_524_17f64,
            0.039_698_679_000_139_236,
            0.126_823_887_228_965_76,
            0.098_057_024_180_889_13,
            -0.277_193_516_492_843_6,
            -0.061_804_007_738_828_66,
        ];
        // (The float32 values TF printed, written as the float64 numbers Python shows.)
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(&w[..6], &want[..]);
        assert!(w.iter().all(|v| v.abs() < 2.0 * stddev));
    }

    #[test]
    fn the_readout_learns_separable_classes_with_a_usable_learning_rate() {
        // (At the reference's lr 1e-4 and 80 steps it barely leaves its starting point.)
        let (n, p) = (120, 6);
        let y: Vec<String> = (0..n).map(|i| format!("c{}", i % 3)).collect();
        let x: Vec<f64> = (0..n * p)
            .map(|q| {
                let (i, j) = (q / p, q % p);
                if j == i % 3 { 3.0 } else { 0.0 }
            } + ((q * 37 % 11) as f64 - 5.0) / 10.0)
            .collect();
        let opts = TfReadoutOptions {
            lr: 0.05,
            ..TfReadoutOptions::default()
        };
        let r = TfReadout::fit(&x, n, p, &y, &opts).unwrap();
        assert_eq!(r.classes, ["c0", "c1", "c2"]);
        let pr = r.predict_proba(&x, n).unwrap();
        let right = (0..n)
            .filter(|&i| {
                let row = &pr[i * 3..i * 3 + 3];
                let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                best == i % 3
            })
            .count();
        assert!(right as f64 / n as f64 > 0.9, "{right}/{n}");
    }
}
