//! The model as built-in stage kinds: `init`, `import`, `train`, `evaluate`, `extract`.
//!
//! ```toml
//! [stages.train]
//! kind = "train"
//! inputs = { index = "stage:imagenet" }
//! model = { arch = "CORnet-S", width = 0.25, resolution = 64 }   # CornetConfig fields
//! recipe = { epochs = 4, batch = 64, lr = 0.05, seed = 0 }        # TrainOptions fields
//!
//! [stages.activations]
//! kind = "extract"
//! inputs = { weights = "stage:train", stimuli = "stage:world/hvm" }
//! ```
//!
//! The kinds' names, params and runtime are declared in `ventral-model-spec`, which the
//! engine reads without libtorch; here they run (in the `ventral-torch` worker).
//!
//! `train` keeps its epoch checkpoints in the folder the engine keeps for its key
//! (`<store>/resume/<key>/`) while it runs, so a killed run resumes from its last complete
//! epoch; the finished output holds the final weights, every epoch's checkpoint and the
//! history. `device` (default `auto`, resolved when the plan is made) is part of a stage's
//! runtime identity: CPU and CUDA results are different outputs.

use ventral_model_spec::params::{
    EvaluateParams, ExtractParams, ImportParams, InitParams, TrainParams,
};
use ventral_model_spec::{Device as SpecDevice, Runtime};
use ventral_stage::typed::parse;
use ventral_stage::{BoxError, ParamError, ParamSpec, Params, StageContext, StageKind};

use crate::extract::{ExtractOptions, Stimuli, extract};
use crate::train::{evaluate, train};
use crate::{Model, describe, parse_device};

/// The device the stage's declared runtime names (the engine resolved `auto` when it made
/// the plan), checked against what this process can use: libtorch's version, the CPU
/// instruction set it is pinned to, the CUDA device.
fn device_of(ctx: &StageContext<'_>) -> Result<tch::Device, BoxError> {
    let declared = ctx
        .runtime
        .ok_or("the job declares no runtime (every model kind declares one)")?;
    let rt = Runtime::parse(declared)?;
    crate::runtime::verify(&rt)?;
    Ok(match rt.device {
        SpecDevice::Cpu => tch::Device::Cpu,
        SpecDevice::Cuda(i) => parse_device(&format!("cuda:{i}"))?,
    })
}

fn decl_params(name: &str) -> Vec<ParamSpec> {
    ventral_model_spec::decl(name).map_or_else(Vec::new, |d| (d.params)())
}

fn decl_doc(name: &str) -> &'static str {
    ventral_model_spec::decl(name).map_or("", |d| d.doc)
}

fn declared_runtime(name: &str, params: &Params) -> Result<Option<String>, BoxError> {
    match ventral_model_spec::decl(name) {
        Some(d) => ventral_model_spec::runtime(d, params),
        None => Ok(None),
    }
}

macro_rules! kind_boilerplate {
    ($t:ident, $name:literal) => {
        /// A stage kind (see the module docs).
        pub struct $t;
    };
}

/// The parts of a model kind's `StageKind` impl that come from its declaration in
/// `ventral-model-spec`.
macro_rules! declared {
    ($name:literal) => {
        fn name(&self) -> &str {
            $name
        }
        ventral_stage::code_crate!();
        fn params(&self) -> Vec<ParamSpec> {
            decl_params($name)
        }
        fn doc(&self) -> &str {
            decl_doc($name)
        }
        fn runtime(&self, params: &Params) -> Result<Option<String>, BoxError> {
            declared_runtime($name, params)
        }
        fn check(&self, params: &Params) -> Result<(), BoxError> {
            match ventral_model_spec::decl($name) {
                Some(d) => ventral_model_spec::check(d, params),
                None => Ok(()),
            }
        }
    };
}

kind_boilerplate!(InitKind, "init");
kind_boilerplate!(ImportKind, "import");
kind_boilerplate!(TrainKind, "train");
kind_boilerplate!(EvaluateKind, "evaluate");
kind_boilerplate!(ExtractKind, "extract");

impl StageKind for InitKind {
    declared!("init");
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: InitParams = parse(ctx.params)?;
        let seed = p.seed;
        let device = device_of(ctx)?;
        let m = Model::new(&p.model, device, seed)?;
        m.save(ctx.out_dir, &format!("init:{seed}"))?;
        Ok(())
    }
}

impl StageKind for ImportKind {
    declared!("import");
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: ImportParams = parse(ctx.params)?;
        device_of(ctx)?;
        let ckpt = ctx.one_input("checkpoint")?;
        let meta = if p.model.arch == crate::Arch::TorchScript {
            crate::import_torchscript(ckpt, Some(p.model.resolution), ctx.out_dir)?
        } else {
            crate::import_checkpoint(ckpt, &p.model, ctx.out_dir)?
        };
        (ctx.progress)(&format!(
            "{}: {} parameters",
            describe(&meta.config),
            meta.parameters
        ));
        Ok(())
    }
}

