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

/// Recordings of the neuroids whose `region` is `region` (all when `None`), at time bin
/// `bin` (index; the store's single bin when `None`), with the time bin's start in ms.
/// Also returns the kept neuroids' ids.
pub fn load_recordings(
    store: &Path,
    region: Option<&str>,
    bin: Option<usize>,
) -> Result<(Recordings, Option<f64>, Vec<String>)> {
    let a = Assembly::open(store)?;
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
    let b = match bin {
        Some(b) if b < bins => b,
        Some(b) => return Err(data(store, format!("time bin {b} of {bins}"))),
        None if bins == 1 => 0,
        None => return Err(data(store, format!("{bins} time bins: choose one"))),
    };
    let start = if m.dims.len() == 3 {
        a.coords("time_bin")
            .ok()
            .and_then(|t| ints(&t, "time_bin_start", store).ok())
            .and_then(|v| v.get(b).map(|&x| x as f64))
    } else {
        None
    };
    let neu = a.coords("neuroid")?;
    let keep: Vec<usize> = match region {
        Some(r) => {
            let regions = strings(&neu, "region", store)?;
            (0..regions.len()).filter(|&j| regions[j] == r).collect()
        }
        None => (0..neu.num_rows()).collect(),
    };
    if keep.is_empty() {
        return Err(data(
            store,
            format!("no neuroid has region `{}`", region.unwrap_or_default()),
        ));
    }
    let mut ranges = a.full();
    if m.dims.len() == 3 {
        ranges[2] = b as u64..b as u64 + 1;
    }
    let all = a.read_f64(&ranges)?;
    let (n, q) = (all.shape()[0], all.shape()[1]);
    let all = all.as_standard_layout();
    let flat = all
        .as_slice()
        .ok_or_else(|| data(store, "values not contiguous"))?;
    let mut values = Vec::with_capacity(n * keep.len());
    for i in 0..n {
        for &j in &keep {
            values.push(flat[i * q + j]);
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
}

/// Score the features at `features` against `recordings` (region `region`).
#[allow(clippy::too_many_arguments)]
pub fn score(
    benchmark: &str,
    model: &str,
    features: &Path,
    recordings: &Path,
    region: Option<&str>,
    normalisation: Normalisation,
    opts: &NeuralOptions,
) -> Result<(NeuralResult, Vec<ScoreRow>)> {
    let (rec, _, neuroids) = load_recordings(recordings, region, None)?;
    let avg = rec.average().map_err(|e| BenchError::Metric {
        context: format!("{}: averaging repetitions", recordings.display()),
        source: e,
    })?;
    let (values, p, ids) = load_features(features)?;
    let f = Features {
        values: &values,
        n_features: p,
        stimulus_id: &ids,
    };
    let s = neural_predictivity(&f, &avg, opts).map_err(|e| BenchError::Metric {
        context: format!("{} vs {}", features.display(), recordings.display()),
        source: e,
    })?;
    let c = rec
        .internal_consistency(opts.n_splits, opts.seed)
        .map_err(|e| BenchError::Metric {
            context: format!("{}: ceiling", recordings.display()),
            source: e,
        })?;
    let ceiled = normalisation.apply(s.center, c.center);
    let row = |q: &str, split: Option<i64>, n: Option<String>, v: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.into(),
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
        ceiling_per_split: c.per_split,
        layer: features
            .file_name()
            .map(|x| x.to_string_lossy().to_string())
            .unwrap_or_default(),
    };
    Ok((result, rows))
}
