//! PLS regression as sklearn's `PLSRegression(n_components, scale=False)` (NIPALS, float64),
//! run in sample space.
//!
//! sklearn iterates on the n × p design matrix. With many more features than samples
//! (25,088 features, 2,304 training stimuli), every NIPALS step can be written with the Gram
//! matrix `K = X Xᵀ` instead: `x_weights = Xᵀ a` for a coefficient vector `a` in sample
//! space, `x_scores = K a`, deflation `K ← P K P` with `P = I − t tᵀ / tᵀt`. The iterates are
//! the same (up to rounding), including sklearn's `eps` terms, its start vector, its
//! convergence test `‖Δw‖² < tol` (`‖Δw‖² = Δaᵀ K Δa`) and its masking of near-zero Y columns.
//! One raw Gram matrix of all stimuli serves every split: centring with a split's training
//! mean is `K_ij − r_i − r_j + c`. sklearn's final sign flip is skipped: it does not change
//! predictions.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::error::{Result, invalid};

/// sklearn's defaults.
pub const MAX_ITER: usize = 500;
/// sklearn's default tolerance on `‖Δw‖²`.
pub const TOL: f64 = 1e-6;

const TILE: usize = 256;

/// The Gram matrix `X Xᵀ` of the rows of `x` (`n × p`, row-major), `n × n` row-major.
///
/// Computed in fixed 256-row tiles, each tile sequentially, tiles in parallel: the bytes
/// do not depend on the number of threads.
pub fn gram(x: &[f64], n: usize, p: usize) -> Vec<f64> {
    assert_eq!(x.len(), n * p, "gram: {} values for {n} x {p}", x.len());
    let xm = MatRef::from_row_major_slice(x, n, p);
    let tiles: Vec<(usize, usize)> = (0..n.div_ceil(TILE))
        .flat_map(|i| (i..n.div_ceil(TILE)).map(move |j| (i, j)))
        .collect();
    let blocks: Vec<((usize, usize), Mat<f64>)> = tiles
        .par_iter()
        .map(|&(i, j)| {
            let (r0, r1) = (i * TILE, ((i + 1) * TILE).min(n));
            let (c0, c1) = (j * TILE, ((j + 1) * TILE).min(n));
            let mut dst = Mat::<f64>::zeros(r1 - r0, c1 - c0);
            matmul(
                dst.as_mut(),
                Accum::Replace,
                xm.subrows(r0, r1 - r0),
                xm.subrows(c0, c1 - c0).transpose(),
                1.0,
                Par::Seq,
            );
            ((i, j), dst)
        })
        .collect();
    let mut g = vec![0.0; n * n];
    for ((i, j), b) in blocks {
        for r in 0..b.nrows() {
            for c in 0..b.ncols() {
                let (gr, gc) = (i * TILE + r, j * TILE + c);
                g[gr * n + gc] = b[(r, c)];
                g[gc * n + gr] = b[(r, c)];
            }
        }
    }
    g
}

/// A dot product with eight fixed accumulators: vectorisable, and the same bytes on every
/// run (the order of additions does not depend on threads).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f64; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// `y = K x` for a row-major square `K`.
fn symv(k: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    for (i, yi) in y.iter_mut().enumerate() {
        *yi = dot(&k[i * n..(i + 1) * n], x);
    }
}

/// scipy's `pinv` (SVD, cut-off `max(m, n) · eps · σ_max`) of a small square matrix.
fn pinv(a: &Mat<f64>) -> Result<Mat<f64>> {
    let n = a.nrows();
    let svd = a
        .svd()
        .map_err(|e| crate::error::MetricError::Invalid(format!("PLS: SVD failed: {e:?}")))?;
    let s = svd.S().column_vector();
    let smax = (0..n).map(|i| s[i]).fold(0.0, f64::max);
    let cut = n as f64 * f64::EPSILON * smax;
    let (u, v) = (svd.U(), svd.V());
    let mut out = Mat::<f64>::zeros(n, n);
    for k in 0..n {
        if s[k] > cut {
            let inv = 1.0 / s[k];
            for i in 0..n {
                for j in 0..n {
                    out[(i, j)] += v[(i, k)] * inv * u[(j, k)];
                }
            }
        }
    }
    Ok(out)
}

