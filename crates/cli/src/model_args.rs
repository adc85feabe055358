//! The arguments of the model commands (`ventral model|train|eval|extract`). `ventral`
//! parses them and hands them, as JSON, to the `ventral-torch` worker, which runs them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

/// The architecture knobs shared by the commands that build a model.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct ArchArgs {
    /// CORnet-S, CORnet-Z, CORnet-R, CORnet-RT, or a torchvision architecture by its
    /// torchvision name: alexnet, vgg11/13/16/19(_bn), resnet18/34/50/101/152,
    /// densenet121/161/169/201, squeezenet1_0/1_1, mobilenet_v2, inception_v3.
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

/// `ventral model …`.
#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum ModelCmd {
    /// Import a `torch.save` checkpoint (an official CORnet checkpoint, or a torchvision
    /// state dict with `--arch`) into a weights folder; names and shapes are verified. With
    /// `--torchscript`, any model as a TorchScript file from `tools/torchscript_layers.py`.
    Import {
        /// The checkpoint (`.pth`, `.pth.tar`), or the TorchScript file.
        checkpoint: PathBuf,
        /// The weights folder to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The file is a TorchScript model whose forward returns its layers by name; its
        /// layers and classes are read by running it once (at `--resolution`, else the
        /// resolution it was traced at).
        #[arg(long)]
        torchscript: bool,
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

/// `ventral train`.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainArgs {
    /// The image index (`ventral ingest imagenet`).
    #[arg(long)]
    pub index: PathBuf,
    /// The output folder (epochs/, final weights, history.json).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub arch: ArchArgs,
    /// Epochs.
    #[arg(long, default_value_t = 43)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Divide the learning rate by 10 every N epochs.
    #[arg(long, default_value_t = 20)]
    pub lr_step: usize,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// The seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// At most N training images per epoch (0: all).
    #[arg(long, default_value_t = 0)]
    pub max_images: usize,
    /// Mixed precision on CUDA: fp32 (none), bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    pub amp: ventral_model_spec::recipe::Amp,
    /// Weights and batches in channels-last (NHWC) memory order (faster on CUDA).
    #[arg(long)]
    pub channels_last: bool,
    /// cuDNN autotuning on CUDA: a few % faster steps after seconds of tuning; in fp32
    /// cuDNN's workspaces can keep most of the GPU's memory reserved.
    #[arg(long)]
    pub cudnn_benchmark: bool,
    /// Training augmentation: crop-flip (resize, random crop, flip) or random-resized-crop
    /// (the official CORnet training's: torchvision's RandomResizedCrop and flip).
    #[arg(long, default_value = "crop-flip")]
    pub augment: ventral_model_spec::recipe::Augment,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The device a model command runs on (checked when the command line is parsed).
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct DeviceArg {
    /// cpu, cuda, cuda:N or auto.
    #[arg(long = "device", default_value = "auto", value_parser = device_spec)]
    pub spec: String,
}

fn device_spec(s: &str) -> Result<String, String> {
    ventral_model_spec::DeviceSpec::parse(s).map(|_| s.to_string())
}

/// `ventral eval`.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct EvalArgs {
    /// The weights folder.
    #[arg(long)]
    pub weights: PathBuf,
    /// The image index.
    #[arg(long)]
    pub index: PathBuf,
    /// The split.
    #[arg(long, default_value = "val")]
    pub split: String,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `ventral extract`.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct ExtractArgs {
    /// The weights folder.
    #[arg(long)]
    pub weights: PathBuf,
    /// A stimulus-set store, a folder of images, or a `.npy` (N, 3, H, W) float32 batch.
    #[arg(long)]
    pub stimuli: PathBuf,
    /// The output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Only these layers (Brain-Score names, repeatable).
    #[arg(long = "layer")]
    pub layers: Vec<String>,
    /// The model's name in the stores.
    #[arg(long)]
    pub model_id: Option<String>,
    /// Reduce every layer with more features than N to N principal components (Brain-Score's
    /// layer PCA: 1000), fitted on `--pca-index`'s validation images.
    #[arg(long, value_name = "N", requires = "pca_index")]
    pub pca: Option<usize>,
    /// The ImageNet index (`ventral ingest imagenet`) whose validation images fit the PCA:
    /// the first of each class, then the second, … up to `--pca-fit-images`.
    #[arg(long, value_name = "INDEX")]
    pub pca_index: Option<PathBuf>,
    /// How many validation images fit the PCA.
    #[arg(long, default_value_t = 1000)]
    pub pca_fit_images: usize,
    /// Memory the PCA'd layers may hold at once (Slurm's syntax: `8G`, `512M`); layers are
    /// then fitted and extracted in groups that fit, one pass over the images each. Default:
    /// half of the memory available as the extraction starts.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory, requires = "pca")]
    pub memory: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// A model command, as `ventral` hands it to the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCommand {
    /// Print JSON instead of text.
    pub json: bool,
    /// The workspace (`-C`, else the current folder): an image index whose root is
    /// workspace-relative (one a pipeline stage wrote) is read against it.
    #[serde(default)]
    pub workspace: Option<std::path::PathBuf>,
    /// The command.
    pub command: ModelAction,
}

/// The model commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ModelAction {
    /// `ventral model …`.
    Model(ModelCmd),
    /// `ventral train`.
    Train(TrainArgs),
    /// `ventral eval`.
    Eval(EvalArgs),
    /// `ventral extract`.
    Extract(ExtractArgs),
}

/// A memory size in Slurm's syntax (`8G`, `512M`; megabytes without a unit), in bytes.
fn parse_memory(s: &str) -> Result<u64, String> {
    ventral_dag::resources::mem_bytes(s).ok_or_else(|| {
        format!("`{s}` is not a memory size (a whole number with K, M, G or T, e.g. 8G)")
    })
}
