//! `ventral-benchmarks`: Brain-Score's benchmarks over our stores.
//!
//! The metrics crate computes; this crate finds the data. It reads recordings and
//! activations from assembly stores, commits model timesteps to recorded time bins
//! ([`commit_timestep`]), runs the benchmark, and writes a *score store*: `scores.parquet`
//! (one row per benchmark × model × quantity × split × neuroid, what `ventral sql` reads as
//! the `scores` table) and `score.json` (the summary).

pub mod behaviour;
pub mod commit;
pub mod kinds;
pub mod neural;
pub mod ost;
pub mod transfer;

use std::path::{Path, PathBuf};

pub use ventral_store::scores::{self, Member, ScoreRow, ScoreSummary};

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

/// A composite score (the Brain-Score): the mean of its members' ceiled scores.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompositeResult {
    /// Its name.
    pub benchmark: String,
    /// The model (every member's).
    pub model: String,
    /// The mean of the members' ceiled scores.
    pub ceiled: f64,
    /// Each member's benchmark and ceiled score, in input order.
    pub members: Vec<Member>,
}

/// The mean of the ceiled scores in the score stores `dirs` (their summaries), keeping
/// only `members` when given (each must be present, unless it is one of `absent_as_zero`,
/// which counts 0 when no input scores it). All must score the same model.
pub fn composite(
    benchmark: &str,
    dirs: &[&Path],
    members: Option<&[String]>,
    absent_as_zero: &[String],
) -> Result<(CompositeResult, Vec<ScoreRow>)> {
    let mut found: Vec<(ScoreSummary, &Path)> = Vec::new();
    for d in dirs {
        // A benchmark that could not be scored (its `ceiled` is NaN, e.g. an OST readout
        // that never reaches the monkey's thresholds) makes the mean NaN, as Brain-Score's
        // mean does; a store without the field is an error.
        let s = scores::read_summary(d)?;
        if let Some((prev, _)) = found.iter().find(|f| f.0.benchmark == s.benchmark) {
            return Err(data(
                &d.join(scores::SUMMARY_FILE),
                format!(
                    "benchmark `{}` appears twice (models `{}` and `{}`)",
                    s.benchmark, prev.model, s.model
                ),
            ));
        }
        found.push((s, d));
    }
    let mut absent = Vec::new();
    if let Some(want) = members {
        for w in want {
            if !found.iter().any(|f| &f.0.benchmark == w) {
                if absent_as_zero.contains(w) {
                    absent.push(w.clone());
                    continue;
                }
                let have: Vec<&str> = found.iter().map(|f| f.0.benchmark.as_str()).collect();
                return Err(data(
                    dirs.first().copied().unwrap_or(Path::new(".")),
                    format!("member `{w}` is not among the inputs' benchmarks {have:?}"),
                ));
            }
        }
        found.retain(|f| want.contains(&f.0.benchmark));
    }
    let Some((first, first_dir)) = found.first() else {
        return Err(data(Path::new("."), "a composite needs at least one score"));
    };
    let model = first.model.clone();
    if let Some((other, dir)) = found.iter().find(|f| f.0.model != model) {
        return Err(data(
            dir,
            format!(
                "the members score different models: `{model}` ({}, {}) and `{}` ({})",
                first.benchmark,
                first_dir.display(),
                other.model,
                other.benchmark
            ),
        ));
    }
    let ceiled =
        found.iter().map(|f| f.0.ceiled).sum::<f64>() / (found.len() + absent.len()) as f64;
    let row = |quantity: String, value: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.clone(),
        layer: None,
        quantity,
        split: None,
        neuroid_id: None,
        value,
    };
    let mut rows = vec![row("ceiled".into(), ceiled)];
    for (f, _) in &found {
        rows.push(row(format!("member:{}", f.benchmark), f.ceiled));
    }
    for a in &absent {
        rows.push(row(format!("member:{a}"), 0.0));
    }
    Ok((
        CompositeResult {
            benchmark: benchmark.into(),
            model: model.clone(),
            ceiled,
            members: found
                .into_iter()
                .map(|(f, _)| Member {
                    benchmark: f.benchmark,
                    ceiled: f.ceiled,
                    absent: false,
                })
                .chain(absent.into_iter().map(|a| Member {
                    benchmark: a,
                    ceiled: 0.0,
                    absent: true,
                }))
                .collect(),
        },
        rows,
    ))
}

