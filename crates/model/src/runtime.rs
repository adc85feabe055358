//! The runtime a model stage really has, checked against the one its key declares.
//!
//! The engine declares a model stage's runtime without loading libtorch
//! (`ventral_model_spec::Runtime`): the libtorch version the build found, the device (with
//! `auto` resolved), and on the CPU the instruction set libtorch is pinned to. Here, in the
//! process that runs the stage, each part is checked against what is really loaded, so a
//! result is never stored under a key that names another runtime.

use std::path::{Path, PathBuf};

use ventral_model_spec::{Device, Libtorch, Runtime};

/// The folder of the `libtorch_cpu` this process has loaded (from `/proc/self/maps`).
fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libtorch_cpu."))
        })
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
}

/// The version of the libtorch this process has loaded: `version.py` of the torch wheel
/// it came from, or `build-version` of a libtorch folder.
pub fn loaded_libtorch_version() -> Option<String> {
    let lib = loaded_libtorch_dir()?;
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|l| {
            let rest = l.strip_prefix("__version__")?;
            let v = rest.split(['\'', '"']).nth(1)?;
            Some(v.to_string())
        });
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Check that this process can honour `declared`: the same libtorch, the pinned CPU
/// instruction set, the CUDA device. The error names what differs.
pub fn verify(declared: &Runtime) -> Result<(), String> {
    let loaded = loaded_libtorch_version();
    let here = loaded.as_deref().unwrap_or(Libtorch::BUILT.version);
    if here != declared.libtorch {
        return Err(format!(
            "the job declares libtorch {}, but this process runs libtorch {here}",
            declared.libtorch
        ));
    }
    match declared.device {
        Device::Cpu => {
            let want = declared.cpu.as_deref().unwrap_or("default");
            let pinned = std::env::var("ATEN_CPU_CAPABILITY").unwrap_or_default();
            if pinned != want {
                return Err(format!(
                    "the job declares CPU kernels `{want}`, but this process has ATEN_CPU_CAPABILITY={pinned:?} (run model stages through `ventral`, which pins it)"
                ));
            }
            if !ventral_model_spec::supports(want) {
                return Err(format!(
                    "the job declares CPU kernels `{want}`, which this machine's CPU lacks"
                ));
            }
        }
        Device::Cuda(i) => {
            crate::parse_device(&format!("cuda:{i}")).map_err(|e| e.to_string())?;
            if let Some(cudnn) = &declared.cudnn {
                let have = tch::utils::version_cudnn().to_string();
                if &have != cudnn {
                    return Err(format!(
                        "the job declares cuDNN {cudnn}, but this process loaded cuDNN {have}"
                    ));
                }
            }
        }
    }
    Ok(())
}
