//! The training recipe ([`TrainOptions`], the `recipe` param of the `train` kind), without
//! libtorch.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Mixed precision for training on CUDA.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Amp {
    /// Full precision (no autocast).
    #[default]
    #[serde(alias = "")]
    Fp32,
    /// bfloat16 autocast.
    Bf16,
    /// float16 autocast.
    Fp16,
}

impl std::str::FromStr for Amp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "fp32" => Ok(Amp::Fp32),
            "bf16" => Ok(Amp::Bf16),
            "fp16" => Ok(Amp::Fp16),
            other => Err(format!("`{other}` (fp32, bf16 or fp16)")),
        }
    }
}

/// The training augmentation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Resize the short side to `size·256/224`, a random `size × size` crop, a random
    /// horizontal flip: what the embedded profile trains with (its 64-px synthetic images
    /// are too small for the paper's crops of 8–100 % of an image).
    #[default]
    CropFlip,
    /// The official CORnet training script's (torchvision's `RandomResizedCrop(size)` and
    /// `RandomHorizontalFlip()`), for ImageNet-sized photographs.
    RandomResizedCrop,
}

impl Augment {
    fn is_default(&self) -> bool {
        *self == Augment::default()
    }
}

impl std::str::FromStr for Augment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "crop-flip" => Ok(Augment::CropFlip),
            "random-resized-crop" => Ok(Augment::RandomResizedCrop),
            other => Err(format!("`{other}` (crop-flip or random-resized-crop)")),
        }
    }
}

/// The recipe.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Epochs (43).
    pub epochs: usize,
    /// Batch size (256).
    pub batch: usize,
    /// Initial learning rate (.1).
    pub lr: f64,
    /// Divide the learning rate by 10 every this many epochs (20).
    pub lr_step: usize,
    /// SGD momentum (.9).
    pub momentum: f64,
    /// Weight decay (1e-4).
    pub weight_decay: f64,
    /// The seed of everything random.
    pub seed: u64,
    /// At most this many training images per epoch (all when 0).
    pub max_images: usize,
    /// Mixed precision on CUDA (fp32: none).
    pub amp: Amp,
    /// Keep weights and batches in channels-last (NHWC) memory order, which Tensor Cores
    /// prefer on CUDA; the numbers are the same model's.
    pub channels_last: bool,
    /// cuDNN autotuning on CUDA (`cudnn.benchmark`): a few % faster steps once every
    /// convolution shape has been timed, but seconds of tuning at the start and, in fp32,
    /// cuDNN workspaces that can keep most of the GPU's memory reserved.
    pub cudnn_benchmark: bool,
    /// The augmentation of training images (crop-flip; the paper's: random-resized-crop).
    /// Left out of the recipe's serialised form at its default, so recipes written before it
    /// existed keep their bytes.
    #[serde(skip_serializing_if = "Augment::is_default")]
    pub augment: Augment,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 43,
            batch: 256,
            lr: 0.1,
            lr_step: 20,
            momentum: 0.9,
            weight_decay: 1e-4,
            seed: 0,
            max_images: 0,
            amp: Amp::Fp32,
            channels_last: false,
            cudnn_benchmark: false,
            augment: Augment::CropFlip,
        }
    }
}

impl TrainOptions {
    /// Check the values serde cannot: a batch of at least one image, a positive learning
    /// rate and step, a known mixed precision.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| {
            Err(ConfigError {
                field: field.into(),
                message,
            })
        };
        if self.batch == 0 {
            return bad("batch", "0 (at least 1)".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("{} (a positive number)", self.lr));
        }
        if self.lr_step == 0 {
            return bad("lr_step", "0 (at least 1)".into());
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("{} (0 ≤ momentum < 1)", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("{} (≥ 0)", self.weight_decay));
        }
        Ok(())
    }
}
