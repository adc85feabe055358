//! `ventral model`, `ventral train`, `ventral eval`, `ventral extract`: the model crate as
//! direct commands, run in the worker.

use std::path::Path;

use ventral_ingest::write_fresh;

use anyhow::{Context, Result};
use ventral::model_args::{ArchArgs, ExtractArgs, ModelAction, ModelCmd, ModelCommand, TrainArgs};
use ventral_model::extract::{
    ExtractOptions, ExtractSummary, PcaOptions, Stimuli, extract, pca_images,
};
use ventral_model::train::{EvalSummary, TrainOptions, TrainSummary, evaluate, train};
use ventral_model::{CornetConfig, Model, cornet::parameter_counts, parse_device};

/// The configuration the architecture arguments ask for.
pub fn config(this: &ArchArgs) -> Result<CornetConfig> {
    {
        let arch: ventral_model::Arch = this.arch.parse().map_err(anyhow::Error::msg)?;
        let mut c = CornetConfig::for_arch(arch);
        if let Some(t) = &this.times {
            anyhow::ensure!(
                t.len() == 3,
                "--times takes three numbers (V2, V4, IT), got {t:?}"
            );
            c.times = [t[0], t[1], t[2]];
        }
        if let Some(w) = this.width {
            c.width = w;
        }
        if let Some(r) = this.resolution {
            c.resolution = r;
        }
        if let Some(k) = this.classes {
            c.classes = k;
        }
        if let Some(s) = this.scale {
            c.scale = s;
        }
        if let Some(v) = this.convs {
            c.convs = v;
        }
        c.skip = !this.no_skip;
        c.shared_norm = this.shared_norm;
        c.validate()?;
        Ok(c)
    }
}

/// `--device` parsing shared by the commands.
pub fn device(spec: &str) -> Result<ventral_model::tch::Device> {
    Ok(parse_device(spec)?)
}

/// A command's result: JSON with `--json`, else its text.
trait Rendered: serde::Serialize {
    fn text(&self) -> String;
}

fn emit(json: bool, v: &impl Rendered) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", v.text());
    }
    Ok(())
}

/// Parameters of one top-level module.
#[derive(serde::Serialize)]
struct ModuleParameters {
    module: String,
    parameters: i64,
}

/// `ventral model import|init|info`: what the weights are.
#[derive(serde::Serialize)]
pub struct Info {
    model: String,
    config: CornetConfig,
    parameters: i64,
    per_module: Vec<ModuleParameters>,
    layers: Vec<String>,
}

impl Info {
    fn of(model: &Model) -> Info {
        Info {
            model: ventral_model::describe(&model.net.config),
            config: model.net.config.clone(),
            parameters: model.parameters(),
            per_module: parameter_counts(&model.vs)
                .into_iter()
                .map(|(module, parameters)| ModuleParameters { module, parameters })
                .collect(),
            layers: model.net.config.layers(),
        }
    }
}

impl Rendered for Info {
    fn text(&self) -> String {
        let mut l = vec![format!("{}: {} parameters", self.model, self.parameters)];
        for m in &self.per_module {
            l.push(format!("  {:<8} {:>12}", m.module, m.parameters));
        }
        l.push(format!("layers: {}", self.layers.join(", ")));
        l.join("\n")
    }
}

/// `ventral train`'s summary.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Trained(TrainSummary);

