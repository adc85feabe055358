//! `ventral-model-spec`: the model kinds (`init`, `import`, `train`, `evaluate`,
//! `extract`) as the engine and every front end see them, without libtorch — their names,
//! docs and params ([`KINDS`]), and the runtime their stage keys declare ([`Runtime`]).
//!
//! The kinds run in `ventral-model` (which links libtorch); the `ventral` binary, which
//! never loads libtorch, registers stand-ins built from these declarations that hand each
//! job to the `ventral-torch` worker. Both sides read the same declarations, so a key
//! computed by `ventral status` is the key the worker checks.
//!
//! **Architecture invariant:** nothing here links or loads libtorch; the runtime is
//! declared from what the build found ([`Libtorch::BUILT`]) and from the machine's device
//! files, and verified by the worker when the stage runs.

pub mod config;
pub mod params;
pub mod recipe;
pub mod zoo;

use std::fmt;

use ventral_stage::{BoxError, ParamSpec, Params};

/// The workspace crate that implements the model kinds (their code identity is its).
pub const IMPLEMENTED_IN: &str = "ventral-model";

/// A model kind as declared to the engine.
#[derive(Clone, Copy, Debug)]
pub struct KindDecl {
    /// Its name in pipeline files.
    pub name: &'static str,
    /// One line for `ventral kinds`.
    pub doc: &'static str,
    /// Its params, generated from its params type ([`params`]).
    pub params: fn() -> Vec<ParamSpec>,
    /// Deserialise and check a stage's params as its params type.
    pub check: fn(&Params) -> Result<(), BoxError>,
    /// Whether it takes a `device` param (else it runs on the CPU).
    pub has_device: bool,
}

macro_rules! decl {
    ($name:literal, $doc:literal, $p:ty, $device:literal) => {
        KindDecl {
            name: $name,
            doc: $doc,
            params: ventral_stage::typed::specs::<$p>,
            check: |p| ventral_stage::typed::parse::<$p>(p).map(drop),
            has_device: $device,
        }
    };
}

/// The declarations of every model kind.
pub const KINDS: &[KindDecl] = &[
    decl!(
        "init",
        "untrained weights with the official initialisation from `seed`",
        params::InitParams,
        false
    ),
    decl!(
        "import",
        "a torch.save checkpoint (input `checkpoint`) as a weights folder, names and shapes checked",
        params::ImportParams,
        false
    ),
    decl!(
        "train",
        "train on an image index (input `index`), one checkpoint per epoch, resumable",
        params::TrainParams,
        true
    ),
    decl!(
        "evaluate",
        "top-1/top-5 of `weights` on a split of `index`, written to ${out}/eval.json",
        params::EvaluateParams,
        true
    ),
    decl!(
        "extract",
        "activations of `weights` on `stimuli` (a stimulus-set store, image folder or .npy), one store per area and timestep",
        params::ExtractParams,
        true
    ),
];

/// The declaration of model kind `name`.
pub fn decl(name: &str) -> Option<&'static KindDecl> {
    KINDS.iter().find(|k| k.name == name)
}

/// A device a model stage runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// What a `device` param asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A CUDA device when this build and this machine have one, else the CPU.
    Auto,
    /// That device.
    Exactly(Device),
}

impl DeviceSpec {
    /// Parse `cpu`, `cuda`, `cuda:N` or `auto`.
    pub fn parse(spec: &str) -> Result<DeviceSpec, String> {
        match spec {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Exactly(Device::Cpu)),
            "cuda" => Ok(DeviceSpec::Exactly(Device::Cuda(0))),
            s => s
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                .map(|i| DeviceSpec::Exactly(Device::Cuda(i)))
                .ok_or_else(|| format!("`{spec}` is not a device (cpu, cuda, cuda:N or auto)")),
        }
    }

    /// The device this resolves to on this machine, decided without loading libtorch: CUDA
    /// when the build's libtorch has it, the NVIDIA driver is present and
    /// `CUDA_VISIBLE_DEVICES` does not hide every device. The worker checks the device is
    /// really there when the stage runs.
    pub fn resolve(self) -> Result<Device, String> {
        match self {
            DeviceSpec::Exactly(Device::Cuda(i)) if Libtorch::BUILT.cuda.is_none() => Err(format!(
                "`cuda:{i}` asked for, but this build's libtorch ({}) has no CUDA",
                Libtorch::BUILT.version
            )),
            DeviceSpec::Exactly(d) => Ok(d),
            DeviceSpec::Auto => Ok(auto_device(
                Libtorch::BUILT,
                AUTO_ON_GPU_NODES.load(std::sync::atomic::Ordering::Relaxed) || machine_has_cuda(),
            )),
        }
    }
}

