//! Neural predictivity (MajajHong2015 V4 and IT) over our stores.

use std::path::Path;

use serde::Serialize;
use ventral_metrics::neural::{
    Features, NeuralOptions, Normalisation, Recordings, neural_predictivity,
};
use ventral_store::Assembly;
use ventral_store::arrow::array::{Array, AsArray, RecordBatch};
use ventral_store::arrow::compute::cast;
use ventral_store::arrow::datatypes::{DataType, Int64Type};

use crate::{BenchError, Result, ScoreRow, data};

pub(crate) fn strings(batch: &RecordBatch, col: &str, store: &Path) -> Result<Vec<String>> {
    let c = batch
        .column_by_name(col)
        .ok_or_else(|| data(store, format!("the coordinates have no `{col}` column")))?;
    let c = cast(c, &DataType::Utf8).map_err(|e| data(store, format!("column `{col}`: {e}")))?;
    let a = c.as_string::<i32>();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                Err(data(store, format!("column `{col}` is null at row {i}")))
            } else {
                Ok(a.value(i).to_string())
            }
        })
        .collect()
}

pub(crate) fn ints(batch: &RecordBatch, col: &str, store: &Path) -> Result<Vec<i64>> {
    let c = batch
        .column_by_name(col)
        .ok_or_else(|| data(store, format!("the coordinates have no `{col}` column")))?;
    let c = cast(c, &DataType::Int64).map_err(|e| data(store, format!("column `{col}`: {e}")))?;
    let a = c.as_primitive::<Int64Type>();
    Ok((0..a.len()).map(|i| a.value(i)).collect())
}

/// Which part of a recordings store a neural benchmark scores.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Only neuroids whose `region` coordinate is this (all when `None`).
    pub region: Option<String>,
    /// Average the time bins lying within `[start, end]` ms (both `time_bin_start` and
    /// `time_bin_end` inside); the store's single bin when `None`.
    pub window: Option<(f64, f64)>,
    /// Keep only neuroids whose internal consistency (split-half over repetitions,
    /// Spearman–Brown, mean over the ceiling's splits) is at least this — the paper's
    /// "reliable neurons" (≥ .9 for the new-images test).
    pub min_consistency: Option<f64>,
}

/// The time bins of `a` that `sel` averages, and the first one's start in ms.
fn chosen_bins(a: &Assembly, store: &Path, sel: &Selection) -> Result<(Vec<usize>, Option<f64>)> {
    let m = a.meta();
    if m.dims.first().map(String::as_str) != Some("presentation")
        || m.dims.get(1).map(String::as_str) != Some("neuroid")
    {
        return Err(data(
            store,
            format!(
                "dims must be (presentation, neuroid[, time_bin]); they are {:?}",
                m.dims
            ),
        ));
    }
    let bins = if m.dims.len() == 3 {
        m.shape[2] as usize
    } else {
        1
    };
    let (starts, ends) = if m.dims.len() == 3 {
        let t = a.coords("time_bin").ok();
        let get = |c: &str| t.as_ref().and_then(|t| ints(t, c, store).ok());
        (get("time_bin_start"), get("time_bin_end"))
    } else {
        (None, None)
    };
    let chosen: Vec<usize> = match sel.window {
        None if bins == 1 => vec![0],
        None => {
            return Err(data(
                store,
                format!("{bins} time bins: choose a time window (`time_bins = [start, end]`)"),
            ));
        }
        Some((lo, hi)) => {
            let (Some(s), Some(e)) = (&starts, &ends) else {
                return Err(data(
                    store,
                    "a time window needs the time_bin coordinates `time_bin_start` and `time_bin_end`",
                ));
            };
            let c: Vec<usize> = (0..bins)
                .filter(|&b| s[b] as f64 >= lo && e[b] as f64 <= hi)
                .collect();
            if c.is_empty() {
                return Err(data(
                    store,
                    format!(
                        "no time bin lies within {lo}–{hi} ms (bins start {}–{} ms)",
                        s.iter().min().copied().unwrap_or_default(),
                        s.iter().max().copied().unwrap_or_default()
                    ),
                ));
            }
            c
        }
    };
    let start = starts
        .as_ref()
        .and_then(|s| s.get(chosen[0]).map(|&x| x as f64));
    Ok((chosen, start))
}

/// The start in ms of the time window `sel` picks from the recordings at `store` (for the
/// time-bin commitment), reading only their coordinates.
pub fn window_start(store: &Path, sel: &Selection) -> Result<Option<f64>> {
    let a = Assembly::open(store)?;
    Ok(chosen_bins(&a, store, sel)?.1)
}

