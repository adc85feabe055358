//! Multinomial L2 logistic regression, as Brain-Score's behavioural readout uses it:
//! `StandardScaler` then `LogisticRegression(multi_class='multinomial', C=1e-3)` (sklearn).
//!
//! sklearn minimises `C · Σᵢ −log softmax(xᵢW + b)[yᵢ] + ½‖W‖²` (the intercept `b` is not
//! penalised). The objective is strictly convex in `W`, so its minimiser — and the predicted
//! probabilities — do not depend on the solver; we minimise it with L-BFGS to a gradient far
//! below sklearn's tolerance, in float64, with every sum in a fixed order.

// Index loops mirror the formulas (rows × features × classes) and keep the sums' order fixed.
#![allow(clippy::needless_range_loop)]

use crate::error::{MetricError, Result};

/// A fitted standardiser + classifier.
#[derive(Clone, Debug)]
pub struct Logistic {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `p × k` weights, row-major.
    w: Vec<f64>,
    b: Vec<f64>,
    /// Class labels in sorted order (the columns of [`Logistic::predict_proba`]).
    pub classes: Vec<String>,
    p: usize,
    iterations: usize,
}

fn invalid<T>(m: impl Into<String>) -> Result<T> {
    Err(MetricError::Invalid(m.into()))
}

