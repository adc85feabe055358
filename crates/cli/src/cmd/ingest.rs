//! `ventral ingest`, `ventral export` and `ventral manifest`: the readers and writers of
//! the real formats as direct commands, outside any pipeline.

use std::path::{Path, PathBuf};

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use ventral_cas::HashCache;
use ventral_ingest::brainio::{BrainioSource, ingest_brainio, store_path};
use ventral_ingest::catalog::CatalogSummary;
use ventral_ingest::export::ExportSummary;
use ventral_ingest::manifest::{Manifest, VerifyReport};
use ventral_ingest::netcdf::AssemblySummary;
use ventral_ingest::stimuli::StimulusSetSummary;

use super::{Global, Output, emit};

/// `ventral ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    #[command(subcommand)]
    pub format: IngestCmd,
}

/// `ventral export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub format: ExportCmd,
}

/// `ventral manifest`.
#[derive(clap::Args, Debug)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub action: ManifestCmd,
}

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
    /// Check DIR against a manifest: every listed file present with its size and blake3 —
    /// or, for a source manifest (`manifests/brainio.toml`, …), with every hash its
    /// publisher gives.
    Verify {
        /// The data root (for a source manifest: the folder its files are in).
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
        eprintln!("{}", ventral_ingest::manifest::check(m, root)?);
    }
    Ok(())
}

/// A store an ingest wrote: its summary, where it is and its content digest.
#[derive(Serialize)]
pub struct Stored<T> {
    #[serde(flatten)]
    summary: T,
    path: PathBuf,
    digest: String,
}

fn stored<T>(summary: T, path: PathBuf) -> Result<Stored<T>> {
    let digest = digest(&path)?;
    Ok(Stored {
        summary,
        path,
        digest,
    })
}

fn short(d: &str) -> &str {
    &d[..d.len().min(16)]
}

/// What `ventral ingest brainio` wrote.
#[derive(Serialize)]
pub struct BrainioIngested {
    stimulus_sets: Vec<Stored<StimulusSetSummary>>,
    assemblies: Vec<Stored<AssemblySummary>>,
}

impl Output for BrainioIngested {
    fn text(&self) -> String {
        let mut l = Vec::new();
        for s in &self.stimulus_sets {
            l.push(format!(
                "stimulus set {}: {} stimuli; columns {}; digest {}",
                s.summary.identifier,
                s.summary.count,
                s.summary.columns.join(", "),
                short(&s.digest)
            ));
        }
        for a in &self.assemblies {
            let s = &a.summary;
            l.push(format!(
                "assembly {} ({}): {} {}; {} NaN; digest {}",
                s.identifier,
                s.kind,
                s.dims
                    .iter()
                    .zip(&s.shape)
                    .map(|(d, n)| format!("{d} {n}"))
                    .collect::<Vec<_>>()
                    .join(" × "),
                s.dtype,
                s.nan_count,
                short(&a.digest)
            ));
            for (dim, cols) in &s.coords {
                l.push(format!("  {dim}: {}", cols.join(", ")));
            }
        }
        l.join("\n")
    }
}

/// What an image-index or CIFAR ingest wrote: its summary's fields on one line.
#[derive(Serialize)]
#[serde(transparent)]
pub struct IndexIngested<T>(Stored<T>);

impl<T: Serialize> Output for IndexIngested<T> {
    fn text(&self) -> String {
        let fields = match serde_json::to_value(&self.0.summary) {
            Ok(serde_json::Value::Object(m)) => m
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        format!("{fields}; digest {}", short(&self.0.digest))
    }
}

/// Run `ventral ingest`.
pub fn exec_ingest(g: &Global, a: &IngestArgs) -> Result<ExitCode> {
    match &a.format {
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
            let CatalogSummary {
                stimulus_sets,
                assemblies,
            } = ingest_brainio(&src, output, &|m| eprintln!("{m}"))?;
            let out = BrainioIngested {
                stimulus_sets: stimulus_sets
                    .into_iter()
                    .map(|s| {
                        let p = store_path(output, "stimulus_sets", &s.identifier);
                        stored(s, p)
                    })
                    .collect::<Result<_>>()?,
                assemblies: assemblies
                    .into_iter()
                    .map(|s| {
                        let p = store_path(output, "assemblies", &s.identifier);
                        stored(s, p)
                    })
                    .collect::<Result<_>>()?,
            };
            emit(g, &out)?;
        }
        IngestCmd::Imagenet {
            root,
            output,
            val_labels,
            manifest,
        } => {
            verify_manifest(root, manifest.as_deref())?;
            let s = ventral_ingest::imagenet::ingest_imagenet(root, val_labels.as_deref(), output)?;
            emit(g, &IndexIngested(stored(s, output.clone())?))?;
        }
        IngestCmd::Cifar {
            root,
            output,
            manifest,
        } => {
            verify_manifest(root, manifest.as_deref())?;
            let s = ventral_ingest::cifar::ingest_cifar(root, output)?;
            emit(g, &IndexIngested(stored(s, output.clone())?))?;
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
            emit(g, &IndexIngested(stored(s, output.clone())?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
#[serde(transparent)]
struct Exported(ExportSummary);

impl Output for Exported {
    fn text(&self) -> String {
        let s = &self.0;
        format!(
            "wrote variable `{}` with dims ({}) shape {:?} and coordinates {}",
            s.data_variable,
            s.dims.join(", "),
            s.shape,
            s.coords.join(", ")
        )
    }
}

/// Run `ventral export`.
pub fn exec_export(g: &Global, a: &ExportArgs) -> Result<ExitCode> {
    match &a.format {
        ExportCmd::Brainio { store, output } => {
            let s = ventral_ingest::export::export_brainio(store, output)?;
            emit(g, &Exported(s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A manifest written.
#[derive(Serialize)]
struct Created {
    manifest: PathBuf,
    dataset: String,
    files: usize,
    bytes: u64,
}

impl Output for Created {
    fn text(&self) -> String {
        format!(
            "{}: {} files, {} bytes of dataset {}",
            self.manifest.display(),
            self.files,
            self.bytes,
            self.dataset
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Verified(VerifyReport);

impl Output for Verified {
    fn text(&self) -> String {
        format!("ok: {} files, {} bytes match", self.0.files, self.0.bytes)
    }
}

/// Run `ventral manifest`.
pub fn exec_manifest(g: &Global, a: &ManifestArgs) -> Result<ExitCode> {
    match &a.action {
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
            emit(
                g,
                &Created {
                    manifest: out,
                    dataset: name,
                    files: m.files.len(),
                    bytes: m.files.iter().map(|f| f.size).sum(),
                },
            )?;
        }
        ManifestCmd::Verify { dir, manifest } => {
            let text = std::fs::read_to_string(manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            if ventral_fetch::Sources::is_sources(&text) {
                let m = ventral_fetch::Sources::parse(manifest, &text)?;
                let mut report = VerifyReport { files: 0, bytes: 0 };
                for f in &m.files {
                    let c = ventral_fetch::verify_file(&dir.join(&f.path), &f.hashes, f.size)
                        .with_context(|| match (&f.url, &m.manifest.manual) {
                            (None, Some(manual)) => format!("{} ({manual})", f.path),
                            _ => {
                                format!("{} (`ventral fetch {}` gets it)", f.path, m.manifest.name)
                            }
                        })?;
                    report.files += 1;
                    report.bytes += c.size;
                }
                emit(g, &Verified(report))?;
                return Ok(ExitCode::SUCCESS);
            }
            let m = Manifest::read(manifest)?;
            emit(g, &Verified(m.verify(dir, manifest)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
