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
pub mod loader;
pub mod runtime;
pub mod train;
pub mod zoo;

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
        if device.is_cuda() {
            // A device made without `parse_device`: libtorch's CUDA backend must be loaded
            // before its first use (libtorch reports the error if it cannot be).
            let _ = cuda::load();
        }
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(device);
        let net = Cornet::new(&vs.root(), config)?;
        if config.arch.zoo().is_some() {
            zoo::init(&vs);
        } else {
            cornet::init_official(&vs);
        }
        Ok(Model { vs, net })
    }

    /// Store every convolution weight in channels-last (NHWC) memory order (see
    /// [`images::channels_last`]); values and names are unchanged.
    pub fn to_channels_last(&self) {
        tch::no_grad(|| {
            for (_, mut t) in self.vs.variables() {
                if t.dim() == 4 {
                    let cl = images::channels_last(&t);
                    t.set_data(&cl);
                }
            }
        });
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> i64 {
        if let Some(n) = self.net.script_parameters() {
            return n;
        }
        cornet::parameter_counts(&self.vs).iter().map(|x| x.1).sum()
    }

    /// Open a weights folder.
    pub fn open(dir: &Path, device: Device) -> Result<Model> {
        let meta = read_meta(dir)?;
        if meta.config.arch == Arch::TorchScript {
            let file = dir.join(SCRIPT_FILE);
            if device.is_cuda() {
                let _ = cuda::load();
            }
            let m = tch::CModule::load_on_device(&file, device).map_err(|e| io(&file, e))?;
            return Ok(Model {
                vs: nn::VarStore::new(device),
                net: Cornet::from_script(meta.config, m),
            });
        }
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
            .map(|(k, v)| (k, v.to_device(Device::Cpu).contiguous()))
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
    let arch = c.arch.name();
    if *c == CornetConfig::for_arch(c.arch) {
        return arch.to_string();
    }
    if c.arch == Arch::TorchScript {
        return format!(
            "TorchScript model ({} layers, {} classes, {} px)",
            c.script_layers.len(),
            c.classes,
            c.resolution
        );
    }
    if c.arch.zoo().is_some() {
        return format!(
            "{arch} (width {}, {} classes, {} px)",
            c.width, c.classes, c.resolution
        );
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

/// The TorchScript file of a TorchScript weights folder.
pub const SCRIPT_FILE: &str = "model.pt";

/// The layers and the output of a TorchScript module's forward (a `Dict[str, Tensor]` with
/// the model's output under `output`), in the dict's order.
pub(crate) fn script_outputs(
    v: tch::IValue,
) -> std::result::Result<(Vec<(String, tch::Tensor)>, tch::Tensor), String> {
    let tch::IValue::GenericDict(items) = v else {
        return Err(
            "did not return a Dict[str, Tensor] (make the file with tools/torchscript_layers.py)"
                .into(),
        );
    };
    let mut layers = Vec::new();
    let mut output = None;
    for (k, t) in items {
        let (tch::IValue::String(name), tch::IValue::Tensor(t)) = (k, t) else {
            return Err("a key that is not a string or a value that is not a tensor".into());
        };
        if name == "output" {
            output = Some(t);
        } else {
            layers.push((name, t));
        }
    }
    let output = output.ok_or("no `output` entry (the model's own output)")?;
    Ok((layers, output))
}

/// The resolution a TorchScript file was traced at, as `tools/torchscript_layers.py`
/// records it (`extra/ventral_resolution` in the archive).
fn traced_resolution(file: &Path) -> Option<i64> {
    let f = std::fs::File::open(file).ok()?;
    let mut z = zip::ZipArchive::new(f).ok()?;
    let name = z
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("extra/ventral_resolution"))?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut z.by_name(&name).ok()?, &mut s).ok()?;
    s.trim().parse().ok()
}

/// Import a TorchScript file (from `tools/torchscript_layers.py`) into a weights folder
/// `out`: the file is run once on a blank batch at `resolution` (default: the resolution it
/// was traced at, else 224) to learn its layers and classes, then stored as it is.
pub fn import_torchscript(file: &Path, resolution: Option<i64>, out: &Path) -> Result<WeightsMeta> {
    let resolution = resolution
        .filter(|r| *r != CornetConfig::default().resolution)
        .or_else(|| traced_resolution(file))
        .or(resolution)
        .unwrap_or(224);
    let m = tch::CModule::load_on_device(file, Device::Cpu).map_err(|e| io(file, e))?;
    let bad = |message: String| ModelError::Checkpoint {
        path: file.to_path_buf(),
        field: "forward".into(),
        message,
    };
    let x = tch::Tensor::zeros(
        [1, 3, resolution, resolution],
        (tch::Kind::Float, Device::Cpu),
    );
    let v = tch::no_grad(|| m.forward_is(&[tch::IValue::Tensor(x)])).map_err(|e| {
        bad(format!(
            "does not run on a 1 × 3 × {resolution} × {resolution} batch: {e}"
        ))
    })?;
    let (layers, output) = script_outputs(v).map_err(bad)?;
    if layers.is_empty() {
        return Err(bad("returns no layers besides `output`".into()));
    }
    let classes = output.size().get(1).copied().unwrap_or(1).max(1);
    let config = CornetConfig {
        arch: Arch::TorchScript,
        resolution,
        classes,
        script_layers: layers.into_iter().map(|(n, _)| n).collect(),
        ..CornetConfig::default()
    };
    config.validate()?;
    let parameters = script_parameter_count(&m);
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    std::fs::copy(file, out.join(SCRIPT_FILE)).map_err(|e| io(file, e))?;
    let name = file
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let meta = WeightsMeta {
        format: WEIGHTS_FORMAT.into(),
        config,
        parameters,
        source: format!("torchscript:{name}"),
    };
    let text = serde_json::to_string_pretty(&meta).map_err(|e| io(out, e))?;
    std::fs::write(out.join("model.json"), text + "\n").map_err(|e| io(out, e))?;
    Ok(meta)
}

/// Parameters of a TorchScript module (those that require gradients).
pub(crate) fn script_parameter_count(m: &tch::CModule) -> i64 {
    m.named_parameters()
        .map(|ps| ps.iter().map(|(_, t)| t.numel() as i64).sum())
        .unwrap_or(0)
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
    let mut state = checkpoint::read_checkpoint(ckpt)?;
    if config.arch.zoo().is_some() {
        state = checkpoint::torchvision_names(state);
    }
    let model = Model::new(config, Device::Cpu, 0)?;
    checkpoint::load_into(&model.vs, &state, ckpt, &describe(config))?;
    let name = ckpt
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    model.save(out, &format!("checkpoint:{name}"))
}

/// Run `f` under CUDA autocast to `kind` (`BFloat16` or `Half`), as
/// `torch.autocast("cuda", dtype=kind)` does.
///
/// Not `tch::autocast`: it only switches autocast on (and libtorch's CUDA autocast type
/// defaults to fp16, so a "bf16" request would run in fp16), through deprecated libtorch
/// calls that print a warning on every batch. This calls libtorch's current
/// `at::autocast` functions (in `libtorch_cpu`, which we link) and puts everything back
/// afterwards, also if `f` panics.
pub fn autocast<T>(kind: tch::Kind, f: impl FnOnce() -> T) -> T {
    // c10::ScalarType's codes (Half 5, Float 6, BFloat16 15); autocast "to" Float is fp32.
    let code: i8 = match kind {
        tch::Kind::Half => 5,
        tch::Kind::BFloat16 => 15,
        _ => 6,
    };
    let _guard = cuda_autocast::Guard::enter(code);
    f()
}

/// libtorch's CUDA autocast state, through its C++ functions.
mod cuda_autocast {
    // c10::DeviceType::CUDA; c10's DeviceType and ScalarType are `int8_t` enums in C++.
    const CUDA: i8 = 1;
    unsafe extern "C" {
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        fn get_autocast_dtype(device: i8) -> i8;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        fn set_autocast_dtype(device: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        fn is_autocast_enabled(device: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        fn set_autocast_enabled(device: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        fn clear_cache();
    }

    /// The CUDA autocast type (a `c10::ScalarType` code).
    pub(crate) fn dtype() -> i8 {
        // SAFETY: a getter of a libtorch global; `int8_t` enum argument.
        unsafe { get_autocast_dtype(CUDA) }
    }

    /// Whether CUDA autocast is on.
    pub(crate) fn enabled() -> bool {
        // SAFETY: as above.
        unsafe { is_autocast_enabled(CUDA) }
    }

    /// Autocast on with a type until dropped; then the state before, and the cast cache
    /// cleared when the outermost one ends (what `torch.autocast.__exit__` does).
    pub(crate) struct Guard {
        enabled: bool,
        dtype: i8,
    }

    impl Guard {
        pub(crate) fn enter(code: i8) -> Guard {
            let g = Guard {
                enabled: enabled(),
                dtype: dtype(),
            };
            // SAFETY: setters of libtorch globals with libtorch's own codes.
            unsafe {
                set_autocast_dtype(CUDA, code);
                set_autocast_enabled(CUDA, true);
                increment_nesting();
            }
            g
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: as in `enter`.
            unsafe {
                if decrement_nesting() == 0 {
                    clear_cache();
                }
                set_autocast_enabled(CUDA, self.enabled);
                set_autocast_dtype(CUDA, self.dtype);
            }
        }
    }
}

/// The device named by `spec`: `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
///
/// Asking for CUDA where there is none is an error that says why (no driver, no CUDA
/// build of libtorch, no such GPU), not a silent fall back to the CPU.
pub fn parse_device(spec: &str) -> Result<Device> {
    let bad = || ModelError::Config {
        field: "device".into(),
        message: format!("`{spec}` (cpu, cuda, cuda:N or auto)"),
    };
    let index = match spec {
        "cpu" => return Ok(Device::Cpu),
        "auto" => {
            return Ok(match cuda::load() {
                Ok(()) => Device::cuda_if_available(),
                Err(_) => Device::Cpu,
            });
        }
        "cuda" => 0,
        s => s
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
            .ok_or_else(bad)?,
    };
    let unavailable = |why: String| ModelError::Config {
        field: "device".into(),
        message: format!("`{spec}` asked for, but {why}"),
    };
    cuda::load().map_err(unavailable)?;
    let count = tch::Cuda::device_count();
    if count <= index as i64 {
        return Err(unavailable(format!(
            "libtorch sees {count} CUDA device(s) (is the NVIDIA driver working?)"
        )));
    }
    Ok(Device::Cuda(index))
}

/// libtorch's CUDA backend, loaded at run time.
///
/// torch-sys links `libtorch_cuda.so` when it finds one, but the linker's `--as-needed`
/// drops it again because no symbol of it is called by name, and without it libtorch
/// reports no CUDA device. Loading it (from the binary's rpath or `LD_LIBRARY_PATH`)
/// before the first CUDA query registers the backend. Where there is no NVIDIA driver it
/// is not loaded at all, so a CPU machine pays nothing.
mod cuda {
    use std::ffi::{CStr, CString};
    use std::sync::OnceLock;

    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();

    fn open(name: &str) -> Result<(), String> {
        let c = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: dlopen with a NUL-terminated name; the handle is kept for the whole
        // process (never dlclose'd), and dlerror's string is copied at once.
        unsafe {
            if libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL).is_null() {
                let e = libc::dlerror();
                return Err(if e.is_null() {
                    format!("{name} could not be loaded")
                } else {
                    CStr::from_ptr(e).to_string_lossy().into_owned()
                });
            }
        }
        Ok(())
    }

    /// Load the driver's `libcuda.so.1`, then `libtorch_cuda.so`; once per process.
    pub(crate) fn load() -> Result<(), String> {
        LOADED
            .get_or_init(|| {
                open("libcuda.so.1").map_err(|e| format!("there is no NVIDIA driver ({e})"))?;
                open("libtorch_cuda.so")
                    .map_err(|e| format!("libtorch has no CUDA backend here ({e})"))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocast_sets_and_restores_the_cuda_autocast_type() {
        // libtorch's default CUDA autocast type is fp16 (5).
        assert_eq!(cuda_autocast::dtype(), 5);
        assert!(!cuda_autocast::enabled());
        let inside = autocast(tch::Kind::BFloat16, || {
            (cuda_autocast::dtype(), cuda_autocast::enabled())
        });
        assert_eq!(inside, (15, true));
        let nested = autocast(tch::Kind::Half, || {
            i32::from(autocast(tch::Kind::BFloat16, cuda_autocast::dtype)) * 100
                + i32::from(cuda_autocast::dtype())
        });
        assert_eq!(nested, 1505);
        assert_eq!(cuda_autocast::dtype(), 5);
        assert!(!cuda_autocast::enabled());
    }

    #[test]
    fn devices_are_parsed_and_missing_cuda_is_a_named_error() {
        // Before any CUDA query, as `parse_device` does (a query first would hide CUDA).
        let _ = cuda::load();
        assert_eq!(parse_device("cpu").ok(), Some(Device::Cpu));
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        if tch::Cuda::device_count() == 0 {
            let e = parse_device("cuda:0")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("`cuda:0` asked for, but"), "{e}");
            assert_eq!(parse_device("auto").ok(), Some(Device::Cpu));
        }
    }
}
