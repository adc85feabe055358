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
//! `train` keeps its epoch checkpoints in `.ventral/cache/train/<key>/` while it runs, so a
//! killed run resumes from its last complete epoch; the finished output holds the final
//! weights, every epoch's checkpoint and the history. `device` (default `auto`) is part of a
//! stage's runtime identity: CPU and CUDA results are different outputs.

use serde_json::Value;
use ventral_dag::{BoxError, ParamSpec, ParamType, Params, StageContext, StageKind};

use crate::extract::{ExtractOptions, Stimuli, extract};
use crate::train::{TrainOptions, evaluate, train};
use crate::{CornetConfig, Model, describe, parse_device};

fn config(params: &Params) -> Result<CornetConfig, BoxError> {
    let v = params
        .get("model")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let c: CornetConfig = serde_json::from_value(v).map_err(|e| format!("param `model`: {e}"))?;
    c.validate()?;
    Ok(c)
}

fn device_name(params: &Params) -> String {
    params
        .get("device")
        .and_then(|v| v.as_str())
        .unwrap_or("auto")
        .to_string()
}

/// The device a stage will really use (`auto` resolved), as its runtime identity.
fn runtime_of(params: &Params) -> Option<String> {
    let d = parse_device(&device_name(params)).ok()?;
    Some(format!("tch 0.24 (libtorch 2.11) on {d:?}"))
}

const MODEL: ParamSpec = ParamSpec {
    name: "model",
    ty: ParamType::Table,
    required: false,
    doc: "architecture and knobs: arch, times, scale, skip, convs, shared_norm, width, classes, resolution",
};
const DEVICE: ParamSpec = ParamSpec {
    name: "device",
    ty: ParamType::Str,
    required: false,
    doc: "cpu, cuda, cuda:N or auto (default)",
};

macro_rules! kind_boilerplate {
    ($t:ident, $name:literal) => {
        /// A stage kind (see the module docs).
        pub struct $t {
            code: String,
        }
        impl $t {
            /// With its code identity.
            pub fn new(code: &str) -> Self {
                $t { code: code.into() }
            }
        }
    };
}

kind_boilerplate!(InitKind, "init");
kind_boilerplate!(ImportKind, "import");
kind_boilerplate!(TrainKind, "train");
kind_boilerplate!(EvaluateKind, "evaluate");
kind_boilerplate!(ExtractKind, "extract");

const INIT_PARAMS: &[ParamSpec] = &[
    MODEL,
    ParamSpec {
        name: "seed",
        ty: ParamType::Int,
        required: false,
        doc: "the initialisation seed (default 0)",
    },
];

impl StageKind for InitKind {
    fn name(&self) -> &str {
        "init"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        INIT_PARAMS
    }
    fn doc(&self) -> &str {
        "untrained weights with the official initialisation from `seed`"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let c = config(ctx.params)?;
        let seed = ctx.params.get("seed").and_then(|v| v.as_i64()).unwrap_or(0);
        let m = Model::new(&c, tch::Device::Cpu, seed)?;
        m.save(ctx.out_dir, &format!("init:{seed}"))?;
        Ok(())
    }
}

impl StageKind for ImportKind {
    fn name(&self) -> &str {
        "import"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        std::slice::from_ref(&MODEL)
    }
    fn doc(&self) -> &str {
        "a torch.save checkpoint (input `checkpoint`) as a weights folder, names and shapes checked"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let c = config(ctx.params)?;
        let ckpt = ctx.one_input("checkpoint")?;
        let meta = crate::import_checkpoint(ckpt, &c, ctx.out_dir)?;
        (ctx.progress)(&format!(
            "{}: {} parameters",
            describe(&meta.config),
            meta.parameters
        ));
        Ok(())
    }
}

const TRAIN_PARAMS: &[ParamSpec] = &[
    MODEL,
    ParamSpec {
        name: "recipe",
        ty: ParamType::Table,
        required: false,
        doc: "epochs, batch, lr, lr_step, momentum, weight_decay, seed, max_images, amp, channels_last, cudnn_benchmark (defaults: the paper's)",
    },
    DEVICE,
];

