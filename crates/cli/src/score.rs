//! `ventral score neural|i2n|ost`: score activations against recordings directly, outside
//! any pipeline (the same code as the stage kinds), from our stores or BrainIO netCDF files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ventral_benchmarks::neural::Selection;
use ventral_metrics::neural::{NeuralOptions, Normalisation};

/// Where BrainIO netCDF inputs are ingested for one command; removed when dropped.
pub struct Inputs {
    dir: Option<tempfile::TempDir>,
    /// (temporary store, the user's file), so errors can name the user's file.
    names: Vec<(PathBuf, PathBuf)>,
}

impl Inputs {
    /// No input converted yet.
    pub fn new() -> Self {
        Inputs {
            dir: None,
            names: Vec::new(),
        }
    }

    /// `e` with every temporary store replaced by the file the user named.
    pub fn explain(&self, e: impl Into<anyhow::Error>) -> anyhow::Error {
        let mut msg = format!("{:#}", e.into());
        for (tmp, user) in &self.names {
            msg = msg.replace(&tmp.display().to_string(), &user.display().to_string());
        }
        anyhow::Error::msg(msg)
    }

    /// `path` as an assembly store: a store is used as it is; a BrainIO netCDF file (`.nc`)
    /// is ingested into a temporary store first (the same reader as `ventral ingest`).
    pub fn store(&mut self, path: &Path) -> Result<PathBuf> {
        let is_nc = path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("nc"));
        if !is_nc {
            return Ok(path.to_path_buf());
        }
        if self.dir.is_none() {
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix("ventral-score-")
                    .tempdir()
                    .context("creating a temporary folder for the netCDF inputs")?,
            );
        }
        let Some(dir) = self.dir.as_ref() else {
            anyhow::bail!("no temporary folder");
        };
        let n = std::fs::read_dir(dir.path())?.count();
        let out = dir.path().join(format!("input-{n}"));
        ventral_ingest::netcdf::ingest_netcdf(
            path,
            &out,
            &ventral_ingest::netcdf::IngestOptions::default(),
        )
        .with_context(|| format!("reading the BrainIO file {}", path.display()))?;
        self.names.push((out.clone(), path.to_path_buf()));
        Ok(out)
    }
}

/// The scores as JSON.
pub fn neural(
    source: &Path,
    target: &Path,
    normalisation: Normalisation,
    sel: &Selection,
) -> Result<serde_json::Value> {
    let mut inputs = Inputs::new();
    let (source_store, target_store) = (inputs.store(source)?, inputs.store(target)?);
    let model = ventral_benchmarks::model_of(&source_store).map_err(|e| inputs.explain(e))?;
    let (r, _) = ventral_benchmarks::neural::score(
        "neural",
        &model,
        &source_store,
        &target_store,
        sel,
        normalisation,
        &NeuralOptions::default(),
    )
    .map_err(|e| inputs.explain(e))?;
    Ok(serde_json::json!({
        "benchmark": "neural",
        "source": source,
        "target": target,
        "region": sel.region,
        "time_bins": sel.window.map(|(a, b)| [a, b]),
        "min_consistency": sel.min_consistency,
        "neuroids": r.neuroids,
        "score": r.raw,
        "score_error": r.raw_error,
        "ceiling": r.ceiling,
        "ceiled": r.ceiled,
        "normalisation": r.normalisation,
        "per_split": r.per_split,
        "ceiling_per_split": r.ceiling_per_split,
    }))
}
