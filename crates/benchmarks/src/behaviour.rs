//! Behaviour (Rajalingham2018 I2n) over our stores: a logistic readout of the model's
//! features, fitted on the fitting stimuli (labels: their `object_name`), predicts choice
//! probabilities on the test stimuli, compared with human trials by I2n.

use std::path::Path;

use serde::Serialize;
use ventral_metrics::i2n::{Probabilities, Trials, i2n};
use ventral_metrics::logistic::Logistic;
use ventral_store::Assembly;

use crate::neural::{load_features, strings};
use crate::{BenchError, Result, ScoreRow, data};

/// Human trials from a BehavioralAssembly store (dims `presentation`).
pub fn load_trials(store: &Path) -> Result<Trials> {
    let a = Assembly::open(store)?;
    let pres = a.coords("presentation")?;
    Ok(Trials {
        stimulus_id: strings(&pres, "stimulus_id", store)?,
        sample_obj: strings(&pres, "sample_obj", store)?,
        dist_obj: strings(&pres, "dist_obj", store)?,
        choice: strings(&pres, "choice", store)?,
        truth: strings(&pres, "truth", store)?,
    })
}

/// The outcome of the behavioural benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct BehaviourResult {
    /// Benchmark name.
    pub benchmark: String,
    /// Model name.
    pub model: String,
    /// Raw I2n (mean over the two human halves).
    pub raw: f64,
    /// Its error.
    pub raw_error: f64,
    /// Human split-half ceiling.
    pub ceiling: f64,
    /// Mean over halves of r / √ceiling.
    pub ceiled: f64,
    /// Raw per split.
    pub per_split: Vec<f64>,
    /// The activation store used.
    pub layer: String,
    /// Accuracy of the readout on the test images (arg-max = truth).
    pub readout_accuracy: f64,
}

/// Score: fit on `fitting` features (labels from column `label`), predict `test`, compare
/// with `trials`.
pub fn score(
    benchmark: &str,
    model: &str,
    fitting: &Path,
    test: &Path,
    trials_store: &Path,
    label: &str,
    c: f64,
) -> Result<(BehaviourResult, Vec<ScoreRow>)> {
    let (fx, p, _) = load_features(fitting)?;
    let fa = Assembly::open(fitting)?;
    let labels = strings(&fa.coords(&fa.meta().dims[0])?, label, fitting)?;
    let n = labels.len();
    let x: Vec<f64> = fx.iter().map(|&v| v as f64).collect();
    let metric = |context: String| move |e| BenchError::Metric { context, source: e };
    let clf = Logistic::fit(&x, n, p, &labels, c)
        .map_err(metric(format!("{}: logistic readout", fitting.display())))?;
    let (tx, tp, ids) = load_features(test)?;
    if tp != p {
        return Err(data(
            test,
            format!("{tp} features where the fitting stimuli have {p}"),
        ));
    }
    let xt: Vec<f64> = tx.iter().map(|&v| v as f64).collect();
    let probs = clf
        .predict_proba(&xt, ids.len())
        .map_err(metric(format!("{}: readout", test.display())))?;
    let trials = load_trials(trials_store)?;
    // Readout accuracy against the trials' truth per image.
    let truth: std::collections::HashMap<&str, &str> = trials
        .stimulus_id
        .iter()
        .map(String::as_str)
        .zip(trials.truth.iter().map(String::as_str))
        .collect();
    let k = clf.classes.len();
    let mut right = 0usize;
    let mut known = 0usize;
    for (i, id) in ids.iter().enumerate() {
        if let Some(t) = truth.get(id.as_str()) {
            known += 1;
            let row = &probs[i * k..(i + 1) * k];
            let best = (0..k)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            if clf.classes[best] == *t {
                right += 1;
            }
        }
    }
    let pr = Probabilities {
        values: &probs,
        stimulus_id: &ids,
        choice: &clf.classes,
    };
    let s = i2n(&pr, &trials, 2, 0).map_err(metric(format!(
        "{} vs {}",
        test.display(),
        trials_store.display()
    )))?;
    let ceiling = s.ceiling.ok_or_else(|| {
        data(
            trials_store,
            format!(
                "the human halves cannot be correlated, so there is no ceiling: {} \
                 (too few trials per image and distractor for a random half to cover every cell)",
                s.ceiling_error
                    .as_deref()
                    .unwrap_or("no split could be correlated")
            ),
        )
    })?;
    let ceiled = s.ceiled.unwrap_or(f64::NAN);
    let layer = crate::layer_of(test);
    let row = |q: &str, split: Option<i64>, v: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.into(),
        layer: Some(layer.clone()),
        quantity: q.into(),
        split,
        neuroid_id: None,
        value: v,
    };
    let mut rows = vec![
        row("raw", None, s.score),
        row("raw_error", None, s.score_error),
        row("ceiling", None, ceiling),
        row("ceiled", None, ceiled),
        row("readout_accuracy", None, right as f64 / known.max(1) as f64),
    ];
    for (i, v) in s.raw.iter().enumerate() {
        rows.push(row("raw", Some(i as i64), *v));
    }
    Ok((
        BehaviourResult {
            benchmark: benchmark.into(),
            model: model.into(),
            raw: s.score,
            raw_error: s.score_error,
            ceiling,
            ceiled,
            per_split: s.raw,
            layer,
            readout_accuracy: right as f64 / known.max(1) as f64,
        },
        rows,
    ))
}
