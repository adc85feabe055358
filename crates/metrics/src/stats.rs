//! Small statistics with the reference's NaN rules.

use crate::pls::dot;

/// scipy's `pearsonr(x, y)[0]`: NaN when either input is constant or holds a NaN.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 || y.len() != n || x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    if x.iter().all(|v| *v == x[0]) || y.iter().all(|v| *v == y[0]) {
        return f64::NAN;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let xm: Vec<f64> = x.iter().map(|v| v - mx).collect();
    let ym: Vec<f64> = y.iter().map(|v| v - my).collect();
    let nx = dot(&xm, &xm).sqrt();
    let ny = dot(&ym, &ym).sqrt();
    let r = dot(&xm, &ym) / (nx * ny);
    r.clamp(-1.0, 1.0)
}

/// numpy's `nanmedian` (the mean of the two middle values for an even count); NaN if no
/// value is finite.
pub fn nanmedian(v: &[f64]) -> f64 {
    let mut x: Vec<f64> = v.iter().copied().filter(|a| !a.is_nan()).collect();
    if x.is_empty() {
        return f64::NAN;
    }
    x.sort_by(|a, b| a.total_cmp(b));
    let k = x.len();
    if k % 2 == 1 {
        x[k / 2]
    } else {
        (x[k / 2 - 1] + x[k / 2]) / 2.0
    }
}

/// numpy's `nanmean`.
pub fn nanmean(v: &[f64]) -> f64 {
    let x: Vec<f64> = v.iter().copied().filter(|a| !a.is_nan()).collect();
    if x.is_empty() {
        f64::NAN
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// numpy's `nanstd` with ddof 0.
pub fn nanstd(v: &[f64]) -> f64 {
    let x: Vec<f64> = v.iter().copied().filter(|a| !a.is_nan()).collect();
    if x.is_empty() {
        return f64::NAN;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Spearman–Brown prediction for a test twice as long: `2r / (1 + r)`.
pub fn spearman_brown(r: f64) -> f64 {
    2.0 * r / (1.0 + r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_rules() {
        assert!(
            (pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]) - 0.997_948_715_788_673_3).abs() < 1e-12
        );
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(pearson(&[1.0, f64::NAN, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    }

    #[test]
    fn medians() {
        assert_eq!(nanmedian(&[3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(nanmedian(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(nanmedian(&[f64::NAN]).is_nan());
    }
}
