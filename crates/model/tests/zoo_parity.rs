//! Every zoo architecture against torchvision 0.26 itself (in the project venv) on the same
//! weights and images: torchvision's `torch.save` state dict imported without Python
//! (`import_checkpoint`, with DataParallel's `module.` prefix for resnet18 and the pre-0.3
//! DenseNet names for densenet121), then every candidate layer — the output of the module
//! of that name, as a forward hook sees it — and the logits within 1e-4 (max abs, fp32,
//! CPU, eval mode). Both sides run libtorch's kernels on one thread, so that they reduce in
//! the same order: the weights are random, and through 150 random layers the rounding of a
//! different split (two threads against one) grows to 5e-3 on values of 40 — a property of
//! the reduction order, not of the architecture. The reference script also fails if a candidate layer is not a module of
//! torchvision's model, so the layer names are checked against torchvision too.

use std::path::Path;
use std::process::Command;

use tch::{Device, Tensor};
use ventral_model::{Arch, CornetConfig, Model, import_checkpoint};
use ventral_model_spec::zoo::ZooArch;

const TOLERANCE: f64 = 1e-4;

fn check(arch: &str, resolution: i64) {
    let Some(py) = ventral_testkit::venv_python("VENTRAL_PYTHON", ".venv") else {
        ventral_testkit::skipped("no project venv (run `make test`)");
        return;
    };
    tch::set_num_threads(1);
    let zoo = ZooArch::find(arch).expect("a zoo architecture");
    let config = CornetConfig {
        resolution,
        ..CornetConfig::for_arch(Arch::Zoo(zoo))
    };
    let layers = config.layers();
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zoo_parity.py");
    let o = Command::new(&py)
        .arg(&script)
        .arg(tmp.path())
        .arg(format!("{arch}:{resolution}:{}", layers.join(",")))
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "{arch}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = tmp.path().join(arch);
    let weights = tmp.path().join("imported");
    let meta = import_checkpoint(&dir.join("weights.pth"), &config, &weights)
        .unwrap_or_else(|e| panic!("{arch}: import: {e}"));
    std::fs::remove_file(dir.join("weights.pth")).unwrap();
    assert_eq!(meta.config, config);
    let model = Model::open(&weights, Device::Cpu).unwrap();
    let reference: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("ref.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let out = tch::no_grad(|| model.net.forward_layers(&reference["input"], false));
    let names: Vec<&str> = out.layers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, layers, "{arch}: layers recorded in candidate order");
    let diff = |a: &Tensor, b: &Tensor| -> f64 { (a - b).abs().max().double_value(&[]) };
    let scale = |a: &Tensor| -> f64 { a.abs().max().double_value(&[]) };
    let mut worst = (
        "logits".to_string(),
        diff(&out.logits, &reference["logits"]),
    );
    let mut largest = scale(&reference["logits"]);
    assert_eq!(
        out.logits.size(),
        reference["logits"].size(),
        "{arch}: logits"
    );
    for (name, t) in &out.layers {
        let r = &reference[&format!("layer/{name}")];
        assert_eq!(t.size(), r.size(), "{arch}: `{name}` shape");
        let d = diff(t, r);
        largest = largest.max(scale(r));
        if d > worst.1 {
            worst = (name.clone(), d);
        }
    }
    eprintln!(
        "{arch} at {resolution} px: {} layers + logits, max abs difference {:.2e} (`{}`), largest value {largest:.1}",
        layers.len(),
        worst.1,
        worst.0
    );
    assert!(
        worst.1 <= TOLERANCE,
        "{arch}: `{}` differs from torchvision by {:.3e} (tolerance {TOLERANCE:e})",
        worst.0,
        worst.1
    );
}

macro_rules! parity {
    ($($test:ident: $arch:literal at $px:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check($arch, $px);
            }
        )*

        /// Every architecture of the zoo has a parity test above.
        #[test]
        fn every_architecture_is_tested() {
            let tested = [$($arch),*];
            for a in ventral_model_spec::zoo::ZOO {
                assert!(tested.contains(&a.name), "no parity test for {}", a.name);
            }
        }
    };
}

parity! {
    alexnet: "alexnet" at 224;
    vgg11: "vgg11" at 64;
    vgg13: "vgg13" at 64;
    vgg16: "vgg16" at 64;
    vgg19: "vgg19" at 64;
    vgg16_bn: "vgg16_bn" at 64;
    vgg19_bn: "vgg19_bn" at 64;
    resnet18: "resnet18" at 224;
    resnet34: "resnet34" at 64;
    resnet50: "resnet50" at 64;
    resnet101: "resnet101" at 64;
    resnet152: "resnet152" at 64;
    densenet121: "densenet121" at 64;
    densenet161: "densenet161" at 64;
    densenet169: "densenet169" at 64;
    densenet201: "densenet201" at 64;
    squeezenet1_0: "squeezenet1_0" at 64;
    squeezenet1_1: "squeezenet1_1" at 96;
    mobilenet_v2: "mobilenet_v2" at 64;
    inception_v3: "inception_v3" at 96;
}
