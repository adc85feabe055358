//! Object solution times (Kar2019), after SPEC "Object solution times".
//!
//! For each of `ShuffleSplit(10, test_size=.1, random_state=1)` over the images and each
//! time bin, a softmax readout of the bin's (z-scored) features is trained on the training
//! images and gives each test image an I1: the mean over distractor objects of
//! `d′ = Z(HR) − Z(FA)` (clipped to ±5), where HR is the image's two-way choice probability of
//! its own object against the distractor and FA the same choice's mean over the test images
//! of the distractor. An image's OST is the first bin whose I1 reaches the monkey's I1 for
//! that image, interpolated linearly from the below-threshold bin with the highest I1 (the
//! earliest on ties); never reached → NaN. The score is Spearman's ρ between model and
//! monkey OSTs over the images where both exist, averaged over splits; the ceiling is fixed
//! at .79.
//!
//! Brain-Score's readout is a TensorFlow softmax layer trained with Adam (L2 0.463, ≤ 40
//! epochs at lr 1e-4 — far from converged, so its starting point matters); ours is the same
//! training, step for step, from the same TensorFlow initial weights
//! ([`crate::tf_readout`]), in float32: the probabilities agree to about 1e-7, the OSTs
//! except where a bin's I1 lands within that of the threshold.

use rayon::prelude::*;

use crate::error::{Result, invalid};
use crate::logistic::Logistic;
use crate::norm::ppf;
use crate::splits::{Size, shuffle_split};
use crate::stats::{nanmean, nanstd, pearson};
use crate::tf_readout::{TfReadout, TfReadoutOptions};

/// Which readout gives the per-bin choice probabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OstReadout {
    /// Brain-Score's: a softmax layer trained 40 epochs with Adam at lr 1e-4 from
    /// TensorFlow's seeded initial weights ([`crate::tf_readout`]) — the reference's numbers.
    /// On small data it barely leaves its starting point, and few images reach their
    /// threshold.
    #[default]
    BrainScore,
    /// The same L2-regularised cross-entropy minimised to convergence
    /// ([`crate::logistic::Logistic`], `C = 1 / (0.463 · n_train)`): what the reference's
    /// readout tends to with enough training; for small worlds where the reference's
    /// readout never gets there.
    Converged,
}

impl std::str::FromStr for OstReadout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "brain-score" => Ok(OstReadout::BrainScore),
            "converged" => Ok(OstReadout::Converged),
            other => Err(format!("`{other}` (brain-score or converged)")),
        }
    }
}

/// The fixed ceiling of the OST benchmark.
pub const OST_CEILING: f64 = 0.79;

/// Features of one time bin: `n_images × n_features`, rows in the images' order.
#[derive(Clone, Debug)]
pub struct Bin<'a> {
    /// Bin start (ms).
    pub start: f64,
    /// Values.
    pub values: &'a [f64],
    /// Features per image.
    pub n_features: usize,
}

/// The outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct OstScore {
    /// Spearman ρ per split.
    pub per_split: Vec<f64>,
    /// Mean over splits.
    pub score: f64,
    /// Standard deviation over splits.
    pub error: f64,
    /// `score / ceiling`.
    pub ceiled: f64,
    /// The model's OST per image and split (`NaN` where not reached or not tested).
    pub model_ost: Vec<Vec<f64>>,
    /// Per split, the test images where both the model and the monkey have an OST (the
    /// Spearman's sample; under 2, the split's score is NaN).
    pub pairs: Vec<usize>,
}

/// Spearman's ρ (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                r[idx[k]] = avg;
            }
            i = j + 1;
        }
        r
    }
    pearson(&ranks(x), &ranks(y))
}

