//! Forward (activation extraction, every candidate layer kept) and train-step images/s of
//! CORnet-S or a zoo architecture (`--arch resnet50`), printed as `RESULT forward=… train=…
//! device=…` for bench/model.sh, which runs PyTorch eager on the same model, batch and
//! device beside it. `--print-layers` prints the candidate layers (comma-separated) and exits.
//!
//!     bench_model [--arch CORnet-S] [--device cpu|cuda] [--batch 16] [--iters 4] [--warmup 1] [--amp bf16] [--channels-last] [--cudnn-benchmark]

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::arg;
use ventral_model::tch::nn::ModuleT;
use ventral_model::tch::{self, Device, Kind, Tensor};
use ventral_model::{CornetConfig, Model, parse_device};

fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = parse_device(&arg("--device", "cpu"))?;
    let batch: i64 = arg("--batch", "16").parse()?;
    let iters: usize = arg("--iters", "4").parse()?;
    let warmup: usize = arg("--warmup", "1").parse()?;
    let amp = arg("--amp", "");
    let channels_last = std::env::args().any(|a| a == "--channels-last");
    let arch: ventral_model::Arch = arg("--arch", "CORnet-S").parse()?;
    let config = CornetConfig::for_arch(arch);
    if std::env::args().any(|a| a == "--print-layers") {
        println!("{}", config.layers().join(","));
        return Ok(());
    }
    let side = config.resolution;
    let model = Model::new(&config, device, 0)?;
    let cudnn_benchmark = std::env::args().any(|a| a == "--cudnn-benchmark");
    if cudnn_benchmark && device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut x = Tensor::randn([batch, 3, side, side], (Kind::Float, device));
    if channels_last {
        // Weights and input, as `model.to(memory_format=torch.channels_last)` does.
        model.to_channels_last();
        x = ventral_model::images::channels_last(&x);
    }
    let kind = match amp.as_str() {
        "bf16" => Some(Kind::BFloat16),
        "fp16" => Some(Kind::Half),
        _ => None,
    };
    let fwd = || -> ventral_model::Result<()> {
        tch::no_grad(|| {
            let out = match kind {
                Some(k) => ventral_model::autocast(k, || model.net.forward_layers(&x, false)),
                None => model.net.forward_layers(&x, false),
            };
            // Activations leave the device, as extraction does.
            let host: Vec<Tensor> = out
                .layers
                .iter()
                .map(|(_, t)| ventral_model::images::download(t))
                .collect::<ventral_model::Result<_>>()?;
            ventral_model::images::downloads_done(device);
            drop(host);
            Ok(())
        })
    };
    for _ in 0..warmup {
        fwd()?;
    }
    sync(device);
    let t0 = Instant::now();
    for _ in 0..iters {
        fwd()?;
    }
    sync(device);
    let forward = (iters as i64 * batch) as f64 / t0.elapsed().as_secs_f64();
    let y = Tensor::zeros([batch], (Kind::Int64, device));
    let params = model.vs.trainable_variables();
    let step = || -> ventral_model::Result<()> {
        let logits = match kind {
            Some(k) => {
                ventral_model::autocast(k, || model.net.forward_t(&x, true)).to_kind(Kind::Float)
            }
            None => model.net.forward_t(&x, true),
        };
        let loss = logits.cross_entropy_for_logits(&y);
        // As training does: fresh gradients, then the update.
        let grads = ventral_model::train::gradients(&loss, &params)?;
        tch::no_grad(|| {
            for (p, g) in params.iter().zip(&grads) {
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(g * 1e-6));
            }
        });
        Ok(())
    };
    for _ in 0..warmup {
        step()?;
    }
    sync(device);
    let t0 = Instant::now();
    for _ in 0..iters {
        step()?;
    }
    sync(device);
    let train = (iters as i64 * batch) as f64 / t0.elapsed().as_secs_f64();
    println!(
        "RESULT forward={forward:.2} train={train:.2} device={device:?} batch={batch} side={side} threads={} amp={amp} channels_last={channels_last} cudnn_benchmark={cudnn_benchmark}",
        tch::get_num_threads()
    );
    Ok(())
}