/// Write a benchmark's score store into `dir`: its rows as `scores.parquet`, its result as
/// `score.json` (checked as [`scores::read_summary`] reads it).
pub fn write_scores(dir: &Path, result: &impl serde::Serialize, rows: &[ScoreRow]) -> Result<()> {
    let summary = ScoreSummary::of(result)?;
    scores::write(dir, &summary, rows)?;
    Ok(())
}

/// The layer an activation store holds: its folder's name.
pub(crate) fn layer_of(store: &Path) -> String {
    store
        .file_name()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default()
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

    fn store(dir: &Path, name: &str, bench: &str, model: &str, ceiled: f64) -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let v = serde_json::json!({"benchmark": bench, "model": model, "ceiled": ceiled});
        std::fs::write(d.join("score.json"), v.to_string()).unwrap();
        d
    }

    #[test]
    fn composite_is_the_mean_of_its_members() {
        let t = tempfile::tempdir().unwrap();
        let a = store(t.path(), "a", "V4", "m", 0.6);
        let b = store(t.path(), "b", "IT", "m", 0.5);
        let c = store(t.path(), "c", "OST", "m", 0.1);
        let (r, rows) = composite("Brain-Score", &[&a, &b, &c], None, &[]).unwrap();
        assert!((r.ceiled - 0.4).abs() < 1e-12);
        assert_eq!(rows.len(), 4);
        let only = ["V4".to_string(), "OST".to_string()];
        let (r, _) = composite("Brain-Score", &[&a, &b, &c], Some(&only), &[]).unwrap();
        assert!((r.ceiled - 0.35).abs() < 1e-12);
        // A model without time: OST counts 0, as in the paper's Table 1, and says so.
        let zero = ["OST".to_string()];
        let (r, rows) = composite(
            "Brain-Score",
            &[&a, &b],
            Some(&["V4".into(), "IT".into(), "OST".into()]),
            &zero,
        )
        .unwrap();
        assert!((r.ceiled - 1.1 / 3.0).abs() < 1e-12);
        assert!(
            r.members
                .iter()
                .any(|m| m.benchmark == "OST" && m.absent && m.ceiled == 0.0)
        );
        assert!(
            rows.iter()
                .any(|x| x.quantity == "member:OST" && x.value == 0.0)
        );
        // A member that is missing, a second model, a duplicate: named errors.
        let e = composite("B", &[&a], Some(&only), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("member `OST`"), "{e}");
        let d = store(t.path(), "d", "Behaviour", "other", 0.3);
        let e = composite("B", &[&a, &d], None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`m`") && e.contains("`other`"), "{e}");
        let e = composite("B", &[&a, &a], None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("appears twice"), "{e}");
        // A store without a ceiled score names its file and the field.
        let bad = t.path().join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(
            bad.join("score.json"),
            r#"{"benchmark": "X", "model": "m"}"#,
        )
        .unwrap();
        let e = composite("B", &[&a, &bad], None, &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad/score.json") && e.contains("`ceiled`"),
            "{e}"
        );
        // A member that could not be scored (null) makes the composite NaN.
        let n = t.path().join("n");
        std::fs::create_dir_all(&n).unwrap();
        std::fs::write(
            n.join("score.json"),
            r#"{"benchmark": "OST", "model": "m", "ceiled": null}"#,
        )
        .unwrap();
        let (r, _) = composite("B", &[&a, &n], None, &[]).unwrap();
        assert!(r.ceiled.is_nan());
    }
}
