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
//! predictions. With no more targets than training stimuli (q ≤ n: every neural benchmark),
//! the power iterations run in target space on q × q matrices that are deflated by rank-one
//! updates from one component to the next, so a fit costs one n × n × q product and then
//! O(n² + nq + q²) per component plus O(q²) per iteration.
//!
//! One departure from sklearn: when the features are exhausted (the deflated K's trace is at
//! most n·ε of the centred K's: rounding, since K resolves variance only down to ε of its
//! largest), no further components are added — they stay zero, as sklearn leaves them when
//! Y's residual is constant. sklearn would go on fitting rounding noise, with predictions
//! that depend on the order of its additions (and can be far off: features of rank 19 read
//! out at 0.82 instead of ≥ 0.9 of the ceiling). Below the features' rank nothing changes.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::{Result, invalid};

/// sklearn's defaults.
pub const MAX_ITER: usize = 500;
/// sklearn's default tolerance on `‖Δw‖²`.
pub const TOL: f64 = 1e-6;

const TILE: usize = 256;
/// Feature columns converted to f64 at a time (21 MB for MajajHong's 2,560 stimuli).
const PANEL: usize = 1024;

/// The Gram matrix `X Xᵀ` of the rows of `x` (`n × p`, row-major), `n × n` row-major.
pub fn gram(x: &[f64], n: usize, p: usize) -> Vec<f64> {
    assert_eq!(x.len(), n * p, "gram: {} values for {n} x {p}", x.len());
    let rows: Vec<usize> = (0..n).collect();
    gram_of_rows(x, p, &rows)
}

/// The Gram matrix in f64 of rows `rows` of `x` (row-major, `p` columns, f32 or f64), in
/// the order given: `rows.len()²` values, row-major.
///
/// The columns are taken 1,024 at a time, converted to f64 into one panel buffer (no f64
/// copy of the whole matrix: for MajajHong's IT that copy would be 514 MB), and each panel
/// is added to 256 × 256 tiles of the result. Only the lower triangle is computed (the
/// diagonal tiles with a triangular product) and then mirrored. Each tile is one sequential
/// product per panel, panels in column order, tiles in parallel: the bytes do not depend on
/// the number of threads.
pub fn gram_of_rows<T: Copy + Into<f64> + Sync>(x: &[T], p: usize, rows: &[usize]) -> Vec<f64> {
    let n = rows.len();
    assert!(
        rows.iter().all(|&r| (r + 1) * p <= x.len()),
        "gram: a row index past {} values of {p} columns",
        x.len()
    );
    let mut g = vec![0.0; n * n];
    // The lower tiles (i, j ≤ i) as disjoint views of `g`.
    let mut tiles = Vec::new();
    let mut rest = MatMut::from_row_major_slice_mut(&mut g, n, n);
    for i in 0..n.div_ceil(TILE) {
        let (mut stripe, below) = rest.split_at_row_mut(TILE.min(n - i * TILE));
        rest = below;
        for j in 0..=i {
            let (tile, right) = stripe.split_at_col_mut(TILE.min(n - j * TILE));
            stripe = right;
            tiles.push((i, j, tile));
        }
    }
    let mut panel = Vec::new();
    for k0 in (0..p).step_by(PANEL) {
        let w = (p - k0).min(PANEL);
        panel.resize(n * w, 0.0);
        panel.par_chunks_mut(w).zip(rows).for_each(|(out, &r)| {
            for (o, &v) in out.iter_mut().zip(&x[r * p + k0..r * p + k0 + w]) {
                *o = v.into();
            }
        });
        let xm = MatRef::from_row_major_slice(&panel, n, w);
        tiles.par_iter_mut().for_each(|(i, j, dst)| {
            let (r0, c0) = (*i * TILE, *j * TILE);
            let a = xm.subrows(r0, dst.nrows());
            if i == j {
                triangular::matmul(
                    dst.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Add,
                    a,
                    BlockStructure::Rectangular,
                    a.transpose(),
                    BlockStructure::Rectangular,
                    1.0,
                    Par::Seq,
                );
            } else {
                let b = xm.subrows(c0, dst.ncols());
                matmul(dst.as_mut(), Accum::Add, a, b.transpose(), 1.0, Par::Seq);
            }
        });
    }
    // Mirror the lower triangle, in 64 × 64 blocks (column writes stay in cache).
    const B: usize = 64;
    for ib in (0..n).step_by(B) {
        for jb in (0..=ib).step_by(B) {
            for i in ib..(ib + B).min(n) {
                for j in jb..(jb + B).min(i) {
                    g[j * n + i] = g[i * n + j];
                }
            }
        }
    }
    g
}