/// sklearn's `_get_first_singular_vectors_power_method` (mode A) on the Gram matrix: returns
/// `a` (x_weights = Xᵀa), the x_scores `t = K a`, and the iteration count.
fn power_in_sample_space(
    kk: &[f64],
    n: usize,
    yk: &[f64],
    q: usize,
    first: usize,
    v: &mut [f64],
) -> (Vec<f64>, Vec<f64>, usize) {
    let eps = f64::EPSILON;
    let mut u: Vec<f64> = (0..n).map(|i| yk[i * q + first]).collect();
    let mut a_old: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut a = vec![0.0; n];
    let mut t = vec![0.0; n];
    let mut iters = 0;
    for it in 0..MAX_ITER {
        iters = it + 1;
        symv(kk, n, &u, v);
        let uu = dot(&u, &u);
        let wnorm = (dot(&u, v).max(0.0)).sqrt() / uu;
        let c = 1.0 / (uu * (wnorm + eps));
        for i in 0..n {
            a[i] = u[i] * c;
            t[i] = v[i] * c;
        }
        let tt = dot(&t, &t);
        let mut yw = vec![0.0; q];
        for i in 0..n {
            let ti = t[i];
            for j in 0..q {
                yw[j] += yk[i * q + j] * ti;
            }
        }
        for w in &mut yw {
            *w /= tt;
        }
        let ywn = dot(&yw, &yw) + eps;
        for i in 0..n {
            u[i] = dot(&yk[i * q..(i + 1) * q], &yw) / ywn;
        }
        // ‖Δw‖² = Δaᵀ K Δa = Δaᵀ Δt, since t = K a.
        let converged = match &a_old {
            None => false,
            Some((ao, to)) => {
                let mut d2 = 0.0;
                for i in 0..n {
                    d2 += (a[i] - ao[i]) * (t[i] - to[i]);
                }
                d2 < TOL
            }
        };
        if converged || q == 1 {
            break;
        }
        a_old = Some((a.clone(), t.clone()));
    }
    (a, t, iters)
}

/// `a · b` for row-major `a` (`r × k`) and `b` (`k × c`), sequential (deterministic).
fn gemm(a: &[f64], r: usize, k: usize, b: &[f64], c: usize, transpose_a: bool) -> Vec<f64> {
    let am = if transpose_a {
        MatRef::from_row_major_slice(a, k, r).transpose()
    } else {
        MatRef::from_row_major_slice(a, r, k)
    };
    let bm = MatRef::from_row_major_slice(b, k, c);
    let mut out = Mat::<f64>::zeros(r, c);
    matmul(out.as_mut(), Accum::Replace, am, bm, 1.0, Par::Seq);
    let mut v = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            v[i * c + j] = out[(i, j)];
        }
    }
    v
}

fn quad(m: &[f64], q: usize, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..q {
        s += x[i] * dot(&m[i * q..(i + 1) * q], y);
    }
    s
}

