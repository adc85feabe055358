//! Layer commitment, as Brain-Score's `LayerSelection` does it for a model without a
//! published region→layer map: per region, score every candidate layer on the region's
//! public recordings (neural predictivity, ceiled as Brain-Score's benchmarks ceil it:
//! r² / c) and commit the region to the best — a plain argmax, ties to the earlier layer in
//! candidate order.
//!
//! Output: `region_layer_map.json` (`{"V4": "layer2.1", "IT": "layer3.0"}`, the format of
//! Brain-Score's `region_layer_map/<model>.json`) and `scores.parquet` with every layer's
//! scores (the `layer` column), which `ventral sql` reads as part of `scores`; the `neural`
//! kind takes the map as its `commitment` input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ventral_metrics::neural::{NeuralOptions, Normalisation};

use crate::neural::{Selection, prepare, score_prepared};
use crate::{Result, ScoreRow, data};

/// The file a commitment writes.
pub const MAP_FILE: &str = "region_layer_map.json";

/// One region's choice.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RegionChoice {
    /// The region.
    pub region: String,
    /// The committed layer (activation store).
    pub layer: String,
    /// Every candidate's normalised score, in candidate order.
    pub scores: Vec<(String, f64)>,
}

/// The activation stores of an `extract` output, in the order it wrote them (its
/// `layers.json`), else by name.
pub fn candidate_stores(activations: &Path) -> Result<Vec<String>> {
    let listed = activations.join("layers.json");
    if listed.is_file() {
        let text = std::fs::read_to_string(&listed).map_err(|e| data(&listed, e.to_string()))?;
        let v: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| data(&listed, e.to_string()))?;
        return v
            .iter()
            .map(|x| {
                x.get("store")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| data(&listed, "an entry without a string `store`"))
            })
            .collect();
    }
    let mut have: Vec<String> = std::fs::read_dir(activations)
        .map_err(|e| data(activations, e.to_string()))?
        .flatten()
        .filter(|e| e.path().join("zarr.json").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    have.sort();
    Ok(have)
}

/// Commit each of `regions` to the best of `layers` (stores under `activations`), scored
/// against `recordings`. Returns the choices and every layer's score rows.
#[allow(clippy::too_many_arguments)]
pub fn commit(
    model: &str,
    activations: &Path,
    layers: &[String],
    recordings: &Path,
    regions: &[String],
    benchmark: &dyn Fn(&str) -> String,
    normalisation: Normalisation,
    opts: &NeuralOptions,
    progress: &dyn Fn(&str),
) -> Result<(Vec<RegionChoice>, Vec<ScoreRow>)> {
    if layers.is_empty() {
        return Err(data(activations, "no candidate layers"));
    }
    let stores: Vec<PathBuf> = layers.iter().map(|l| activations.join(l)).collect();
    for (l, s) in layers.iter().zip(&stores) {
        if !s.join("zarr.json").is_file() {
            return Err(data(activations, format!("no activation store `{l}`")));
        }
    }
    let mut choices = Vec::new();
    let mut rows = Vec::new();
    for region in regions {
        let sel = Selection {
            region: Some(region.clone()),
            ..Selection::default()
        };
        let prepared = prepare(recordings, &sel, opts)?;
        let bench = benchmark(region);
        let mut scores = Vec::new();
        let mut best: Option<(usize, f64)> = None;
        for (i, store) in stores.iter().enumerate() {
            let (result, mut r) = score_prepared(
                &bench,
                model,
                store,
                recordings,
                &prepared,
                normalisation,
                opts,
            )?;
            rows.append(&mut r);
            progress(&format!(
                "{region} {}: raw {:.3}, ceiled {:.3}",
                layers[i], result.raw, result.ceiled
            ));
            // NaN never wins; ties go to the earlier layer.
            if !result.ceiled.is_nan() && best.is_none_or(|(_, b)| result.ceiled > b) {
                best = Some((i, result.ceiled));
            }
            scores.push((layers[i].clone(), result.ceiled));
        }
        let (i, _) = best.ok_or_else(|| {
            data(
                recordings,
                format!("region {region}: every candidate layer scored NaN"),
            )
        })?;
        choices.push(RegionChoice {
            region: region.clone(),
            layer: layers[i].clone(),
            scores,
        });
    }
    Ok((choices, rows))
}

/// Write `region_layer_map.json` for `choices` into `dir`.
pub fn write_map(dir: &Path, choices: &[RegionChoice]) -> Result<()> {
    let map: BTreeMap<&str, &str> = choices
        .iter()
        .map(|c| (c.region.as_str(), c.layer.as_str()))
        .collect();
    let p = dir.join(MAP_FILE);
    let text = serde_json::to_string_pretty(&map).map_err(|e| data(&p, e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(|e| data(&p, e.to_string()))
}

/// The layer a commitment (a `commit` output, or a Brain-Score `region_layer_map` JSON
/// file) maps `region` to.
pub fn committed_layer(commitment: &Path, region: &str) -> Result<String> {
    let file = if commitment.is_dir() {
        commitment.join(MAP_FILE)
    } else {
        commitment.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| data(&file, e.to_string()))?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text)
        .map_err(|e| data(&file, format!("not a region→layer map: {e}")))?;
    map.get(region).cloned().ok_or_else(|| {
        data(
            &file,
            format!(
                "no layer for region `{region}` (regions: {})",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}