/// A dot product with 32 fixed accumulators, summed in a fixed tree: vectorisable (four
/// AVX-512 or eight AVX2 registers in the dispatched builds of [`KernelPls::fit`]), and the
/// same bytes on every run and every x86-64 (the order of additions does not depend on the
/// vector width or on threads; Rust never contracts `a * b + c` into an FMA).
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    const W: usize = 32;
    let n = a.len().min(b.len());
    let mut acc = [0.0f64; W];
    let (ca, cb) = (a[..n].chunks_exact(W), b[..n].chunks_exact(W));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..W {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    let mut s = [0.0f64; 8];
    for k in 0..8 {
        s[k] = (acc[k] + acc[k + 8]) + (acc[k + 16] + acc[k + 24]);
    }
    (((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))) + tail
}

/// `out += Σ_j w_j · rows_j` for `rows` row-major with rows of `out.len()` values: each value
/// adds its terms in `j` order, exactly as the one-row-at-a-time loop does (the same bytes),
/// four rows per pass over `out` (one load and store of `out` per four products).
#[inline(always)]
pub(crate) fn accumulate_rows(out: &mut [f64], w: &[f64], rows: &[f64]) {
    let m = out.len();
    let mut chunks = rows.chunks_exact(4 * m.max(1));
    let mut ws = w.chunks_exact(4);
    for (block, w4) in (&mut chunks).zip(&mut ws) {
        let (r0, rest) = block.split_at(m);
        let (r1, rest) = rest.split_at(m);
        let (r2, r3) = rest.split_at(m);
        let (w0, w1, w2, w3) = (w4[0], w4[1], w4[2], w4[3]);
        for ((((o, &a), &b), &c), &d) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            let mut v = *o;
            v += w0 * a;
            v += w1 * b;
            v += w2 * c;
            v += w3 * d;
            *o = v;
        }
    }
    for (row, &wj) in chunks
        .remainder()
        .chunks_exact(m.max(1))
        .zip(ws.remainder())
    {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += wj * x;
        }
    }
}

