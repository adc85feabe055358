//! Rajalingham2018 I2n: image-level, distractor-level normalised d′, as Brain-Score computes it.
//!
//! * Model: for image i with truth t and each choice c ≠ t, FA(i,c) = P(c) / (P(c) + P(t)),
//!   in float64.
//! * Humans: two halves of the trials from `RandomState(0)` (each repetition shuffles the
//!   trial indices again; half 1 is the first ⌊n/2⌋); rate p(i,c) = #(choice = c) /
//!   #(c was sample or distractor) over the trials of image i.
//! * d′(i,c) = Φ⁻¹(1 − FA(i,c)) − Φ⁻¹(mean over images j of object c of FA(j,t)), clipped to
//!   ±5, minus the mean within its (truth, choice) group.
//! * Score per repetition: Pearson r between model and human half 1 over the cells where the
//!   human value exists; ceiling: r between the halves; ceiled: r / √ceiling; then the mean
//!   over the 2 repetitions (error: std, ddof 0).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Result, invalid};
use crate::norm::ppf;
use crate::rng::RandomState;
use crate::stats::{nanmean, nanstd, pearson};

/// Human (or monkey) 2-AFC trials.
#[derive(Clone, Debug, Default)]
pub struct Trials {
    /// The image shown.
    pub stimulus_id: Vec<String>,
    /// The object of the image (the correct choice).
    pub sample_obj: Vec<String>,
    /// The distractor object.
    pub dist_obj: Vec<String>,
    /// The object chosen.
    pub choice: Vec<String>,
    /// The image's true object (usually `sample_obj`).
    pub truth: Vec<String>,
}

/// A model's choice probabilities: one row per image, one column per object.
#[derive(Clone, Debug)]
pub struct Probabilities<'a> {
    /// `n_images × n_choices`, row-major.
    pub values: &'a [f64],
    /// Image of each row.
    pub stimulus_id: &'a [String],
    /// Object of each column.
    pub choice: &'a [String],
}

/// An image × choice matrix in sorted order.
#[derive(Clone, Debug, PartialEq)]
struct Matrix {
    images: Vec<String>,
    choices: Vec<String>,
    truth: Vec<String>,
    values: Vec<f64>,
}

impl Matrix {
    fn col(&self, c: &str) -> Option<usize> {
        self.choices.binary_search_by(|x| x.as_str().cmp(c)).ok()
    }

    /// d′ against the objects' false-alarm rates, clipped, and normalised per
    /// (truth, choice) group.
    fn dprimes(&self) -> Result<Vec<f64>> {
        let (n, k) = (self.images.len(), self.choices.len());
        let mut by_truth: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, t) in self.truth.iter().enumerate() {
            by_truth.entry(t.as_str()).or_default().push(i);
        }
        let mut d = vec![f64::NAN; n * k];
        for i in 0..n {
            let t = &self.truth[i];
            for (c, cname) in self.choices.iter().enumerate() {
                let fa = self.values[i * k + c];
                let Some(others) = by_truth.get(cname.as_str()) else {
                    return invalid(format!(
                        "I2n: no image has object `{cname}` as its truth, so its false-alarm rate is undefined"
                    ));
                };
                let Some(tc) = self.col(t) else {
                    return invalid(format!("I2n: object `{t}` is never a choice"));
                };
                let fas: Vec<f64> = others.iter().map(|&j| self.values[j * k + tc]).collect();
                let v = ppf(1.0 - fa) - ppf(nanmean(&fas));
                d[i * k + c] = if v.is_nan() { v } else { v.clamp(-5.0, 5.0) };
            }
        }
        // Subtract the mean of each (truth, choice) group.
        for members in by_truth.values() {
            for c in 0..k {
                let m = nanmean(&members.iter().map(|&i| d[i * k + c]).collect::<Vec<_>>());
                for &i in members {
                    d[i * k + c] -= m;
                }
            }
        }
        Ok(d)
    }
}

