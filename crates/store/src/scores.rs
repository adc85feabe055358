//! The score store: the one format every benchmark writes and the composite, the report and
//! `ventral sql` read.
//!
//! ```text
//! <out>/scores.parquet   one row per benchmark × model × layer × quantity × split × neuroid
//!                        ([`schema`]; what `ventral sql` reads as the `scores` table)
//! <out>/score.json       the summary ([`ScoreSummary`])
//! ```
//!
//! An ImageNet evaluation writes `<out>/eval.json` ([`Evaluation`]). Both JSON files are read
//! strictly: a missing or mistyped field is an error naming the file and the field. A score
//! that could not be computed (NaN, e.g. an OST readout that never reaches the monkey's
//! thresholds) is written as `null` and read back as NaN.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// The score table's file in a score store.
pub const SCORES_FILE: &str = "scores.parquet";
/// The summary's file in a score store.
pub const SUMMARY_FILE: &str = "score.json";
/// An ImageNet evaluation's file.
pub const EVALUATION_FILE: &str = "eval.json";

/// One row of a score store.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRow {
    /// The benchmark (`MajajHong2015.IT-pls`).
    pub benchmark: String,
    /// The model.
    pub model: String,
    /// The model layer (activation store) the score was computed on, or `None` (a composite,
    /// a score over several timesteps).
    pub layer: Option<String>,
    /// `raw`, `raw_error`, `ceiling`, `ceiled`, `ceiling_raw`, `member:<benchmark>`, …
    pub quantity: String,
    /// The split, or `None` for an aggregate.
    pub split: Option<i64>,
    /// The neuroid, or `None`.
    pub neuroid_id: Option<String>,
    /// The value.
    pub value: f64,
}

/// The columns of `scores.parquet`, in order, with their types (all nullable).
pub const COLUMNS: [(&str, DataType); 7] = [
    ("benchmark", DataType::Utf8),
    ("model", DataType::Utf8),
    ("layer", DataType::Utf8),
    ("quantity", DataType::Utf8),
    ("split", DataType::Int64),
    ("neuroid_id", DataType::Utf8),
    ("value", DataType::Float64),
];

/// The Arrow schema of `scores.parquet` and of the `scores` table.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn format_error(file: &Path, field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Format {
        file: file.to_path_buf(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// `rows` as one batch of [`schema`].
pub fn batch(rows: &[ScoreRow]) -> Result<RecordBatch> {
    let strings = |f: &dyn Fn(&ScoreRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let cols: Vec<ArrayRef> = vec![
        strings(&|r| Some(&r.benchmark)),
        strings(&|r| Some(&r.model)),
        strings(&|r| r.layer.as_deref()),
        strings(&|r| Some(&r.quantity)),
        Arc::new(rows.iter().map(|r| r.split).collect::<Int64Array>()),
        strings(&|r| r.neuroid_id.as_deref()),
        Arc::new(rows.iter().map(|r| Some(r.value)).collect::<Float64Array>()),
    ];
    RecordBatch::try_new(schema(), cols)
        .map_err(|e| format_error(Path::new(SCORES_FILE), "", e.to_string()))
}

/// Read a `scores.parquet` as one batch of [`schema`]. A store written before the `layer`
/// column existed reads with `layer` null; any other missing column, or a column of another
/// type, is an error naming the file and the column.
pub fn read_rows(path: &Path) -> Result<RecordBatch> {
    rows(crate::read_parquet(path)?, path)
}

/// [`read_rows`] of a `scores.parquet` file's bytes (read from wherever it lies); `path`
/// names it in errors.
pub fn read_rows_from(bytes: crate::source::Bytes, path: &Path) -> Result<RecordBatch> {
    rows(crate::coords::parquet_from_bytes(bytes, path)?, path)
}

fn rows(b: RecordBatch, path: &Path) -> Result<RecordBatch> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len());
    for (name, ty) in &COLUMNS {
        match b.column_by_name(name) {
            Some(c) if c.data_type() == ty => cols.push(c.clone()),
            Some(c) => {
                return Err(format_error(
                    path,
                    name,
                    format!("is {}, not {ty}", c.data_type()),
                ));
            }
            None if *name == "layer" => {
                cols.push(arrow::array::new_null_array(ty, b.num_rows()));
            }
            None => return Err(format_error(path, name, "missing column")),
        }
    }
    RecordBatch::try_new(schema(), cols).map_err(|e| format_error(path, "", e.to_string()))
}

