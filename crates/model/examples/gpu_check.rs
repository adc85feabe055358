//! The CUDA paths run for real, for `make bench-gpu` (bench/gpu.sh): every line it prints
//! starts with `CHECK` and names what it compared.
//!
//! 1. Parity: CORnet-S with the same weights on the CPU and on `--device`, every layer at
//!    every timestep and the logits, fp32 and bf16 autocast (max abs difference, and
//!    relative to the largest CPU value).
//! 2. Training through [`train::train`] (pinned host batches, non-blocking uploads) on a
//!    small tree of JPEGs written here, fp32 and bf16, with top-1 from [`train::evaluate`]
//!    beside the same training on the CPU.
//! 3. Extraction through [`extract::extract`] (pinned batches) on `--device` vs the CPU into
//!    stores, compared value by value.
//!
//!     gpu_check [--device cuda] [--images 48]
//!
//! Exits non-zero, listing them, when a difference is over its tolerance or training stays
//! near chance. With `--device cpu` it runs the same code CPU vs CPU (differences must be
//! 0), which is how it is checked on a machine without a GPU.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::arg;
use ventral_model::extract::{self, ExtractOptions, Stimuli};
use ventral_model::tch::{self, Device, Kind, Tensor};
use ventral_model::train::{self, TrainOptions};
use ventral_model::{CornetConfig, Model, parse_device};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `(max |a - b|, max |a|)` over two tensors of one shape (compared in f64 on the CPU).
fn diff(a: &Tensor, b: &Tensor) -> Res<(f64, f64)> {
    let a = a.to_device(Device::Cpu).to_kind(Kind::Double);
    let b = b.to_device(Device::Cpu).to_kind(Kind::Double);
    if a.size() != b.size() {
        return Err(format!("shapes differ: {:?} vs {:?}", a.size(), b.size()).into());
    }
    let d = (&a - &b).abs().max().double_value(&[]);
    let m = a.abs().max().double_value(&[]);
    Ok((d, m))
}

/// Largest relative differences allowed against the CPU: fp32 (cuDNN's TF32 convolutions,
/// PyTorch's default, measured 1.2e-3 on an H100), bf16 autocast (measured 1.3e-2). On the
/// CPU itself everything must agree exactly.
const FP32_RELATIVE: f64 = 5e-3;
const BF16_RELATIVE: f64 = 5e-2;

