//! BrainIO catalogs (`lookup.csv`) and the ingest of everything one lists.
//!
//! A catalog row: `identifier, lookup_type (stimulus_set|assembly), class, location_type,
//! location, sha1, stimulus_set_identifier`. A stimulus set has two rows (its CSV and its
//! ZIP). `location` is where BrainIO downloads from (an S3 URL); here the file is looked
//! up by its base name in the catalog's folder. Every file's SHA1 is checked before use.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha1::{Digest as _, Sha1};

use crate::error::{Result, invalid, io};
use crate::netcdf::{AssemblySummary, IngestOptions, ingest_netcdf};
use crate::stimuli::{StimulusSetSummary, ingest_stimulus_set};

/// One row of `lookup.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogEntry {
    /// The identifier.
    pub identifier: String,
    /// `stimulus_set` or `assembly`.
    pub lookup_type: String,
    /// The BrainIO class (`StimulusSet`, `NeuronRecordingAssembly`, …).
    pub class: String,
    /// The local file.
    pub path: PathBuf,
    /// The expected SHA1.
    pub sha1: String,
    /// The stimulus set of an assembly.
    pub stimulus_set_identifier: Option<String>,
}

/// A parsed catalog.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// The `lookup.csv` file.
    pub path: PathBuf,
    /// Its rows.
    pub entries: Vec<CatalogEntry>,
}

const REQUIRED: &[&str] = &["identifier", "lookup_type", "location", "sha1"];

