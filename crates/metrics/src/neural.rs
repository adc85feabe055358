//! Neural predictivity (MajajHong2015 V4/IT) and its internal-consistency ceiling, as
//! Brain-Score computes them.
//!
//! * Repetitions are averaged per stimulus (NaN-skipping mean); rows in ascending
//!   `stimulus_id`.
//! * Splits: `StratifiedShuffleSplit(10, train_size=.9, random_state=1)` stratified by
//!   `object_name`, over the averaged rows.
//! * Per split: PLS-25 (sklearn's NIPALS, in sample space, see [`crate::pls`]) fitted on the
//!   training stimuli, Pearson r per neuroid on the test stimuli, median over neuroids
//!   (a constant or all-NaN neuroid gives NaN and is left out, as xarray's `median` does).
//! * Score: mean over splits; error: std over splits (ddof 0) / √splits.
//! * Ceiling: `ShuffleSplit(10, train_size=.5, random_state=1)` over the repetition values;
//!   each half averaged per stimulus; Pearson r per neuroid; Spearman–Brown; median over
//!   neuroids; mean over splits.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::error::{Result, invalid};
use crate::pls::{fit_predict, gram_of_rows};
use crate::splits::{Size, shuffle_split, stratified_shuffle_split};
use crate::stats::{nanmean, nanmedian, nanstd, pearson, spearman_brown};

/// Recorded responses: one row per presentation (stimulus × repetition).
#[derive(Clone, Debug)]
pub struct Recordings {
    /// `n_presentations × n_neuroids`, row-major; NaN is a missing value.
    pub values: Vec<f64>,
    /// Neuroids per row.
    pub n_neuroids: usize,
    /// Stimulus of each presentation.
    pub stimulus_id: Vec<String>,
    /// Object of each presentation (the stratification label).
    pub object_name: Vec<String>,
    /// Repetition index of each presentation.
    pub repetition: Vec<i64>,
}

/// Responses averaged over repetitions: one row per stimulus, ascending `stimulus_id`.
#[derive(Clone, Debug)]
pub struct Averaged {
    /// `n_stimuli × n_neuroids`, row-major.
    pub values: Vec<f64>,
    /// Neuroids per row.
    pub n_neuroids: usize,
    /// Stimulus ids, ascending.
    pub stimulus_id: Vec<String>,
    /// Object of each stimulus.
    pub object_name: Vec<String>,
}

/// Model features: one row per stimulus.
#[derive(Clone, Debug)]
pub struct Features<'a> {
    /// `n_stimuli × n_features`, row-major.
    pub values: &'a [f32],
    /// Features per row.
    pub n_features: usize,
    /// Stimulus of each row.
    pub stimulus_id: &'a [String],
}

/// How a raw score is normalised by the ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalisation {
    /// `r / c`, as the 2019 paper did.
    ROverC,
    /// `(r / c)²`.
    ROverCSquared,
    /// `r² / c`, as Brain-Score does now.
    RSquaredOverC,
}

impl Normalisation {
    /// Apply to raw score `r` and ceiling `c`.
    pub fn apply(self, r: f64, c: f64) -> f64 {
        match self {
            Normalisation::ROverC => r / c,
            Normalisation::ROverCSquared => (r / c).powi(2),
            Normalisation::RSquaredOverC => r * r / c,
        }
    }
}

impl std::str::FromStr for Normalisation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "r/c" => Ok(Normalisation::ROverC),
            "(r/c)^2" => Ok(Normalisation::ROverCSquared),
            "r^2/c" => Ok(Normalisation::RSquaredOverC),
            o => Err(format!("unknown normalisation `{o}` (r/c, (r/c)^2, r^2/c)")),
        }
    }
}

/// A cross-validated score.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// Mean over splits.
    pub center: f64,
    /// Std over splits (ddof 0) / √splits.
    pub error: f64,
    /// The median over neuroids, per split.
    pub per_split: Vec<f64>,
    /// Per split, per neuroid (split-major).
    pub per_neuroid: Vec<Vec<f64>>,
}

impl Score {
    fn from_splits(per_neuroid: Vec<Vec<f64>>) -> Score {
        let per_split: Vec<f64> = per_neuroid.iter().map(|r| nanmedian(r)).collect();
        let center = nanmean(&per_split);
        let k = per_split.iter().filter(|v| !v.is_nan()).count().max(1);
        Score {
            center,
            error: nanstd(&per_split) / (k as f64).sqrt(),
            per_split,
            per_neuroid,
        }
    }
}

