//! `ventral model`, `ventral train`, `ventral eval`, `ventral extract`: the model crate as
//! direct commands.

use std::path::{Path, PathBuf};

use ventral_ingest::write_fresh;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use ventral_model::extract::{ExtractOptions, Stimuli, extract};
use ventral_model::train::{TrainOptions, evaluate, train};
use ventral_model::{CornetConfig, Model, cornet::parameter_counts, parse_device};

/// The architecture knobs shared by the commands that build a model.
#[derive(Args, Debug, Clone)]
pub struct ArchArgs {
    /// CORnet-S, CORnet-Z, CORnet-R or CORnet-RT.
    #[arg(long, default_value = "CORnet-S")]
    pub arch: String,
    /// Timesteps of V2, V4, IT, e.g. 2,4,2.
    #[arg(long, value_delimiter = ',')]
    pub times: Option<Vec<usize>>,
    /// Channel width multiplier.
    #[arg(long)]
    pub width: Option<f64>,
    /// Input resolution (pixels).
    #[arg(long)]
    pub resolution: Option<i64>,
    /// Output classes.
    #[arg(long)]
    pub classes: Option<i64>,
    /// Bottleneck expansion.
    #[arg(long)]
    pub scale: Option<i64>,
    /// Convolutions per block (1, 2, 3).
    #[arg(long)]
    pub convs: Option<usize>,
    /// No skip connections.
    #[arg(long)]
    pub no_skip: bool,
    /// One set of batch norms for all timesteps.
    #[arg(long)]
    pub shared_norm: bool,
}

impl ArchArgs {
    pub fn config(&self) -> Result<CornetConfig> {
        let arch: ventral_model::Arch = self.arch.parse().map_err(anyhow::Error::msg)?;
        let mut c = CornetConfig::for_arch(arch);
        if let Some(t) = &self.times {
            anyhow::ensure!(
                t.len() == 3,
                "--times takes three numbers (V2, V4, IT), got {t:?}"
            );
            c.times = [t[0], t[1], t[2]];
        }
        if let Some(w) = self.width {
            c.width = w;
        }
        if let Some(r) = self.resolution {
            c.resolution = r;
        }
        if let Some(k) = self.classes {
            c.classes = k;
        }
        if let Some(s) = self.scale {
            c.scale = s;
        }
        if let Some(v) = self.convs {
            c.convs = v;
        }
        c.skip = !self.no_skip;
        c.shared_norm = self.shared_norm;
        c.validate()?;
        Ok(c)
    }
}

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Import a `torch.save` checkpoint (official CORnet format) into a weights folder.
    Import {
        /// The checkpoint (`.pth`, `.pth.tar`).
        checkpoint: PathBuf,
        /// The weights folder to write.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        arch: ArchArgs,
    },
    /// Freshly initialised weights (the official initialisation, from a seed).
    Init {
        /// The weights folder to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The seed.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        #[command(flatten)]
        arch: ArchArgs,
    },
    /// Parameters per module of a weights folder, or of an architecture.
    Info {
        /// A weights folder (default: describe --arch and its knobs).
        weights: Option<PathBuf>,
        #[command(flatten)]
        arch: ArchArgs,
    },
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
            arch,
        } => {
            let config = arch.config()?;
            write_fresh(output, |tmp| -> Result<_> {
                Ok(ventral_model::import_checkpoint(checkpoint, &config, tmp)?)
            })?;
            let model = Model::open(output, ventral_model::tch::Device::Cpu)?;
            Ok(info_json(&model))
        }
        ModelCmd::Init { output, seed, arch } => {
            let model = Model::new(&arch.config()?, ventral_model::tch::Device::Cpu, *seed)?;
            write_fresh(output, |tmp| -> Result<_> {
                Ok(model.save(tmp, &format!("init:{seed}"))?)
            })?;
            Ok(info_json(&model))
        }
        ModelCmd::Info { weights, arch } => {
            let model = match weights {
                Some(w) => Model::open(w, ventral_model::tch::Device::Cpu)?,
                None => Model::new(&arch.config()?, ventral_model::tch::Device::Cpu, 0)?,
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
pub fn run_extract(
    weights: &Path,
    stimuli: &Path,
    output: &Path,
    batch: usize,
    device_spec: &str,
    layers: &[String],
    model_id: Option<&str>,
) -> Result<Value> {
    let dev = device(device_spec)?;
    let model = Model::open(weights, dev)
        .with_context(|| format!("opening weights {}", weights.display()))?;
    let id = model_id
        .map(str::to_string)
        .unwrap_or_else(|| ventral_model::describe(&model.net.config));
    let opts = ExtractOptions {
        batch,
        model_id: id,
        layers: layers.to_vec(),
        producer: None,
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
