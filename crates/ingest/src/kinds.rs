//! The readers as built-in stage kinds: `brainio`, `imagenet`, `coco`.
//!
//! ```toml
//! [stages.recordings]
//! kind = "brainio"
//! inputs = { source = "data/real/brainio", manifest = "manifests/brainio.toml" }
//! identifiers = ["dicarlo.MajajHong2015.public"]   # default: everything in the catalog
//!
//! [stages.imagenet]
//! kind = "imagenet"
//! inputs = { root = "data/real/ILSVRC2012", manifest = "manifests/ilsvrc2012.toml" }
//! ```
//!
//! With a `manifest` input the data is checked against it before anything is read: a
//! file-tree manifest (size and blake3 of every listed file) or a source manifest
//! (`manifests/*.toml`: the hashes the publishers give, [`crate::manifest::check`]);
//! `source`, `root` and `images` are the data the kind reads.

use std::path::Path;

use ventral_stage::{BoxError, StageContext, StageKind};

/// Verify `root` against the stage's `manifest` input (a file-tree or a source manifest),
/// if it has one.
fn check_manifest(ctx: &StageContext<'_>, root: &Path) -> Result<(), BoxError> {
    if let Some(m) = ctx.optional_input("manifest")? {
        (ctx.progress)(&crate::manifest::check(m, root)?);
    }
    Ok(())
}

/// The params of `brainio`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrainioParams {
    /// Catalog identifiers to ingest (their stimulus sets come along); default: all. For one
    /// `.nc` or StimulusSet `.csv`, the identifier to give it.
    #[serde(default)]
    pub identifiers: Vec<String>,
}

impl ventral_stage::KindParams for BrainioParams {}

/// The params of `coco`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CocoParams {
    /// Keep only one-channel (grayscale) images.
    #[serde(default)]
    pub grayscale_only: bool,
}

impl ventral_stage::KindParams for CocoParams {}

/// `brainio`: a BrainIO catalog, folder or `.nc` into one store per identifier.
pub struct BrainioKind;

impl StageKind for BrainioKind {
    fn name(&self) -> &str {
        "brainio"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(BrainioParams);
    fn doc(&self) -> &str {
        "BrainIO stimulus sets (CSV+ZIP) and assemblies (netCDF4) from a lookup.csv, a folder, \
         one .nc or one StimulusSet .csv (input `source`, optional `manifest`) into \
         ${out}/assemblies/<id>/ and ${out}/stimulus_sets/<id>/"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ventral_stage::typed::parse::<BrainioParams>(ctx.params)?;
        let src = crate::brainio::BrainioSource {
            source: ctx.one_input("source")?.to_path_buf(),
            identifiers: p.identifiers,
            manifest: ctx.optional_input("manifest")?.map(Path::to_path_buf),
            producer: Some(ctx.stage.to_string()),
            ..Default::default()
        };
        crate::brainio::ingest_brainio(&src, ctx.out_dir, ctx.progress)?;
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
    ventral_stage::typed_params!(ventral_stage::typed::NoParams);
    fn doc(&self) -> &str {
        "an ILSVRC2012 tree (input `root`, optional `val_labels` and `manifest`) into an image \
         index (path, label, blake3) in ${out}"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let root = ctx.one_input("root")?;
        check_manifest(ctx, root)?;
        let labels = ctx.optional_input("val_labels")?;
        let s = crate::imagenet::ingest_imagenet(root, labels, ctx.out_dir)?;
        crate::imagenet::make_root_portable(ctx.out_dir, Some(ctx.workspace))?;
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
    ventral_stage::typed_params!(ventral_stage::typed::NoParams);
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

/// `coco`: MS COCO images + instances JSON into an image index.
pub struct CocoKind;

impl StageKind for CocoKind {
    fn name(&self) -> &str {
        "coco"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(CocoParams);
    fn doc(&self) -> &str {
        "MS COCO (inputs `images` and `instances`, optional `manifest`) into an image index in \
         ${out}"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let images = ctx.one_input("images")?;
        check_manifest(ctx, images)?;
        let instances = ctx.one_input("instances")?;
        let gray = ventral_stage::typed::parse::<CocoParams>(ctx.params)?.grayscale_only;
        let s = crate::coco::ingest_coco(images, instances, gray, ctx.out_dir)?;
        crate::imagenet::make_root_portable(ctx.out_dir, Some(ctx.workspace))?;
        (ctx.progress)(&format!("{} images ({} grayscale)", s.images, s.grayscale));
        Ok(())
    }
}