/// Whether the plans of this process are for GPU nodes (see [`plan_for_gpu_nodes`]).
static AUTO_ON_GPU_NODES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Say where the stages of the plans this process makes will run: `true` when they go to
/// the nodes of a cluster's GPU partition (the Slurm executor with a `gpu_partition`), so
/// that `auto` resolves to CUDA whenever this build's libtorch has it, whatever the machine
/// the plan is made on (a login node) has; `false` (the default) to resolve it here. The
/// device enters the stage key; the node's worker verifies it is there.
pub fn plan_for_gpu_nodes(yes: bool) {
    AUTO_ON_GPU_NODES.store(yes, std::sync::atomic::Ordering::Relaxed);
}

/// What `auto` is under a build's libtorch when the stage's machine has (`gpus`) a GPU.
fn auto_device(built: Libtorch, gpus: bool) -> Device {
    if built.cuda.is_some() && gpus {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

/// Whether the machine looks as if it has a usable NVIDIA GPU.
fn machine_has_cuda() -> bool {
    if std::env::var("CUDA_VISIBLE_DEVICES").is_ok_and(|v| v.trim().is_empty() || v.trim() == "-1")
    {
        return false;
    }
    std::path::Path::new("/proc/driver/nvidia/version").exists()
        || std::path::Path::new("/dev/nvidia0").exists()
}

/// The libtorch a build links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Libtorch {
    /// Its version, as torch reports it (`2.11.0+cu130`).
    pub version: &'static str,
    /// The CUDA version it was built for, if any.
    pub cuda: Option<&'static str>,
    /// The cuDNN version it ships, if any.
    pub cudnn: Option<&'static str>,
}

const fn non_empty(s: &'static str) -> Option<&'static str> {
    if s.is_empty() { None } else { Some(s) }
}

impl Libtorch {
    /// The libtorch this build links, as found at build time.
    pub const BUILT: Libtorch = Libtorch {
        version: env!("VENTRAL_LIBTORCH_VERSION"),
        cuda: non_empty(env!("VENTRAL_LIBTORCH_CUDA")),
        cudnn: non_empty(env!("VENTRAL_LIBTORCH_CUDNN")),
    };
}

/// The CPU instruction set model kinds pin libtorch to: the widest of `avx512`, `avx2`
/// and `default` this machine has. It is part of every model stage's runtime, so results
/// computed with other kernels never share a key, and a worker on any machine that has the
/// set runs the same kernels (ATen's dispatch and oneDNN capped at it; the loss of one
/// training epoch differs between AVX2 and AVX-512 kernels). The worker is started with
/// [`cpu_env`].
pub fn cpu_capability() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") {
            return "avx512";
        }
        if has!("avx2") && has!("fma") {
            return "avx2";
        }
        "default"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "default"
    }
}

/// Whether this machine can run kernels pinned to `capability`.
pub fn supports(capability: &str) -> bool {
    let order = ["default", "avx2", "avx512"];
    let rank = |c: &str| order.iter().position(|o| *o == c);
    match (rank(capability), rank(cpu_capability())) {
        (Some(want), Some(have)) => want <= have,
        _ => false,
    }
}

/// The environment that pins libtorch's CPU kernels to `capability` (ATen's dispatch and
/// oneDNN's JIT), for the process that runs model stages.
pub fn cpu_env(capability: &str) -> Vec<(&'static str, String)> {
    let isa = match capability {
        "avx512" => "AVX512_CORE",
        "avx2" => "AVX2",
        _ => "SSE41",
    };
    let mut v = vec![("ATEN_CPU_CAPABILITY", capability.to_string())];
    if cfg!(target_arch = "x86_64") {
        v.push(("DNNL_MAX_CPU_ISA", isa.to_string()));
    }
    v
}

