//! `ventral-ingest`: the real formats in and out.
//!
//! - [`netcdf`]: BrainIO DataAssemblies (netCDF4) into our assemblies, and [`export`] back,
//!   both run by the `ventral-netcdf` worker process ([`worker`]; the reader and writer
//!   themselves are `crates/netcdf`): no process but that one links libhdf5.
//! - [`stimuli`]: BrainIO StimulusSets (CSV + ZIP) into stimulus-set stores.
//! - [`catalog`]: BrainIO `lookup.csv` catalogs, SHA1-checked, ingested as a whole.
//! - [`brainio`]: any BrainIO source (catalog, folder, `.nc`, StimulusSet `.csv`) into one
//!   layout: the one entry point of the `brainio` kind and `ventral ingest brainio`.
//! - [`imagenet`], [`coco`]: image indexes (path, digest, label) of ILSVRC2012 and MS COCO;
//!   images stay where they are.
//! - [`manifest`]: `manifests/<dataset>.toml` (path, size, blake3 per file), created and
//!   verified.
//!
//! Every reader checks its input fully before it reports success and writes into a
//! temporary sibling folder that is renamed into place at the end, so bad input leaves
//! nothing behind; every error names the file and the field at fault.

pub mod brainio;
pub mod catalog;
pub mod cifar;
pub mod coco;
mod error;
pub mod export;
pub mod fuzzing;
pub mod imagenet;
pub mod kinds;
pub mod manifest;
pub mod netcdf;
pub mod stimuli;
pub mod worker;

use std::path::Path;

pub use error::{IngestError, Result, invalid, io};

/// The format tag of image indexes (ImageNet, COCO).
pub const IMAGE_INDEX_FORMAT: &str = "ventral-image-index v1";

/// Run `f` on a fresh temporary folder next to `out` and move it to `out` when `f`
/// succeeds; remove it when `f` fails. `out` may be missing or an empty folder. Every
/// command that writes a new folder uses this, so a failure leaves nothing behind.
pub fn write_fresh<T, E: From<IngestError>>(
    out: &Path,
    f: impl FnOnce(&Path) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(error::invalid(
                out,
                "output",
                "exists and is not empty (choose a new path)",
            )
            .into());
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| E::from(error::io(parent, e)))?;
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| E::from(error::io(&tmp, e)))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| E::from(error::io(&tmp, e)))?;
    match f(&tmp) {
        Ok(v) => {
            if out.exists() {
                std::fs::remove_dir(out).map_err(|e| E::from(error::io(out, e)))?;
            }
            std::fs::rename(&tmp, out).map_err(|e| E::from(error::io(out, e)))?;
            Ok(v)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}