/// I1 of the test images from choice probabilities (`rows × classes`).
fn i1(probs: &[f64], k: usize, truth: &[usize]) -> Vec<f64> {
    let n = truth.len();
    let two_way = |i: usize, a: usize, b: usize| {
        let (pa, pb) = (probs[i * k + a], probs[i * k + b]);
        if pa + pb > 0.0 { pa / (pa + pb) } else { 0.5 }
    };
    (0..n)
        .map(|i| {
            let o = truth[i];
            let mut ds = Vec::new();
            for d in (0..k).filter(|&d| d != o) {
                let others: Vec<usize> = (0..n).filter(|&j| truth[j] == d).collect();
                if others.is_empty() {
                    continue;
                }
                let hr = two_way(i, o, d);
                let fa =
                    others.iter().map(|&j| two_way(j, o, d)).sum::<f64>() / others.len() as f64;
                let clip = |p: f64| p.clamp(1e-10, 1.0 - 1e-10);
                ds.push((ppf(clip(hr)) - ppf(clip(fa))).clamp(-5.0, 5.0));
            }
            if ds.is_empty() {
                f64::NAN
            } else {
                ds.iter().sum::<f64>() / ds.len() as f64
            }
        })
        .collect()
}

/// OST of one image from its I1 per bin and the threshold.
pub fn solution_time(starts: &[f64], i1: &[f64], threshold: f64) -> f64 {
    let Some(hit) = i1.iter().position(|&v| v >= threshold) else {
        return f64::NAN;
    };
    // The below-threshold bin before the hit with the highest I1 (earliest on ties).
    let mut best: Option<usize> = None;
    for b in 0..hit {
        if i1[b].is_finite() && best.is_none_or(|x| i1[b] > i1[x]) {
            best = Some(b);
        }
    }
    match best {
        None => starts[hit],
        Some(lo) => {
            let (t0, t1, v0, v1) = (starts[lo], starts[hit], i1[lo], i1[hit]);
            if v1 == v0 {
                t1
            } else {
                t0 + (threshold - v0) / (v1 - v0) * (t1 - t0)
            }
        }
    }
}