fn model_matrix(p: &Probabilities<'_>, truth_of: &BTreeMap<&str, &str>) -> Result<Matrix> {
    let k = p.choice.len();
    if k == 0 || p.values.len() != p.stimulus_id.len() * k {
        return invalid(format!(
            "probabilities: {} values for {} images × {k} choices",
            p.values.len(),
            p.stimulus_id.len()
        ));
    }
    let mut order: Vec<usize> = (0..p.stimulus_id.len()).collect();
    order.sort_by(|a, b| p.stimulus_id[*a].cmp(&p.stimulus_id[*b]));
    if order
        .windows(2)
        .any(|w| p.stimulus_id[w[0]] == p.stimulus_id[w[1]])
    {
        return invalid("probabilities: an image appears twice");
    }
    let mut corder: Vec<usize> = (0..k).collect();
    corder.sort_by(|a, b| p.choice[*a].cmp(&p.choice[*b]));
    let choices: Vec<String> = corder.iter().map(|&c| p.choice[c].clone()).collect();
    let mut values = Vec::with_capacity(order.len() * k);
    let mut truth = Vec::with_capacity(order.len());
    for &r in &order {
        let id = &p.stimulus_id[r];
        let Some(t) = truth_of.get(id.as_str()) else {
            return invalid(format!(
                "probabilities: image `{id}` has no trials, so its true object is unknown"
            ));
        };
        let Some(tc) = p.choice.iter().position(|c| c == t) else {
            return invalid(format!(
                "probabilities: the true object `{t}` of image `{id}` is not a choice"
            ));
        };
        let pt = p.values[r * k + tc];
        for &c in &corder {
            values.push(if p.choice[c] == *t {
                f64::NAN
            } else {
                let pc = p.values[r * k + c];
                pc / (pc + pt)
            });
        }
        truth.push(t.to_string());
    }
    Ok(Matrix {
        images: order.iter().map(|&r| p.stimulus_id[r].clone()).collect(),
        choices,
        truth,
        values,
    })
}

fn human_matrix(t: &Trials, rows: &[usize]) -> Matrix {
    let mut images: BTreeMap<&str, &str> = BTreeMap::new();
    let mut chosen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut shown: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut choices: BTreeSet<&str> = BTreeSet::new();
    for &r in rows {
        let id = t.stimulus_id[r].as_str();
        images.entry(id).or_insert(t.truth[r].as_str());
        *chosen.entry((id, t.choice[r].as_str())).or_default() += 1;
        *shown.entry((id, t.sample_obj[r].as_str())).or_default() += 1;
        *shown.entry((id, t.dist_obj[r].as_str())).or_default() += 1;
        choices.insert(t.choice[r].as_str());
    }
    let choices: Vec<String> = choices.into_iter().map(str::to_string).collect();
    let mut values = Vec::with_capacity(images.len() * choices.len());
    for (id, truth) in &images {
        for c in &choices {
            values.push(if c == truth {
                f64::NAN
            } else {
                match shown.get(&(*id, c.as_str())) {
                    Some(&n) if n > 0 => {
                        *chosen.get(&(*id, c.as_str())).unwrap_or(&0) as f64 / n as f64
                    }
                    _ => f64::NAN,
                }
            });
        }
    }
    Matrix {
        images: images.keys().map(|s| s.to_string()).collect(),
        truth: images.values().map(|s| s.to_string()).collect(),
        choices,
        values,
    }
}

