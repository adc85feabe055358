//! Training and evaluation on an image index (`ventral ingest imagenet`).
//!
//! The paper's recipe is the default: SGD with momentum .9 and weight decay 1e-4 (PyTorch's
//! `SGD` update, written out here so that its momentum buffers can be checkpointed), batch
//! 256, learning rate .1 divided by 10 every 20 epochs, 43 epochs, cross-entropy; training
//! views are random crops with horizontal flips, validation views centre crops. Everything
//! random comes from `seed`: the model's initialisation, each epoch's order and each image's
//! crop and flip. After every epoch the weights, the momentum buffers and the history are
//! written to `<out>/epochs/<k>/`; a run started on an `out` that holds epochs resumes from
//! the last complete one and, on CPU, reaches the same weights as an uninterrupted run.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};
use ventral_store::arrow::array::{Array, AsArray};
use ventral_store::arrow::datatypes::Int64Type;

use crate::error::{Result, io, torch};
use crate::images::{self, splitmix};
use crate::{CornetConfig, Model};
use ventral_model_spec::recipe::{Amp, Augment};

pub use ventral_model_spec::recipe::TrainOptions;

/// One epoch's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss.
    pub loss: f64,
    /// Training top-1 (on the augmented views).
    pub train_top1: f64,
}

/// `<out>/epochs/<k>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    epoch: usize,
    options: TrainOptions,
    history: Vec<EpochRecord>,
}

/// An image index's split: absolute paths and labels.
pub struct Split {
    /// Files.
    pub paths: Vec<PathBuf>,
    /// Class indices.
    pub labels: Vec<i64>,
    /// Number of classes of the index.
    pub classes: i64,
}

/// Read split `split` (`train`, `val`) of an image index.
pub fn read_split(index: &Path, workspace: Option<&Path>, split: &str) -> Result<Split> {
    let (meta, images) = ventral_ingest::imagenet::open_index_in(index, workspace)?;
    let root = PathBuf::from(&meta.root);
    let col = |name: &str| {
        images
            .column_by_name(name)
            .ok_or_else(|| io(index, format!("images.parquet has no `{name}` column")))
    };
    let s = col("split")?.as_string::<i32>().clone();
    let p = col("path")?.as_string::<i32>().clone();
    let l = col("label")?.as_primitive::<Int64Type>().clone();
    let mut out = Split {
        paths: Vec::new(),
        labels: Vec::new(),
        classes: meta.classes as i64,
    };
    for i in 0..images.num_rows() {
        if s.value(i) == split && !l.is_null(i) {
            out.paths.push(root.join(p.value(i)));
            out.labels.push(l.value(i));
        }
    }
    Ok(out)
}

/// The gradients of `loss` with respect to `params`, fresh (what `torch.autograd.grad`
/// returns): nothing is accumulated into `.grad`, so there is no zeroing kernel and no
/// read-modify-write per parameter — the effect of PyTorch's `zero_grad(set_to_none=True)`.
/// A parameter the loss does not reach gets an undefined tensor.
pub fn gradients(loss: &Tensor, params: &[Tensor]) -> Result<Vec<Tensor>> {
    Tensor::f_run_backward(&[loss], params, false, false).map_err(|e| torch("backward", e))
}