/// NaN-skipping mean of rows grouped by key, groups in ascending key order.
fn group_mean(values: &[f64], q: usize, keys: &[&str], rows: &[usize]) -> (Vec<String>, Vec<f64>) {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &r in rows {
        groups.entry(keys[r]).or_default().push(r);
    }
    let mut out = Vec::with_capacity(groups.len() * q);
    let mut counts = vec![0usize; q];
    for members in groups.values() {
        // Row by row (each value still sums its members in order: the same bytes as a
        // column-by-column loop, with the rows read once).
        let start = out.len();
        out.resize(start + q, 0.0);
        counts.fill(0);
        let sums = &mut out[start..];
        for &r in members {
            for ((s, n), &v) in sums
                .iter_mut()
                .zip(&mut counts)
                .zip(&values[r * q..(r + 1) * q])
            {
                if !v.is_nan() {
                    *s += v;
                    *n += 1;
                }
            }
        }
        for (s, &n) in sums.iter_mut().zip(&counts) {
            *s = if n == 0 { f64::NAN } else { *s / n as f64 };
        }
    }
    (groups.keys().map(|k| k.to_string()).collect(), out)
}

impl Recordings {
    fn check(&self) -> Result<usize> {
        let n = self.stimulus_id.len();
        if self.n_neuroids == 0 || self.values.len() != n * self.n_neuroids {
            return invalid(format!(
                "recordings: {} values for {n} presentations × {} neuroids",
                self.values.len(),
                self.n_neuroids
            ));
        }
        if self.object_name.len() != n || self.repetition.len() != n {
            return invalid(
                "recordings: stimulus_id, object_name and repetition must have one entry per presentation",
            );
        }
        Ok(n)
    }

    /// Average repetitions (Brain-Score's `average_repetition`).
    pub fn average(&self) -> Result<Averaged> {
        let n = self.check()?;
        let keys: Vec<&str> = self.stimulus_id.iter().map(String::as_str).collect();
        let rows: Vec<usize> = (0..n).collect();
        let (ids, values) = group_mean(&self.values, self.n_neuroids, &keys, &rows);
        let mut object: BTreeMap<&str, &str> = BTreeMap::new();
        for i in 0..n {
            let prev = object.insert(&self.stimulus_id[i], &self.object_name[i]);
            if prev.is_some_and(|p| p != self.object_name[i]) {
                return invalid(format!(
                    "recordings: stimulus `{}` is labelled with two objects (`{}` and `{}`)",
                    self.stimulus_id[i],
                    prev.unwrap_or_default(),
                    self.object_name[i]
                ));
            }
        }
        Ok(Averaged {
            object_name: ids.iter().map(|s| object[s.as_str()].to_string()).collect(),
            stimulus_id: ids,
            values,
            n_neuroids: self.n_neuroids,
        })
    }

    /// The internal-consistency ceiling.
    pub fn internal_consistency(&self, n_splits: usize, seed: u32) -> Result<Score> {
        let n = self.check()?;
        let q = self.n_neuroids;
        let reps: Vec<i64> = self
            .repetition
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if reps.len() < 2 {
            return invalid(format!(
                "the ceiling needs at least 2 repetitions; got {}",
                reps.len()
            ));
        }
        let splits = shuffle_split(reps.len(), n_splits, None, Some(Size::Fraction(0.5)), seed)?;
        let keys: Vec<&str> = self.stimulus_id.iter().map(String::as_str).collect();
        let per: Vec<Vec<f64>> = splits
            .par_iter()
            .map(|sp| {
                let half = |idx: &[usize]| {
                    let want: BTreeSet<i64> = idx.iter().map(|&i| reps[i]).collect();
                    let rows: Vec<usize> = (0..n)
                        .filter(|&r| want.contains(&self.repetition[r]))
                        .collect();
                    group_mean(&self.values, q, &keys, &rows)
                };
                let (ids1, a) = half(&sp.train);
                let (ids2, b) = half(&sp.test);
                if ids1 != ids2 {
                    // A stimulus missing from one half: align on the common ones.
                    let common: Vec<&String> = ids1.iter().filter(|i| ids2.contains(i)).collect();
                    let pick = |ids: &[String], v: &[f64]| -> Vec<f64> {
                        common
                            .iter()
                            .flat_map(|c| {
                                let r = ids.iter().position(|i| i == *c).unwrap_or(0);
                                v[r * q..(r + 1) * q].to_vec()
                            })
                            .collect()
                    };
                    let (a, b) = (pick(&ids1, &a), pick(&ids2, &b));
                    return columns_r(&a, &b, q)
                        .into_iter()
                        .map(spearman_brown)
                        .collect();
                }
                columns_r(&a, &b, q)
                    .into_iter()
                    .map(spearman_brown)
                    .collect()
            })
            .collect();
        Ok(Score::from_splits(per))
    }
}

