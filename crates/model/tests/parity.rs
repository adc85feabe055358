//! CORnet-S against the official definition (loaded from the installed brainscore-vision
//! wheel at test time) on the same weights and images: every layer at every timestep and the
//! logits within 1e-4. Also: parameter counts, checkpoint import errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Tensor};
use ventral_model::checkpoint::read_checkpoint;
use ventral_model::{CornetConfig, Model, ModelError, import_checkpoint};

fn pythons() -> Option<(PathBuf, PathBuf)> {
    let p = ventral_testkit::venv_python("VENTRAL_PYTHON", ".venv");
    let x = ventral_testkit::venv_python("VENTRAL_CROSSCHECK_PYTHON", ".venv-crosscheck");
    if p.is_none() || x.is_none() {
        ventral_testkit::skipped("no venvs (run `make test`)");
        return None;
    }
    Some((p?, x?))
}

fn run(py: &Path, args: &[&str]) -> String {
    let o = Command::new(py).args(args).output().expect("spawn python");
    assert!(
        o.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The official CORnet-S source inside the installed brainscore-vision wheel.
fn reference_source(xpy: &Path) -> PathBuf {
    let dir = run(
        xpy,
        &[
            "-c",
            "import importlib.util as u; print(u.find_spec('brainscore_vision').submodule_search_locations[0])",
        ],
    );
    let p = PathBuf::from(dir).join("models/ReAlnet/model.py");
    assert!(p.is_file(), "{} not found in the wheel", p.display());
    p
}

#[test]
fn parameter_counts_are_the_papers() {
    let m = Model::new(&CornetConfig::default(), Device::Cpu, 0).unwrap();
    let per = ventral_model::cornet::parameter_counts(&m.vs);
    let get = |k: &str| per.iter().find(|x| x.0 == k).map(|x| x.1).unwrap();
    assert_eq!(m.parameters(), 53_416_616);
    assert_eq!(get("V1"), 46_528);
    assert_eq!(get("V2"), 2_519_808);
    assert_eq!(get("V4"), 10_078_720);
    assert_eq!(get("IT"), 40_258_560);
    assert_eq!(get("decoder"), 513_000);
    let names: Vec<String> = m.vs.variables().into_keys().collect();
    for n in [
        "V1.conv1.weight",
        "V2.norm1_0.running_mean",
        "IT.norm3_1.running_var",
        "decoder.linear.bias",
        "V4.skip.weight",
        "V4.norm_skip.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing");
    }
    // The knobs change the structure as described.
    let shared = Model::new(
        &CornetConfig {
            shared_norm: true,
            ..CornetConfig::default()
        },
        Device::Cpu,
        0,
    )
    .unwrap();
    assert!(shared.vs.variables().contains_key("V4.norm1.weight"));
    let noskip = Model::new(
        &CornetConfig {
            skip: false,
            ..CornetConfig::default()
        },
        Device::Cpu,
        0,
    )
    .unwrap();
    assert!(!noskip.vs.variables().contains_key("V2.skip.weight"));
    let narrow = CornetConfig {
        width: 0.25,
        resolution: 64,
        classes: 10,
        times: [1, 2, 1],
        ..CornetConfig::default()
    };
    let m = Model::new(&narrow, Device::Cpu, 0).unwrap();
    let out = m.net.forward_layers(
        &Tensor::zeros([2, 3, 64, 64], (tch::Kind::Float, Device::Cpu)),
        false,
    );
    let names: Vec<&str> = out.layers.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        narrow
            .layers()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(out.logits.size(), [2, 10]);
    let z = Model::new(&CornetConfig::z(), Device::Cpu, 0).unwrap();
    assert_eq!(z.net.config.layers().len(), 5);
    // CORnet-R and CORnet-RT: the same modules, five timesteps of every area, different timing.
    let x = Tensor::randn([2, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    let r = Model::new(
        &CornetConfig {
            resolution: 64,
            ..CornetConfig::r()
        },
        Device::Cpu,
        4,
    )
    .unwrap();
    let rt = Model::new(
        &CornetConfig {
            resolution: 64,
            ..CornetConfig::rt()
        },
        Device::Cpu,
        4,
    )
    .unwrap();
    for n in [
        "V1.conv_input.bias",
        "V2.norm_input.weight",
        "IT.conv1.weight",
        "V4.norm1.bias",
    ] {
        assert!(r.vs.variables().contains_key(n), "{n}");
    }
    let (a, b) = tch::no_grad(|| {
        (
            r.net.forward_layers(&x, false),
            rt.net.forward_layers(&x, false),
        )
    });
    let names: Vec<&str> = a.layers.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        r.net
            .config
            .layers()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(names.len(), 21);
    assert_eq!(a.layers[5].1.size(), [2, 128, 8, 8]); // V2 at 64 px: 64 / 4 / 2
    // Same weights (same seed): V1 agrees at every step, V2 differs from t1 on (timing).
    let d = |i: usize| {
        (&a.layers[i].1 - &b.layers[i].1)
            .abs()
            .max()
            .double_value(&[])
    };
    assert_eq!(d(4), 0.0, "V1-t4");
    assert!(d(6) > 0.0, "V2-t1 must differ between R and RT");
    assert!(
        CornetConfig {
            width: 0.25,
            ..CornetConfig::r()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn matches_the_official_cornet_z() {
    let Some((py, xpy)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wheel = reference_source(&xpy)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let src = wheel.join("hmax_v3_adj/local_timm/models/cornet.py");
    let script = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/parity.py");
    let count = run(
        &py,
        &[
            script.to_str().unwrap(),
            src.to_str().unwrap(),
            dir.path().to_str().unwrap(),
            "Z",
        ],
    );
    let weights = dir.path().join("weights");
    let meta = import_checkpoint(
        &dir.path().join("checkpoint.pth.tar"),
        &CornetConfig::z(),
        &weights,
    )
    .unwrap();
    assert_eq!(meta.parameters.to_string(), count);
    let model = Model::open(&weights, Device::Cpu).unwrap();
    let x = ventral_model::images::read_npy(&dir.path().join("images.npy")).unwrap();
    let ours = tch::no_grad(|| model.net.forward_layers(&x, false));
    let want: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("outputs.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for (name, t) in ours.layers.iter().chain(std::iter::once(&(
        "logits".to_string(),
        ours.logits.shallow_clone(),
    ))) {
        let d = (t - &want[name]).abs().max().double_value(&[]);
        assert!(d < 1e-4, "{name}: max abs difference {d}");
    }
}

#[test]
fn matches_the_official_cornet_s() {
    let Some((py, xpy)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = reference_source(&xpy);
    let script = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/parity.py");
    let count = run(
        &py,
        &[
            script.to_str().unwrap(),
            src.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(count, "53416616");
    let ckpt = dir.path().join("checkpoint.pth.tar");
    let weights = dir.path().join("weights");
    let meta = import_checkpoint(&ckpt, &CornetConfig::default(), &weights).unwrap();
    assert_eq!(meta.parameters, 53_416_616);
    let model = Model::open(&weights, Device::Cpu).unwrap();
    let x = ventral_model::images::read_npy(&dir.path().join("images.npy")).unwrap();
    let ours = tch::no_grad(|| model.net.forward_layers(&x, false));
    let want: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("outputs.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let mut worst = 0.0f64;
    for (name, t) in ours.layers.iter().chain(std::iter::once(&(
        "logits".to_string(),
        ours.logits.shallow_clone(),
    ))) {
        let w = want
            .get(name)
            .unwrap_or_else(|| panic!("reference lacks {name}"));
        assert_eq!(t.size(), w.size(), "{name}");
        let d = (t - w).abs().max().double_value(&[]);
        eprintln!("{name}: max |ours - official| = {d:.3e}");
        assert!(d < 1e-4, "{name}: max abs difference {d}");
        worst = worst.max(d);
    }
    assert_eq!(ours.layers.len() + 1, want.len());
    eprintln!("worst {worst:.3e}");

    // The same checkpoint does not fit another circuit: every key is named.
    let err = import_checkpoint(
        &ckpt,
        &CornetConfig {
            times: [2, 3, 2],
            ..CornetConfig::default()
        },
        &dir.path().join("w2"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::Mismatch { .. }), "{msg}");
    assert!(
        msg.contains("unexpected") && msg.contains("V4.norm1_3.weight"),
        "{msg}"
    );
    let err = import_checkpoint(
        &ckpt,
        &CornetConfig {
            width: 0.5,
            ..CornetConfig::default()
        },
        &dir.path().join("w3"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("wrong shape")
            && err
                .to_string()
                .contains("IT.conv1.weight: [2048, 512, 1, 1] vs [1024, 256, 1, 1]"),
        "{err}"
    );
    assert!(!dir.path().join("w2").exists() && !dir.path().join("w3").exists());
    // A file that is not a checkpoint.
    std::fs::write(dir.path().join("bad.pth"), b"not a zip").unwrap();
    let err = read_checkpoint(&dir.path().join("bad.pth")).unwrap_err();
    assert!(
        err.to_string().contains("bad.pth") && err.to_string().contains("torch.save"),
        "{err}"
    );
}

/// The legacy format (PyTorch 0.4–1.5; `_use_new_zipfile_serialization=False`) reads to the
/// same tensors as the ZIP one: views into a shared storage, offsets, strides, every dtype a
/// state dict holds; a truncated legacy file is refused, naming the storage.
#[test]
fn legacy_checkpoints_read_as_the_zip_format_does() {
    let Some((py, _)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run(
        &py,
        &[
            "-c",
            r#"
import sys, torch
from collections import OrderedDict
g = torch.Generator().manual_seed(3)
base = torch.randn(6, 5, generator=g)
s = OrderedDict()
s["module.w"] = base
s["module.view"] = base[2:, 1:4]          # offset and strides into base's storage
s["module.t"] = base.t()                   # transposed: a strided view
s["module.h"] = torch.randn(3, generator=g).half()
s["module.n"] = torch.tensor(7)            # BatchNorm's num_batches_tracked: int64, 0-d
s["module.b"] = torch.tensor([True, False, True])
s["module.d"] = torch.randn(2, 2, generator=g, dtype=torch.float64)
ck = {"epoch": 3, "state_dict": s, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(4)}}}}
torch.save(ck, sys.argv[1] + "/zip.pth")
torch.save(ck, sys.argv[1] + "/legacy.pth", _use_new_zipfile_serialization=False)
"#,
            d,
        ],
    );
    let zip = read_checkpoint(&dir.path().join("zip.pth")).unwrap();
    let legacy = read_checkpoint(&dir.path().join("legacy.pth")).unwrap();
    let names: Vec<&str> = legacy.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names, ["w", "view", "t", "h", "n", "b", "d"]);
    assert_eq!(zip.len(), legacy.len());
    for ((zn, zt), (ln, lt)) in zip.iter().zip(&legacy) {
        assert_eq!(zn, ln);
        assert_eq!(zt.kind(), lt.kind(), "{zn}");
        assert_eq!(zt.size(), lt.size(), "{zn}");
        assert!(zt.equal(lt), "{zn} differs");
    }
    let w = &legacy[0].1;
    assert!(legacy[1].1.equal(&w.narrow(0, 2, 4).narrow(1, 1, 3)));
    assert!(legacy[2].1.equal(&w.tr()));
    assert_eq!(legacy[4].1.int64_value(&[]), 7);
    // Cut the last storage short: refused, naming it; no tensors come back.
    let bytes = std::fs::read(dir.path().join("legacy.pth")).unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let err = read_checkpoint(&cut).unwrap_err().to_string();
    assert!(
        err.contains("cut.pth") && err.contains("storage") && err.contains("do not fit"),
        "{err}"
    );
    // A pickle that is not a torch.save file.
    let not = dir.path().join("plain.pkl");
    run(
        &py,
        &[
            "-c",
            "import pickle,sys; pickle.dump({'a': 1}, open(sys.argv[1], 'wb'), protocol=2)",
            not.to_str().unwrap(),
        ],
    );
    let err = read_checkpoint(&not).unwrap_err().to_string();
    assert!(err.contains("magic number"), "{err}");
}

/// A hostile checkpoint (sizes and strides that overflow, negative strides, a view past its
/// storage) is refused with an error naming the tensor; nothing panics or aborts.
#[test]
fn hostile_tensor_geometry_is_refused_not_a_crash() {
    let Some((py, _)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run(
        &py,
        &[
            "-c",
            r#"
import pickle, sys, zipfile, collections, torch
class Storage:  # stands for torch.FloatStorage in the persistent id
    pass
class T:
    def __init__(self, size, stride, offset):
        self.a = (size, stride, offset)
    def __reduce__(self):
        size, stride, offset = self.a
        return (torch._utils._rebuild_tensor_v2,
                (Storage(), offset, size, stride, False, collections.OrderedDict()))
class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", torch.FloatStorage, "0", "cpu", 4)
        return None
cases = {"overflow": ((1 << 62, 4), (1 << 62, 1), 0),
         "negative": ((2, 2), (-2, 1), 0),
         "past_end": ((2, 2), (2, 1), 1)}
for name, (size, stride, offset) in cases.items():
    import io
    b = io.BytesIO()
    P(b, protocol=2).dump({"w": T(size, stride, offset)})
    with zipfile.ZipFile(f"{sys.argv[1]}/{name}.pth", "w") as z:
        z.writestr("archive/data.pkl", b.getvalue())
        z.writestr("archive/data/0", b"\0" * 16)
"#,
            d,
        ],
    );
    for (name, want) in [
        ("overflow", "overflows"),
        ("negative", "impossible tensor"),
        ("past_end", "storage holds 4 elements"),
    ] {
        let err = read_checkpoint(&dir.path().join(format!("{name}.pth")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want) && err.contains("w (storage 0)"),
            "{name}: {err}"
        );
    }
}