/// Recordings selected by `sel`, the selected time window's start in ms (for the time-bin
/// commitment), and the kept neuroids' ids. The reliability filter is not applied here
/// (see [`score`]).
pub fn load_recordings(
    store: &Path,
    sel: &Selection,
) -> Result<(Recordings, Option<f64>, Vec<String>)> {
    let a = Assembly::open(store)?;
    let m = a.meta();
    let (chosen, start) = chosen_bins(&a, store, sel)?;
    let neu = a.coords("neuroid")?;
    let keep: Vec<usize> = match &sel.region {
        Some(r) => {
            let regions = strings(&neu, "region", store)?;
            (0..regions.len()).filter(|&j| &regions[j] == r).collect()
        }
        None => (0..neu.num_rows()).collect(),
    };
    if keep.is_empty() {
        return Err(data(
            store,
            format!(
                "no neuroid has region `{}`",
                sel.region.as_deref().unwrap_or_default()
            ),
        ));
    }
    let mut ranges = a.full();
    let (lo_bin, hi_bin) = (chosen[0], chosen[chosen.len() - 1]);
    if m.dims.len() == 3 {
        ranges[2] = lo_bin as u64..hi_bin as u64 + 1;
    }
    let all = a.read_f64(&ranges)?;
    let all = all.as_standard_layout();
    let shape = all.shape().to_vec();
    let (n, q) = (shape[0], shape[1]);
    let nb = shape.get(2).copied().unwrap_or(1);
    let flat = all
        .as_slice()
        .ok_or_else(|| data(store, "values not contiguous"))?;
    // The mean over the chosen bins, in bin order (a fixed order: reproducible sums); a
    // NaN bin is skipped, all-NaN stays NaN.
    let picked: Vec<usize> = chosen.iter().map(|&b| b - lo_bin).collect();
    let mut values = Vec::with_capacity(n * keep.len());
    for i in 0..n {
        for &j in &keep {
            let base = (i * q + j) * nb;
            let (mut sum, mut k) = (0.0, 0usize);
            for &b in &picked {
                let v = flat[base + b];
                if !v.is_nan() {
                    sum += v;
                    k += 1;
                }
            }
            values.push(if k == 0 { f64::NAN } else { sum / k as f64 });
        }
    }
    let pres = a.coords("presentation")?;
    let all_ids = strings(&neu, "neuroid_id", store)?;
    let ids = keep.iter().map(|&j| all_ids[j].clone()).collect();
    Ok((
        Recordings {
            values,
            n_neuroids: keep.len(),
            stimulus_id: strings(&pres, "stimulus_id", store)?,
            object_name: strings(&pres, "object_name", store)?,
            repetition: ints(&pres, "repetition", store)?,
        },
        start,
        ids,
    ))
}

/// Keep the neuroids `keep` (indices) of `rec`.
fn subset_neuroids(rec: &Recordings, keep: &[usize]) -> Recordings {
    let q = rec.n_neuroids;
    let n = rec.stimulus_id.len();
    let mut values = Vec::with_capacity(n * keep.len());
    for i in 0..n {
        values.extend(keep.iter().map(|&j| rec.values[i * q + j]));
    }
    Recordings {
        values,
        n_neuroids: keep.len(),
        stimulus_id: rec.stimulus_id.clone(),
        object_name: rec.object_name.clone(),
        repetition: rec.repetition.clone(),
    }
}

/// Activations `(values, features, stimulus ids)` of a (stimulus, neuroid) store.
pub fn load_features(store: &Path) -> Result<(Vec<f32>, usize, Vec<String>)> {
    let a = Assembly::open(store)?;
    let m = a.meta();
    if m.dims.len() != 2 {
        return Err(data(
            store,
            format!(
                "features must have 2 dims (stimulus, neuroid); they are {:?}",
                m.dims
            ),
        ));
    }
    let v = a.read_f32(&a.full())?;
    let p = m.shape[1] as usize;
    let ids = strings(&a.coords(&m.dims[0])?, "stimulus_id", store)?;
    let v = v.as_standard_layout();
    Ok((
        v.as_slice()
            .ok_or_else(|| data(store, "values not contiguous"))?
            .to_vec(),
        p,
        ids,
    ))
}

/// The outcome of one neural benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct NeuralResult {
    /// Benchmark name.
    pub benchmark: String,
    /// Model name.
    pub model: String,
    /// Raw score (median over neuroids of Pearson r, mean over splits).
    pub raw: f64,
    /// Its error (std over splits / √splits).
    pub raw_error: f64,
    /// Internal-consistency ceiling.
    pub ceiling: f64,
    /// Normalised score.
    pub ceiled: f64,
    /// The normalisation.
    pub normalisation: String,
    /// Raw score per split.
    pub per_split: Vec<f64>,
    /// Ceiling per split.
    pub ceiling_per_split: Vec<f64>,
    /// The activation store used.
    pub layer: String,
    /// How many neuroids were scored.
    pub neuroids: usize,
}