/// The same iteration with the y-scores kept in the span of Y: `u = Y z`. With
/// `M = K Y`, `B = Yᵀ K Y`, `G = Yᵀ Y` and `H = Mᵀ M` (q × q), every step is a q × q
/// product instead of an n × n one: uᵀu = zᵀGz, uᵀKu = zᵀBz, tᵀt = c²·zᵀHz, Yᵀt = c·Bz,
/// and ‖Δw‖² = δᵀBδ for δ = Δ(c z). Same iterates as sklearn up to rounding.
fn power_in_target_space(
    kk: &[f64],
    n: usize,
    yk: &[f64],
    q: usize,
    first: usize,
) -> (Vec<f64>, Vec<f64>, usize) {
    let eps = f64::EPSILON;
    let m = gemm(kk, n, n, yk, q, false);
    let b = gemm(yk, q, n, &m, q, true);
    let g = gemm(yk, q, n, yk, q, true);
    let h = gemm(&m, q, n, &m, q, true);
    let mut z = vec![0.0; q];
    z[first] = 1.0;
    let mut zc_old: Option<Vec<f64>> = None;
    let mut zc = vec![0.0; q];
    let mut iters = 0;
    for it in 0..MAX_ITER {
        iters = it + 1;
        let uu = quad(&g, q, &z, &z);
        let uv = quad(&b, q, &z, &z);
        let c = 1.0 / (uu * (uv.max(0.0).sqrt() / uu + eps));
        for j in 0..q {
            zc[j] = z[j] * c;
        }
        let tt = quad(&h, q, &zc, &zc);
        let yw: Vec<f64> = (0..q)
            .map(|i| dot(&b[i * q..(i + 1) * q], &zc) / tt)
            .collect();
        let ywn = dot(&yw, &yw) + eps;
        let converged = match &zc_old {
            None => false,
            Some(old) => {
                let d: Vec<f64> = zc.iter().zip(old).map(|(x, y)| x - y).collect();
                quad(&b, q, &d, &d) < TOL
            }
        };
        if converged || q == 1 {
            break;
        }
        zc_old = Some(zc.clone());
        z = yw.iter().map(|w| w / ywn).collect();
    }
    let a: Vec<f64> = (0..n).map(|i| dot(&yk[i * q..(i + 1) * q], &zc)).collect();
    let t: Vec<f64> = (0..n).map(|i| dot(&m[i * q..(i + 1) * q], &zc)).collect();
    (a, t, iters)
}

/// A fitted PLS model in sample space.
#[derive(Clone, Debug)]
pub struct KernelPls {
    /// `n_train × q`: predictions are `K_test · coef + y_mean` with `K_test` the test rows'
    /// inner products with the centred training rows.
    coef: Vec<f64>,
    y_mean: Vec<f64>,
    n: usize,
    q: usize,
    /// NIPALS iterations per component (sklearn's `n_iter_`).
    pub n_iter: Vec<usize>,
}

/// Centring of a split: `r_i = mean_{l ∈ train} G_il` and `c = mean_{l ∈ train} r_l`.
pub struct Centring {
    r: Vec<f64>,
    c: f64,
}

impl Centring {
    /// The centring of `train` in the raw Gram matrix `g` (`n_all × n_all`).
    pub fn new(g: &[f64], n_all: usize, train: &[usize]) -> Self {
        let inv = 1.0 / train.len() as f64;
        let r: Vec<f64> = (0..n_all)
            .map(|i| train.iter().map(|&l| g[i * n_all + l]).sum::<f64>() * inv)
            .collect();
        let c = train.iter().map(|&l| r[l]).sum::<f64>() * inv;
        Centring { r, c }
    }

    /// The centred inner products of rows `rows` with the training rows `train`.
    pub fn kernel(&self, g: &[f64], n_all: usize, rows: &[usize], train: &[usize]) -> Vec<f64> {
        let mut k = Vec::with_capacity(rows.len() * train.len());
        for &i in rows {
            for &j in train {
                k.push(g[i * n_all + j] - self.r[i] - self.r[j] + self.c);
            }
        }
        k
    }
}