impl Rendered for Trained {
    fn text(&self) -> String {
        let s = &self.0;
        s.history
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let rate = i
                    .checked_sub(s.resumed_from)
                    .and_then(|k| s.images_per_second.get(k))
                    .map(|r| format!(", {r:.1} images/s"))
                    .unwrap_or_default();
                let loader = i
                    .checked_sub(s.resumed_from)
                    .and_then(|k| {
                        Some((s.loader_images_per_second.get(k)?, s.waiting_share.get(k)?))
                    })
                    .map(|(r, w)| {
                        format!(
                            " (loader {r:.0} images/s, model waiting {:.0} %)",
                            100.0 * w
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "epoch {}: lr {}, loss {:.4}, train top-1 {:.3}{rate}{loader}",
                    e.epoch, e.lr, e.loss, e.train_top1
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `ventral eval`'s summary.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Evaluated(EvalSummary);

impl Rendered for Evaluated {
    fn text(&self) -> String {
        format!(
            "{} images: top-1 {:.4}, top-5 {:.4}",
            self.0.images, self.0.top1, self.0.top5
        )
    }
}

/// `ventral extract`'s summary.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Extracted(ExtractSummary);

impl Rendered for Extracted {
    fn text(&self) -> String {
        let s = &self.0;
        let mut l = vec![format!(
            "{} stimuli, {:.1} images/s ({:.2} s in forward passes)",
            s.stimuli, s.images_per_second, s.forward_seconds
        )];
        for (store, layer, n) in &s.layers {
            l.push(format!("  {store} ({layer}): {n} neuroids"));
        }
        l.join("\n")
    }
}

pub fn model(cmd: &ModelCmd) -> Result<Info> {
    match cmd {
        ModelCmd::Import {
            checkpoint,
            output,
            torchscript,
            arch,
        } => {
            if *torchscript {
                write_fresh(output, |tmp| -> Result<_> {
                    Ok(ventral_model::import_torchscript(
                        checkpoint,
                        arch.resolution,
                        tmp,
                    )?)
                })?;
            } else {
                let config = config(arch)?;
                write_fresh(output, |tmp| -> Result<_> {
                    Ok(ventral_model::import_checkpoint(checkpoint, &config, tmp)?)
                })?;
            }
            let model = Model::open(output, ventral_model::tch::Device::Cpu)?;
            Ok(Info::of(&model))
        }
        ModelCmd::Init { output, seed, arch } => {
            let model = Model::new(&config(arch)?, ventral_model::tch::Device::Cpu, *seed)?;
            write_fresh(output, |tmp| -> Result<_> {
                Ok(model.save(tmp, &format!("init:{seed}"))?)
            })?;
            Ok(Info::of(&model))
        }
        ModelCmd::Info { weights, arch } => {
            let model = match weights {
                Some(w) => Model::open(w, ventral_model::tch::Device::Cpu)?,
                None => Model::new(&config(arch)?, ventral_model::tch::Device::Cpu, 0)?,
            };
            Ok(Info::of(&model))
        }
    }
}

/// `ventral extract` (a workspace-relative PCA index root is read against `workspace`).
pub fn run_extract(a: &ExtractArgs, workspace: Option<&Path>) -> Result<ExtractSummary> {
    let (weights, stimuli, output) = (&a.weights, &a.stimuli, &a.output);
    let (batch, device_spec, layers, model_id) =
        (a.batch, &a.device.spec, &a.layers, a.model_id.as_deref());
    let dev = device(device_spec)?;
    let model = Model::open(weights, dev)
        .with_context(|| format!("opening weights {}", weights.display()))?;
    let id = model_id
        .map(str::to_string)
        .unwrap_or_else(|| ventral_model::describe(&model.net.config));
    let pca = match (a.pca, &a.pca_index) {
        (Some(components), Some(index)) => Some(PcaOptions {
            components,
            images: pca_images(index, workspace, a.pca_fit_images)?,
        }),
        _ => None,
    };
    let opts = ExtractOptions {
        batch,
        model_id: id,
        layers: layers.to_vec(),
        producer: None,
        pca,
        memory: a.memory,
    };
    let s = write_fresh(output, |tmp| -> Result<_> {
        Ok(extract(
            &model,
            &Stimuli::from_path(stimuli),
            tmp,
            &opts,
            &|done, total| tracing::info!("{done}/{total} images"),
        )?)
    })?;
    Ok(s)
}

/// `ventral train` (a workspace-relative index root is read against `workspace`).
pub fn run_train(
    index: &Path,
    workspace: Option<&Path>,
    output: &Path,
    config: &CornetConfig,
    opts: &TrainOptions,
    device_spec: &str,
) -> Result<TrainSummary> {
    let dev = device(device_spec)?;
    let rate = ventral_model::train::Throughput::default();
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let s = train(config, index, workspace, output, opts, dev, &|p| {
        eprint!("\r{}   ", p.line(rate.rate(p.epoch, p.done)));
    })?;
    eprintln!();
    for w in s.loader_warnings() {
        eprintln!("{w}");
    }
    Ok(s)
}

/// `ventral eval`.
pub fn run_eval(
    weights: &Path,
    index: &Path,
    workspace: Option<&Path>,
    split: &str,
    batch: usize,
    device_spec: &str,
) -> Result<EvalSummary> {
    let model = Model::open(weights, device(device_spec)?)?;
    Ok(evaluate(
        &model,
        index,
        workspace,
        split,
        batch,
        &|done, total| tracing::info!("{done}/{total} images"),
    )?)
}

/// Run a model command and print its result (text, or JSON when asked).
pub fn run(cmd: &ModelCommand) -> Result<()> {
    let ws = cmd.workspace.as_deref();
    match &cmd.command {
        ModelAction::Model(action) => emit(cmd.json, &model(action)?),
        ModelAction::Train(a) => emit(cmd.json, &Trained(train_command(a, ws)?)),
        ModelAction::Eval(a) => emit(
            cmd.json,
            &Evaluated(run_eval(
                &a.weights,
                &a.index,
                ws,
                &a.split,
                a.batch,
                &a.device.spec,
            )?),
        ),
        ModelAction::Extract(a) => emit(cmd.json, &Extracted(run_extract(a, ws)?)),
    }
}

fn train_command(a: &TrainArgs, workspace: Option<&Path>) -> Result<TrainSummary> {
    let opts = TrainOptions {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        lr_step: a.lr_step,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        seed: a.seed,
        max_images: a.max_images,
        amp: a.amp,
        channels_last: a.channels_last,
        cudnn_benchmark: a.cudnn_benchmark,
        augment: a.augment,
    };
    run_train(
        &a.index,
        workspace,
        &a.output,
        &config(&a.arch)?,
        &opts,
        &a.device.spec,
    )
}
