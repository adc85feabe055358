//! `ventral ingest`, `ventral export` and `ventral manifest`: the readers and writers of
//! the real formats as direct commands, outside any pipeline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};
use ventral_cas::HashCache;
use ventral_ingest::brainio::{BrainioSource, ingest_brainio, store_path};
use ventral_ingest::manifest::Manifest;

#[derive(Subcommand, Debug)]
pub enum IngestCmd {
    /// BrainIO: a catalog `lookup.csv`, a folder of BrainIO files, one `.nc` DataAssembly,
    /// or one StimulusSet `.csv` (with its `.zip` beside it).
    Brainio {
        /// The catalog, folder or file.
        source: PathBuf,
        /// The new folder: `assemblies/<id>/` and `stimulus_sets/<id>/` inside it, whatever
        /// the source.
        #[arg(short, long)]
        output: PathBuf,
        /// Only these identifiers of a catalog (repeatable); their stimulus sets come along.
        #[arg(long = "identifier")]
        identifiers: Vec<String>,
        /// For one `.nc`: join this stimulus-set store's columns on stimulus_id.
        #[arg(long)]
        stimuli: Option<PathBuf>,
        /// For one `.csv`: the ZIP (default: the same name with `.zip`).
        #[arg(long)]
        zip: Option<PathBuf>,
        /// Verify the source's folder against this manifest first.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// ILSVRC2012: a root with train/<wnid>/ and val/ (per-wnid folders or flat with labels).
    Imagenet {
        /// The data root.
        root: PathBuf,
        /// The new index store.
        #[arg(short, long)]
        output: PathBuf,
        /// Labels of a flat val/ folder (LOC_val_solution.csv or imagenet2012.csv).
        #[arg(long)]
        val_labels: Option<PathBuf>,
        /// Verify the root against this manifest first.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// CIFAR-100, binary version: train.bin, test.bin and the label names.
    Cifar {
        /// The folder (or its parent) holding cifar-100-binary's files.
        root: PathBuf,
        /// The new store (stimulus sets `train/` and `test/`).
        #[arg(short, long)]
        output: PathBuf,
        /// Verify the root against this manifest first.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// MS COCO: an image folder and its instances JSON.
    Coco {
        /// The image folder.
        images: PathBuf,
        /// `instances_*.json`.
        #[arg(long)]
        instances: PathBuf,
        /// The new index store.
        #[arg(short, long)]
        output: PathBuf,
        /// Keep only one-channel (grayscale) images.
        #[arg(long)]
        grayscale_only: bool,
        /// Verify the image folder against this manifest first.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// An assembly store as a BrainIO netCDF4 file that xarray and Brain-Score open.
    Brainio {
        /// The assembly store.
        store: PathBuf,
        /// The `.nc` file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ManifestCmd {
    /// List every file under DIR with size and blake3.
    Create {
        /// The data root.
        dir: PathBuf,
        /// The dataset name (default: the folder's name).
        #[arg(long)]
        dataset: Option<String>,
        /// Write here (default: manifests/<dataset>.toml).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check DIR against a manifest: every listed file present with its size and blake3.
    Verify {
        /// The data root.
        dir: PathBuf,
        /// The manifest.
        manifest: PathBuf,
    },
}

fn digest(dir: &Path) -> Result<String> {
    let tree = ventral_cas::hash_dir(dir, &HashCache::in_memory())
        .with_context(|| format!("hashing {}", dir.display()))?;
    Ok(tree.digest().to_hex())
}

fn verify_manifest(root: &Path, manifest: Option<&Path>) -> Result<()> {
    if let Some(m) = manifest {
        let man = Manifest::read(m)?;
        let r = man.verify(root, m)?;
        eprintln!(
            "{}: {} files, {} bytes match {}",
            root.display(),
            r.files,
            r.bytes,
            m.display()
        );
    }
    Ok(())
}

/// Run an ingest command; returns the summary as JSON.
pub fn ingest(cmd: &IngestCmd) -> Result<Value> {
    match cmd {
        IngestCmd::Brainio {
            source,
            output,
            identifiers,
            stimuli,
            zip,
            manifest,
        } => {
            let src = BrainioSource {
                source: source.clone(),
                identifiers: identifiers.clone(),
                stimuli: stimuli.clone(),
                zip: zip.clone(),
                manifest: manifest.clone(),
                producer: None,
            };
            let s = ingest_brainio(&src, output, &|m| eprintln!("{m}"))?;
            let mut v = serde_json::to_value(&s)?;
            for list in ["assemblies", "stimulus_sets"] {
                if let Some(items) = v[list].as_array_mut() {
                    for item in items {
                        let id = item["identifier"].as_str().unwrap_or_default().to_string();
                        let dir = store_path(output, list, &id);
                        item["path"] = json!(dir);
                        item["digest"] = json!(digest(&dir)?);
                    }
                }
            }
            Ok(v)
        }
        IngestCmd::Imagenet {
            root,
            output,
            val_labels,
            manifest,
        } => {
            verify_manifest(root, manifest.as_deref())?;
            let s = ventral_ingest::imagenet::ingest_imagenet(root, val_labels.as_deref(), output)?;
            let mut v = serde_json::to_value(&s)?;
            v["digest"] = json!(digest(output)?);
            Ok(v)
        }
        IngestCmd::Cifar {
            root,
            output,
            manifest,
        } => {
            verify_manifest(root, manifest.as_deref())?;
            let s = ventral_ingest::cifar::ingest_cifar(root, output)?;
            let mut v = serde_json::to_value(&s)?;
            v["digest"] = json!(digest(output)?);
            Ok(v)
        }
        IngestCmd::Coco {
            images,
            instances,
            output,
            grayscale_only,
            manifest,
        } => {
            verify_manifest(images, manifest.as_deref())?;
            let s = ventral_ingest::coco::ingest_coco(images, instances, *grayscale_only, output)?;
            let mut v = serde_json::to_value(&s)?;
            v["digest"] = json!(digest(output)?);
            Ok(v)
        }
    }
}

/// Print an ingest summary as text.
pub fn print_ingest(v: &Value) {
    if let Some(sets) = v["stimulus_sets"].as_array() {
        for s in sets {
            println!(
                "stimulus set {}: {} stimuli; columns {}; digest {}",
                s["identifier"].as_str().unwrap_or_default(),
                s["count"],
                join(&s["columns"]),
                short(&s["digest"])
            );
        }
    }
    if let Some(asms) = v["assemblies"].as_array() {
        for a in asms {
            let dims: Vec<String> = a["dims"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let shape: Vec<String> = a["shape"]
                .as_array()
                .map(|d| d.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            println!(
                "assembly {} ({}): {} {}; {} NaN; digest {}",
                a["identifier"].as_str().unwrap_or_default(),
                a["kind"].as_str().unwrap_or_default(),
                dims.iter()
                    .zip(&shape)
                    .map(|(d, n)| format!("{d} {n}"))
                    .collect::<Vec<_>>()
                    .join(" × "),
                a["dtype"].as_str().unwrap_or_default(),
                a["nan_count"],
                short(&a["digest"])
            );
            if let Some(c) = a["coords"].as_object() {
                for (dim, cols) in c {
                    println!("  {dim}: {}", join(cols));
                }
            }
        }
    }
    if v.get("counts").is_some() || v.get("images").is_some() {
        let mut parts = Vec::new();
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                if k != "digest" {
                    parts.push(format!("{k} {x}"));
                }
            }
        }
        println!("{}; digest {}", parts.join(", "), short(&v["digest"]));
    }
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn short(v: &Value) -> String {
    v.as_str().unwrap_or_default().chars().take(16).collect()
}

/// Run an export command.
pub fn export(cmd: &ExportCmd) -> Result<Value> {
    match cmd {
        ExportCmd::Brainio { store, output } => {
            let s = ventral_ingest::export::export_brainio(store, output)?;
            Ok(serde_json::to_value(&s)?)
        }
    }
}

/// Run a manifest command.
pub fn manifest(cmd: &ManifestCmd) -> Result<Value> {
    match cmd {
        ManifestCmd::Create {
            dir,
            dataset,
            output,
        } => {
            let name = dataset.clone().unwrap_or_else(|| {
                std::fs::canonicalize(dir)
                    .ok()
                    .and_then(|p| p.file_name().map(|s| s.to_string_lossy().to_string()))
                    .unwrap_or_else(|| "dataset".into())
            });
            let m = Manifest::create(dir, &name)?;
            let out = output
                .clone()
                .unwrap_or_else(|| PathBuf::from("manifests").join(format!("{name}.toml")));
            m.write(&out)?;
            Ok(json!({
                "manifest": out,
                "dataset": name,
                "files": m.files.len(),
                "bytes": m.files.iter().map(|f| f.size).sum::<u64>(),
            }))
        }
        ManifestCmd::Verify { dir, manifest } => {
            let m = Manifest::read(manifest)?;
            let r = m.verify(dir, manifest)?;
            Ok(serde_json::to_value(&r)?)
        }
    }
}