/// Pearson r over the cells where `target` has a value. With `skipna`, cells where `source`
/// is NaN are dropped too; without, such a cell is an error (as Brain-Score asserts).
fn correlate(source: &Matrix, s: &[f64], target: &Matrix, t: &[f64], skipna: bool) -> Result<f64> {
    if source.images != target.images {
        return invalid(format!(
            "I2n: the model has {} images and the human half {}; they must be the same images",
            source.images.len(),
            target.images.len()
        ));
    }
    if source.choices != target.choices {
        return invalid(format!(
            "I2n: choices differ (model {:?}, humans {:?})",
            source.choices, target.choices
        ));
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let k = source.choices.len().max(1);
    for (cell, (x, y)) in s.iter().zip(t).enumerate() {
        if y.is_nan() || (skipna && x.is_nan()) {
            continue;
        }
        if x.is_nan() {
            return invalid(format!(
                "I2n: the cell (image `{}`, choice `{}`) has a value on one side and none on the other (no trial of that image against that object, or no probability for it)",
                source.images[cell / k],
                source.choices[cell % k]
            ));
        }
        a.push(*x);
        b.push(*y);
    }
    Ok(pearson(&a, &b))
}

/// The result of [`i2n`].
#[derive(Clone, Debug, PartialEq)]
pub struct I2nScore {
    /// r per repetition.
    pub raw: Vec<f64>,
    /// Mean of `raw`.
    pub score: f64,
    /// Std of `raw` (ddof 0).
    pub score_error: f64,
    /// The human split-half r per repetition (`None` if a half lacks a cell).
    pub ceiling_raw: Option<Vec<f64>>,
    /// Mean of `ceiling_raw`.
    pub ceiling: Option<f64>,
    /// Mean over repetitions of r / √ceiling.
    pub ceiled: Option<f64>,
    /// Why there is no ceiling: the first repetition whose halves could not be correlated,
    /// and the reason (as Brain-Score's `I2n.ceiling` fails there too).
    pub ceiling_error: Option<String>,
}

/// I2n of a model's probabilities against trials, with Brain-Score's halves
/// (`repetitions` = 2, `seed` = 0).
pub fn i2n(
    model: &Probabilities<'_>,
    trials: &Trials,
    repetitions: usize,
    seed: u32,
) -> Result<I2nScore> {
    let n = trials.stimulus_id.len();
    if [
        trials.sample_obj.len(),
        trials.dist_obj.len(),
        trials.choice.len(),
        trials.truth.len(),
    ]
    .iter()
    .any(|&l| l != n)
    {
        return invalid(
            "trials: stimulus_id, sample_obj, dist_obj, choice and truth must have one entry per trial",
        );
    }
    if n < 4 {
        return invalid(format!("trials: {n} trials are too few to split in halves"));
    }
    let mut truth_of: BTreeMap<&str, &str> = BTreeMap::new();
    for i in 0..n {
        truth_of.insert(&trials.stimulus_id[i], &trials.truth[i]);
    }
    let source = model_matrix(model, &truth_of)?;
    let ds = source.dprimes()?;
    let mut rng = RandomState::new(seed);
    let mut raw = Vec::new();
    let mut halves = Vec::new();
    for _ in 0..repetitions {
        let mut idx: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut idx);
        let (h1, h2) = idx.split_at(n / 2);
        let m1 = human_matrix(trials, h1);
        let d1 = m1.dprimes()?;
        raw.push(correlate(&source, &ds, &m1, &d1, false)?);
        halves.push((m1, d1, h2.to_vec()));
    }
    // The ceiling draws the same halves (Brain-Score re-seeds RandomState(0)).
    let mut ceiling_raw = Some(Vec::new());
    let mut ceiling_error = None;
    for (rep, (m1, d1, h2)) in halves.iter().enumerate() {
        let m2 = human_matrix(trials, h2);
        let d2 = m2.dprimes()?;
        match correlate(m1, d1, &m2, &d2, false) {
            Ok(r) => {
                if let Some(v) = ceiling_raw.as_mut() {
                    v.push(r);
                }
            }
            Err(e) => {
                ceiling_raw = None;
                if ceiling_error.is_none() {
                    ceiling_error = Some(format!(
                        "split {rep} of {repetitions} (the human half 1 against half 2): {e}"
                    ));
                }
            }
        }
    }
    let ceiling = ceiling_raw.as_ref().map(|c| nanmean(c));
    let ceiled = ceiling_raw.as_ref().map(|c| {
        nanmean(
            &raw.iter()
                .zip(c)
                .map(|(r, c)| r / c.sqrt())
                .collect::<Vec<_>>(),
        )
    });
    Ok(I2nScore {
        score: nanmean(&raw),
        score_error: nanstd(&raw),
        raw,
        ceiling_raw,
        ceiling,
        ceiled,
        ceiling_error,
    })
}
