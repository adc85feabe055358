//! `ventral score neural`: score activations against recordings directly from stores,
//! outside any pipeline.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ventral_metrics::neural::{
    Features, NeuralOptions, Normalisation, Recordings, neural_predictivity,
};
use ventral_store::Assembly;
use ventral_store::arrow::array::{Array, AsArray, RecordBatch};
use ventral_store::arrow::compute::cast;
use ventral_store::arrow::datatypes::{DataType, Int64Type};

fn strings(batch: &RecordBatch, col: &str, store: &Path) -> Result<Vec<String>> {
    let c = batch.column_by_name(col).with_context(|| {
        format!(
            "{}: the coordinates have no `{col}` column",
            store.display()
        )
    })?;
    let c =
        cast(c, &DataType::Utf8).with_context(|| format!("{}: column `{col}`", store.display()))?;
    let a = c.as_string::<i32>();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                bail!("{}: column `{col}` is null at row {i}", store.display())
            }
            Ok(a.value(i).to_string())
        })
        .collect()
}

fn ints(batch: &RecordBatch, col: &str, store: &Path) -> Result<Vec<i64>> {
    let c = batch.column_by_name(col).with_context(|| {
        format!(
            "{}: the coordinates have no `{col}` column",
            store.display()
        )
    })?;
    let c = cast(c, &DataType::Int64)
        .with_context(|| format!("{}: column `{col}` is not integer", store.display()))?;
    let a = c.as_primitive::<Int64Type>();
    Ok((0..a.len()).map(|i| a.value(i)).collect())
}

/// The scores as JSON.
pub fn neural(
    source: &Path,
    target: &Path,
    normalisation: Normalisation,
) -> Result<serde_json::Value> {
    let src = Assembly::open(source)?;
    let tgt = Assembly::open(target)?;
    let (sm, tm) = (src.meta(), tgt.meta());
    if sm.dims.len() != 2 {
        bail!(
            "{}: source must have 2 dims (stimulus, neuroid); it has {:?}",
            source.display(),
            sm.dims
        );
    }
    let features = src.read_f32(&src.full())?;
    let stim = strings(&src.coords(&sm.dims[0])?, "stimulus_id", source)?;
    let tdims = &tm.dims;
    if tdims.len() == 3 && tm.shape[2] != 1 {
        bail!(
            "{}: the target has {} time bins; choose one first (only single-bin targets are scored here)",
            target.display(),
            tm.shape[2]
        );
    }
    if tdims.len() < 2 || tdims[0] != "presentation" {
        bail!(
            "{}: target dims must be (presentation, neuroid[, time_bin]); they are {:?}",
            target.display(),
            tdims
        );
    }
    let values = tgt.read_f64(&tgt.full())?;
    let pres = tgt.coords("presentation")?;
    let rec = Recordings {
        values: values.iter().copied().collect(),
        n_neuroids: tm.shape[1] as usize,
        stimulus_id: strings(&pres, "stimulus_id", target)?,
        object_name: strings(&pres, "object_name", target)?,
        repetition: ints(&pres, "repetition", target)?,
    };
    let averaged = rec.average()?;
    let f = Features {
        values: features
            .as_slice()
            .context("source values are not contiguous")?,
        n_features: sm.shape[1] as usize,
        stimulus_id: &stim,
    };
    let score = neural_predictivity(&f, &averaged, &NeuralOptions::default())?;
    let ceiling = rec.internal_consistency(10, 1)?;
    Ok(serde_json::json!({
        "benchmark": "neural",
        "source": source,
        "target": target,
        "score": score.center,
        "score_error": score.error,
        "ceiling": ceiling.center,
        "ceiled": normalisation.apply(score.center, ceiling.center),
        "normalisation": format!("{normalisation:?}"),
        "per_split": score.per_split,
        "ceiling_per_split": ceiling.per_split,
    }))
}
