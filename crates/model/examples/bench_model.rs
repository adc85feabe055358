//! Forward (activation extraction, every layer kept) and train-step images/s of CORnet-S,
//! printed as `RESULT forward=… train=… device=…` for bench/model.sh, which runs PyTorch
//! eager on the same model, batch and device beside it.
//!
//!     bench_model [--device cpu|cuda] [--batch 16] [--iters 4] [--amp bf16] [--channels-last]

use std::time::Instant;

use ventral_model::tch::nn::ModuleT;
use ventral_model::tch::{self, Device, Kind, Tensor};
use ventral_model::{CornetConfig, Model, parse_device};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = parse_device(&arg("--device", "cpu"))?;
    let batch: i64 = arg("--batch", "16").parse()?;
    let iters: usize = arg("--iters", "4").parse()?;
    let amp = arg("--amp", "");
    let channels_last = std::env::args().any(|a| a == "--channels-last");
    let model = Model::new(&CornetConfig::default(), device, 0)?;
    let mut x = Tensor::randn([batch, 3, 224, 224], (Kind::Float, device));
    if channels_last {
        // NHWC strides with NCHW logical order: what `channels_last` is.
        x = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    }
    let kind = match amp.as_str() {
        "bf16" => Some(Kind::BFloat16),
        "fp16" => Some(Kind::Half),
        _ => None,
    };
    let fwd = || {
        tch::no_grad(|| {
            let out = match kind {
                Some(_) => tch::autocast(true, || model.net.forward_layers(&x, false)),
                None => model.net.forward_layers(&x, false),
            };
            // Activations leave the device, as extraction does.
            for (_, t) in &out.layers {
                let _ = t.to_kind(Kind::Float).to_device(Device::Cpu);
            }
        })
    };
    fwd();
    sync(device);
    let t0 = Instant::now();
    for _ in 0..iters {
        fwd();
    }
    sync(device);
    let forward = (iters as i64 * batch) as f64 / t0.elapsed().as_secs_f64();
    let y = Tensor::zeros([batch], (Kind::Int64, device));
    let params = model.vs.trainable_variables();
    let step = || {
        let logits = match kind {
            Some(_) => tch::autocast(true, || model.net.forward_t(&x, true)).to_kind(Kind::Float),
            None => model.net.forward_t(&x, true),
        };
        let loss = logits.cross_entropy_for_logits(&y);
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss.backward();
        tch::no_grad(|| {
            for p in &params {
                let g = p.grad();
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(g * 1e-6));
            }
        });
    };
    step();
    sync(device);
    let t0 = Instant::now();
    for _ in 0..iters {
        step();
    }
    sync(device);
    let train = (iters as i64 * batch) as f64 / t0.elapsed().as_secs_f64();
    let mem = match device {
        Device::Cuda(_) => "see nvidia-smi".to_string(),
        _ => "-".into(),
    };
    println!(
        "RESULT forward={forward:.2} train={train:.2} device={device:?} batch={batch} threads={} amp={amp} channels_last={channels_last} gpu_mem={mem}",
        tch::get_num_threads()
    );
    Ok(())
}
