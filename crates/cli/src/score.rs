//! `ventral score neural`: score activations against recordings directly from stores,
//! outside any pipeline (the same code as the `neural` stage kind).

use std::path::Path;

use anyhow::Result;
use ventral_metrics::neural::{NeuralOptions, Normalisation};

/// The scores as JSON.
pub fn neural(
    source: &Path,
    target: &Path,
    normalisation: Normalisation,
    region: Option<&str>,
) -> Result<serde_json::Value> {
    let model = ventral_benchmarks::model_of(source)?;
    let (r, _) = ventral_benchmarks::neural::score(
        "neural",
        &model,
        source,
        target,
        region,
        normalisation,
        &NeuralOptions::default(),
    )?;
    Ok(serde_json::json!({
        "benchmark": "neural",
        "source": source,
        "target": target,
        "region": region,
        "score": r.raw,
        "score_error": r.raw_error,
        "ceiling": r.ceiling,
        "ceiled": r.ceiled,
        "normalisation": r.normalisation,
        "per_split": r.per_split,
        "ceiling_per_split": r.ceiling_per_split,
    }))
}
