//! `ventral-benchmarks`: Brain-Score's benchmarks over our stores.
//!
//! The metrics crate computes; this crate finds the data. It reads recordings and
//! activations from assembly stores, commits model timesteps to recorded time bins
//! ([`commit_timestep`]), runs the benchmark, and writes a *score store*: `scores.parquet`
//! (one row per benchmark × model × quantity × split × neuroid, what `ventral sql` reads as
//! the `scores` table) and `score.json` (the summary).

pub mod behaviour;
pub mod kinds;
pub mod neural;
pub mod ost;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ventral_store::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use ventral_store::arrow::datatypes::{DataType, Field, Schema};

/// Errors: each names the store and the coordinate or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A store lacks what the benchmark needs.
    #[error("{store}: {message}")]
    Data {
        /// The store.
        store: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// Reading or writing a store failed.
    #[error(transparent)]
    Store(#[from] ventral_store::StoreError),
    /// The metric refused its input.
    #[error("{context}: {source}")]
    Metric {
        /// Which computation.
        context: String,
        /// The metric's error.
        source: ventral_metrics::MetricError,
    },
}

/// Result alias.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

pub(crate) fn data(store: &Path, message: impl Into<String>) -> BenchError {
    BenchError::Data {
        store: store.to_path_buf(),
        message: message.into(),
    }
}

/// CORnet-S's commitment of model timesteps to time: per area `(start ms, step ms, steps)`
/// (SPEC "Time commitment").
pub const TIME_MAPPING: [(&str, f64, f64, usize); 4] = [
    ("V1", 50.0, 100.0, 1),
    ("V2", 70.0, 100.0, 2),
    ("V4", 90.0, 50.0, 4),
    ("IT", 100.0, 100.0, 2),
];

/// The timestep of `area` whose start is nearest to `bin_start_ms` (the first wins ties),
/// among the model's `steps` timesteps of that area (the mapping's own count when `None`).
pub fn commit_timestep(area: &str, bin_start_ms: f64, steps: Option<usize>) -> Option<usize> {
    let &(_, start, step, n) = TIME_MAPPING.iter().find(|m| m.0 == area)?;
    let n = steps.unwrap_or(n).max(1);
    let mut best = 0;
    let mut best_d = f64::INFINITY;
    for k in 0..n {
        let d = (start + k as f64 * step - bin_start_ms).abs();
        if d < best_d {
            best_d = d;
            best = k;
        }
    }
    Some(best)
}

/// The model named in an activation store's `model` attribute (`"model"` if it has none).
pub fn model_of(activations: &Path) -> Result<String> {
    Ok(ventral_store::Assembly::open(activations)?
        .meta()
        .attr_str("model")
        .unwrap_or("model")
        .to_string())
}

/// One row of a score store.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRow {
    /// The benchmark (`MajajHong2015.IT-pls`).
    pub benchmark: String,
    /// The model.
    pub model: String,
    /// `raw`, `raw_error`, `ceiling`, `ceiled`, `ceiling_raw`, …
    pub quantity: String,
    /// The split, or `None` for an aggregate.
    pub split: Option<i64>,
    /// The neuroid, or `None`.
    pub neuroid_id: Option<String>,
    /// The value.
    pub value: f64,
}

/// Write `rows` as `<dir>/scores.parquet` (the `scores` table's schema).
pub fn write_scores(dir: &Path, rows: &[ScoreRow]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("benchmark", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("quantity", DataType::Utf8, true),
        Field::new("split", DataType::Int64, true),
        Field::new("neuroid_id", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| &r.benchmark),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.model))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| &r.quantity),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.split).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r.neuroid_id.clone())
                .collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema, cols).map_err(|e| data(dir, e.to_string()))?;
    ventral_store::write_parquet(&dir.join("scores.parquet"), &batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_follows_the_spec() {
        // The 70–170 ms bin uses V4-t0 and IT-t0.
        assert_eq!(commit_timestep("V4", 70.0, None), Some(0));
        assert_eq!(commit_timestep("IT", 70.0, None), Some(0));
        // OST bins starting 70…150 use IT-t0 and 160…240 use IT-t1 (150 is a tie: first wins).
        for b in (70..=150).step_by(10) {
            assert_eq!(commit_timestep("IT", b as f64, None), Some(0), "{b}");
        }
        for b in (160..=240).step_by(10) {
            assert_eq!(commit_timestep("IT", b as f64, None), Some(1), "{b}");
        }
        assert_eq!(commit_timestep("V4", 190.0, None), Some(2));
        assert_eq!(commit_timestep("V4", 190.0, Some(2)), Some(1));
        assert_eq!(commit_timestep("V9", 70.0, None), None);
    }
}