/// The runtime a model stage's key declares: the libtorch build, the device, and on the CPU
/// the pinned instruction set, on CUDA the CUDA and cuDNN versions. Written as
/// `libtorch=2.11.0+cu130 device=cpu cpu=avx2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// The libtorch version.
    pub libtorch: String,
    /// The device.
    pub device: Device,
    /// On the CPU, the pinned instruction set.
    pub cpu: Option<String>,
    /// On CUDA, the CUDA version.
    pub cuda: Option<String>,
    /// On CUDA, the cuDNN version.
    pub cudnn: Option<String>,
}

impl Runtime {
    /// The runtime of this build on `device` on this machine.
    pub fn declared(device: Device) -> Runtime {
        let b = Libtorch::BUILT;
        match device {
            Device::Cpu => Runtime {
                libtorch: b.version.into(),
                device,
                cpu: Some(cpu_capability().into()),
                cuda: None,
                cudnn: None,
            },
            Device::Cuda(_) => Runtime {
                libtorch: b.version.into(),
                device,
                cpu: None,
                cuda: b.cuda.map(str::to_string),
                cudnn: b.cudnn.map(str::to_string),
            },
        }
    }

    /// Parse the text form.
    pub fn parse(text: &str) -> Result<Runtime, String> {
        let bad = |why: &str| format!("runtime `{text}`: {why}");
        let mut libtorch = None;
        let mut device = None;
        let mut rt = Runtime {
            libtorch: String::new(),
            device: Device::Cpu,
            cpu: None,
            cuda: None,
            cudnn: None,
        };
        for field in text.split_whitespace() {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            match k {
                "libtorch" => libtorch = Some(v.to_string()),
                "device" => match DeviceSpec::parse(v).map_err(|e| bad(&e))? {
                    DeviceSpec::Exactly(d) => device = Some(d),
                    DeviceSpec::Auto => return Err(bad("the device must be resolved")),
                },
                "cpu" => rt.cpu = Some(v.to_string()),
                "cuda" => rt.cuda = Some(v.to_string()),
                "cudnn" => rt.cudnn = Some(v.to_string()),
                _ => return Err(bad(&format!("unknown field `{k}`"))),
            }
        }
        rt.libtorch = libtorch.ok_or_else(|| bad("no libtorch"))?;
        rt.device = device.ok_or_else(|| bad("no device"))?;
        Ok(rt)
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "libtorch={} device={}", self.libtorch, self.device)?;
        for (k, v) in [
            ("cpu", &self.cpu),
            ("cuda", &self.cuda),
            ("cudnn", &self.cudnn),
        ] {
            if let Some(v) = v {
                write!(f, " {k}={v}")?;
            }
        }
        Ok(())
    }
}

/// The `device` param of a stage (default `auto`), parsed.
pub fn device_spec(params: &Params) -> Result<DeviceSpec, BoxError> {
    match params.get("device") {
        None => Ok(DeviceSpec::Auto),
        Some(v) => {
            let s = v.as_str().ok_or("param `device` must be a string")?;
            DeviceSpec::parse(s).map_err(|e| format!("param `device`: {e}").into())
        }
    }
}

/// Check table param `name` with `validate`, naming the param in the error.
pub(crate) fn check_table<T>(
    name: &str,
    t: &T,
    validate: impl FnOnce(&T) -> Result<(), config::ConfigError>,
) -> Result<(), String> {
    validate(t).map_err(|e| format!("param `{name}`: {e}"))
}

/// Check the params of a stage of model kind `decl` before anything runs: its params type
/// deserialised (unknown params, types, closed sets) and checked (the `model` and `recipe`
/// tables field by field, the device, positive batch sizes).
pub fn check(decl: &KindDecl, params: &Params) -> Result<(), BoxError> {
    (decl.check)(params)
}