impl Catalog {
    /// Read `lookup.csv`; files are resolved next to it.
    pub fn read(path: &Path) -> Result<Catalog> {
        let t = crate::stimuli::CsvTable::read(path)?;
        for c in REQUIRED {
            if t.col(c).is_none() {
                return Err(invalid(path, format!("column `{c}`"), "missing"));
            }
        }
        let col = |name: &str| t.col(name);
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut entries = Vec::new();
        for (i, r) in t.rows.iter().enumerate() {
            let get = |name: &str| col(name).map(|c| r[c].clone()).unwrap_or_default();
            let location = get("location");
            let base = location.rsplit('/').next().unwrap_or_default();
            let Some(rel) = crate::stimuli::safe_relative(base) else {
                return Err(invalid(
                    path,
                    format!("row {} location", i + 2),
                    format!("`{location}` names no file"),
                ));
            };
            let lookup_type = get("lookup_type");
            if lookup_type != "stimulus_set" && lookup_type != "assembly" {
                return Err(invalid(
                    path,
                    format!("row {} lookup_type", i + 2),
                    format!("`{lookup_type}` (expected stimulus_set or assembly)"),
                ));
            }
            let s = get("stimulus_set_identifier");
            entries.push(CatalogEntry {
                identifier: get("identifier"),
                lookup_type,
                class: get("class"),
                path: dir.join(rel),
                sha1: get("sha1").to_lowercase(),
                stimulus_set_identifier: if s.is_empty() { None } else { Some(s) },
            });
        }
        Ok(Catalog {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// A catalog made from a folder of BrainIO files: every `*.nc` is an assembly (its
    /// identifier and stimulus set from its global attributes, else the file stem), every
    /// `X.csv` with an `X.zip` beside it is the stimulus set `X`. SHA1s are computed.
    pub fn from_dir(dir: &Path) -> Result<Catalog> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .map(|e| e.map(|e| e.path()).map_err(|e| io(dir, e)))
            .collect::<Result<_>>()?;
        files.sort();
        let stem = |p: &Path| {
            p.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let mut entries = Vec::new();
        for p in &files {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if ext == "nc" {
                let nc = crate::netcdf::read_header(p)?;
                let attr = |k: &str| nc.global_str(k).map(str::to_string);
                entries.push(CatalogEntry {
                    identifier: attr("identifier").unwrap_or_else(|| stem(p)),
                    lookup_type: "assembly".into(),
                    class: "DataAssembly".into(),
                    path: p.clone(),
                    sha1: sha1_file(p)?,
                    stimulus_set_identifier: attr("stimulus_set_identifier"),
                });
            } else if ext == "csv" && p.with_extension("zip").is_file() {
                for f in [p.clone(), p.with_extension("zip")] {
                    entries.push(CatalogEntry {
                        identifier: stem(p),
                        lookup_type: "stimulus_set".into(),
                        class: "StimulusSet".into(),
                        sha1: sha1_file(&f)?,
                        path: f,
                        stimulus_set_identifier: None,
                    });
                }
            }
        }
        if entries.is_empty() {
            return Err(invalid(
                dir,
                "folder",
                "holds no lookup.csv, no .nc assembly and no .csv + .zip stimulus set",
            ));
        }
        Ok(Catalog {
            path: dir.join("lookup.csv"),
            entries,
        })
    }

    /// Write a catalog for `entries` (paths relative to the catalog's folder).
    pub fn write(path: &Path, entries: &[CatalogEntry]) -> Result<()> {
        let mut w = csv::Writer::from_path(path).map_err(|e| io(path, e))?;
        w.write_record([
            "identifier",
            "lookup_type",
            "class",
            "location_type",
            "location",
            "sha1",
            "stimulus_set_identifier",
        ])
        .map_err(|e| io(path, e))?;
        for e in entries {
            let name = e
                .path
                .file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            w.write_record([
                e.identifier.as_str(),
                e.lookup_type.as_str(),
                e.class.as_str(),
                "local",
                name.as_str(),
                e.sha1.as_str(),
                e.stimulus_set_identifier.as_deref().unwrap_or(""),
            ])
            .map_err(|e| io(path, e))?;
        }
        w.flush().map_err(|e| io(path, e))
    }
}

/// The SHA1 of a file, hex.
pub fn sha1_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

fn check_sha1(catalog: &Path, e: &CatalogEntry) -> Result<()> {
    if !e.path.is_file() {
        return Err(invalid(
            catalog,
            format!("`{}`", e.identifier),
            format!("file {} is missing", e.path.display()),
        ));
    }
    let got = sha1_file(&e.path)?;
    if got != e.sha1 {
        return Err(invalid(
            &e.path,
            "sha1",
            format!(
                "is {got}, the catalog {} says {} (damaged or different file)",
                catalog.display(),
                e.sha1
            ),
        ));
    }
    Ok(())
}

/// What a catalog ingest wrote.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CatalogSummary {
    /// Stimulus sets.
    pub stimulus_sets: Vec<StimulusSetSummary>,
    /// Assemblies.
    pub assemblies: Vec<AssemblySummary>,
}

/// Ingest every entry of `catalog` (or those in `only`) into `out/stimulus_sets/<identifier>/`
/// and `out/assemblies/<identifier>/` (BrainIO lets a stimulus set and an assembly share an
/// identifier), stimulus sets first so that assemblies are joined with theirs. All SHA1s are checked before
/// anything is written; on error nothing is left at `out`.
pub fn ingest_catalog(
    catalog: &Catalog,
    only: &[String],
    out: &Path,
    producer: Option<&str>,
) -> Result<CatalogSummary> {
    let selected: Vec<&CatalogEntry> = catalog
        .entries
        .iter()
        .filter(|e| only.is_empty() || only.contains(&e.identifier))
        .collect();
    for id in only {
        if !catalog.entries.iter().any(|e| &e.identifier == id) {
            return Err(invalid(
                &catalog.path,
                "identifier",
                format!("`{id}` is not in the catalog"),
            ));
        }
    }
    // Assemblies pull in their stimulus sets.
    let mut wanted: Vec<&CatalogEntry> = selected.clone();
    for e in &selected {
        if let Some(s) = &e.stimulus_set_identifier {
            for x in catalog.entries.iter().filter(|x| &x.identifier == s) {
                if !wanted.iter().any(|w| std::ptr::eq(*w, x)) {
                    wanted.push(x);
                }
            }
        }
    }
    for e in &wanted {
        check_sha1(&catalog.path, e)?;
    }
    let mut sets: BTreeMap<&str, Vec<&CatalogEntry>> = BTreeMap::new();
    let mut assemblies = Vec::new();
    for e in &wanted {
        if e.lookup_type == "stimulus_set" {
            sets.entry(e.identifier.as_str()).or_default().push(e);
        } else {
            assemblies.push(*e);
        }
    }
    assemblies.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    crate::write_fresh(out, |tmp| {
        let mut summary = CatalogSummary::default();
        for (id, files) in &sets {
            let csv = files
                .iter()
                .find(|f| f.path.extension().is_some_and(|x| x == "csv"))
                .ok_or_else(|| {
                    invalid(
                        &catalog.path,
                        format!("`{id}`"),
                        "stimulus set without a CSV",
                    )
                })?;
            let zip = files
                .iter()
                .find(|f| f.path.extension().is_some_and(|x| x == "zip"))
                .ok_or_else(|| {
                    invalid(
                        &catalog.path,
                        format!("`{id}`"),
                        "stimulus set without a ZIP",
                    )
                })?;
            summary.stimulus_sets.push(ingest_stimulus_set(
                &csv.path,
                &zip.path,
                id,
                &tmp.join("stimulus_sets").join(store_name(id)),
            )?);
        }
        for e in assemblies {
            let stimuli = match &e.stimulus_set_identifier {
                Some(s) if sets.contains_key(s.as_str()) => {
                    Some(tmp.join("stimulus_sets").join(store_name(s)))
                }
                _ => None,
            };
            let opts = IngestOptions {
                identifier: Some(e.identifier.clone()),
                producer: producer.map(str::to_string),
                stimuli,
                band_elements: None,
            };
            summary.assemblies.push(ingest_netcdf(
                &e.path,
                &tmp.join("assemblies").join(store_name(&e.identifier)),
                &opts,
            )?);
        }
        Ok(summary)
    })
}

/// The folder name of an identifier's store (identifiers are dotted names; anything odd is
/// replaced so that it stays one path component).
pub fn store_name(identifier: &str) -> String {
    identifier
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}