impl StageKind for TrainKind {
    declared!("train");
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let TrainParams {
            model: c,
            recipe: opts,
            ..
        } = parse(ctx.params)?;
        let index = ctx.one_input("index")?;
        let device = device_of(ctx)?;
        // The resumable working folder the engine keeps for this key, on the store's file
        // system (so that its epochs can be renamed into the output).
        let work = ctx.resume_dir;
        std::fs::create_dir_all(work)?;
        let rate = crate::train::Throughput::default();
        let progress = |p: &crate::train::Progress| {
            (ctx.progress)(&p.line(rate.rate(p.epoch, p.done)));
        };
        let summary = train(
            &c,
            index,
            Some(ctx.workspace),
            work,
            &opts,
            device,
            &progress,
        )?;
        if summary.resumed_from > 0 {
            (ctx.progress)(&format!("resumed after epoch {}", summary.resumed_from));
        }
        for w in summary.loader_warnings() {
            (ctx.progress)(&w);
        }
        // Move everything into the output (the object store keeps every epoch).
        for e in std::fs::read_dir(work)? {
            let e = e?;
            std::fs::rename(e.path(), ctx.out_dir.join(e.file_name()))?;
        }
        Ok(())
    }
}

impl StageKind for EvaluateKind {
    declared!("evaluate");
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: EvaluateParams = parse(ctx.params)?;
        let model = Model::open(ctx.one_input("weights")?, device_of(ctx)?)?;
        let progress =
            |done: usize, total: usize| (ctx.progress)(&format!("{done}/{total} images"));
        let index = ctx.one_input("index")?;
        let s = evaluate(
            &model,
            index,
            Some(ctx.workspace),
            &p.split,
            p.batch as usize,
            &progress,
        )?;
        let config = &model.net.config;
        let e = ventral_store::scores::Evaluation {
            model: p.model_id.unwrap_or_else(|| crate::describe(config)),
            images: s.images,
            top1: s.top1,
            top5: s.top5,
            depth: config.depth().map(|d| d as f64),
            parameters: u64::try_from(model.parameters()).ok(),
        };
        ventral_store::scores::write_evaluation(ctx.out_dir, &e)?;
        (ctx.progress)(&format!("top-1 {:.4}, top-5 {:.4}", s.top1, s.top5));
        Ok(())
    }
}

impl StageKind for ExtractKind {
    declared!("extract");
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: ExtractParams = parse(ctx.params)?;
        let model = Model::open(ctx.one_input("weights")?, device_of(ctx)?)?;
        // Layer names are checked against the model the weights hold, before any work.
        let known = model.net.config.layers();
        if let Some(bad) = p.layers.iter().find(|l| !known.contains(l)) {
            return Err(ParamError::boxed(
                "layers",
                format!(
                    "`{bad}` is not a layer of {} (layers: {})",
                    describe(&model.net.config),
                    known.join(", ")
                ),
            ));
        }
        let pca = match (p.pca, ctx.input("pca_images").ok().and_then(|v| v.first())) {
            (Some(k), Some(index)) => Some(crate::extract::PcaOptions {
                components: k as usize,
                images: crate::extract::pca_images(
                    index,
                    Some(ctx.workspace),
                    p.pca_fit_images as usize,
                )?,
            }),
            (Some(_), None) => {
                return Err(ParamError::boxed(
                    "pca",
                    "needs the input `pca_images` (an ImageNet index) to fit the PCA on",
                ));
            }
            (None, _) => None,
        };
        let opts = ExtractOptions {
            batch: p.batch as usize,
            model_id: p.model_id.unwrap_or_else(|| ctx.stage.to_string()),
            layers: p.layers,
            producer: Some(ctx.stage.to_string()),
            pca,
            // Three quarters of what the stage asked for: the rest is the model's, its
            // batches' and the writers' (a cluster kills a job past its `--mem`).
            memory: ctx.memory.map(|m| m / 4 * 3),
        };
        let stimuli = Stimuli::from_path(ctx.one_input("stimuli")?);
        let progress =
            |done: usize, total: usize| (ctx.progress)(&format!("{done}/{total} images"));
        let s = extract(&model, &stimuli, ctx.out_dir, &opts, &progress)?;
        (ctx.progress)(&format!(
            "{} stimuli, {:.1} images/s, {} pass{} over the images",
            s.stimuli,
            s.images_per_second,
            s.passes,
            if s.passes == 1 { "" } else { "es" }
        ));
        Ok(())
    }
}