/// Column means and population standard deviations (1 where a column is constant), as
/// sklearn's `StandardScaler`.
pub(crate) fn scaler(x: &[f64], n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; p];
    for i in 0..n {
        for j in 0..p {
            mean[j] += x[i * p + j];
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut var = vec![0.0; p];
    for i in 0..n {
        for j in 0..p {
            let d = x[i * p + j] - mean[j];
            var[j] += d * d;
        }
    }
    let scale = var
        .iter()
        .map(|v| {
            let s = (v / n as f64).sqrt();
            if s < 10.0 * f64::EPSILON { 1.0 } else { s }
        })
        .collect();
    (mean, scale)
}

#[allow(clippy::too_many_arguments)]
/// Loss and gradient of sklearn's objective at `theta = [W (p×k row-major), b (k)]`.
fn objective(
    theta: &[f64],
    x: &[f64],
    y: &[usize],
    n: usize,
    p: usize,
    k: usize,
    c: f64,
    grad: &mut [f64],
) -> f64 {
    let (w, b) = theta.split_at(p * k);
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    let mut z = vec![0.0; k];
    for i in 0..n {
        let xi = &x[i * p..(i + 1) * p];
        z.copy_from_slice(b);
        for j in 0..p {
            let v = xi[j];
            if v != 0.0 {
                let row = &w[j * k..(j + 1) * k];
                for c in 0..k {
                    z[c] += v * row[c];
                }
            }
        }
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        let lse = m + s.ln();
        loss += lse - z[y[i]];
        // d/dz = softmax − onehot
        for c in 0..k {
            z[c] = (z[c] - lse).exp();
        }
        z[y[i]] -= 1.0;
        for j in 0..p {
            let v = xi[j];
            if v != 0.0 {
                let g = &mut grad[j * k..(j + 1) * k];
                for c in 0..k {
                    g[c] += v * z[c];
                }
            }
        }
        let gb = &mut grad[p * k..];
        for c in 0..k {
            gb[c] += z[c];
        }
    }
    let mut reg = 0.0;
    for (t, g) in theta.iter().zip(grad.iter_mut()).take(p * k) {
        *g = c * *g + t;
        reg += t * t;
    }
    for g in grad[p * k..].iter_mut() {
        *g *= c;
    }
    c * loss + 0.5 * reg
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Logistic {
    /// Fit on `x` (`n × p`, row-major) with labels `y`, inverse regularisation `c`.
    pub fn fit(x: &[f64], n: usize, p: usize, y: &[String], c: f64) -> Result<Logistic> {
        if n == 0 || p == 0 || x.len() != n * p || y.len() != n {
            return invalid(format!(
                "logistic: {} values for {n} samples × {p} features, {} labels",
                x.len(),
                y.len()
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return invalid(format!(
                "logistic: feature {} of sample {} is not finite",
                i % p,
                i / p
            ));
        }
        let mut classes: Vec<String> = y.to_vec();
        classes.sort();
        classes.dedup();
        let k = classes.len();
        if k < 2 {
            return invalid("logistic: fewer than two classes");
        }
        let yi: Vec<usize> = y
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or(0))
            .collect();
        let (mean, scale) = scaler(x, n, p);
        let xs: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - mean[i % p]) / scale[i % p])
            .collect();
        // L-BFGS with a backtracking (Armijo) line search.
        let dim = p * k + k;
        let mut theta = vec![0.0; dim];
        let mut g = vec![0.0; dim];
        let mut f = objective(&theta, &xs, &yi, n, p, k, c, &mut g);
        let m = 20;
        let mut s_hist: Vec<Vec<f64>> = Vec::new();
        let mut y_hist: Vec<Vec<f64>> = Vec::new();
        let g0 = dot(&g, &g).sqrt().max(1e-300);
        let mut iterations = 0;
        for _ in 0..5000 {
            iterations += 1;
            let gn = dot(&g, &g).sqrt();
            if gn <= 1e-10 * g0.max(1.0) {
                break;
            }
            // Two-loop recursion.
            let mut q = g.clone();
            let mut alpha = vec![0.0; s_hist.len()];
            for i in (0..s_hist.len()).rev() {
                let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
                alpha[i] = rho * dot(&s_hist[i], &q);
                for (qj, yj) in q.iter_mut().zip(&y_hist[i]) {
                    *qj -= alpha[i] * yj;
                }
            }
            if let (Some(s), Some(yv)) = (s_hist.last(), y_hist.last()) {
                let gamma = dot(s, yv) / dot(yv, yv);
                q.iter_mut().for_each(|v| *v *= gamma);
            } else {
                let sc = 1.0 / gn;
                q.iter_mut().for_each(|v| *v *= sc);
            }
            for i in 0..s_hist.len() {
                let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
                let beta = rho * dot(&y_hist[i], &q);
                for (qj, sj) in q.iter_mut().zip(&s_hist[i]) {
                    *qj += (alpha[i] - beta) * sj;
                }
            }
            let dir: Vec<f64> = q.iter().map(|v| -v).collect();
            let slope = dot(&g, &dir);
            let dir = if slope >= 0.0 {
                g.iter().map(|v| -v).collect()
            } else {
                dir
            };
            let slope = dot(&g, &dir);
            let mut step = 1.0;
            let mut g_new = vec![0.0; dim];
            let mut accepted = None;
            for _ in 0..60 {
                let t: Vec<f64> = theta.iter().zip(&dir).map(|(a, d)| a + step * d).collect();
                let f_new = objective(&t, &xs, &yi, n, p, k, c, &mut g_new);
                if f_new <= f + 1e-4 * step * slope {
                    accepted = Some((t, f_new));
                    break;
                }
                step *= 0.5;
            }
            let Some((t, f_new)) = accepted else { break };
            let s: Vec<f64> = t.iter().zip(&theta).map(|(a, b)| a - b).collect();
            let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
            // Keep the pair unless its curvature is lost in rounding (relative to the pair's
            // own size: an absolute floor drops every pair once the steps get small, and
            // L-BFGS then crawls — 3,972 iterations instead of 422 on a 960 × 1,280 readout).
            if dot(&s, &yv) > f64::EPSILON * dot(&s, &s).sqrt() * dot(&yv, &yv).sqrt() {
                s_hist.push(s);
                y_hist.push(yv);
                if s_hist.len() > m {
                    s_hist.remove(0);
                    y_hist.remove(0);
                }
            }
            let converged = (f - f_new).abs() <= 1e-15 * f.abs().max(1.0);
            theta = t;
            f = f_new;
            g = g_new;
            if converged {
                break;
            }
        }
        let (w, b) = theta.split_at(p * k);
        Ok(Logistic {
            mean,
            scale,
            w: w.to_vec(),
            b: b.to_vec(),
            classes,
            p,
            iterations,
        })
    }

    /// The L-BFGS iterations the fit took.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Class probabilities `n × k` (columns in [`Logistic::classes`] order).
    pub fn predict_proba(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        let (p, k) = (self.p, self.classes.len());
        if x.len() != n * p {
            return invalid(format!(
                "logistic: {} values for {n} samples × {p} features",
                x.len()
            ));
        }
        let mut out = Vec::with_capacity(n * k);
        for i in 0..n {
            let mut z = self.b.clone();
            for j in 0..p {
                let v = (x[i * p + j] - self.mean[j]) / self.scale[j];
                for c in 0..k {
                    z[c] += v * self.w[j * k + c];
                }
            }
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            out.extend(z.iter().map(|v| (v - m).exp() / s));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learned_and_probabilities_sum_to_one() {
        let (n, p) = (60, 3);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 3;
            x.extend([
                c as f64 + 0.1 * (i as f64).sin(),
                (i as f64 * 0.7).cos(),
                if c == 1 { 2.0 } else { -1.0 },
            ]);
            y.push(format!("c{c}"));
        }
        let m = Logistic::fit(&x, n, p, &y, 1.0).unwrap();
        let pr = m.predict_proba(&x, n).unwrap();
        for i in 0..n {
            let row = &pr[i * 3..i * 3 + 3];
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            assert_eq!(m.classes[best], y[i]);
        }
        assert!(Logistic::fit(&x, n, p, &vec!["a".to_string(); n], 1.0).is_err());
    }

    #[test]
    fn a_wide_correlated_readout_converges_in_hundreds_of_iterations() {
        // The shape of a behavioural readout on a network's penultimate layer: fewer images
        // than features, the features rectified mixtures of a few latent factors (some never
        // active), Brain-Score's C = 1e-3. Here the fit takes 54 iterations; with an absolute
        // floor on the pairs' curvature (dropping every pair once steps get small) it took
        // 146, and on a real 960 × 1,280 readout 3,972 instead of 422.
        let (n, p, k, r) = (240, 320, 12, 16);
        let mut rng = crate::rng::RandomState::new(7);
        let mut normal = || {
            let (u, v) = (rng.random_sample().max(1e-300), rng.random_sample());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let latent: Vec<f64> = (0..n * r).map(|_| normal()).collect();
        let mix: Vec<f64> = (0..r * p).map(|_| normal()).collect();
        let mut x = vec![0.0; n * p];
        for i in 0..n {
            for j in 0..p {
                let mut v = 0.05 * normal();
                for l in 0..r {
                    v += latent[i * r + l] * mix[l * p + j];
                }
                x[i * p + j] = if j % 7 == 0 { 0.0 } else { v.max(0.0) };
            }
        }
        let y: Vec<String> = (0..n)
            .map(|i| {
                let c = (0..k)
                    .max_by(|&a, &b| latent[i * r + a % r].total_cmp(&latent[i * r + b % r]))
                    .unwrap_or(0);
                format!("c{c}")
            })
            .collect();
        let m = Logistic::fit(&x, n, p, &y, 1e-3).unwrap();
        assert!(m.iterations() < 100, "{} iterations", m.iterations());
    }
}