/// Pearson r of each column of two row-major matrices with `q` columns.
fn columns_r(a: &[f64], b: &[f64], q: usize) -> Vec<f64> {
    let m = a.len() / q;
    (0..q)
        .map(|j| {
            let x: Vec<f64> = (0..m).map(|i| a[i * q + j]).collect();
            let y: Vec<f64> = (0..m).map(|i| b[i * q + j]).collect();
            pearson(&x, &y)
        })
        .collect()
}

/// Options of [`neural_predictivity`] (Brain-Score's defaults).
#[derive(Clone, Debug)]
pub struct NeuralOptions {
    /// PLS components (25).
    pub n_components: usize,
    /// Splits (10).
    pub n_splits: usize,
    /// Training fraction (0.9).
    pub train_size: f64,
    /// Seed of the splits (1).
    pub seed: u32,
}

impl Default for NeuralOptions {
    fn default() -> Self {
        NeuralOptions {
            n_components: 25,
            n_splits: 10,
            train_size: 0.9,
            seed: 1,
        }
    }
}

/// The stimuli of `target` in the rows of `source`: one index per target row.
fn align(source: &Features<'_>, target: &Averaged) -> Result<Vec<usize>> {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in source.stimulus_id.iter().enumerate() {
        if index.insert(s.as_str(), i).is_some() {
            return invalid(format!("source: stimulus `{s}` appears twice"));
        }
    }
    let mut missing = Vec::new();
    let rows: Vec<usize> = target
        .stimulus_id
        .iter()
        .filter_map(|s| {
            let r = index.get(s.as_str()).copied();
            if r.is_none() {
                missing.push(s.clone());
            }
            r
        })
        .collect();
    if !missing.is_empty() {
        return invalid(format!(
            "source lacks {} of the {} target stimuli (first: `{}`)",
            missing.len(),
            target.stimulus_id.len(),
            missing[0]
        ));
    }
    Ok(rows)
}

/// PLS neural predictivity of `source` features for the averaged `target`.
pub fn neural_predictivity(
    source: &Features<'_>,
    target: &Averaged,
    opts: &NeuralOptions,
) -> Result<Score> {
    let p = source.n_features;
    if p == 0 || source.values.len() != source.stimulus_id.len() * p {
        return invalid(format!(
            "source: {} values for {} stimuli × {p} features",
            source.values.len(),
            source.stimulus_id.len()
        ));
    }
    if let Some(i) = source.values.iter().position(|v| !v.is_finite()) {
        return invalid(format!(
            "source: feature {} of stimulus `{}` is {} (features must be finite)",
            i % p,
            source.stimulus_id[i / p],
            source.values[i]
        ));
    }
    let rows = align(source, target)?;
    let n = rows.len();
    let q = target.n_neuroids;
    let splits = stratified_shuffle_split(
        &target.object_name,
        opts.n_splits,
        None,
        Some(Size::Fraction(opts.train_size)),
        opts.seed,
    )?;
    let g = gram_of_rows(source.values, p, &rows);
    let per: Vec<Vec<f64>> = splits
        .par_iter()
        .map_init(Vec::new, |scratch, sp| {
            let y_train: Vec<f64> = sp.train.iter().flat_map(|&r| target.values[r * q..(r + 1) * q].iter().copied()).collect();
            if y_train.iter().any(|v| v.is_nan()) {
                return invalid("target: NaN in the averaged responses of training stimuli (PLS cannot fit NaN)");
            }
            let pred = fit_predict(&g, n, &sp.train, &sp.test, &y_train, q, opts.n_components, scratch)?;
            let actual: Vec<f64> = sp.test.iter().flat_map(|&r| target.values[r * q..(r + 1) * q].iter().copied()).collect();
            Ok(columns_r(&pred, &actual, q))
        })
        .collect::<Result<_>>()?;
    Ok(Score::from_splits(per))
}
