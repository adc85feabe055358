//! `ventral model`, `ventral train`, `ventral eval`, `ventral extract`: the model crate as
//! direct commands, run in the worker.

use std::path::Path;

use ventral_ingest::write_fresh;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use ventral::model_args::{ArchArgs, ExtractArgs, ModelAction, ModelCmd, ModelCommand, TrainArgs};
use ventral_model::extract::{ExtractOptions, PcaOptions, Stimuli, extract, pca_images};
use ventral_model::train::{TrainOptions, evaluate, train};
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

fn info_json(model: &Model) -> Value {
    let per = parameter_counts(&model.vs);
    json!({
        "model": ventral_model::describe(&model.net.config),
        "config": model.net.config,
        "parameters": model.parameters(),
        "per_module": per.iter().map(|(k, v)| json!({"module": k, "parameters": v})).collect::<Vec<_>>(),
        "layers": model.net.config.layers(),
    })
}

pub fn model(cmd: &ModelCmd) -> Result<Value> {
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
            Ok(info_json(&model))
        }
        ModelCmd::Init { output, seed, arch } => {
            let model = Model::new(&config(arch)?, ventral_model::tch::Device::Cpu, *seed)?;
            write_fresh(output, |tmp| -> Result<_> {
                Ok(model.save(tmp, &format!("init:{seed}"))?)
            })?;
            Ok(info_json(&model))
        }
        ModelCmd::Info { weights, arch } => {
            let model = match weights {
                Some(w) => Model::open(w, ventral_model::tch::Device::Cpu)?,
                None => Model::new(&config(arch)?, ventral_model::tch::Device::Cpu, 0)?,
            };
            Ok(info_json(&model))
        }
    }
}

pub fn print_info(v: &Value) {
    println!(
        "{}: {} parameters",
        v["model"].as_str().unwrap_or_default(),
        v["parameters"]
    );
    if let Some(per) = v["per_module"].as_array() {
        for m in per {
            println!(
                "  {:<8} {:>12}",
                m["module"].as_str().unwrap_or_default(),
                m["parameters"]
            );
        }
    }
    if let Some(l) = v["layers"].as_array() {
        let names: Vec<&str> = l.iter().filter_map(|x| x.as_str()).collect();
        println!("layers: {}", names.join(", "));
    }
}

/// `ventral extract`.
pub fn run_extract(a: &ExtractArgs) -> Result<Value> {
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
            images: pca_images(index, a.pca_fit_images)?,
        }),
        _ => None,
    };
    let opts = ExtractOptions {
        batch,
        model_id: id,
        layers: layers.to_vec(),
        producer: None,
        pca,
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
    Ok(serde_json::to_value(&s)?)
}

/// `ventral train`.
pub fn run_train(
    index: &Path,
    output: &Path,
    config: &CornetConfig,
    opts: &TrainOptions,
    device_spec: &str,
) -> Result<Value> {
    let dev = device(device_spec)?;
    let rate = ventral_model::train::Throughput::default();
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let s = train(
        config,
        index,
        output,
        opts,
        dev,
        &|epoch, done, total, loss| {
            eprint!(
                "\repoch {epoch}: {done}/{total} images, loss {loss:.4}, {:.1} images/s   ",
                rate.rate(epoch, done)
            );
        },
    )?;
    eprintln!();
    Ok(serde_json::to_value(&s)?)
}

/// `ventral eval`.
pub fn run_eval(
    weights: &Path,
    index: &Path,
    split: &str,
    batch: usize,
    device_spec: &str,
) -> Result<Value> {
    let model = Model::open(weights, device(device_spec)?)?;
    let s = evaluate(&model, index, split, batch)?;
    Ok(serde_json::to_value(&s)?)
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Run a model command and print its result (text, or JSON when asked).
pub fn run(cmd: &ModelCommand) -> Result<()> {
    match &cmd.command {
        ModelAction::Model(action) => {
            let v = model(action)?;
            if cmd.json {
                print_json(&v)?;
            } else {
                print_info(&v);
            }
        }
        ModelAction::Train(a) => {
            let v = train_command(a)?;
            if cmd.json {
                print_json(&v)?;
            } else {
                let rates = v["images_per_second"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let resumed = v["resumed_from"].as_u64().unwrap_or(0) as usize;
                for (i, e) in v["history"].as_array().into_iter().flatten().enumerate() {
                    let rate = i
                        .checked_sub(resumed)
                        .and_then(|k| rates.get(k))
                        .and_then(Value::as_f64)
                        .map(|r| format!(", {r:.1} images/s"))
                        .unwrap_or_default();
                    println!(
                        "epoch {}: lr {}, loss {:.4}, train top-1 {:.3}{rate}",
                        e["epoch"],
                        e["lr"],
                        e["loss"].as_f64().unwrap_or(f64::NAN),
                        e["train_top1"].as_f64().unwrap_or(f64::NAN),
                    );
                }
            }
        }
        ModelAction::Eval(a) => {
            let v = run_eval(&a.weights, &a.index, &a.split, a.batch, &a.device.spec)?;
            if cmd.json {
                print_json(&v)?;
            } else {
                println!(
                    "{} images: top-1 {:.4}, top-5 {:.4}",
                    v["images"],
                    v["top1"].as_f64().unwrap_or(f64::NAN),
                    v["top5"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
        ModelAction::Extract(a) => {
            let v = extract_command(a)?;
            if cmd.json {
                print_json(&v)?;
            } else {
                println!(
                    "{} stimuli, {:.1} images/s ({:.2} s in forward passes)",
                    v["stimuli"],
                    v["images_per_second"].as_f64().unwrap_or(f64::NAN),
                    v["forward_seconds"].as_f64().unwrap_or(f64::NAN)
                );
                for l in v["layers"].as_array().into_iter().flatten() {
                    println!(
                        "  {} ({}): {} neuroids",
                        l[0].as_str().unwrap_or_default(),
                        l[1].as_str().unwrap_or_default(),
                        l[2]
                    );
                }
            }
        }
    }
    Ok(())
}

fn train_command(a: &TrainArgs) -> Result<Value> {
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
    };
    run_train(
        &a.index,
        &a.output,
        &config(&a.arch)?,
        &opts,
        &a.device.spec,
    )
}

fn extract_command(a: &ExtractArgs) -> Result<Value> {
    run_extract(a)
}
