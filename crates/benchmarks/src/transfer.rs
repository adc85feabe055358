//! Transfer to another task (the paper's CIFAR-100 test, §3.4): a multinomial L2 logistic
//! readout (standardised features, L-BFGS) of a model's features, its inverse strength `C`
//! chosen on a stratified validation part of the training images from a log-spaced grid
//! (.0005–.05 in 10 steps by default), refitted on all training images, scored by accuracy
//! on the test images.

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;
use ventral_metrics::logistic::Logistic;
use ventral_metrics::splits::{Size, stratified_shuffle_split};
use ventral_store::Assembly;

use crate::neural::{load_features, strings};
use crate::{BenchError, Result, ScoreRow, data};

/// `n` values from `lo` to `hi`, evenly spaced in log (numpy's `logspace`).
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![lo];
    }
    let (a, b) = (lo.log10(), hi.log10());
    (0..n)
        .map(|i| 10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64))
        .collect()
}

/// The outcome of a transfer test.
#[derive(Clone, Debug, Serialize)]
pub struct TransferResult {
    /// Benchmark name.
    pub benchmark: String,
    /// Model name.
    pub model: String,
    /// Test accuracy.
    pub raw: f64,
    /// 1: accuracy needs no ceiling.
    pub ceiling: f64,
    /// Test accuracy.
    pub ceiled: f64,
    /// The chosen `C`.
    pub c: f64,
    /// `(C, validation accuracy)` over the grid.
    pub validation: Vec<(f64, f64)>,
    /// Classes.
    pub classes: usize,
    /// Training and test images.
    pub images: [usize; 2],
    /// Chance accuracy (1 / classes).
    pub chance: f64,
    /// The activation store used.
    pub layer: String,
}

fn labelled(store: &Path, label: &str) -> Result<(Vec<f64>, usize, Vec<String>)> {
    let (v, p, _) = load_features(store)?;
    let a = Assembly::open(store)?;
    let labels = strings(&a.coords(&a.meta().dims[0])?, label, store)?;
    Ok((v.into_iter().map(f64::from).collect(), p, labels))
}

fn accuracy(clf: &Logistic, x: &[f64], y: &[String]) -> std::result::Result<f64, BenchError> {
    let n = y.len();
    let probs = clf.predict_proba(x, n).map_err(|e| BenchError::Metric {
        context: "transfer: predicting".into(),
        source: e,
    })?;
    let k = clf.classes.len();
    let right = (0..n)
        .filter(|&i| {
            let row = &probs[i * k..(i + 1) * k];
            let best = (0..k)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            clf.classes[best] == y[i]
        })
        .count();
    Ok(right as f64 / n.max(1) as f64)
}

fn rows_of(x: &[f64], p: usize, idx: &[usize]) -> Vec<f64> {
    idx.iter()
        .flat_map(|&i| x[i * p..(i + 1) * p].iter().copied())
        .collect()
}

/// Fit on `train` features (labels: column `label`), choose `C` from `cs` on a stratified
/// 20 % validation part (seeded), refit on all of `train`, and score accuracy on `test`.
pub fn score(
    benchmark: &str,
    model: &str,
    train: &Path,
    test: &Path,
    label: &str,
    cs: &[f64],
    seed: u32,
) -> Result<(TransferResult, Vec<ScoreRow>)> {
    if cs.is_empty() || cs.iter().any(|c| c.is_nan() || *c <= 0.0 || !c.is_finite()) {
        return Err(data(
            train,
            format!("the C grid must hold positive numbers; it is {cs:?}"),
        ));
    }
    let (x, p, y) = labelled(train, label)?;
    let (xt, pt, yt) = labelled(test, label)?;
    if pt != p {
        return Err(data(
            test,
            format!("{pt} features where the training images have {p}"),
        ));
    }
    let metric = |context: String| move |e| BenchError::Metric { context, source: e };
    let split =
        stratified_shuffle_split(&y, 1, None, Some(Size::Fraction(0.8)), seed).map_err(metric(
            format!("{}: validation split by `{label}`", train.display()),
        ))?;
    let sp = &split[0];
    let (xa, ya): (Vec<f64>, Vec<String>) = (
        rows_of(&x, p, &sp.train),
        sp.train.iter().map(|&i| y[i].clone()).collect(),
    );
    let (xv, yv): (Vec<f64>, Vec<String>) = (
        rows_of(&x, p, &sp.test),
        sp.test.iter().map(|&i| y[i].clone()).collect(),
    );
    let validation: Vec<(f64, f64)> = cs
        .par_iter()
        .map(|&c| {
            let clf = Logistic::fit(&xa, ya.len(), p, &ya, c)
                .map_err(metric(format!("{}: readout with C = {c}", train.display())))?;
            Ok((c, accuracy(&clf, &xv, &yv)?))
        })
        .collect::<Result<_>>()?;
    // The best validation accuracy; ties go to the smaller C (the stronger penalty).
    let mut best = validation[0];
    for &(c, a) in &validation[1..] {
        if a > best.1 || (a == best.1 && c < best.0) {
            best = (c, a);
        }
    }
    let clf = Logistic::fit(&x, y.len(), p, &y, best.0).map_err(metric(format!(
        "{}: readout with C = {}",
        train.display(),
        best.0
    )))?;
    let acc = accuracy(&clf, &xt, &yt)?;
    let classes = clf.classes.len();
    let layer = crate::layer_of(train);
    let row = |q: &str, v: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.into(),
        layer: Some(layer.clone()),
        quantity: q.into(),
        split: None,
        neuroid_id: None,
        value: v,
    };
    let mut rows = vec![
        row("raw", acc),
        row("ceiling", 1.0),
        row("ceiled", acc),
        row("c", best.0),
        row("chance", 1.0 / classes.max(1) as f64),
    ];
    for (k, (c, a)) in validation.iter().enumerate() {
        rows.push(ScoreRow {
            split: Some(k as i64),
            ..row(&format!("validation_accuracy@C={c:.6}"), *a)
        });
    }
    Ok((
        TransferResult {
            benchmark: benchmark.into(),
            model: model.into(),
            raw: acc,
            ceiling: 1.0,
            ceiled: acc,
            c: best.0,
            validation,
            classes,
            images: [y.len(), yt.len()],
            chance: 1.0 / classes.max(1) as f64,
            layer,
        },
        rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_numpys_logspace() {
        let g = log_grid(0.0005, 0.05, 10);
        assert_eq!(g.len(), 10);
        assert!((g[0] - 0.0005).abs() < 1e-15);
        assert!((g[9] - 0.05).abs() < 1e-15);
        // numpy.logspace(log10(.0005), log10(.05), 10)[1] = 0.0008340502686000292
        assert!((g[1] - 0.000_834_050_268_600_029_2).abs() < 1e-15);
    }
}
