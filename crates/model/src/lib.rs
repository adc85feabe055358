//! `ventral-model`: the CORnet family in tch (libtorch) — the only crate that links libtorch.
//!
//! - [`cornet`]: CORnet-S (exact, with the Fig. 4 circuitry knobs) and CORnet-Z, under the
//!   official parameter names.
//! - [`checkpoint`]: `torch.save` checkpoints read without Python; names and shapes checked.
//! - [`images`]: Brain-Score's preprocessing and the training augmentations.
//! - [`extract`]: per-area, per-timestep activations streamed into assembly stores.
//! - [`train`]: the paper's recipe, seeded, with a checkpoint per epoch and exact resume.
//!
//! Weights live in a folder: `model.json` (format, configuration, provenance) and
//! `weights.safetensors`.

pub mod checkpoint;
pub mod cornet;
mod error;
pub mod extract;
pub mod images;
pub mod kinds;
pub mod train;

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, nn};

pub use cornet::{Arch, Cornet, CornetConfig};
pub use error::{ModelError, Result};
/// Re-exported so that users name devices and tensors with the same tch.
pub use tch;

use crate::error::{io, torch};

/// The format tag of a weights folder.
pub const WEIGHTS_FORMAT: &str = "ventral-weights v1";

/// `model.json` of a weights folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightsMeta {
    /// [`WEIGHTS_FORMAT`].
    pub format: String,
    /// The architecture and knobs.
    pub config: CornetConfig,
    /// Trainable parameters.
    pub parameters: i64,
    /// Where the weights came from (a checkpoint file, a training stage, "init:<seed>").
    pub source: String,
}

/// A model with its variables.
pub struct Model {
    /// The variables (official names).
    pub vs: nn::VarStore,
    /// The network.
    pub net: Cornet,
}

impl Model {
    /// A fresh model on `device`, initialised as the official code does from `seed`.
    pub fn new(config: &CornetConfig, device: Device, seed: i64) -> Result<Model> {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(device);
        let net = Cornet::new(&vs.root(), config)?;
        cornet::init_official(&vs);
        Ok(Model { vs, net })
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> i64 {
        cornet::parameter_counts(&self.vs).iter().map(|x| x.1).sum()
    }

    /// Open a weights folder.
    pub fn open(dir: &Path, device: Device) -> Result<Model> {
        let meta = read_meta(dir)?;
        let model = Model::new(&meta.config, device, 0)?;
        let file = dir.join("weights.safetensors");
        let tensors = tch::Tensor::read_safetensors(&file).map_err(|e| io(&file, e))?;
        checkpoint::load_into(&model.vs, &tensors, &file, &describe(&meta.config))?;
        Ok(model)
    }

    /// Write a weights folder (`model.json` + `weights.safetensors`).
    pub fn save(&self, dir: &Path, source: &str) -> Result<WeightsMeta> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let meta = WeightsMeta {
            format: WEIGHTS_FORMAT.into(),
            config: self.net.config.clone(),
            parameters: self.parameters(),
            source: source.into(),
        };
        let mut vars: Vec<(String, tch::Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu)))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let file = dir.join("weights.safetensors");
        tch::Tensor::write_safetensors(&vars, &file)
            .map_err(|e| torch(file.display().to_string(), e))?;
        let text = serde_json::to_string_pretty(&meta).map_err(|e| io(dir, e))?;
        std::fs::write(dir.join("model.json"), text + "\n").map_err(|e| io(dir, e))?;
        Ok(meta)
    }
}

/// A one-line description of a configuration.
pub fn describe(c: &CornetConfig) -> String {
    let arch = match c.arch {
        Arch::S => "CORnet-S",
        Arch::Z => "CORnet-Z",
        Arch::R => "CORnet-R",
        Arch::RT => "CORnet-RT",
    };
    if *c == CornetConfig::for_arch(c.arch) {
        return arch.to_string();
    }
    format!(
        "{arch} (times {:?}, scale {}, skip {}, convs {}, {} norms, width {}, {} classes, {} px)",
        c.times,
        c.scale,
        c.skip,
        c.convs,
        if c.shared_norm {
            "shared"
        } else {
            "per-timestep"
        },
        c.width,
        c.classes,
        c.resolution
    )
}

/// Read `model.json` of a weights folder.
pub fn read_meta(dir: &Path) -> Result<WeightsMeta> {
    let p = dir.join("model.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let meta: WeightsMeta = serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: p.clone(),
        field: "model.json".into(),
        message: e.to_string(),
    })?;
    if meta.format != WEIGHTS_FORMAT {
        return Err(ModelError::Checkpoint {
            path: p,
            field: "format".into(),
            message: format!("`{}` (this ventral reads `{WEIGHTS_FORMAT}`)", meta.format),
        });
    }
    meta.config.validate()?;
    Ok(meta)
}

/// Import a `torch.save` checkpoint for `config` into a weights folder at `out`.
pub fn import_checkpoint(ckpt: &Path, config: &CornetConfig, out: &Path) -> Result<WeightsMeta> {
    let state = checkpoint::read_checkpoint(ckpt)?;
    let model = Model::new(config, Device::Cpu, 0)?;
    checkpoint::load_into(&model.vs, &state, ckpt, &describe(config))?;
    let name = ckpt
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    model.save(out, &format!("checkpoint:{name}"))
}

/// The device named by `spec`: `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" => Ok(Device::Cuda(0)),
        s if s.starts_with("cuda:") => {
            s[5..]
                .parse::<usize>()
                .map(Device::Cuda)
                .map_err(|_| ModelError::Config {
                    field: "device".into(),
                    message: format!("`{s}` (cpu, cuda, cuda:N or auto)"),
                })
        }
        s => Err(ModelError::Config {
            field: "device".into(),
            message: format!("`{s}` (cpu, cuda, cuda:N or auto)"),
        }),
    }
}
