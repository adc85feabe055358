//! PCA as Brain-Score's `LayerPCA` applies it to candidate layers: sklearn's
//! `PCA(n_components)` with the full solver (centre, SVD, signs so that each component's
//! largest-magnitude entry is positive — `svd_flip(u_based_decision=False)`), fitted on a
//! set of images' activations and applied to every stimulus's.
//!
//! Layers have far more features than images (`p ≫ n`), so the SVD is taken in sample
//! space: the Gram matrix `Xc Xcᵀ` (n × n, accumulated over column blocks in a fixed order,
//! so memory stays `O(n²)` beyond the activations and the bytes do not depend on the thread
//! count), its eigendecomposition `U Λ Uᵀ`, and the components `Vᵀ = Λ^-½ Uᵀ Xc`.
//! Components whose singular value is numerically zero (the centred data of n images has
//! rank ≤ n − 1) are dropped rather than returned as arbitrary directions, so a fit on n
//! images keeps at most n − 1 components.

use faer::{MatRef, Side};

use crate::error::{Result, invalid};

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Features of the input.
    pub p: usize,
    /// Components kept.
    pub k: usize,
    /// The feature means of the fitting data.
    pub mean: Vec<f64>,
    /// The components, row-major `k × p`, unit length.
    pub components: Vec<f64>,
    /// The variance each component explains (sklearn's `explained_variance_`).
    pub explained_variance: Vec<f64>,
}

/// Columns per block of the Gram accumulation and of the components' product.
const BLOCK: usize = 2048;

/// A PCA whose mean and components are kept in f32 (what a layer's projection uses): the
/// same fit as [`Pca::fit`], computed in f64 and rounded once, without an f64 copy of the
/// `k × p` components — for a 400,000-feature layer that copy alone would be 3.2 GB.
#[derive(Clone, Debug)]
pub struct PcaF32 {
    /// Features of the input.
    pub p: usize,
    /// Components kept.
    pub k: usize,
    /// The feature means of the fitting data.
    pub mean: Vec<f32>,
    /// The components, row-major `k × p`, unit length.
    pub components: Vec<f32>,
}

/// The sample-space part of a fit: means, and `W = Λ^-½ Uᵀ` (row-major `k × n`) of the kept
/// eigenpairs in descending order.
struct Basis {
    mean: Vec<f64>,
    w: Vec<f64>,
    k: usize,
    explained_variance: Vec<f64>,
}