impl StageKind for TrainKind {
    fn name(&self) -> &str {
        "train"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        TRAIN_PARAMS
    }
    fn doc(&self) -> &str {
        "train on an image index (input `index`), one checkpoint per epoch, resumable"
    }
    fn runtime(&self, params: &Params) -> Option<String> {
        runtime_of(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let c = config(ctx.params)?;
        let recipe = ctx
            .params
            .get("recipe")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let opts: TrainOptions =
            serde_json::from_value(recipe).map_err(|e| format!("param `recipe`: {e}"))?;
        let index = ctx.one_input("index")?;
        let device = parse_device(&device_name(ctx.params))?;
        // A resumable working folder named by what determines the result.
        let mut h = blake3::Hasher::new();
        h.update(self.code.as_bytes());
        h.update(serde_json::to_string(ctx.params)?.as_bytes());
        h.update(&std::fs::read(index.join("images.parquet"))?);
        let work = ctx
            .workspace
            .join(".ventral/cache/train")
            .join(&h.finalize().to_hex()[..32]);
        std::fs::create_dir_all(&work)?;
        let rate = crate::train::Throughput::default();
        let progress = |epoch: usize, done: usize, total: usize, loss: f64| {
            (ctx.progress)(&format!(
                "epoch {epoch}: {done}/{total}, loss {loss:.4}, {:.1} images/s",
                rate.rate(epoch, done)
            ));
        };
        train(&c, index, &work, &opts, device, &progress)?;
        // Move everything into the output (the object store keeps every epoch).
        for e in std::fs::read_dir(&work)? {
            let e = e?;
            std::fs::rename(e.path(), ctx.out_dir.join(e.file_name()))?;
        }
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }
}

const EVAL_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "split",
        ty: ParamType::Str,
        required: false,
        doc: "the split to evaluate (default val)",
    },
    ParamSpec {
        name: "batch",
        ty: ParamType::Int,
        required: false,
        doc: "images per forward pass (default 64)",
    },
    ParamSpec {
        name: "model_id",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name in eval.json, as the benchmarks' scores name it (default: the weights' architecture)",
    },
    DEVICE,
];

impl StageKind for EvaluateKind {
    fn name(&self) -> &str {
        "evaluate"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        EVAL_PARAMS
    }
    fn doc(&self) -> &str {
        "top-1/top-5 of `weights` on a split of `index`, written to ${out}/eval.json"
    }
    fn runtime(&self, params: &Params) -> Option<String> {
        runtime_of(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let model = Model::open(
            ctx.one_input("weights")?,
            parse_device(&device_name(ctx.params))?,
        )?;
        let split = ctx
            .params
            .get("split")
            .and_then(|v| v.as_str())
            .unwrap_or("val");
        let batch = ctx
            .params
            .get("batch")
            .and_then(|v| v.as_u64())
            .unwrap_or(64) as usize;
        let s = evaluate(&model, ctx.one_input("index")?, split, batch)?;
        let config = &model.net.config;
        let mut v = serde_json::to_value(&s)?;
        v["model"] = match ctx.params.get("model_id").and_then(|v| v.as_str()) {
            Some(m) => m.into(),
            None => crate::describe(config).into(),
        };
        v["depth"] = config.depth().into();
        v["parameters"] = model.parameters().into();
        std::fs::write(
            ctx.out_dir.join("eval.json"),
            serde_json::to_string_pretty(&v)? + "\n",
        )?;
        (ctx.progress)(&format!("top-1 {:.4}, top-5 {:.4}", s.top1, s.top5));
        Ok(())
    }
}

const EXTRACT_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "layers",
        ty: ParamType::StrList,
        required: false,
        doc: "Brain-Score layer names to keep (default: all)",
    },
    ParamSpec {
        name: "batch",
        ty: ParamType::Int,
        required: false,
        doc: "images per forward pass (default 16)",
    },
    ParamSpec {
        name: "model_id",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name in the stores (default: the stage name)",
    },
    DEVICE,
];

impl StageKind for ExtractKind {
    fn name(&self) -> &str {
        "extract"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        EXTRACT_PARAMS
    }
    fn doc(&self) -> &str {
        "activations of `weights` on `stimuli` (a stimulus-set store, image folder or .npy), one store per area and timestep"
    }
    fn runtime(&self, params: &Params) -> Option<String> {
        runtime_of(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let model = Model::open(
            ctx.one_input("weights")?,
            parse_device(&device_name(ctx.params))?,
        )?;
        let layers: Vec<String> = ctx
            .params
            .get("layers")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let opts = ExtractOptions {
            batch: ctx
                .params
                .get("batch")
                .and_then(|v| v.as_u64())
                .unwrap_or(16) as usize,
            model_id: ctx
                .params
                .get("model_id")
                .and_then(|v| v.as_str())
                .unwrap_or(ctx.stage)
                .to_string(),
            layers,
            producer: Some(ctx.stage.to_string()),
        };
        let stimuli = Stimuli::from_path(ctx.one_input("stimuli")?);
        let progress =
            |done: usize, total: usize| (ctx.progress)(&format!("{done}/{total} images"));
        let s = extract(&model, &stimuli, ctx.out_dir, &opts, &progress)?;
        (ctx.progress)(&format!(
            "{} stimuli, {:.1} images/s",
            s.stimuli, s.images_per_second
        ));
        Ok(())
    }
}
