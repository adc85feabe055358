//! `ventral-synth`: the embedded default — a deterministic synthetic world written in the
//! real formats, with a known ground truth.
//!
//! [`generate`] writes, under one folder:
//!
//! ```text
//! brainio/lookup.csv                         BrainIO catalog (SHA1 of every file)
//! brainio/image_dicarlo_hvm-public.{csv,zip}  HvM-like StimulusSet (8 categories × 8 objects,
//!                                            variation 0/3/6, grayscale, disc, 256 px PNG)
//! brainio/assy_dicarlo_MajajHong2015_public.nc  V4 + IT recordings (neuroid, presentation,
//!                                            time_bin) with repetitions
//! brainio/image_dicarlo_objectome_public.{csv,zip}, assy_dicarlo_Rajalingham2018_public.nc
//!                                            24 objects; human 2-AFC trials
//! brainio/image_dicarlo_Kar2019.{csv,zip}, assy_dicarlo_Kar2019.nc (monkey OST and I1 per
//!                                            image), assy_dicarlo_Kar2019_IT.nc (IT in 10-ms bins)
//! ILSVRC2012/{train,val}/<wnid>/*.JPEG       ImageNet-like labelled images
//! coco/images/*.jpg, coco/annotations/instances_synth.json   COCO-like scenes
//! truth/                                     generating features and ground-truth latencies
//! manifest.toml                              size and blake3 of every file
//! sources/{brainio,ILSVRC2012,cifar100}.toml source manifests of the three data folders (as
//!                                            manifests/ has them for the real data), which
//!                                            the pipelines' stages check their inputs against
//! ```
//!
//! Everything random is drawn from named streams indexed by item ([`rng::Rng`]), and work is
//! parallel only across items whose results are collected in order, so the bytes depend on
//! the seed and the sizes only — never on the thread count.

pub mod brain;
pub mod kind;
pub mod render;
pub mod rng;
pub mod world;
mod write;

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

pub use world::WorldConfig;

/// Errors: every one names the file being written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An I/O or encoding error.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing a store or a netCDF file failed.
    #[error(transparent)]
    Store(#[from] ventral_store::StoreError),
    /// Writing a BrainIO file failed.
    #[error(transparent)]
    Ingest(#[from] ventral_ingest::IngestError),
}

/// Result alias.
pub type Result<T, E = SynthError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<std::path::PathBuf>, e: impl std::fmt::Display) -> SynthError {
    SynthError::Io {
        path: path.into(),
        message: e.to_string(),
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct WorldSummary {
    /// Images rendered, per set.
    pub images: Vec<(String, usize)>,
    /// Assemblies written: identifier and shape.
    pub assemblies: Vec<(String, Vec<usize>)>,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds.
    pub seconds: f64,
}

/// Render `stimuli` at `n` pixels and encode them (PNG or JPEG), in parallel, in order.
pub(crate) fn encode_all(
    scenes: &[&render::Scene],
    n: u32,
    jpeg: bool,
) -> Vec<(Vec<u8>, image::RgbImage)> {
    scenes
        .par_iter()
        .map(|s| {
            let img = s.render(n);
            let mut bytes = Vec::new();
            let mut cur = std::io::Cursor::new(&mut bytes);
            if jpeg {
                let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut cur, 90);
                img.write_with_encoder(enc)
                    .expect("JPEG encoding of an in-memory RGB image");
            } else {
                img.write_to(&mut cur, image::ImageFormat::Png)
                    .expect("PNG encoding of an in-memory RGB image");
            }
            (bytes, img)
        })
        .collect()
}

/// Generate the world `cfg` into the empty (or missing) folder `out`.
pub fn generate(
    cfg: &WorldConfig,
    out: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<WorldSummary> {
    let t0 = std::time::Instant::now();
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(io(out, "exists and is not empty"));
    }
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut summary = WorldSummary {
        images: Vec::new(),
        assemblies: Vec::new(),
        bytes: 0,
        seconds: 0.0,
    };
    write::hvm(cfg, out, &mut summary, progress)?;
    write::objectome(
        cfg,
        out,
        &write::Task::objectome(cfg),
        &mut summary,
        progress,
    )?;
    if cfg.new_objects[0] > 1 && cfg.new_objects[1] > 0 {
        write::objectome(
            cfg,
            out,
            &write::Task::new_objects(cfg),
            &mut summary,
            progress,
        )?;
    }
    write::kar(cfg, out, &mut summary, progress)?;
    write::imagenet(cfg, out, &mut summary, progress)?;
    write::cifar(cfg, out, &mut summary, progress)?;
    write::catalog(out)?;
    let manifest = ventral_ingest::manifest::Manifest::create(out, "synthetic-world")?;
    summary.bytes = manifest.files.iter().map(|f| f.size).sum();
    write_sources(out, &manifest.files)?;
    manifest.write(&out.join("manifest.toml"))?;
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// The source manifests of the world's data folders (`sources/<name>.toml`, format
/// `ventral-sources v1`, blake3 and size of every file as written): the embedded profile's
/// stages check their inputs against these as the real profile's check `data/real`
/// against `manifests/`, by the same code.
fn write_sources(out: &Path, files: &[ventral_ingest::manifest::FileEntry]) -> Result<()> {
    use ventral_fetch::sources::{Hashes, Header, SOURCES_FORMAT, SourceFile, Sources};
    for (name, folder, what) in [
        (
            "brainio",
            "brainio",
            "the synthetic world's BrainIO catalog",
        ),
        (
            "ILSVRC2012",
            "ILSVRC2012",
            "the synthetic world's ImageNet-like tree",
        ),
        (
            "cifar100",
            "cifar-100-binary",
            "the synthetic world's CIFAR-100 binary files",
        ),
    ] {
        let prefix = format!("{folder}/");
        let sources = Sources {
            manifest: Header {
                format: SOURCES_FORMAT.into(),
                name: name.into(),
                description: what.into(),
                to: folder.into(),
                source: "ventral synth: blake3 and size of each file as written".into(),
                manual: Some("written with the synthetic world; nothing to download".into()),
            },
            files: files
                .iter()
                .filter_map(|f| {
                    Some(SourceFile {
                        path: f.path.strip_prefix(&prefix)?.to_string(),
                        url: None,
                        size: Some(f.size),
                        hashes: Hashes {
                            blake3: Some(f.blake3.clone()),
                            ..Hashes::default()
                        },
                        unpack: None,
                        source: None,
                        brainio: None,
                    })
                })
                .collect(),
            unpublished: Vec::new(),
        };
        let path = out.join("sources").join(format!("{name}.toml"));
        let text = toml::to_string(&sources).map_err(|e| io(&path, e))?;
        std::fs::create_dir_all(out.join("sources")).map_err(|e| io(out.join("sources"), e))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(())
}