/// Read a `scores.parquet` as rows (see [`read_rows`]).
pub fn read_score_rows(path: &Path) -> Result<Vec<ScoreRow>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    let b = read_rows(path)?;
    let s = |i: usize| b.column(i).as_string::<i32>().clone();
    let (bench, model, layer, quantity, neuroid) = (s(0), s(1), s(2), s(3), s(5));
    let split = b.column(4).as_primitive::<Int64Type>().clone();
    let value = b.column(6).as_primitive::<Float64Type>().clone();
    let opt =
        |a: &arrow::array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    Ok((0..b.num_rows())
        .map(|i| ScoreRow {
            benchmark: bench.value(i).to_string(),
            model: model.value(i).to_string(),
            layer: opt(&layer, i),
            quantity: quantity.value(i).to_string(),
            split: (!split.is_null(i)).then(|| split.value(i)),
            neuroid_id: opt(&neuroid, i),
            value: if value.is_null(i) {
                f64::NAN
            } else {
                value.value(i)
            },
        })
        .collect())
}

/// A composite's member: a benchmark and its ceiled score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member's benchmark.
    pub benchmark: String,
    /// Its ceiled score (NaN when it could not be scored).
    #[serde(with = "nan_as_null")]
    pub ceiled: f64,
    /// No input scored it; it counts as 0 (the paper's Table 1 gives models without time 0
    /// for OST).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

/// One image of an object-solution-time benchmark (the points of the paper's Fig. 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageOst {
    /// The image.
    pub stimulus_id: String,
    /// The model's OST in ms (mean over the splits that tested the image).
    pub model_ms: f64,
    /// The monkeys' OST in ms.
    pub monkey_ms: f64,
}

/// The summary of a score store (`score.json`). The fields every score has are typed; a
/// benchmark's own details (its splits, its readout, its neuroid count) follow in `details`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// The benchmark.
    pub benchmark: String,
    /// The model.
    pub model: String,
    /// The ceiled score (NaN when it could not be scored: `null` on disk).
    #[serde(with = "nan_as_null")]
    pub ceiled: f64,
    /// The raw score, for a benchmark that has one (not a composite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<f64>,
    /// The raw score's error over splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_error: Option<f64>,
    /// The ceiling the raw score is divided by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
    /// The layer (activation store) scored, for a benchmark on one layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// A composite's members, in input order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    /// An OST benchmark's per-image solution times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_image: Option<Vec<ImageOst>>,
    /// The benchmark's own details.
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ScoreSummary {
    /// The summary of a benchmark's result: `result` serialised, its common fields checked
    /// and typed exactly as [`read_summary`] reads them, the rest kept as details.
    pub fn of(result: &impl Serialize) -> Result<Self> {
        let file = Path::new(SUMMARY_FILE);
        let v = serde_json::to_value(result).map_err(|e| format_error(file, "", e.to_string()))?;
        from_value(file, v)
    }
}

fn from_value<T: serde::de::DeserializeOwned>(file: &Path, v: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // A missing field is reported at its parent; serde names it in the message.
        let field = if path == "." {
            message
                .split('`')
                .nth(1)
                .filter(|_| message.starts_with("missing field"))
                .unwrap_or("")
                .to_string()
        } else {
            path
        };
        format_error(file, &field, message)
    })
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| format_error(path, "", e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format_error(path, "", e.to_string()))?;
    from_value(path, v)
}

/// Write a score store into `dir`: `scores.parquet` from `rows` and `score.json` from
/// `summary`. Every row must be of the summary's benchmark and model.
pub fn write(dir: &Path, summary: &ScoreSummary, rows: &[ScoreRow]) -> Result<()> {
    if let Some(r) = rows
        .iter()
        .find(|r| r.benchmark != summary.benchmark || r.model != summary.model)
    {
        return Err(format_error(
            &dir.join(SCORES_FILE),
            "benchmark",
            format!(
                "row of `{}`/`{}` in the store of `{}`/`{}`",
                r.benchmark, r.model, summary.benchmark, summary.model
            ),
        ));
    }
    crate::write_parquet(&dir.join(SCORES_FILE), &batch(rows)?)?;
    write_json(&dir.join(SUMMARY_FILE), summary)
}

/// Write `dir/scores.parquet` alone: a table of scores of several benchmarks (layer
/// commitment's per-layer scores), which no single summary describes.
pub fn write_rows(dir: &Path, rows: &[ScoreRow]) -> Result<()> {
    crate::write_parquet(&dir.join(SCORES_FILE), &batch(rows)?)
}

/// Read the summary of the score store `dir`.
pub fn read_summary(dir: &Path) -> Result<ScoreSummary> {
    read_json(&dir.join(SUMMARY_FILE))
}

/// An ImageNet evaluation (`eval.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The model, as the benchmarks' scores name it.
    pub model: String,
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-k with k = min(5, classes)).
    pub top5: f64,
    /// The architecture's depth (Fig. 3), when it defines one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<f64>,
    /// Trainable parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
}