/// Recordings ready to score features against: repetitions averaged, the ceiling computed
/// once (layer commitment scores many layers against one set).
pub struct Prepared {
    /// Averaged over repetitions.
    avg: ventral_metrics::neural::Averaged,
    /// The neuroids scored.
    neuroids: Vec<String>,
    /// Internal consistency.
    ceiling: ventral_metrics::neural::Score,
}

/// Read `recordings` as `sel` asks, drop unreliable neuroids, average repetitions, and
/// compute the ceiling.
pub fn prepare(recordings: &Path, sel: &Selection, opts: &NeuralOptions) -> Result<Prepared> {
    let (mut rec, _, mut neuroids) = load_recordings(recordings, sel)?;
    let ceiling_of = |rec: &Recordings| {
        rec.internal_consistency(opts.n_splits, opts.seed)
            .map_err(|e| BenchError::Metric {
                context: format!("{}: ceiling", recordings.display()),
                source: e,
            })
    };
    if let Some(min) = sel.min_consistency {
        let c = ceiling_of(&rec)?;
        let splits = c.per_neuroid.len().max(1) as f64;
        let keep: Vec<usize> = (0..rec.n_neuroids)
            .filter(|&j| {
                let mean = c.per_neuroid.iter().map(|s| s[j]).sum::<f64>() / splits;
                mean >= min
            })
            .collect();
        if keep.is_empty() {
            return Err(data(
                recordings,
                format!(
                    "no neuroid has an internal consistency of at least {min} (of {})",
                    rec.n_neuroids
                ),
            ));
        }
        rec = subset_neuroids(&rec, &keep);
        neuroids = keep.iter().map(|&j| neuroids[j].clone()).collect();
    }
    let avg = rec.average().map_err(|e| BenchError::Metric {
        context: format!("{}: averaging repetitions", recordings.display()),
        source: e,
    })?;
    let ceiling = ceiling_of(&rec)?;
    Ok(Prepared {
        avg,
        neuroids,
        ceiling,
    })
}

/// Score the features at `features` against `recordings` (region `region`).
#[allow(clippy::too_many_arguments)]
pub fn score(
    benchmark: &str,
    model: &str,
    features: &Path,
    recordings: &Path,
    sel: &Selection,
    normalisation: Normalisation,
    opts: &NeuralOptions,
) -> Result<(NeuralResult, Vec<ScoreRow>)> {
    let prepared = prepare(recordings, sel, opts)?;
    score_prepared(
        benchmark,
        model,
        features,
        recordings,
        &prepared,
        normalisation,
        opts,
    )
}

/// Score the features at `features` against prepared recordings (read from `recordings`).
#[allow(clippy::too_many_arguments)]
pub fn score_prepared(
    benchmark: &str,
    model: &str,
    features: &Path,
    recordings: &Path,
    prepared: &Prepared,
    normalisation: Normalisation,
    opts: &NeuralOptions,
) -> Result<(NeuralResult, Vec<ScoreRow>)> {
    let Prepared {
        avg,
        neuroids,
        ceiling: c,
    } = prepared;
    let (values, p, ids) = load_features(features)?;
    let f = Features {
        values: &values,
        n_features: p,
        stimulus_id: &ids,
    };
    let s = neural_predictivity(&f, avg, opts).map_err(|e| BenchError::Metric {
        context: format!("{} vs {}", features.display(), recordings.display()),
        source: e,
    })?;
    let ceiled = normalisation.apply(s.center, c.center);
    let layer = crate::layer_of(features);
    let row = |q: &str, split: Option<i64>, n: Option<String>, v: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.into(),
        layer: Some(layer.clone()),
        quantity: q.into(),
        split,
        neuroid_id: n,
        value: v,
    };
    let mut rows = vec![
        row("raw", None, None, s.center),
        row("raw_error", None, None, s.error),
        row("ceiling", None, None, c.center),
        row("ceiled", None, None, ceiled),
    ];
    for (k, v) in s.per_split.iter().enumerate() {
        rows.push(row("raw", Some(k as i64), None, *v));
    }
    for (k, v) in c.per_split.iter().enumerate() {
        rows.push(row("ceiling", Some(k as i64), None, *v));
    }
    for (k, per) in s.per_neuroid.iter().enumerate() {
        for (j, v) in per.iter().enumerate() {
            rows.push(row("r", Some(k as i64), neuroids.get(j).cloned(), *v));
        }
    }
    let result = NeuralResult {
        benchmark: benchmark.into(),
        model: model.into(),
        raw: s.center,
        raw_error: s.error,
        ceiling: c.center,
        ceiled,
        normalisation: format!("{normalisation:?}"),
        per_split: s.per_split,
        ceiling_per_split: c.per_split.clone(),
        neuroids: neuroids.len(),
        layer,
    };
    Ok((result, rows))
}