impl KernelPls {
    /// Fit on the centred training Gram matrix `k` (`n × n`) and targets `y` (`n × q`,
    /// row-major, not centred).
    pub fn fit(k: &[f64], n: usize, y: &[f64], q: usize, n_components: usize) -> Result<KernelPls> {
        if n_components == 0 {
            return invalid("PLS needs at least one component");
        }
        if n <= n_components {
            return invalid(format!(
                "PLS with {n_components} components needs more than {n_components} training stimuli; got {n}"
            ));
        }
        if y.len() != n * q || k.len() != n * n {
            return invalid(format!(
                "PLS: shapes do not fit (K {} values for n = {n}; Y {} for {n} x {q})",
                k.len(),
                y.len()
            ));
        }
        let eps = f64::EPSILON;
        let mut y_mean = vec![0.0; q];
        for i in 0..n {
            for j in 0..q {
                y_mean[j] += y[i * q + j];
            }
        }
        for m in &mut y_mean {
            *m /= n as f64;
        }
        let mut yk: Vec<f64> = (0..n * q).map(|idx| y[idx] - y_mean[idx % q]).collect();
        let k0 = k.to_vec();
        let mut kk = k.to_vec();
        let mut a_cols: Vec<Vec<f64>> = Vec::new(); // x_weights = X_cᵀ a
        let mut b_cols: Vec<Vec<f64>> = Vec::new(); // x_loadings = X_cᵀ b
        let mut q_cols: Vec<Vec<f64>> = Vec::new(); // y_loadings
        let mut ts: Vec<(Vec<f64>, f64)> = Vec::new();
        let mut n_iter = Vec::new();
        let mut v = vec![0.0; n];
        for _ in 0..n_components {
            // Columns of Y that are all close to zero become exactly zero.
            for j in 0..q {
                if (0..n).all(|i| yk[i * q + j].abs() < 10.0 * eps) {
                    for i in 0..n {
                        yk[i * q + j] = 0.0;
                    }
                }
            }
            let Some(first) = (0..q).find(|&j| (0..n).any(|i| yk[i * q + j].abs() > eps)) else {
                break; // "Y residual is constant": sklearn stops adding components.
            };
            let (a, t, iters) = if 4 * q <= n {
                power_in_target_space(&kk, n, &yk, q, first)
            } else {
                power_in_sample_space(&kk, n, &yk, q, first, &mut v)
            };
            n_iter.push(iters);
            // Scores and loadings of this component.
            let s = dot(&t, &t);
            let mut ql = vec![0.0; q];
            for i in 0..n {
                for j in 0..q {
                    ql[j] += t[i] * yk[i * q + j];
                }
            }
            for x in &mut ql {
                *x /= s;
            }
            for i in 0..n {
                for j in 0..q {
                    yk[i * q + j] -= t[i] * ql[j];
                }
            }
            // Express a and t/s against the centred (undeflated) X: apply the earlier
            // projections P_{k-1}, …, P_0.
            let mut a_c = a.clone();
            let mut b_c: Vec<f64> = t.iter().map(|x| x / s).collect();
            for (tj, sj) in ts.iter().rev() {
                let fa = dot(tj, &a_c) / sj;
                let fb = dot(tj, &b_c) / sj;
                for i in 0..n {
                    a_c[i] -= tj[i] * fa;
                    b_c[i] -= tj[i] * fb;
                }
            }
            // Deflate K: P K P with P = I - t tᵀ / s.
            symv(&kk, n, &t, &mut v);
            let tv = dot(&t, &v);
            for i in 0..n {
                for j in 0..n {
                    kk[i * n + j] += -(t[i] * v[j] + v[i] * t[j]) / s + tv * t[i] * t[j] / (s * s);
                }
            }
            a_cols.push(a_c);
            b_cols.push(b_c);
            q_cols.push(ql);
            ts.push((t, s));
        }
        let c = n_components;
        // PᵀW = Bᵀ K0 A (missing components stay zero, as in sklearn).
        let mut ptw = Mat::<f64>::zeros(c, c);
        let mut ka = vec![0.0; n];
        for (jj, aj) in a_cols.iter().enumerate() {
            symv(&k0, n, aj, &mut ka);
            for (ii, bi) in b_cols.iter().enumerate() {
                ptw[(ii, jj)] = dot(bi, &ka);
            }
        }
        let inv = pinv(&ptw)?;
        // coef (sample space) = A · pinv(PᵀW) · Qᵀ.
        let mut coef = vec![0.0; n * q];
        for l in 0..a_cols.len() {
            for m in 0..q_cols.len() {
                let f = inv[(l, m)];
                if f == 0.0 {
                    continue;
                }
                for i in 0..n {
                    let ai = a_cols[l][i] * f;
                    for j in 0..q {
                        coef[i * q + j] += ai * q_cols[m][j];
                    }
                }
            }
        }
        Ok(KernelPls {
            coef,
            y_mean,
            n,
            q,
            n_iter,
        })
    }