fn check_input(x: &[f32], n: usize, p: usize, n_components: usize) -> Result<()> {
    if x.len() != n * p {
        return invalid(format!("PCA: {} values for {n} × {p}", x.len()));
    }
    if n < 2 || p == 0 || n_components == 0 {
        return invalid(format!(
            "PCA: needs ≥ 2 images, ≥ 1 feature and ≥ 1 component (have {n} images, {p} features, {n_components} components)"
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return invalid(format!(
            "PCA: non-finite activation at image {}, feature {}",
            i / p,
            i % p
        ));
    }
    Ok(())
}

/// Columns `c0..c1` of `x`, centred, in f64 (row-major `n × (c1 − c0)`).
fn centred_block(x: &[f32], n: usize, p: usize, mean: &[f64], c0: usize, c1: usize) -> Vec<f64> {
    let w = c1 - c0;
    let mut b = vec![0.0; n * w];
    for i in 0..n {
        for j in 0..w {
            b[i * w + j] = x[i * p + c0 + j] as f64 - mean[c0 + j];
        }
    }
    b
}

fn basis(x: &[f32], n: usize, p: usize, n_components: usize) -> Result<Basis> {
    check_input(x, n, p, n_components)?;
    // Means in a fixed order.
    let mut mean = vec![0.0f64; p];
    for row in x.chunks_exact(p) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut g = vec![0.0f64; n * n];
    for c0 in (0..p).step_by(BLOCK) {
        let c1 = (c0 + BLOCK).min(p);
        let b = centred_block(x, n, p, &mean, c0, c1);
        let gb = crate::pls::gram(&b, n, c1 - c0);
        for (a, v) in g.iter_mut().zip(gb) {
            *a += v;
        }
    }
    let gm = MatRef::from_row_major_slice(&g, n, n);
    let eig = gm.self_adjoint_eigen(Side::Lower).map_err(|e| {
        crate::error::MetricError::Invalid(format!("PCA: eigendecomposition failed: {e:?}"))
    })?;
    let s = eig.S().column_vector();
    let u = eig.U();
    // Descending order; λ below n·ε·λ_max is numerically zero.
    let lmax = (0..n).map(|i| s[i]).fold(0.0, f64::max);
    let cut = n as f64 * f64::EPSILON * lmax;
    let order: Vec<usize> = (0..n)
        .rev()
        .filter(|&i| s[i] > cut)
        .take(n_components)
        .collect();
    let k = order.len();
    if k == 0 {
        return invalid("PCA: the activations do not vary across the fitting images");
    }
    let mut w = vec![0.0f64; k * n];
    for (r, &e) in order.iter().enumerate() {
        let inv = 1.0 / s[e].sqrt();
        for i in 0..n {
            w[r * n + i] = u[(i, e)] * inv;
        }
    }
    let explained_variance = order.iter().map(|&e| s[e] / (n - 1) as f64).collect();
    Ok(Basis {
        mean,
        w,
        k,
        explained_variance,
    })
}

/// The components `Vᵀ = W Xc` (row-major `k × p`), converted by `conv`, with
/// `svd_flip(u_based_decision=False)`'s signs: each row's largest |entry| positive (the first
/// such entry on ties, as numpy's argmax, decided on the f64 values). Column blocks are
/// products of their own (one sequential GEMM each, several in parallel), written in column
/// order: the bytes do not depend on the number of threads.
fn components<T: Copy + Default + Send + std::ops::Neg<Output = T>>(
    x: &[f32],
    n: usize,
    p: usize,
    b: &Basis,
    conv: impl Fn(f64) -> T + Sync,
) -> Vec<T> {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, Par};
    use rayon::prelude::*;
    let k = b.k;
    let wm = MatRef::from_row_major_slice(&b.w, k, n);
    let mut out = vec![T::default(); k * p];
    // Per row: (largest |v| so far, its sign).
    let mut best = vec![(-1.0f64, 1.0f64); k];
    let blocks: Vec<usize> = (0..p).step_by(BLOCK).collect();
    let wave = rayon::current_num_threads().max(1);
    for group in blocks.chunks(wave) {
        let products: Vec<(usize, usize, Vec<f64>)> = group
            .par_iter()
            .map(|&c0| {
                let c1 = (c0 + BLOCK).min(p);
                let w = c1 - c0;
                let xb = centred_block(x, n, p, &b.mean, c0, c1);
                let xm = MatRef::from_row_major_slice(&xb, n, w);
                let mut prod = vec![0.0f64; k * w];
                matmul(
                    MatMut::from_row_major_slice_mut(&mut prod, k, w),
                    Accum::Replace,
                    wm,
                    xm,
                    1.0,
                    Par::Seq,
                );
                (c0, w, prod)
            })
            .collect();
        for (c0, w, prod) in products {
            for r in 0..k {
                let row = &prod[r * w..(r + 1) * w];
                let o = &mut out[r * p + c0..r * p + c0 + w];
                for (dst, &v) in o.iter_mut().zip(row) {
                    if v.abs() > best[r].0 {
                        best[r] = (v.abs(), v.signum());
                    }
                    *dst = conv(v);
                }
            }
        }
    }
    for (r, (_, sign)) in best.iter().enumerate() {
        if *sign < 0.0 {
            out[r * p..(r + 1) * p].iter_mut().for_each(|v| *v = -*v);
        }
    }
    out
}

impl Pca {
    /// Fit `n_components` components to `x` (row-major `n × p`, one row per image).
    pub fn fit(x: &[f32], n: usize, p: usize, n_components: usize) -> Result<Pca> {
        let b = basis(x, n, p, n_components)?;
        let comps = components(x, n, p, &b, |v| v);
        Ok(Pca {
            p,
            k: b.k,
            mean: b.mean,
            components: comps,
            explained_variance: b.explained_variance,
        })
    }

    /// [`Pca::fit`], keeping the mean and components in f32.
    pub fn fit_f32(x: &[f32], n: usize, p: usize, n_components: usize) -> Result<PcaF32> {
        let b = basis(x, n, p, n_components)?;
        let comps = components(x, n, p, &b, |v| v as f32);
        Ok(PcaF32 {
            p,
            k: b.k,
            mean: b.mean.iter().map(|&m| m as f32).collect(),
            components: comps,
        })
    }

    /// Project `x` (row-major `m × p`) onto the components: `(x − mean) Vᵀ`, row-major
    /// `m × k`.
    pub fn transform(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        if x.len() != m * self.p {
            return invalid(format!("PCA: {} values for {m} × {}", x.len(), self.p));
        }
        let mut out = vec![0.0f32; m * self.k];
        for i in 0..m {
            let row = &x[i * self.p..(i + 1) * self.p];
            for r in 0..self.k {
                let c = &self.components[r * self.p..(r + 1) * self.p];
                let mut acc = 0.0f64;
                for j in 0..self.p {
                    acc += (row[j] as f64 - self.mean[j]) * c[j];
                }
                out[i * self.k + r] = acc as f32;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_planted_directions_and_is_orthonormal() {
        // Three planted directions with decreasing variance, plus small noise.
        let (n, p) = (40, 300);
        let mut state = 7u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let dirs: Vec<Vec<f64>> = (0..3).map(|_| (0..p).map(|_| rnd()).collect()).collect();
        let mut x = vec![0.0f32; n * p];
        for i in 0..n {
            let a: Vec<f64> = (0..3).map(|d| rnd() * [10.0, 5.0, 2.0][d]).collect();
            for j in 0..p {
                let v: f64 = (0..3).map(|d| a[d] * dirs[d][j]).sum::<f64>() + 0.01 * rnd() + 3.0;
                x[i * p + j] = v as f32;
            }
        }
        let pca = Pca::fit(&x, n, p, 5).unwrap();
        assert_eq!(pca.k, 5);
        for a in 0..pca.k {
            for b in 0..pca.k {
                let d: f64 = (0..p)
                    .map(|j| pca.components[a * p + j] * pca.components[b * p + j])
                    .sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-9, "{a}·{b} = {d}");
            }
        }
        assert!(pca.explained_variance.windows(2).all(|w| w[0] >= w[1]));
        // The first three components span the planted directions.
        for d in &dirs {
            let norm: f64 = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            let captured: f64 = (0..3)
                .map(|r| {
                    let c: f64 = (0..p).map(|j| pca.components[r * p + j] * d[j]).sum();
                    (c / norm).powi(2)
                })
                .sum();
            assert!(captured > 0.999, "{captured}");
        }
        // At most n − 1 components from n images.
        let all = Pca::fit(&x[..5 * p], 5, p, 1000).unwrap();
        assert_eq!(all.k, 4);
        let t = pca.transform(&x[..p], 1).unwrap();
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn f32_fit_is_the_f64_fit_rounded_and_does_not_depend_on_threads() {
        // More columns than one block, so that blocks are computed in parallel.
        let (n, p) = (12, 2 * BLOCK + 37);
        let mut state = 11u64;
        let x: Vec<f32> = (0..n * p)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) + (i % 7) as f32
            })
            .collect();
        let f64_fit = Pca::fit(&x, n, p, 8).unwrap();
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Pca::fit_f32(&x, n, p, 8).unwrap())
        };
        let (one, three) = (in_pool(1), in_pool(3));
        assert_eq!(one.components, three.components);
        assert_eq!(one.mean, three.mean);
        assert_eq!(one.k, f64_fit.k);
        let rounded: Vec<f32> = f64_fit.components.iter().map(|v| *v as f32).collect();
        assert_eq!(one.components, rounded);
        let mean: Vec<f32> = f64_fit.mean.iter().map(|v| *v as f32).collect();
        assert_eq!(one.mean, mean);
    }
}
