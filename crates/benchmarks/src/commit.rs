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

/// Brain-Score's published region→layer maps (`data/brainscore/region_layer_maps.toml`,
/// written by `manifests/generate.py` from the brainscore-vision wheel).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapsFile {
    maps: MapsHeader,
    #[serde(default)]
    map: Vec<PublishedMap>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapsHeader {
    format: String,
    source: String,
    #[allow(dead_code)]
    note: Option<String>,
}

/// One architecture's published map.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedMap {
    /// The architecture (torchvision's name).
    pub arch: String,
    /// The Brain-Score plugin it comes from.
    pub plugin: String,
    /// The JSON file inside the brainscore-vision package.
    pub file: String,
    /// Region → layer.
    pub regions: BTreeMap<String, String>,
}

impl PublishedMap {
    /// Where the map comes from, for logs and the commitment's record.
    pub fn origin(&self, source: &str) -> String {
        format!("{} ({source})", self.file)
    }
}

/// The published map of `arch` in `file`, with the file's `source` line; `None` when the
/// file has no map for it.
pub fn published_map(file: &Path, arch: &str) -> Result<Option<(PublishedMap, String)>> {
    let text = std::fs::read_to_string(file).map_err(|e| data(file, e.to_string()))?;
    let maps: MapsFile = toml::from_str(&text)
        .map_err(|e| data(file, format!("not a region→layer maps file: {e}")))?;
    if maps.maps.format != "ventral-region-layer-maps v1" {
        return Err(data(
            file,
            format!(
                "field `maps.format`: {:?}, expected \"ventral-region-layer-maps v1\"",
                maps.maps.format
            ),
        ));
    }
    Ok(maps
        .map
        .into_iter()
        .find(|m| m.arch == arch)
        .map(|m| (m, maps.maps.source)))
}

/// Whether `map` can commit every one of `regions` to one of `layers`: `Ok` with the layers
/// in region order, or why not (a region it lacks, a layer that is not a candidate).
pub fn usable(
    map: &PublishedMap,
    regions: &[String],
    layers: &[String],
) -> std::result::Result<Vec<String>, String> {
    regions
        .iter()
        .map(|r| {
            let l = map
                .regions
                .get(r)
                .ok_or_else(|| format!("it has no layer for region {r}"))?;
            if layers.contains(l) {
                Ok(l.clone())
            } else {
                Err(format!(
                    "it maps {r} to `{l}`, which is not one of the model's candidate layers"
                ))
            }
        })
        .collect()
}

/// How a commitment was made, written beside the map as `commitment.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CommitmentSource {
    /// `published` (Brain-Score's map for the architecture) or `selected` (layer selection).
    pub how: String,
    /// The published map's file and source, when one was used or considered.
    pub published: Option<String>,
    /// Why a published map was not used, when there was one.
    pub note: Option<String>,
}

/// The record a commitment writes beside its map.
pub const SOURCE_FILE: &str = "commitment.json";

/// Write `source` into `dir`.
pub fn write_source(dir: &Path, source: &CommitmentSource) -> Result<()> {
    let p = dir.join(SOURCE_FILE);
    let text = serde_json::to_string_pretty(source).map_err(|e| data(&p, e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(|e| data(&p, e.to_string()))
}