/// `y = K x` for a row-major square `K` that is symmetric up to rounding, reading its lower
/// triangle only (half the memory traffic: K is tens of MB, read once per component): row
/// `i` gives `y_i` its dot product with `x` and adds `K_ij x_i` to each `y_j`, `j < i`.
#[inline(always)]
fn symv(k: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    y.fill(0.0);
    for i in 0..n {
        let row = &k[i * n..i * n + i];
        let xi = x[i];
        let (head, tail) = y.split_at_mut(i);
        tail[0] += dot(row, &x[..i]) + k[i * n + i] * xi;
        for (yj, &kij) in head.iter_mut().zip(row) {
            *yj += kij * xi;
        }
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

/// sklearn's convergence test `‖Δw‖² < tol`, with `‖Δw‖² = Δx · Δy` for a step's pair
/// `(x, y)` against the last step's (`y` the image of `x` under the Gram or B matrix).
#[inline(always)]
fn converged(old: Option<&(Vec<f64>, Vec<f64>)>, x: &[f64], y: &[f64]) -> bool {
    let Some((xo, yo)) = old else {
        return false;
    };
    let mut d2 = 0.0;
    for i in 0..x.len() {
        d2 += (x[i] - xo[i]) * (y[i] - yo[i]);
    }
    d2 < TOL
}

/// `out = K x` for the deflated `K = P_k⋯P_1 K0 P_1⋯P_k`, `P_j = I − t_j t_jᵀ / s_j`, with the
/// projections applied to vectors (O(nk)) instead of to K (O(n²) each).
#[inline(always)]
fn deflated_symv(k0: &[f64], n: usize, ts: &[(Vec<f64>, f64)], x: &[f64], out: &mut [f64]) {
    let project = |z: &mut [f64], t: &[f64], s: f64| {
        let f = dot(t, z) / s;
        for i in 0..n {
            z[i] -= t[i] * f;
        }
    };
    let mut z = x.to_vec();
    for (t, s) in ts.iter().rev() {
        project(&mut z, t, *s);
    }
    symv(k0, n, &z, out);
    for (t, s) in ts {
        project(out, t, *s);
    }
}

/// sklearn's `_get_first_singular_vectors_power_method` (mode A) on the Gram matrix: returns
/// `a` (x_weights = Xᵀa), the x_scores `t = K a`, and the iteration count.
#[inline(always)]
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
        let converged = converged(a_old.as_ref(), &a, &t);
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
    let mut v = vec![0.0; r * c];
    let out = MatMut::from_row_major_slice_mut(&mut v, r, c);
    matmul(out, Accum::Replace, am, bm, 1.0, Par::Seq);
    v
}

/// The same iteration with the y-scores kept in the span of Y: `u = Y z`. sklearn's step
/// normalises x_weights `w = Xᵀu / uᵀu` to unit length, so `w = Xᵀ Y z / √(zᵀBz)` with
/// `B = Yᵀ K Y` (q × q) depends on the direction of `z` only; its next y-score is
/// `Y Yᵀ X w` up to scale, i.e. `z ← B z`. So each step is one q × q product: `zc = z/√(zᵀBz)`
/// (a = Y zc, w = Xᵀa), the convergence test `‖Δw‖² = δᵀBδ` for `δ = Δzc`, and the next
/// direction `B zc`. Same iterates and iteration counts as sklearn up to rounding (its `eps`
/// guards change scales by ε relative, not directions).
///
/// `B` and `M = K Y` (n × q, for `t = K a = M zc`) are computed once per fit and then
/// deflated with the component by rank-one updates (O(nq + q²) instead of O(n²q)): with
/// `P = I − t tᵀ/s`, `Y' = P Y`, `K' = P K P`, `ql = Yᵀt/s`, `v = K t` and `w = Mᵀt`,
/// `B' = B − ql wᵀ − w qlᵀ + (tᵀv) ql qlᵀ` and `M' = M − v qlᵀ − t eᵀ/s` with
/// `e = w − (tᵀv) ql`.
struct TargetSpace {
    m: Vec<f64>,
    b: Vec<f64>,
}

impl TargetSpace {
    fn new(kk: &[f64], n: usize, yk: &[f64], q: usize) -> Self {
        Self::from_m(gemm(kk, n, n, yk, q, false), n, yk, q)
    }

    /// The matrices from `M = K Y` (`n × q`).
    fn from_m(m: Vec<f64>, n: usize, yk: &[f64], q: usize) -> Self {
        let b = gemm(yk, q, n, &m, q, true);
        TargetSpace { m, b }
    }

    /// The first singular vectors of this component: `a` (x_weights = Xᵀa), the x_scores
    /// `t = K a`, and the iteration count.
    #[inline(always)]
    fn power(&self, n: usize, yk: &[f64], q: usize, first: usize) -> (Vec<f64>, Vec<f64>, usize) {
        let b = &self.b;
        let mut z = vec![0.0; q];
        z[first] = 1.0;
        let mut bz = vec![0.0; q];
        let mut zc = vec![0.0; q];
        let mut bzc = vec![0.0; q];
        let mut old: Option<(Vec<f64>, Vec<f64>)> = None; // (zc, B zc) of the last step
        let mut iters = 0;
        for it in 0..MAX_ITER {
            iters = it + 1;
            // B z as Σ_j z_j B_j (B is symmetric up to rounding): no horizontal sums.
            bz.fill(0.0);
            accumulate_rows(&mut bz, &z, b);
            let uv = dot(&z, &bz);
            let c = 1.0 / (uv.max(0.0).sqrt() + f64::EPSILON);
            for j in 0..q {
                zc[j] = z[j] * c;
                bzc[j] = bz[j] * c;
            }
            // ‖Δw‖² = δᵀBδ = Δzc · Δ(B zc).
            let converged = converged(old.as_ref(), &zc, &bzc);
            if converged || q == 1 {
                break;
            }
            match &mut old {
                Some((zo, bo)) => {
                    zo.copy_from_slice(&zc);
                    bo.copy_from_slice(&bzc);
                }
                None => old = Some((zc.clone(), bzc.clone())),
            }
            z.copy_from_slice(&bzc);
        }
        let a: Vec<f64> = (0..n).map(|i| dot(&yk[i * q..(i + 1) * q], &zc)).collect();
        let t: Vec<f64> = (0..n)
            .map(|i| dot(&self.m[i * q..(i + 1) * q], &zc))
            .collect();
        (a, t, iters)
    }

    /// Deflate by the component with scores `t` (`s = tᵀt`), y-loadings `ql`, `v = K t` (K
    /// before this component's deflation) and `tv = tᵀv`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn deflate(&mut self, q: usize, t: &[f64], s: f64, ql: &[f64], v: &[f64], tv: f64) {
        let m = &mut self.m;
        let mut w = vec![0.0; q];
        accumulate_rows(&mut w, t, m);
        let e: Vec<f64> = w.iter().zip(ql).map(|(wj, qj)| wj - tv * qj).collect();
        for ((row, &vi), &ti) in m.chunks_exact_mut(q).zip(v).zip(t) {
            let ti = ti / s;
            for ((mj, &qj), &ej) in row.iter_mut().zip(ql).zip(&e) {
                *mj -= vi * qj + ti * ej;
            }
        }
        for (i, row) in self.b.chunks_exact_mut(q).enumerate() {
            let (qi, wi) = (ql[i], w[i]);
            for ((bj, &qj), &wj) in row.iter_mut().zip(ql).zip(&w) {
                *bj += -(qi * wj + wi * qj) + tv * qi * qj;
            }
        }
    }
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
        let mut k = Vec::new();
        self.kernel_into(g, n_all, rows, train, &mut k);
        k
    }

    /// [`Centring::kernel`] into `k`, whose allocation is reused (a fresh 40 MB buffer per
    /// split costs as much in page faults as filling it).
    pub fn kernel_into(
        &self,
        g: &[f64],
        n_all: usize,
        rows: &[usize],
        train: &[usize],
        k: &mut Vec<f64>,
    ) {
        let rt: Vec<f64> = train.iter().map(|&j| self.r[j]).collect();
        k.clear();
        k.resize(rows.len() * train.len(), 0.0);
        for (out, &i) in k.chunks_exact_mut(train.len().max(1)).zip(rows) {
            let (row, ri) = (&g[i * n_all..(i + 1) * n_all], self.r[i]);
            for ((o, &j), &rj) in out.iter_mut().zip(train).zip(&rt) {
                *o = row[j] - ri - rj + self.c;
            }
        }
    }
}