    /// Predict from `k_test` (`m × n`: test rows against centred training rows).
    pub fn predict(&self, k_test: &[f64], m: usize) -> Vec<f64> {
        let (n, q) = (self.n, self.q);
        let mut out = vec![0.0; m * q];
        for r in 0..m {
            let row = &k_test[r * n..(r + 1) * n];
            let o = &mut out[r * q..(r + 1) * q];
            o.copy_from_slice(&self.y_mean);
            for (i, &kv) in row.iter().enumerate() {
                let c = &self.coef[i * q..(i + 1) * q];
                for j in 0..q {
                    o[j] += kv * c[j];
                }
            }
        }
        out
    }
}

/// Fit on rows `train` and predict rows `test` of the feature matrix whose raw Gram matrix
/// is `g` (`n_all × n_all`); `y_train` is `train.len() × q`.
pub fn fit_predict(
    g: &[f64],
    n_all: usize,
    train: &[usize],
    test: &[usize],
    y_train: &[f64],
    q: usize,
    n_components: usize,
) -> Result<Vec<f64>> {
    let centring = Centring::new(g, n_all, train);
    let k = centring.kernel(g, n_all, train, train);
    let model = KernelPls::fit(&k, train.len(), y_train, q, n_components)?;
    let kt = centring.kernel(g, n_all, test, train);
    Ok(model.predict(&kt, test.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_is_symmetric_and_exact_for_integers() {
        let (n, p) = (300, 7);
        let x: Vec<f64> = (0..n * p).map(|i| ((i * 13) % 11) as f64 - 5.0).collect();
        let g = gram(&x, n, p);
        for i in [0, 17, 299] {
            for j in [0, 256, 299] {
                let want: f64 = (0..p).map(|k| x[i * p + k] * x[j * p + k]).sum();
                assert_eq!(g[i * n + j], want);
            }
        }
    }

    #[test]
    fn full_rank_pls_interpolates_a_linear_map() {
        // With as many components as features, PLS is least squares: an exact linear map is
        // recovered.
        let (n, p, q) = (40, 3, 2);
        let x: Vec<f64> = (0..n * p)
            .map(|i| ((i * 7919) % 97) as f64 / 10.0)
            .collect();
        let y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let r = &x[i * p..(i + 1) * p];
                [2.0 * r[0] - r[1] + 0.5 * r[2] + 1.0, -r[0] + 3.0 * r[2]]
            })
            .collect();
        let g = gram(&x, n, p);
        let train: Vec<usize> = (0..30).collect();
        let test: Vec<usize> = (30..40).collect();
        let y_train: Vec<f64> = y[..30 * q].to_vec();
        let pred = fit_predict(&g, n, &train, &test, &y_train, q, 3).unwrap();
        for (a, b) in pred.iter().zip(&y[30 * q..]) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }

    #[test]
    fn too_few_stimuli_is_an_error() {
        let g = vec![1.0; 9];
        let e = fit_predict(&g, 3, &[0, 1], &[2], &[1.0, 2.0], 1, 25).unwrap_err();
        assert!(
            e.to_string()
                .contains("needs more than 25 training stimuli")
        );
    }
}
