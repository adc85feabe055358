//! One entry point for every BrainIO source, used by the `brainio` stage kind and by
//! `ventral ingest brainio` alike: a catalog `lookup.csv`, a folder of BrainIO files, one
//! `.nc` DataAssembly or one StimulusSet `.csv` (its `.zip` beside it).
//!
//! Whatever the source, the output has one layout: `out/assemblies/<id>/` and
//! `out/stimulus_sets/<id>/` (ids made path-safe by [`store_name`]). With a manifest the
//! source's folder is verified against it (size and blake3 of every listed file) before
//! anything is read; on any error nothing is left at `out`.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogSummary, ingest_catalog, store_name};
use crate::error::{invalid, io};
use crate::netcdf::{IngestOptions, ingest_netcdf, read_header};
use crate::stimuli::ingest_stimulus_set;
use crate::{Result, write_fresh};

/// What to ingest.
#[derive(Clone, Debug, Default)]
pub struct BrainioSource {
    /// The catalog, folder, `.nc` or StimulusSet `.csv`.
    pub source: PathBuf,
    /// A catalog's identifiers to ingest (default: all); for one file, its identifier
    /// (default: the `.nc`'s `identifier` attribute, else the file's stem).
    pub identifiers: Vec<String>,
    /// For one `.nc`: a stimulus-set store whose columns are joined on `stimulus_id`.
    pub stimuli: Option<PathBuf>,
    /// For one `.csv`: its ZIP (default: the same name with `.zip`).
    pub zip: Option<PathBuf>,
    /// Verify the source's folder against this manifest first.
    pub manifest: Option<PathBuf>,
    /// The producing stage, recorded in each store.
    pub producer: Option<String>,
}

/// What the source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// One netCDF4 DataAssembly.
    Netcdf,
    /// One StimulusSet CSV.
    StimulusSet,
    /// A `lookup.csv` catalog, or a folder (with or without one).
    Catalog,
}

impl BrainioSource {
    /// What the source is, or an error naming it when it does not exist.
    pub fn kind(&self) -> Result<SourceKind> {
        let s = &self.source;
        let ext = s.extension().and_then(|e| e.to_str()).unwrap_or("");
        if s.is_dir() {
            Ok(SourceKind::Catalog)
        } else if s.is_file() && ext == "nc" {
            Ok(SourceKind::Netcdf)
        } else if s.is_file() && ext == "csv" && !is_catalog_csv(s) {
            Ok(SourceKind::StimulusSet)
        } else if s.is_file() {
            Ok(SourceKind::Catalog)
        } else {
            Err(io(s, "no such file or folder"))
        }
    }

    /// The folder whose files the manifest lists.
    pub fn data_dir(&self) -> PathBuf {
        if self.source.is_dir() {
            self.source.clone()
        } else {
            self.source
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        }
    }
}

/// A catalog CSV (`lookup.csv`, or any CSV whose header names a catalog's columns) as
/// opposed to a StimulusSet's CSV.
fn is_catalog_csv(p: &Path) -> bool {
    if p.file_name().is_some_and(|n| n == "lookup.csv") {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(p) else {
        return false;
    };
    let header = text.lines().next().unwrap_or_default();
    let cols: Vec<&str> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect();
    ["identifier", "lookup_type", "location"]
        .iter()
        .all(|c| cols.contains(c))
}

/// Ingest `src` into `out` (missing or an empty folder); returns what was written.
pub fn ingest_brainio(
    src: &BrainioSource,
    out: &Path,
    progress: &dyn Fn(&str),
) -> Result<CatalogSummary> {
    let kind = src.kind()?;
    if let Some(m) = &src.manifest {
        progress(&crate::manifest::check(m, &src.data_dir())?);
    }
    if kind != SourceKind::Catalog && src.identifiers.len() > 1 {
        return Err(invalid(
            &src.source,
            "identifiers",
            format!(
                "one file has one identifier; {} given ({})",
                src.identifiers.len(),
                src.identifiers.join(", ")
            ),
        ));
    }
    if kind != SourceKind::Netcdf && src.stimuli.is_some() {
        return Err(invalid(
            &src.source,
            "stimuli",
            "a stimulus set to join is for one `.nc` assembly",
        ));
    }
    if kind != SourceKind::StimulusSet && src.zip.is_some() {
        return Err(invalid(
            &src.source,
            "zip",
            "a ZIP is for one StimulusSet `.csv`",
        ));
    }
    let stem = || {
        src.source
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    write_fresh(out, |tmp| -> Result<CatalogSummary> {
        match kind {
            SourceKind::Netcdf => {
                let id = match src.identifiers.first() {
                    Some(id) => Some(id.clone()),
                    None => read_header(&src.source)?
                        .global_str("identifier")
                        .map(str::to_string),
                };
                let name = id.clone().unwrap_or_else(stem);
                let opts = IngestOptions {
                    identifier: id,
                    producer: src.producer.clone(),
                    stimuli: src.stimuli.clone(),
                    ..IngestOptions::default()
                };
                let dest = tmp.join("assemblies").join(store_name(&name));
                let s = ingest_netcdf(&src.source, &dest, &opts)?;
                progress(&format!("{}: {:?}", s.identifier, s.shape));
                Ok(CatalogSummary {
                    stimulus_sets: Vec::new(),
                    assemblies: vec![s],
                })
            }
            SourceKind::StimulusSet => {
                let zip = src
                    .zip
                    .clone()
                    .unwrap_or_else(|| src.source.with_extension("zip"));
                let id = src.identifiers.first().cloned().unwrap_or_else(stem);
                let dest = tmp.join("stimulus_sets").join(store_name(&id));
                let s = ingest_stimulus_set(&src.source, &zip, &id, &dest)?;
                progress(&format!("{}: {} stimuli", s.identifier, s.count));
                Ok(CatalogSummary {
                    stimulus_sets: vec![s],
                    assemblies: Vec::new(),
                })
            }
            SourceKind::Catalog => {
                let catalog = if src.source.is_dir() {
                    let lookup = src.source.join("lookup.csv");
                    if lookup.is_file() {
                        Catalog::read(&lookup)?
                    } else {
                        Catalog::from_dir(&src.source)?
                    }
                } else {
                    Catalog::read(&src.source)?
                };
                let staging = tmp.join("catalog");
                let s = ingest_catalog(
                    &catalog,
                    &src.identifiers,
                    &staging,
                    src.producer.as_deref(),
                )?;
                for e in std::fs::read_dir(&staging).map_err(|e| io(&staging, e))? {
                    let e = e.map_err(|e| io(&staging, e))?;
                    let to = tmp.join(e.file_name());
                    std::fs::rename(e.path(), &to).map_err(|e| io(&to, e))?;
                }
                std::fs::remove_dir(&staging).map_err(|e| io(&staging, e))?;
                progress(&format!(
                    "{} stimulus sets, {} assemblies",
                    s.stimulus_sets.len(),
                    s.assemblies.len()
                ));
                Ok(s)
            }
        }
    })
}

/// Where [`ingest_brainio`] put the store of `identifier` under `out`.
pub fn store_path(out: &Path, list: &str, identifier: &str) -> PathBuf {
    out.join(list).join(store_name(identifier))
}