/// A permutation of `0..n` from `seed` (Fisher–Yates on SplitMix64).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = splitmix(s);
        let j = (s % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn load_batch(
    split: &Split,
    idx: &[usize],
    size: u32,
    seed: Option<u64>,
    augment: Augment,
    spare: Option<Tensor>,
) -> Result<(Tensor, Tensor)> {
    let view_seed = |s: u64, k: usize| splitmix(s ^ (k as u64).wrapping_mul(0x9E37_79B9));
    let x = match (seed, augment) {
        (Some(s), Augment::RandomResizedCrop) => {
            let paths: Vec<&Path> = idx.iter().map(|&i| split.paths[i].as_path()).collect();
            let seeds: Vec<u64> = (0..idx.len()).map(|k| view_seed(s, k)).collect();
            let shape = [idx.len() as i64, 3, size as i64, size as i64];
            let mut x = spare
                .filter(|t| t.size() == shape)
                .unwrap_or_else(|| Tensor::empty(shape, (Kind::Float, Device::Cpu)));
            crate::loader::fill_tensor(&mut x, &paths, &seeds, size)?;
            x
        }
        _ => {
            let per: Vec<Vec<f32>> = idx
                .par_iter()
                .enumerate()
                .map(|(k, &i)| {
                    let img = images::load_rgb(&split.paths[i])?;
                    Ok(match seed {
                        Some(s) => images::train_view(&img, size, view_seed(s, k)),
                        None => images::val_view(&img, size),
                    })
                })
                .collect::<Result<_>>()?;
            images::stack(per, size)
        }
    };
    let y = Tensor::from_slice(&idx.iter().map(|&i| split.labels[i]).collect::<Vec<_>>());
    Ok((x, y))
}

fn epoch_dir(out: &Path, epoch: usize) -> PathBuf {
    out.join("epochs").join(format!("{epoch:03}"))
}

/// The last complete epoch under `out` (one whose `state.json` exists), if any.
fn last_epoch(out: &Path) -> Option<usize> {
    let dir = out.join("epochs");
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        if let Ok(k) = e.file_name().to_string_lossy().parse::<usize>()
            && e.path().join("state.json").is_file()
        {
            best = Some(best.map_or(k, |b: usize| b.max(k)));
        }
    }
    best
}

/// What training did.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// Per epoch.
    pub history: Vec<EpochRecord>,
    /// The epoch training resumed after (0 when it started fresh).
    pub resumed_from: usize,
    /// Images per second of each epoch trained by this call (not of resumed ones). Kept out
    /// of the output folder, which must be the same bytes on every run.
    pub images_per_second: Vec<f64>,
    /// Images per second the loader made while it worked, per epoch trained by this call.
    pub loader_images_per_second: Vec<f64>,
    /// The share of each epoch's time the model waited for the loader (see [`Progress`]).
    pub waiting_share: Vec<f64>,
}

/// Where training stands, after each batch (for progress displays).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// The epoch (from 1).
    pub epoch: usize,
    /// Images of the epoch trained so far.
    pub done: usize,
    /// Images of the epoch.
    pub total: usize,
    /// The epoch's mean loss so far.
    pub loss: f64,
    /// Images per second the loader makes (decode, augment, batch) while it works.
    pub loader_images_per_second: f64,
    /// The share of the epoch's time so far that the model waited for the loader: near 0
    /// when the model is the bottleneck, near 1 when the loader is.
    pub waiting_share: f64,
}

impl Progress {
    /// The progress line of `ventral train` and of the `train` kind, with the epoch's
    /// training rate so far (see [`Throughput`]).
    pub fn line(&self, images_per_second: f64) -> String {
        format!(
            "epoch {}: {}/{} images, loss {:.4}, {:.1} images/s; loader {:.0} images/s, model waiting {:.0} %",
            self.epoch,
            self.done,
            self.total,
            self.loss,
            images_per_second,
            self.loader_images_per_second,
            100.0 * self.waiting_share
        )
    }
}

/// When the model waits for the loader more than this share of the time, `ventral train`
/// says the loader is the bottleneck.
pub const LOADER_BOUND: f64 = 0.1;

impl TrainSummary {
    /// A warning for each epoch of this call in which the model waited for the loader more
    /// than [`LOADER_BOUND`] of the time.
    pub fn loader_warnings(&self) -> Vec<String> {
        self.waiting_share
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > LOADER_BOUND)
            .map(|(k, w)| {
                format!(
                    "warning: epoch {}: the model waited for the loader {:.0} % of the time (loader {:.0} images/s): the loader, not the model, is the bottleneck — more CPU threads (RAYON_NUM_THREADS) or smaller images would speed training up",
                    self.resumed_from + k + 1,
                    100.0 * w,
                    self.loader_images_per_second.get(k).copied().unwrap_or(0.0)
                )
            })
            .collect()
    }
}