fn parity(device: Device, dir: &Path, fails: &mut Vec<String>) -> Res<()> {
    let cpu = Model::new(&CornetConfig::default(), Device::Cpu, 0)?;
    cpu.save(&dir.join("weights"), "gpu_check")?;
    let dev = Model::open(&dir.join("weights"), device)?;
    tch::manual_seed(7);
    let x = Tensor::randn([4, 3, 224, 224], (Kind::Float, Device::Cpu));
    let reference = tch::no_grad(|| cpu.net.forward_layers(&x, false));
    for amp in [false, true] {
        let t0 = Instant::now();
        let out = tch::no_grad(|| {
            let xd = x.to_device(device);
            if amp {
                ventral_model::autocast(Kind::BFloat16, || dev.net.forward_layers(&xd, false))
            } else {
                dev.net.forward_layers(&xd, false)
            }
        });
        let mut worst = (String::new(), 0.0f64, 1.0f64);
        for ((name, r), (_, o)) in reference.layers.iter().zip(&out.layers) {
            let (d, m) = diff(r, o)?;
            println!(
                "CHECK parity {} layer={name} max_abs_diff={d:.3e} max_abs={m:.3e} relative={:.3e}",
                if amp { "bf16" } else { "fp32" },
                d / m.max(1e-12)
            );
            let allowed = match (device, amp) {
                (Device::Cpu, _) => 0.0,
                (_, false) => FP32_RELATIVE,
                (_, true) => BF16_RELATIVE,
            };
            if d / m.max(1e-12) > allowed {
                fails.push(format!(
                    "parity {} {name}: relative {:.3e} > {allowed:.0e}",
                    if amp { "bf16" } else { "fp32" },
                    d / m.max(1e-12)
                ));
            }
            if d / m.max(1e-12) > worst.1 / worst.2.max(1e-12) {
                worst = (name.clone(), d, m);
            }
        }
        let (d, m) = diff(&reference.logits, &out.logits)?;
        if amp && device.is_cuda() && out.layers[0].1.kind() != Kind::BFloat16 {
            fails.push(format!(
                "bf16 autocast computed in {:?}",
                out.layers[0].1.kind()
            ));
        }
        println!(
            "CHECK parity {} logits max_abs_diff={d:.3e} max_abs={m:.3e}; activations computed in {:?}; worst layer {} relative {:.3e}; {:.2} s",
            if amp { "bf16" } else { "fp32" },
            out.layers[0].1.kind(),
            worst.0,
            worst.1 / worst.2.max(1e-12),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A small ImageNet-like tree: `classes` classes told apart by stripe orientation and
/// tint, `n` training and `n / 4` validation images each, 64 × 64 JPEGs.
fn write_tree(root: &Path, classes: usize, n: usize) -> Res<()> {
    let mut s: u64 = 12345;
    let mut rand = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as f64 / (1u64 << 31) as f64
    };
    for (split, count) in [("train", n), ("val", n / 4)] {
        for c in 0..classes {
            let d = root.join(split).join(format!("n{:08}", c + 1));
            std::fs::create_dir_all(&d)?;
            let angle = c as f64 * std::f64::consts::PI / classes as f64;
            for i in 0..count {
                let phase = rand() * std::f64::consts::TAU;
                let img = image::RgbImage::from_fn(64, 64, |x, y| {
                    let u = x as f64 * angle.cos() + y as f64 * angle.sin();
                    let v = 0.5 + 0.5 * (u * 0.4 + phase).sin();
                    let mut px = |k: usize| {
                        let tint = if k == c % 3 { 0.3 } else { 0.0 };
                        (255.0 * (0.6 * v + tint + 0.1 * rand()).min(1.0)) as u8
                    };
                    image::Rgb([px(0), px(1), px(2)])
                });
                img.save(d.join(format!("{split}_{i:04}.JPEG")))?;
            }
        }
    }
    Ok(())
}

fn training(device: Device, dir: &Path, images: usize, fails: &mut Vec<String>) -> Res<()> {
    let tree = dir.join("tree");
    write_tree(&tree, 4, images)?;
    let index = dir.join("index");
    ventral_ingest::imagenet::ingest_imagenet(&tree, None, &index)?;
    let config = CornetConfig {
        width: 0.25,
        resolution: 64,
        ..CornetConfig::default()
    };
    let mut runs = vec![(Device::Cpu, "")];
    if device != Device::Cpu {
        runs.push((device, ""));
        runs.push((device, "bf16"));
        runs.push((device, "bf16+cl"));
    }
    for (d, amp) in runs {
        let (amp, channels_last) = match amp.strip_suffix("+cl") {
            Some(a) => (a, true),
            None => (amp, false),
        };
        let opts = TrainOptions {
            epochs: 4,
            batch: 16,
            lr: 0.05,
            lr_step: 3,
            amp: amp.parse().expect("a known amp"),
            channels_last,
            seed: 3,
            ..TrainOptions::default()
        };
        let out = dir.join(format!("train-{d:?}-{amp}-{channels_last}"));
        let t0 = Instant::now();
        let summary = train::train(&config, &index, None, &out, &opts, d, &|_| {})?;
        let secs = t0.elapsed().as_secs_f64();
        let model = Model::open(&out, d)?;
        let eval = train::evaluate(&model, &index, None, "val", 64, &|_, _| {})?;
        let losses: Vec<String> = summary
            .history
            .iter()
            .map(|e| format!("{:.3}", e.loss))
            .collect();
        let rates: Vec<String> = summary
            .images_per_second
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect();
        // Four well-separated classes: well above chance (0.25) after four epochs.
        if eval.top1 < 0.5 {
            fails.push(format!(
                "train {d:?} {amp} channels_last={channels_last}: val top-1 {:.3}",
                eval.top1
            ));
        }
        println!(
            "CHECK train device={d:?} amp={} channels_last={channels_last} epochs={} loss=[{}] images_per_s=[{}] val_top1={:.3} (chance {:.3}) {secs:.1} s",
            if amp.is_empty() { "fp32" } else { amp },
            summary.history.len(),
            losses.join(","),
            rates.join(","),
            eval.top1,
            1.0 / 4.0
        );
    }
    Ok(())
}

fn extraction(device: Device, dir: &Path, fails: &mut Vec<String>) -> Res<()> {
    let images = dir.join("tree").join("val").join("n00000001");
    let weights = dir.join("weights");
    let mut stores = Vec::new();
    for (i, d) in [Device::Cpu, device].into_iter().enumerate() {
        let model = Model::open(&weights, d)?;
        let out = dir.join(format!("extract-{i}-{d:?}"));
        let opts = ExtractOptions {
            batch: 5,
            model_id: "gpu_check".into(),
            layers: Vec::new(),
            producer: None,
            pca: None,
            memory: None,
        };
        let s = extract::extract(
            &model,
            &Stimuli::Folder(images.clone()),
            &out,
            &opts,
            &|_, _| {},
        )?;
        println!(
            "CHECK extract device={d:?} stimuli={} stores={} images_per_s={:.1}",
            s.stimuli,
            s.layers.len(),
            s.images_per_second
        );
        stores.push((out, s));
    }
    let (a, b) = (&stores[0], &stores[1]);
    for ((sa, layer, _), (sb, _, _)) in a.1.layers.iter().zip(&b.1.layers) {
        let open = |root: &Path, s: &str| {
            let p = Path::new(s);
            ventral_store::Assembly::open(&if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            })
        };
        let (x, y) = (open(&a.0, sa)?, open(&b.0, sb)?);
        let (x, y) = (x.read_f32(&x.full())?, y.read_f32(&y.full())?);
        let d = x
            .iter()
            .zip(y.iter())
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        let m = x.iter().fold(0.0f32, |m, p| m.max(p.abs()));
        println!("CHECK extract compare layer={layer} max_abs_diff={d:.3e} max_abs={m:.3e}");
        let allowed = if device == Device::Cpu {
            0.0
        } else {
            FP32_RELATIVE
        };
        if f64::from(d) / f64::from(m).max(1e-12) > allowed {
            fails.push(format!("extract {layer}: {d:.3e} of {m:.3e}"));
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let device = parse_device(&arg("--device", "cuda"))?;
    let images: usize = arg("--images", "48").parse()?;
    println!(
        "CHECK device={device:?} cuda_devices={} cudnn={}",
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available()
    );
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let mut fails = Vec::new();
    parity(device, dir.path(), &mut fails)?;
    training(device, dir.path(), images, &mut fails)?;
    extraction(device, dir.path(), &mut fails)?;
    println!("CHECK done in {:.1} s", t0.elapsed().as_secs_f64());
    if fails.is_empty() {
        println!("CHECK passed");
        Ok(())
    } else {
        Err(format!("{} check(s) failed:\n  {}", fails.len(), fails.join("\n  ")).into())
    }
}
