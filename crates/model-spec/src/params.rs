//! The params of each model kind, one type per kind: what `ventral kinds` documents, what
//! the pipeline check deserialises before anything runs, and what the worker reads.

use ventral_stage::KindParams;

use crate::config::CornetConfig;
use crate::recipe::TrainOptions;
use crate::{DeviceSpec, check_table};

fn auto() -> String {
    "auto".into()
}

fn check_device(device: &str) -> Result<(), String> {
    DeviceSpec::parse(device)
        .map(drop)
        .map_err(|e| format!("param `device`: {e}"))
}

fn check_batch(batch: u32) -> Result<(), String> {
    if batch == 0 {
        return Err("param `batch`: 0 (a whole number ≥ 1)".into());
    }
    Ok(())
}

/// The params of `init`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitParams {
    /// Architecture and knobs (default: CORnet-S at the paper's size).
    #[serde(default)]
    pub model: CornetConfig,
    /// The initialisation seed.
    #[serde(default)]
    pub seed: i64,
}

impl KindParams for InitParams {
    fn check(&self) -> Result<(), String> {
        not_script(&self.model, "initialised")?;
        check_table("model", &self.model, CornetConfig::validate)
    }
}

/// A TorchScript model comes from its file: it cannot be initialised or trained here.
fn not_script(model: &CornetConfig, what: &str) -> Result<(), String> {
    if model.arch == crate::config::Arch::TorchScript {
        return Err(format!(
            "param `model`: a TorchScript model cannot be {what} here (import its file)"
        ));
    }
    Ok(())
}

/// The params of `import`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Architecture and knobs the checkpoint must match (default: CORnet-S at the paper's
    /// size); `{ arch = "torchscript", resolution = … }` imports a TorchScript file.
    #[serde(default)]
    pub model: CornetConfig,
}

impl KindParams for ImportParams {
    fn check(&self) -> Result<(), String> {
        if self.model.arch == crate::config::Arch::TorchScript {
            // The layers come from the file when it is imported.
            return Ok(());
        }
        check_table("model", &self.model, CornetConfig::validate)
    }
}

/// The params of `train`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Architecture and knobs (default: CORnet-S at the paper's size).
    #[serde(default)]
    pub model: CornetConfig,
    /// The recipe (default: the paper's).
    #[serde(default)]
    pub recipe: TrainOptions,
    /// cpu, cuda, cuda:N or auto (resolved when the plan is made).
    #[serde(default = "auto")]
    pub device: String,
}

impl KindParams for TrainParams {
    fn check(&self) -> Result<(), String> {
        not_script(&self.model, "trained")?;
        check_table("model", &self.model, CornetConfig::validate)?;
        check_table("recipe", &self.recipe, TrainOptions::validate)?;
        check_device(&self.device)
    }
}

/// The params of `evaluate`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// The split of the index to evaluate.
    #[serde(default = "val")]
    pub split: String,
    /// Images per forward pass.
    #[serde(default = "sixty_four")]
    pub batch: u32,
    /// The model's name in eval.json, as the benchmarks' scores name it (default: the
    /// weights' architecture).
    pub model_id: Option<String>,
    /// cpu, cuda, cuda:N or auto (resolved when the plan is made).
    #[serde(default = "auto")]
    pub device: String,
}

fn val() -> String {
    "val".into()
}
fn sixty_four() -> u32 {
    64
}

impl KindParams for EvaluateParams {
    fn check(&self) -> Result<(), String> {
        if self.split.is_empty() {
            return Err("param `split`: empty (train, val, …)".into());
        }
        check_batch(self.batch)?;
        check_device(&self.device)
    }
}

/// The params of `extract`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractParams {
    /// Brain-Score layer names to keep (default: all).
    #[serde(default)]
    pub layers: Vec<String>,
    /// Images per forward pass.
    #[serde(default = "sixteen")]
    pub batch: u32,
    /// The model's name in the stores (default: the stage name).
    pub model_id: Option<String>,
    /// cpu, cuda, cuda:N or auto (resolved when the plan is made).
    #[serde(default = "auto")]
    pub device: String,
    /// Reduce every layer with more features than this to this many principal components,
    /// fitted on the `pca_images` input (an ImageNet index: the first validation image of
    /// each class, then the second, … up to `pca_fit_images`), as Brain-Score's layer PCA
    /// does (1000). Default: no reduction.
    pub pca: Option<u32>,
    /// How many validation images the PCA is fitted on (Brain-Score: 1000).
    #[serde(default = "thousand")]
    pub pca_fit_images: u32,
}

fn thousand() -> u32 {
    1000
}

fn sixteen() -> u32 {
    16
}

impl KindParams for ExtractParams {
    fn check(&self) -> Result<(), String> {
        check_batch(self.batch)?;
        if self.pca == Some(0) {
            return Err("param `pca`: 0 (a number of components ≥ 1)".into());
        }
        if self.pca_fit_images < 2 {
            return Err(format!(
                "param `pca_fit_images`: {} (at least 2 images)",
                self.pca_fit_images
            ));
        }
        check_device(&self.device)
    }
}