/// Images per second within the current epoch, for progress displays (thread-safe, so a
/// `progress` callback can hold one).
#[derive(Debug)]
pub struct Throughput {
    state: std::sync::Mutex<(usize, std::time::Instant)>,
}

impl Default for Throughput {
    fn default() -> Self {
        Throughput {
            state: std::sync::Mutex::new((usize::MAX, std::time::Instant::now())),
        }
    }
}

impl Throughput {
    /// The rate after `done` images of `epoch` (the clock restarts at a new epoch).
    pub fn rate(&self, epoch: usize, done: usize) -> f64 {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if s.0 != epoch {
            *s = (epoch, std::time::Instant::now());
        }
        let secs = s.1.elapsed().as_secs_f64();
        if secs > 0.0 { done as f64 / secs } else { 0.0 }
    }
}

/// Train `config` on the `train` split of `index` (whose workspace-relative root, if any, is
/// read against `workspace`), writing epochs under `out` and the final weights in `out`
/// itself; `progress` is called after each batch.
pub fn train(
    config: &CornetConfig,
    index: &Path,
    workspace: Option<&Path>,
    out: &Path,
    opts: &TrainOptions,
    device: Device,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<TrainSummary> {
    let split = read_split(index, workspace, "train")?;
    if split.paths.is_empty() {
        return Err(io(index, "the index has no `train` images"));
    }
    let mut cfg = config.clone();
    cfg.classes = split.classes;
    let model = Model::new(&cfg, device, opts.seed as i64)?;
    // cuDNN autotuning is process-wide: switched off again when training returns (also on
    // an error), so later stages in the same process run with cuDNN's defaults.
    struct Autotune;
    impl Drop for Autotune {
        fn drop(&mut self) {
            tch::Cuda::cudnn_set_benchmark(false);
        }
    }
    let _autotune = (opts.cudnn_benchmark && device.is_cuda()).then(|| {
        tch::Cuda::cudnn_set_benchmark(true);
        Autotune
    });
    if opts.channels_last {
        model.to_channels_last();
    }
    // Parameters in name order, so momentum buffers are saved and restored by name.
    let mut named: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<String> = named.iter().map(|x| x.0.clone()).collect();
    let params: Vec<Tensor> = named.into_iter().map(|x| x.1).collect();
    let mut bufs: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    let mut history = Vec::new();
    let mut rates = Vec::new();
    let (mut loader_rates, mut waiting) = (Vec::new(), Vec::new());
    let resumed_from = last_epoch(out).unwrap_or(0).min(opts.epochs);
    if resumed_from > 0 {
        let dir = epoch_dir(out, resumed_from);
        let resumed = Model::open(&dir, device)?;
        tch::no_grad(|| {
            for (name, mut t) in model.vs.variables() {
                if let Some(src) = resumed.vs.variables().get(&name) {
                    t.copy_(src);
                }
            }
        });
        let mfile = dir.join("momentum.safetensors");
        let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&mfile)
            .map_err(|e| io(&mfile, e))?
            .into_iter()
            .collect();
        for (b, name) in bufs.iter_mut().zip(&names) {
            let s = saved
                .get(name)
                .ok_or_else(|| io(&mfile, format!("no momentum buffer for `{name}`")))?;
            *b = s.to_device(device);
        }
        let text = std::fs::read_to_string(dir.join("state.json")).map_err(|e| io(&dir, e))?;
        let state: State = serde_json::from_str(&text).map_err(|e| io(&dir, e))?;
        history = state.history;
    }
    let size = cfg.resolution as u32;
    let n = if opts.max_images > 0 {
        opts.max_images.min(split.paths.len())
    } else {
        split.paths.len()
    };
    let amp = match opts.amp {
        Amp::Fp32 => None,
        Amp::Bf16 => Some(Kind::BFloat16),
        Amp::Fp16 => Some(Kind::Half),
    };
    for epoch in resumed_from + 1..=opts.epochs {
        let lr = opts.lr * 0.1f64.powi(((epoch - 1) / opts.lr_step.max(1)) as i32);
        let order = permutation(
            split.paths.len(),
            splitmix(opts.seed ^ (epoch as u64) << 32),
        );
        let order = &order[..n];
        let t0 = std::time::Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0i64, 0usize);
        let batches: Vec<&[usize]> = order.chunks(opts.batch.max(1)).collect();
        // The loader's busy time (nanoseconds) and images, and the model's time waiting
        // for it: what tells a loader-bound run from a model-bound one.
        let loader_ns = std::sync::atomic::AtomicU64::new(0);
        let loader_images = std::sync::atomic::AtomicUsize::new(0);
        let mut waited = std::time::Duration::ZERO;
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Tensor, Tensor)>>(2);
            // On the CPU, used batch tensors come back to the loader to be filled again (no
            // fresh pages to fault in per batch); on CUDA the pinned copies are the caching
            // host allocator's to reuse.
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Tensor>();
            let split = &split;
            let batches2 = batches.clone();
            let (loader_ns, loader_images) = (&loader_ns, &loader_images);
            scope.spawn(move || {
                for (b, idx) in batches2.iter().enumerate() {
                    let seed = splitmix(opts.seed ^ ((epoch as u64) << 40) ^ ((b as u64) << 20));
                    let t = std::time::Instant::now();
                    let spare = back_rx.try_recv().ok();
                    let r = load_batch(split, idx, size, Some(seed), opts.augment, spare)
                        .map(|(x, y)| (crate::images::pin_for(x, device), y));
                    loader_ns.fetch_add(
                        t.elapsed().as_nanos() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    loader_images.fetch_add(idx.len(), std::sync::atomic::Ordering::Relaxed);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
            });
            loop {
                let t = std::time::Instant::now();
                let Ok(r) = rx.recv() else { break };
                waited += t.elapsed();
                let (x_host, y) = r?;
                let (x, y) = (crate::images::upload(&x_host, device)?, y.to_device(device));
                let x = if opts.channels_last {
                    crate::images::channels_last(&x)
                } else {
                    x
                };
                let logits = match amp {
                    Some(k) if device.is_cuda() => {
                        crate::autocast(k, || model.net.forward_t(&x, true)).to_kind(Kind::Float)
                    }
                    _ => model.net.forward_t(&x, true),
                };
                let loss = logits.cross_entropy_for_logits(&y);
                let grads = gradients(&loss, &params)?;
                tch::no_grad(|| {
                    for ((p, b), g) in params.iter().zip(bufs.iter_mut()).zip(&grads) {
                        if !g.defined() {
                            continue;
                        }
                        let d = g + &(p * opts.weight_decay);
                        let _ = b.g_mul_scalar_(opts.momentum);
                        let _ = b.g_add_(&d);
                        let mut p = p.shallow_clone();
                        let _ = p.g_sub_(&(&*b * lr));
                    }
                });
                let bs = y.size()[0] as usize;
                loss_sum += loss.double_value(&[]) * bs as f64;
                correct += logits
                    .argmax(-1, false)
                    .eq_tensor(&y)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
                seen += bs;
                let busy = loader_ns.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9;
                let made = loader_images.load(std::sync::atomic::Ordering::Relaxed);
                progress(&Progress {
                    epoch,
                    done: seen,
                    total: n,
                    loss: loss_sum / seen as f64,
                    loader_images_per_second: if busy > 0.0 { made as f64 / busy } else { 0.0 },
                    waiting_share: waited.as_secs_f64() / t0.elapsed().as_secs_f64().max(1e-9),
                });
                // Every handle on the batch is gone once its graph is: the loader may refill it.
                drop((x, logits, loss, grads));
                if device == Device::Cpu {
                    let _ = back_tx.send(x_host);
                }
            }
            Ok(())
        })?;
        let rec = EpochRecord {
            epoch,
            lr,
            loss: loss_sum / seen.max(1) as f64,
            train_top1: correct as f64 / seen.max(1) as f64,
        };
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        rates.push(seen as f64 / secs);
        let busy = loader_ns.into_inner() as f64 * 1e-9;
        loader_rates.push(loader_images.into_inner() as f64 / busy.max(1e-9));
        waiting.push(waited.as_secs_f64() / secs);
        history.push(rec);
        // The epoch's checkpoint: written to a temporary folder, renamed when complete.
        let dir = epoch_dir(out, epoch);
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        model.save(&tmp, &format!("train:epoch{epoch}"))?;
        let named: Vec<(String, Tensor)> = names
            .iter()
            .zip(&bufs)
            .map(|(n, b)| (n.clone(), b.to_device(Device::Cpu).contiguous()))
            .collect();
        Tensor::write_safetensors(&named, tmp.join("momentum.safetensors"))
            .map_err(|e| torch("write momentum", e))?;
        let state = State {
            epoch,
            options: opts.clone(),
            history: history.clone(),
        };
        let text = serde_json::to_string_pretty(&state).map_err(|e| io(&tmp, e))?;
        std::fs::write(tmp.join("state.json"), text).map_err(|e| io(&tmp, e))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
    }
    if opts.epochs == 0 {
        model.save(out, &format!("init:{}", opts.seed))?;
    } else {
        let last = epoch_dir(out, opts.epochs);
        for f in ["model.json", "weights.safetensors"] {
            std::fs::copy(last.join(f), out.join(f)).map_err(|e| io(out.join(f), e))?;
        }
    }
    let text = serde_json::to_string_pretty(&history).map_err(|e| io(out, e))?;
    std::fs::write(out.join("history.json"), text + "\n").map_err(|e| io(out, e))?;
    Ok(TrainSummary {
        history,
        resumed_from,
        images_per_second: rates,
        loader_images_per_second: loader_rates,
        waiting_share: waiting,
    })
}