/// Write `<dir>/eval.json`.
pub fn write_evaluation(dir: &Path, e: &Evaluation) -> Result<()> {
    write_json(&dir.join(EVALUATION_FILE), e)
}

/// Read `<dir>/eval.json`.
pub fn read_evaluation(dir: &Path) -> Result<Evaluation> {
    read_json(&dir.join(EVALUATION_FILE))
}

/// `f64` with NaN as JSON `null` (and `null` read back as NaN); a missing field stays an
/// error.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(q: &str, v: f64) -> ScoreRow {
        ScoreRow {
            benchmark: "B".into(),
            model: "m".into(),
            layer: Some("IT-t0".into()),
            quantity: q.into(),
            split: None,
            neuroid_id: None,
            value: v,
        }
    }

    #[test]
    fn a_store_reads_back_what_was_written() {
        let t = tempfile::tempdir().unwrap();
        let s = ScoreSummary::of(&serde_json::json!({
            "benchmark": "B", "model": "m", "ceiled": 0.5, "raw": 0.25, "ceiling": 0.5,
            "per_image": [{"stimulus_id": "a", "model_ms": 120.0, "monkey_ms": 110.0}],
            "readout": "converged",
        }))
        .unwrap();
        write(t.path(), &s, &[row("raw", 0.25), row("ceiled", 0.5)]).unwrap();
        let back = read_summary(t.path()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.details["readout"], "converged");
        assert_eq!(back.per_image.as_ref().unwrap()[0].monkey_ms, 110.0);
        let b = read_rows(&t.path().join(SCORES_FILE)).unwrap();
        assert_eq!(b.schema(), schema());
        assert_eq!(b.num_rows(), 2);
    }

    #[test]
    fn nan_is_null_on_disk_and_nan_again() {
        let t = tempfile::tempdir().unwrap();
        let s = ScoreSummary::of(
            &serde_json::json!({"benchmark": "B", "model": "m", "ceiled": f64::NAN}),
        )
        .unwrap();
        write(t.path(), &s, &[]).unwrap();
        let text = std::fs::read_to_string(t.path().join(SUMMARY_FILE)).unwrap();
        assert!(text.contains("\"ceiled\": null"), "{text}");
        assert!(read_summary(t.path()).unwrap().ceiled.is_nan());
    }

    #[test]
    fn a_malformed_store_names_file_and_field() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join(SUMMARY_FILE),
            r#"{"benchmark": "B", "model": "m"}"#,
        )
        .unwrap();
        let e = read_summary(t.path()).unwrap_err().to_string();
        assert!(e.contains("score.json") && e.contains("`ceiled`"), "{e}");
        std::fs::write(
            t.path().join(SUMMARY_FILE),
            r#"{"benchmark": "B", "model": "m", "ceiled": "high"}"#,
        )
        .unwrap();
        let e = read_summary(t.path()).unwrap_err().to_string();
        assert!(e.contains("score.json") && e.contains("ceiled"), "{e}");
        std::fs::write(
            t.path().join(SUMMARY_FILE),
            r#"{"benchmark": "B", "model": "m", "ceiled": 1, "per_image": [{"stimulus_id": 3}]}"#,
        )
        .unwrap();
        let e = read_summary(t.path()).unwrap_err().to_string();
        assert!(
            e.contains("score.json") && e.contains("per_image[0].stimulus_id"),
            "{e}"
        );
        // A scores.parquet without a column, or with one of another type.
        let p = t.path().join(SCORES_FILE);
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "benchmark",
                DataType::Utf8,
                true,
            )])),
            vec![Arc::new(StringArray::from(vec!["B"]))],
        )
        .unwrap();
        crate::write_parquet(&p, &b).unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(e.contains("scores.parquet") && e.contains("model"), "{e}");
        // Rows of another benchmark are refused at write time.
        let s =
            ScoreSummary::of(&serde_json::json!({"benchmark": "C", "model": "m", "ceiled": 1.0}))
                .unwrap();
        let e = write(t.path(), &s, &[row("raw", 1.0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`B`"), "{e}");
    }

    #[test]
    fn a_store_without_the_layer_column_reads_with_null_layers() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(SCORES_FILE);
        let full = batch(&[row("raw", 1.0)]).unwrap();
        let old = full.project(&[0, 1, 3, 4, 5, 6]).unwrap();
        crate::write_parquet(&p, &old).unwrap();
        let b = read_rows(&p).unwrap();
        assert_eq!(b.schema(), schema());
        assert_eq!(b.column_by_name("layer").unwrap().null_count(), 1);
    }
}
