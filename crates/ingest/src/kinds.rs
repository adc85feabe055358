//! The readers as built-in stage kinds: `brainio`, `imagenet`, `coco`.
//!
//! ```toml
//! [stages.recordings]
//! kind = "brainio"
//! inputs = { source = "data/brainio/lookup.csv", manifest = "manifests/brainio.toml" }
//! identifiers = ["dicarlo.MajajHong2015.public"]   # default: everything in the catalog
//!
//! [stages.imagenet]
//! kind = "imagenet"
//! inputs = { root = "${vars.data_root}/ILSVRC2012", manifest = "manifests/ILSVRC2012.toml" }
//! ```
//!
//! With a `manifest` input the data is checked against it (size and blake3 of every listed
//! file) before anything is read; `source`, `root` and `images` are the data the kind reads.

use std::path::{Path, PathBuf};

use ventral_stage::{BoxError, ParamSpec, ParamType, StageContext, StageKind};

use crate::catalog::{Catalog, ingest_catalog, store_name};
use crate::manifest::Manifest;
use crate::netcdf::{IngestOptions, ingest_netcdf};

/// Verify `root` against the stage's `manifest` input, if it has one.
fn check_manifest(ctx: &StageContext<'_>, root: &Path) -> Result<(), BoxError> {
    if let Some(m) = ctx.optional_input("manifest")? {
        let man = Manifest::read(m)?;
        let r = man.verify(root, m)?;
        (ctx.progress)(&format!("{} files match {}", r.files, m.display()));
    }
    Ok(())
}

/// Where a source's data lives (the folder of a catalog or of a file).
fn data_dir(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.to_path_buf()
    } else {
        p.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

const BRAINIO_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "identifiers",
    ty: ParamType::StrList,
    required: false,
    doc: "catalog identifiers to ingest (their stimulus sets come along); default: all",
}];

/// `brainio`: a BrainIO catalog, folder or `.nc` into one store per identifier.
pub struct BrainioKind;

impl StageKind for BrainioKind {
    fn name(&self) -> &str {
        "brainio"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        BRAINIO_PARAMS
    }
    fn doc(&self) -> &str {
        "BrainIO stimulus sets (CSV+ZIP) and assemblies (netCDF4) from a lookup.csv, a folder \
         or one .nc (input `source`, optional `manifest`) into ${out}/assemblies/<id>/ and ${out}/stimulus_sets/<id>/"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let source = ctx.one_input("source")?;
        check_manifest(ctx, &data_dir(source))?;
        let ids: Vec<String> = ctx
            .params
            .get("identifiers")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let producer = ctx.stage.to_string();
        if source.is_file() && source.extension().is_some_and(|e| e == "nc") {
            let nc = crate::netcdf::NcFile::open(source)?;
            let id = ids.first().cloned().or_else(|| {
                nc.global_attrs
                    .get("identifier")
                    .and_then(|v| v.get("value"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            });
            let name = id.clone().unwrap_or_else(|| {
                source
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default()
            });
            let opts = IngestOptions {
                identifier: id,
                producer: Some(producer),
                ..IngestOptions::default()
            };
            let dest = ctx.out_dir.join("assemblies").join(store_name(&name));
            let s = ingest_netcdf(source, &dest, &opts)?;
            (ctx.progress)(&format!("{}: {:?}", s.identifier, s.shape));
            return Ok(());
        }
        let catalog = if source.is_dir() {
            let lookup = source.join("lookup.csv");
            if lookup.is_file() {
                Catalog::read(&lookup)?
            } else {
                Catalog::from_dir(source)?
            }
        } else {
            Catalog::read(source)?
        };
        let staging = ctx.out_dir.join("brainio");
        let s = ingest_catalog(&catalog, &ids, &staging, Some(&producer))?;
        // One store per identifier directly under ${out}.
        for e in std::fs::read_dir(&staging)? {
            let e = e?;
            std::fs::rename(e.path(), ctx.out_dir.join(e.file_name()))?;
        }
        std::fs::remove_dir(&staging)?;
        (ctx.progress)(&format!(
            "{} stimulus sets, {} assemblies",
            s.stimulus_sets.len(),
            s.assemblies.len()
        ));
        Ok(())
    }
}

/// `imagenet`: an ILSVRC2012 root into an image index.
pub struct ImagenetKind;

impl StageKind for ImagenetKind {
    fn name(&self) -> &str {
        "imagenet"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        &[]
    }
    fn doc(&self) -> &str {
        "an ILSVRC2012 tree (input `root`, optional `val_labels` and `manifest`) into an image \
         index (path, label, blake3) in ${out}"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let root = ctx.one_input("root")?;
        check_manifest(ctx, root)?;
        let labels = ctx.optional_input("val_labels")?;
        let s = crate::imagenet::ingest_imagenet(root, labels, ctx.out_dir)?;
        crate::imagenet::make_root_portable(ctx.out_dir)?;
        (ctx.progress)(&format!("{:?}, {} classes", s.counts, s.classes));
        Ok(())
    }
}

/// `cifar`: CIFAR-100 (binary version) into a stimulus-set store per split.
pub struct CifarKind;

impl StageKind for CifarKind {
    fn name(&self) -> &str {
        "cifar"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        &[]
    }
    fn doc(&self) -> &str {
        "CIFAR-100 binary files (input `root`, optional `manifest`) into stimulus-set stores \
         ${out}/train and ${out}/test"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let root = ctx.one_input("root")?;
        check_manifest(ctx, root)?;
        let s = crate::cifar::ingest_cifar(root, ctx.out_dir)?;
        (ctx.progress)(&format!("{:?}, {} classes", s.counts, s.classes));
        Ok(())
    }
}

const COCO_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "grayscale_only",
    ty: ParamType::Bool,
    required: false,
    doc: "keep only one-channel images (default false)",
}];

/// `coco`: MS COCO images + instances JSON into an image index.
pub struct CocoKind;

impl StageKind for CocoKind {
    fn name(&self) -> &str {
        "coco"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        COCO_PARAMS
    }
    fn doc(&self) -> &str {
        "MS COCO (inputs `images` and `instances`, optional `manifest`) into an image index in \
         ${out}"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let images = ctx.one_input("images")?;
        check_manifest(ctx, images)?;
        let instances = ctx.one_input("instances")?;
        let gray = ctx
            .params
            .get("grayscale_only")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let s = crate::coco::ingest_coco(images, instances, gray, ctx.out_dir)?;
        crate::imagenet::make_root_portable(ctx.out_dir)?;
        (ctx.progress)(&format!("{} images ({} grayscale)", s.images, s.grayscale));
        Ok(())
    }
}