/// The runtime a stage of model kind `decl` with `params` declares: every model kind's
/// bytes depend on the libtorch build (its random generator, its kernels); kinds without a
/// `device` param run on the CPU.
pub fn runtime(decl: &KindDecl, params: &Params) -> Result<Option<String>, BoxError> {
    let device = if decl.has_device {
        device_spec(params)?
            .resolve()
            .map_err(|e| format!("param `device`: {e}"))?
    } else {
        Device::Cpu
    };
    Ok(Some(Runtime::declared(device).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_cuda_only_with_a_cuda_build_and_a_gpu_where_the_stage_runs() {
        let cuda = Libtorch {
            version: "2.11.0+cu130",
            cuda: Some("13.0"),
            cudnn: Some("91000"),
        };
        let cpu = Libtorch {
            version: "2.11.0+cpu",
            cuda: None,
            cudnn: None,
        };
        assert_eq!(auto_device(cuda, true), Device::Cuda(0));
        assert_eq!(auto_device(cuda, false), Device::Cpu);
        assert_eq!(auto_device(cpu, true), Device::Cpu);
        // Planned for GPU nodes: `auto` follows the build, not this machine.
        plan_for_gpu_nodes(true);
        let planned = DeviceSpec::Auto.resolve();
        plan_for_gpu_nodes(false);
        let want = if Libtorch::BUILT.cuda.is_some() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        };
        assert_eq!(planned, Ok(want));
        // `cpu` stays the CPU wherever the plan is for.
        plan_for_gpu_nodes(true);
        let cpu_anyway = DeviceSpec::Exactly(Device::Cpu).resolve();
        plan_for_gpu_nodes(false);
        assert_eq!(cpu_anyway, Ok(Device::Cpu));
    }

    #[test]
    fn runtimes_round_trip_through_text() {
        for d in [Device::Cpu, Device::Cuda(1)] {
            let rt = Runtime::declared(d);
            assert_eq!(Runtime::parse(&rt.to_string()).unwrap(), rt);
        }
        assert!(Runtime::parse("libtorch=2 device=auto").is_err());
        assert!(Runtime::parse("device=cpu").is_err());
        assert!(Runtime::parse("libtorch=2 device=cpu gpu=h100").is_err());
    }

    #[test]
    fn devices_parse_and_bad_ones_name_the_choices() {
        assert_eq!(
            DeviceSpec::parse("cuda").unwrap(),
            DeviceSpec::Exactly(Device::Cuda(0))
        );
        assert_eq!(
            DeviceSpec::parse("cuda:3").unwrap(),
            DeviceSpec::Exactly(Device::Cuda(3))
        );
        assert_eq!(DeviceSpec::parse("auto").unwrap(), DeviceSpec::Auto);
        let e = DeviceSpec::parse("gpu").unwrap_err();
        assert!(e.contains("cpu, cuda, cuda:N or auto"), "{e}");
    }

    #[test]
    fn the_cpu_runtime_names_the_pinned_capability_and_the_build() {
        let rt = Runtime::declared(Device::Cpu).to_string();
        assert!(
            rt.starts_with(&format!(
                "libtorch={} device=cpu cpu=",
                Libtorch::BUILT.version
            )),
            "{rt}"
        );
        assert_ne!(Libtorch::BUILT.version, "unknown");
        // Kinds without a device param run on the CPU, and say so.
        let init = decl("init").unwrap();
        assert_eq!(runtime(init, &Params::new()).unwrap(), Some(rt.clone()));
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    fn params(json: &str) -> Params {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bad_model_recipe_device_and_batch_values_are_refused_with_the_param_named() {
        let train = decl("train").unwrap();
        assert!(check(train, &params("{}")).is_ok());
        for (bad, param) in [
            (r#"{"model": {"arch": "CORnet-Q"}}"#, "model"),
            (r#"{"model": {"widht": 0.5}}"#, "model"),
            (r#"{"model": {"width": -1.0}}"#, "model"),
            (r#"{"recipe": {"epoch": 2}}"#, "recipe"),
            (r#"{"recipe": {"amp": "fp8"}}"#, "recipe"),
            (r#"{"recipe": {"batch": 0}}"#, "recipe"),
            (r#"{"device": "gpu"}"#, "device"),
        ] {
            let e = check(train, &params(bad)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("param `{param}`")), "{bad}: {e}");
        }
        let extract = decl("extract").unwrap();
        let e = check(extract, &params(r#"{"batch": 0}"#))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("param `batch`"), "{e}");
    }
}