/// The OST benchmark. `labels[i]`: image i's object; `monkey_ost`, `monkey_i1`: per image.
pub fn ost(
    bins: &[Bin<'_>],
    labels: &[String],
    monkey_ost: &[f64],
    monkey_i1: &[f64],
    n_splits: usize,
    seed: u32,
    readout: OstReadout,
) -> Result<OstScore> {
    let n = labels.len();
    if n < 10 || monkey_ost.len() != n || monkey_i1.len() != n {
        return invalid(format!(
            "OST: {n} images, {} monkey OSTs, {} thresholds",
            monkey_ost.len(),
            monkey_i1.len()
        ));
    }
    for b in bins {
        if b.values.len() != n * b.n_features || b.n_features == 0 {
            return invalid(format!(
                "OST: bin {} has {} values for {n} images × {} features",
                b.start,
                b.values.len(),
                b.n_features
            ));
        }
    }
    let splits = shuffle_split(n, n_splits, Some(Size::Fraction(0.1)), None, seed)?;
    let starts: Vec<f64> = bins.iter().map(|b| b.start).collect();
    // Brain-Score subsets the assemblies by the split's stimulus ids, which keeps the images
    // in their original order: the readout sees them (and its shuffles and its label order
    // follow) in that order.
    let splits: Vec<_> = splits
        .into_iter()
        .map(|mut sp| {
            sp.train.sort_unstable();
            sp.test.sort_unstable();
            sp
        })
        .collect();
    // Bins that share features (one model timestep for several bins) share one fit.
    let mut firsts: Vec<usize> = Vec::new();
    let bin_set: Vec<usize> = bins
        .iter()
        .enumerate()
        .map(|(i, b)| {
            match firsts
                .iter()
                .position(|&d| bins[d].values.as_ptr() == b.values.as_ptr())
            {
                Some(k) => k,
                None => {
                    firsts.push(i);
                    firsts.len() - 1
                }
            }
        })
        .collect();
    // Every (split, feature set) fit is independent: run them in parallel, collect in order.
    let jobs: Vec<(usize, usize)> = (0..splits.len())
        .flat_map(|s| (0..firsts.len()).map(move |f| (s, f)))
        .collect();
    let fitted: Vec<Vec<f64>> = jobs
        .par_iter()
        .map(|&(s, f)| {
            let sp = &splits[s];
            let b = &bins[firsts[f]];
            let p = b.n_features;
            let take = |idx: &[usize]| -> Vec<f64> {
                idx.iter()
                    .flat_map(|&i| b.values[i * p..(i + 1) * p].iter().copied())
                    .collect()
            };
            let ytr: Vec<String> = sp.train.iter().map(|&i| labels[i].clone()).collect();
            let (xtr, xte) = (take(&sp.train), take(&sp.test));
            let (classes, probs) = match readout {
                OstReadout::BrainScore => {
                    let clf = TfReadout::fit(
                        &xtr,
                        sp.train.len(),
                        p,
                        &ytr,
                        &TfReadoutOptions::default(),
                    )?;
                    let probs = clf.predict_proba(&xte, sp.test.len())?;
                    (clf.classes, probs)
                }
                OstReadout::Converged => {
                    let c = 1.0 / (0.463 * sp.train.len() as f64);
                    let clf = Logistic::fit(&xtr, sp.train.len(), p, &ytr, c)?;
                    let probs = clf.predict_proba(&xte, sp.test.len())?;
                    (clf.classes, probs)
                }
            };
            let truth: Vec<usize> = sp
                .test
                .iter()
                .map(|&i| {
                    classes
                        .iter()
                        .position(|c| *c == labels[i])
                        .unwrap_or(usize::MAX)
                })
                .collect();
            if truth.contains(&usize::MAX) {
                return invalid(
                    "OST: a test image's object never appears among the training images",
                );
            }
            Ok(i1(&probs, classes.len(), &truth))
        })
        .collect::<Result<_>>()?;
    let mut per_split = Vec::new();
    let mut model_ost = Vec::new();
    let mut pairs = Vec::new();
    for (s, sp) in splits.iter().enumerate() {
        let i1_by_bin: Vec<&Vec<f64>> = bin_set
            .iter()
            .map(|&f| &fitted[s * firsts.len() + f])
            .collect();
        let mut ours = vec![f64::NAN; n];
        let (mut a, mut m) = (Vec::new(), Vec::new());
        for (t, &img) in sp.test.iter().enumerate() {
            let curve: Vec<f64> = i1_by_bin.iter().map(|v| v[t]).collect();
            let o = solution_time(&starts, &curve, monkey_i1[img]);
            ours[img] = o;
            if o.is_finite() && monkey_ost[img].is_finite() {
                a.push(o);
                m.push(monkey_ost[img]);
            }
        }
        pairs.push(a.len());
        per_split.push(if a.len() >= 2 {
            spearman(&a, &m)
        } else {
            f64::NAN
        });
        model_ost.push(ours);
    }
    let score = nanmean(&per_split);
    Ok(OstScore {
        error: nanstd(&per_split),
        ceiled: score / OST_CEILING,
        per_split,
        score,
        model_ost,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_and_solution_times() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        let starts = [70.0, 80.0, 90.0, 100.0];
        assert!(solution_time(&starts, &[0.0, 0.5, 1.5, 2.0], 3.0).is_nan());
        assert_eq!(solution_time(&starts, &[2.0, 0.0, 0.0, 0.0], 1.0), 70.0);
        // Between 80 (I1 1) and 90 (I1 3), threshold 2: half way.
        assert_eq!(solution_time(&starts, &[0.5, 1.0, 3.0, 3.0], 2.0), 85.0);
        // The highest below-threshold bin is used, the earliest on ties.
        assert_eq!(
            solution_time(&starts, &[1.0, 0.2, 1.0, 3.0], 2.0),
            70.0 + (2.0 - 1.0) / 2.0 * 30.0
        );
    }
}