/// Top-1 and top-5 accuracy on split `split` of `index`.
#[derive(Clone, Debug, Serialize)]
pub struct EvalSummary {
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-k with k = min(5, classes)).
    pub top5: f64,
}

/// Evaluate `model` on `split` of `index` (centre-crop views; a workspace-relative root is
/// read against `workspace`); `progress(done, total)` is called after each batch (a
/// 50,000-image split runs for hours on a CPU).
pub fn evaluate(
    model: &Model,
    index: &Path,
    workspace: Option<&Path>,
    split: &str,
    batch: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<EvalSummary> {
    let s = read_split(index, workspace, split)?;
    if s.paths.is_empty() {
        return Err(io(index, format!("the index has no `{split}` images")));
    }
    let size = model.net.config.resolution as u32;
    let device = model.vs.device();
    let k = 5.min(model.net.config.classes);
    let (mut c1, mut c5) = (0i64, 0i64);
    let _g = tch::no_grad_guard();
    let idx: Vec<usize> = (0..s.paths.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let (x, y) = load_batch(&s, chunk, size, None, Augment::CropFlip, None)?;
        let logits = model
            .net
            .forward_t(&x.to_device(device), false)
            .to_device(Device::Cpu);
        let (_, top) = logits.topk(k, -1, true, true);
        let y = y.unsqueeze(1);
        c1 += top
            .narrow(1, 0, 1)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        c5 += top.eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
        progress(chunk[0] + chunk.len(), s.paths.len());
    }
    let n = s.paths.len() as f64;
    Ok(EvalSummary {
        images: s.paths.len(),
        top1: c1 as f64 / n,
        top5: c5 as f64 / n,
    })
}