impl KernelPls {
    /// Fit on the centred training Gram matrix `k` (`n × n`) and targets `y` (`n × q`,
    /// row-major, not centred).
    pub fn fit(k: &[f64], n: usize, y: &[f64], q: usize, n_components: usize) -> Result<KernelPls> {
        // Iterate in target space when a step there (3 q × q products) is cheaper than one in
        // sample space (an n × n and two n × q products): q ≤ n.
        Self::fit_in(k, n, y, q, n_components, q <= n)
    }

    /// [`KernelPls::fit`], iterating in target space or in sample space as asked; its loops
    /// built for AVX-512 or AVX2 when the CPU has them (same bytes: see [`dot`]).
    fn fit_in(
        k: &[f64],
        n: usize,
        y: &[f64],
        q: usize,
        n_components: usize,
        in_target_space: bool,
    ) -> Result<KernelPls> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { Self::fit_avx512(k, n, y, q, n_components, in_target_space) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { Self::fit_avx2(k, n, y, q, n_components, in_target_space) };
            }
        }
        Self::fit_body(k, n, y, q, n_components, in_target_space)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fit_avx512(
        k: &[f64],
        n: usize,
        y: &[f64],
        q: usize,
        n_components: usize,
        in_target_space: bool,
    ) -> Result<KernelPls> {
        Self::fit_body(k, n, y, q, n_components, in_target_space)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fit_avx2(
        k: &[f64],
        n: usize,
        y: &[f64],
        q: usize,
        n_components: usize,
        in_target_space: bool,
    ) -> Result<KernelPls> {
        Self::fit_body(k, n, y, q, n_components, in_target_space)
    }

    #[inline(always)]
    fn fit_body(
        k: &[f64],
        n: usize,
        y: &[f64],
        q: usize,
        n_components: usize,
        in_target_space: bool,
    ) -> Result<KernelPls> {
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
        let k0 = k;
        // The deflated K, kept as a matrix only when iterating in sample space; in target
        // space it is applied as P_{k-1}⋯P_1 K0 P_1⋯P_{k-1} (see `Deflated`).
        let mut kk = (!in_target_space).then(|| k.to_vec());
        let mut a_cols: Vec<Vec<f64>> = Vec::new(); // x_weights = X_cᵀ a
        let mut b_cols: Vec<Vec<f64>> = Vec::new(); // x_loadings = X_cᵀ b
        let mut q_cols: Vec<Vec<f64>> = Vec::new(); // y_loadings
        let mut ts: Vec<(Vec<f64>, f64)> = Vec::new();
        let mut n_iter = Vec::new();
        let mut v = vec![0.0; n];
        let mut target = in_target_space.then(|| TargetSpace::new(k0, n, &yk, q));
        let trace0: f64 = (0..n).map(|i| k[i * n + i]).sum();
        // trace(P K P) = trace(K) − tᵀKt / s.
        let mut trace = trace0;
        for _ in 0..n_components {
            // The features are exhausted: what is left of K is rounding (K resolves variance
            // down to ε of its largest, so n·ε of the trace is the floor). sklearn would go on
            // fitting that rounding, and its predictions would then depend on the order of
            // additions; the missing components stay zero instead.
            if trace <= n as f64 * eps * trace0 {
                break;
            }
            // Columns of Y that are all close to zero become exactly zero.
            let mut masked = false;
            for j in 0..q {
                if (0..n).all(|i| yk[i * q + j].abs() < 10.0 * eps) {
                    for i in 0..n {
                        masked |= yk[i * q + j] != 0.0;
                        yk[i * q + j] = 0.0;
                    }
                }
            }
            let Some(first) = (0..q).find(|&j| (0..n).any(|i| yk[i * q + j].abs() > eps)) else {
                break; // "Y residual is constant": sklearn stops adding components.
            };
            if masked && target.is_some() {
                // M = K_k Y_k, with K_k applied column by column.
                let mut ky = vec![0.0; n * q];
                let (mut col, mut out) = (vec![0.0; n], vec![0.0; n]);
                for j in 0..q {
                    for i in 0..n {
                        col[i] = yk[i * q + j];
                    }
                    deflated_symv(k0, n, &ts, &col, &mut out);
                    for i in 0..n {
                        ky[i * q + j] = out[i];
                    }
                }
                target = Some(TargetSpace::from_m(ky, n, &yk, q));
            }
            let (a, t, iters) = match (&target, &kk) {
                (Some(ts), _) => ts.power(n, &yk, q, first),
                (None, Some(kk)) => power_in_sample_space(kk, n, &yk, q, first, &mut v),
                (None, None) => unreachable!("K is kept when iterating in sample space"),
            };
            n_iter.push(iters);
            // Scores and loadings of this component.
            let s = dot(&t, &t);
            let mut ql = vec![0.0; q];
            accumulate_rows(&mut ql, &t, &yk);
            for x in &mut ql {
                *x /= s;
            }
            for (row, &ti) in yk.chunks_exact_mut(q).zip(&t) {
                for (yj, &qj) in row.iter_mut().zip(&ql) {
                    *yj -= ti * qj;
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
            match &mut kk {
                Some(kk) => symv(kk, n, &t, &mut v),
                None => deflated_symv(k0, n, &ts, &t, &mut v),
            }
            let tv = dot(&t, &v);
            trace -= tv / s;
            if let Some(ts) = &mut target {
                ts.deflate(q, &t, s, &ql, &v, tv);
            }
            if let Some(kk) = &mut kk {
                // K_ij − (t_i v_j + v_i t_j)/s + tv·t_i t_j/s², row by row as α_i t_j + β_i v_j.
                let (inv_s, c) = (1.0 / s, tv / (s * s));
                for i in 0..n {
                    let (alpha, beta) = (c * t[i] - v[i] * inv_s, -t[i] * inv_s);
                    let row = &mut kk[i * n..(i + 1) * n];
                    for j in 0..n {
                        row[j] += alpha * t[j] + beta * v[j];
                    }
                }
            }
            a_cols.push(a_c);
            b_cols.push(b_c);
            q_cols.push(ql);
            ts.push((t, s));
        }
        let c = n_components;
        // PᵀW = Bᵀ K0 A (missing components stay zero, as in sklearn): K0·A as one product.
        let kc = a_cols.len();
        let mut ptw = Mat::<f64>::zeros(c, c);
        if kc > 0 {
            let am: Vec<f64> = (0..n * kc).map(|idx| a_cols[idx % kc][idx / kc]).collect();
            let ka = gemm(k0, n, n, &am, kc, false);
            let mut col = vec![0.0; n];
            for jj in 0..kc {
                for i in 0..n {
                    col[i] = ka[i * kc + jj];
                }
                for (ii, bi) in b_cols.iter().enumerate() {
                    ptw[(ii, jj)] = dot(bi, &col);
                }
            }
        }
        let inv = pinv(&ptw)?;
        // coef (sample space) = A · (pinv(PᵀW) · Qᵀ): the small product first.
        let mut r = vec![vec![0.0; q]; a_cols.len()];
        for (l, rl) in r.iter_mut().enumerate() {
            for (m, qm) in q_cols.iter().enumerate() {
                let f = inv[(l, m)];
                for (x, &qj) in rl.iter_mut().zip(qm) {
                    *x += f * qj;
                }
            }
        }
        let mut coef = vec![0.0; n * q];
        for (i, row) in coef.chunks_exact_mut(q).enumerate() {
            for (al, rl) in a_cols.iter().zip(&r) {
                let ai = al[i];
                for (x, &rj) in row.iter_mut().zip(rl) {
                    *x += ai * rj;
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
            accumulate_rows(o, row, &self.coef);
        }
        out
    }
}

/// Fit on rows `train` and predict rows `test` of the feature matrix whose raw Gram matrix
/// is `g` (`n_all × n_all`); `y_train` is `train.len() × q`. `scratch` holds the centred
/// kernels; pass the same one to successive calls to reuse its allocation.
#[allow(clippy::too_many_arguments)]
pub fn fit_predict(
    g: &[f64],
    n_all: usize,
    train: &[usize],
    test: &[usize],
    y_train: &[f64],
    q: usize,
    n_components: usize,
    scratch: &mut Vec<f64>,
) -> Result<Vec<f64>> {
    let centring = Centring::new(g, n_all, train);
    centring.kernel_into(g, n_all, train, train, scratch);
    let model = KernelPls::fit(scratch, train.len(), y_train, q, n_components)?;
    centring.kernel_into(g, n_all, test, train, scratch);
    Ok(model.predict(scratch, test.len()))
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
    fn gram_of_rows_reads_f32_rows_in_any_order_at_any_thread_count() {
        // Several tiles (n > 256, not a multiple) and panels (p > 1,024, not a multiple).
        let (n_all, p) = (600, 2_500);
        let x: Vec<f32> = (0..n_all * p)
            .map(|i| ((i * 7_919) % 1_013) as f32 / 97.0 - 4.0)
            .collect();
        let rows: Vec<usize> = (0..n_all).rev().step_by(2).chain(0..30).collect();
        let n = rows.len();
        let g = gram_of_rows(&x, p, &rows);
        for (i, j) in [
            (0, 0),
            (3, 290),
            (290, 3),
            (299, 329),
            (n - 1, 17),
            (n - 1, n - 1),
        ] {
            let (a, b) = (&x[rows[i] * p..][..p], &x[rows[j] * p..][..p]);
            let want: f64 = a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum();
            assert!(
                (g[i * n + j] - want).abs() <= 1e-9 * want.abs().max(1.0),
                "({i}, {j})"
            );
            assert_eq!(g[i * n + j], g[j * n + i], "symmetric at ({i}, {j})");
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let g1 = one.install(|| gram_of_rows(&x, p, &rows));
        assert!(g == g1, "the bytes depend on the thread count");
        let x64: Vec<f64> = rows
            .iter()
            .flat_map(|&r| x[r * p..(r + 1) * p].iter().map(|&v| v as f64))
            .collect();
        assert!(
            gram(&x64, n, p) == g,
            "f32 rows and their f64 copy disagree"
        );
    }

    #[test]
    fn accumulate_rows_adds_in_row_order() {
        for (m, k) in [(7, 0), (7, 3), (5, 4), (9, 11), (168, 13)] {
            let w: Vec<f64> = (0..k).map(|j| (j as f64 * 0.37).sin()).collect();
            let rows: Vec<f64> = (0..k * m).map(|i| (i as f64 * 1.3).cos() * 1e3).collect();
            let mut want = vec![0.25; m];
            for (row, &wj) in rows.chunks_exact(m).zip(&w) {
                for (o, &v) in want.iter_mut().zip(row) {
                    *o += wj * v;
                }
            }
            let mut got = vec![0.25; m];
            accumulate_rows(&mut got, &w, &rows);
            assert!(got == want, "m = {m}, k = {k}");
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
        let pred = fit_predict(&g, n, &train, &test, &y_train, q, 3, &mut Vec::new()).unwrap();
        for (a, b) in pred.iter().zip(&y[30 * q..]) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }

    #[test]
    fn too_few_stimuli_is_an_error() {
        let g = vec![1.0; 9];
        let e = fit_predict(&g, 3, &[0, 1], &[2], &[1.0, 2.0], 1, 25, &mut Vec::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("needs more than 25 training stimuli")
        );
    }

    /// The target-space iteration, with its rank-one deflations, fits what the sample-space
    /// one fits (which deflates K and Y directly): same iteration counts, predictions equal to
    /// rounding; also when a target column is masked to zero midway (a constant column).
    #[test]
    fn target_space_fits_as_sample_space_does() {
        let mut rng = crate::rng::RandomState::new(5);
        for (n, p, q, comps) in [(60, 40, 7, 10), (50, 80, 50, 12), (40, 30, 3, 20)] {
            let x: Vec<f64> = (0..n * p)
                .map(|_| rng.random_sample() * 2.0 - 1.0)
                .collect();
            let mut y: Vec<f64> = (0..n * q)
                .map(|i| x[(i / q) * p + i % q] * 0.7 + (rng.random_sample() - 0.5) * 0.6)
                .collect();
            for i in 0..n {
                y[i * q + q - 1] = 2.5; // a constant column: masked from the first component
            }
            let g = gram(&x, n, p);
            let train: Vec<usize> = (0..n).collect();
            let c = Centring::new(&g, n, &train);
            let k = c.kernel(&g, n, &train, &train);
            let a = KernelPls::fit_in(&k, n, &y, q, comps, true).unwrap();
            let b = KernelPls::fit_in(&k, n, &y, q, comps, false).unwrap();
            assert_eq!(a.n_iter, b.n_iter, "n={n} q={q}");
            let (pa, pb) = (a.predict(&k, n), b.predict(&k, n));
            let scale = pb.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let diff = pa
                .iter()
                .zip(&pb)
                .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
            assert!(diff <= 1e-9 * scale, "n={n} q={q}: {diff} of {scale}");
        }
    }

    /// The builds for AVX-512, AVX2 and the x86-64 baseline (whichever this CPU runs) fit
    /// the same bytes, in target and in sample space.
    #[test]
    fn every_build_fits_the_same_bytes() {
        let mut rng = crate::rng::RandomState::new(11);
        let (n, p, q) = (90, 70, 37);
        let x: Vec<f64> = (0..n * p).map(|_| rng.random_sample() - 0.5).collect();
        let y: Vec<f64> = (0..n * q)
            .map(|i| x[(i / q) * p + i % q] + 0.3 * rng.random_sample())
            .collect();
        let g = gram(&x, n, p);
        let train: Vec<usize> = (0..n).collect();
        let k = Centring::new(&g, n, &train).kernel(&g, n, &train, &train);
        let bits = |m: &KernelPls| m.coef.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for target in [true, false] {
            let base = KernelPls::fit_body(&k, n, &y, q, 12, target).unwrap();
            let mut builds = 0;
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    let m = unsafe { KernelPls::fit_avx2(&k, n, &y, q, 12, target) }.unwrap();
                    assert_eq!(bits(&m), bits(&base), "AVX2, target space {target}");
                    builds += 1;
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    let m = unsafe { KernelPls::fit_avx512(&k, n, &y, q, 12, target) }.unwrap();
                    assert_eq!(bits(&m), bits(&base), "AVX-512, target space {target}");
                    builds += 1;
                }
            }
            eprintln!("{builds} vector builds compared with the baseline");
        }
    }

    /// Features of rank 6 with 25 components asked, targets not in their span: both
    /// iterations stop after 6 components (the rest is rounding) and predict alike; with that
    /// many components PLS is least squares on the 6 features, so the residuals are
    /// orthogonal to them (K·residual = 0).
    #[test]
    fn past_the_features_rank_no_component_is_added() {
        let mut rng = crate::rng::RandomState::new(9);
        let (n, r, p, q) = (120, 6, 40, 30);
        let basis: Vec<f64> = (0..r * p).map(|_| rng.random_sample() - 0.5).collect();
        let lat: Vec<f64> = (0..n * r).map(|_| rng.random_sample() - 0.5).collect();
        let x: Vec<f64> = (0..n * p)
            .map(|i| {
                (0..r)
                    .map(|k| lat[(i / p) * r + k] * basis[k * p + i % p])
                    .sum()
            })
            .collect();
        let y: Vec<f64> = (0..n * q)
            .map(|i| {
                let lin: f64 = (0..r)
                    .map(|k| lat[(i / q) * r + k] * ((k + i % q) % 5) as f64)
                    .sum();
                lin + rng.random_sample() - 0.5
            })
            .collect();
        let g = gram(&x, n, p);
        let train: Vec<usize> = (0..n).collect();
        let c = Centring::new(&g, n, &train);
        let k = c.kernel(&g, n, &train, &train);
        let a = KernelPls::fit_in(&k, n, &y, q, 25, true).unwrap();
        let b = KernelPls::fit_in(&k, n, &y, q, 25, false).unwrap();
        assert_eq!(a.n_iter.len(), r, "{:?}", a.n_iter);
        assert_eq!(b.n_iter.len(), r, "{:?}", b.n_iter);
        let (pa, pb) = (a.predict(&k, n), b.predict(&k, n));
        for (u, v) in pa.iter().zip(&pb) {
            assert!((u - v).abs() < 1e-9, "{u} vs {v}");
        }
        let kscale = k.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..q {
            let res: Vec<f64> = (0..n).map(|i| y[i * q + j] - pa[i * q + j]).collect();
            for i in 0..n {
                let kr = dot(&k[i * n..(i + 1) * n], &res);
                assert!(kr.abs() < 1e-9 * kscale * n as f64, "target {j}: {kr}");
            }
        }
    }
}
