//! `ventral model/train/eval/extract` and the model stage kinds, on real images: the ImageNet
//! samples and the HvM stimuli in ../shared/data.

mod common;

use std::path::Path;

use common::{Ws, imagenet_root, py, python, shared_data_or_skip};

const NARROW: &[&str] = &["--width", "0.125", "--resolution", "32", "--times", "1,2,1"];

#[test]
fn training_resumes_to_the_same_weights() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, _) = imagenet_root(&ws, &data);
    ws.ok(&["ingest", "imagenet", root.to_str().unwrap(), "-o", "index"]);
    let train = |out: &str, epochs: &str| {
        let mut args = vec![
            "train",
            "--index",
            "index",
            "-o",
            out,
            "--epochs",
            epochs,
            "--batch",
            "4",
            "--lr",
            "0.01",
            "--lr-step",
            "1",
            "--seed",
            "7",
            "--device",
            "cpu",
        ];
        args.extend_from_slice(NARROW);
        ws.json(&[args.as_slice(), &["--json"]].concat())
    };
    let a = train("a", "2");
    assert_eq!(a["history"].as_array().unwrap().len(), 2);
    assert_eq!(a["resumed_from"], 0);
    // Interrupted after one epoch, then resumed.
    train("b", "1");
    let b = train("b", "2");
    assert_eq!(b["resumed_from"], 1);
    let wa = std::fs::read(ws.path().join("a/weights.safetensors")).unwrap();
    let wb = std::fs::read(ws.path().join("b/weights.safetensors")).unwrap();
    assert!(
        wa == wb,
        "resumed training must reach the uninterrupted run's weights"
    );
    assert_eq!(a["history"][1]["loss"], b["history"][1]["loss"]);
    // The learning rate steps down as asked.
    assert_eq!(a["history"][0]["lr"], 0.01);
    assert!((a["history"][1]["lr"].as_f64().unwrap() - 0.001).abs() < 1e-12);
    let e = ws.json(&[
        "eval",
        "--weights",
        "a",
        "--index",
        "index",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(e["images"], 10);
    let top1 = e["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1));
    assert!(e["top5"].as_f64().unwrap() >= top1);
    let info = ws.json(&["model", "info", "a", "--json"]);
    assert_eq!(
        info["config"]["classes"],
        19.min(info["config"]["classes"].as_i64().unwrap())
    );
}

#[test]
fn the_papers_augmentation_trains_reproducibly_at_any_thread_count() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, _) = imagenet_root(&ws, &data);
    ws.ok(&["ingest", "imagenet", root.to_str().unwrap(), "-o", "index"]);
    let train = |out: &str, augment: &str, threads: &str| {
        let mut args = vec![
            "train",
            "--index",
            "index",
            "-o",
            out,
            "--epochs",
            "1",
            "--batch",
            "4",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--augment",
            augment,
            "--json",
        ];
        args.extend_from_slice(NARROW);
        let out = ws
            .cmd(&args)
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "train --augment {augment}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The progress line reports the loader.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("loader") && err.contains("model waiting"),
            "{err}"
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let a = train("a", "random-resized-crop", "1");
    train("b", "random-resized-crop", "2");
    train("c", "crop-flip", "2");
    let w = |d: &str| std::fs::read(ws.path().join(d).join("weights.safetensors")).unwrap();
    assert!(
        w("a") == w("b"),
        "the same seed must give the same weights at 1 and 2 threads"
    );
    assert!(w("a") != w("c"), "the two augmentations must differ");
    let rate = a["loader_images_per_second"][0].as_f64().unwrap();
    let share = a["waiting_share"][0].as_f64().unwrap();
    assert!(rate > 0.0 && (0.0..=1.0).contains(&share), "{a}");
    // A bad value is refused when the command line is parsed.
    let out = ws.run(&["train", "--index", "index", "-o", "d", "--augment", "mixup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crop-flip or random-resized-crop"));
    assert!(!ws.path().join("d").exists());
}

#[test]
fn extract_writes_one_store_per_area_and_timestep() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let st = ws.path().join("st");
    let fixtures = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/ingest_fixtures.py");
    py(
        &py3,
        &fixtures,
        &[
            "stimuli",
            st.to_str().unwrap(),
            data.join("hvm").to_str().unwrap(),
        ],
    );
    ws.ok(&[
        "ingest",
        "brainio",
        st.join("hvm.csv").to_str().unwrap(),
        "-o",
        "hvm",
    ]);
    let mut init = vec!["model", "init", "-o", "w", "--seed", "3"];
    init.extend_from_slice(NARROW);
    ws.ok(&init);
    let v = ws.json(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        "hvm/stimulus_sets/hvm",
        "-o",
        "acts",
        "--batch",
        "8",
        "--device",
        "cpu",
        "--model-id",
        "narrow",
        "--json",
    ]);
    assert_eq!(v["stimuli"], 25);
    let names: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["V1-t0", "V2-t0", "V4-t0", "V4-t1", "IT-t0", "decoder-t0"]
    );
    let csv = ws.ok(&[
        "sql", "--path", "acts", "--format", "csv",
        "SELECT s.category_name, a.timestep, avg(a.value) AS m FROM activations a JOIN stimuli s ON s.assembly = a.assembly AND s.stimulus_id = a.stimulus_id WHERE a.layer = 'V4' GROUP BY s.category_name, a.timestep ORDER BY s.category_name, a.timestep",
    ]);
    assert_eq!(csv.lines().count(), 1 + 8 * 2, "{csv}");
    // Same weights, images and batch size: same bytes.
    ws.ok(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        "hvm/stimulus_sets/hvm",
        "-o",
        "acts2",
        "--batch",
        "8",
        "--device",
        "cpu",
        "--model-id",
        "narrow",
    ]);
    for layer in ["V1-t0", "IT-t0", "decoder-t0"] {
        let a = std::fs::read(ws.path().join(format!("acts/{layer}/values/c/0/0"))).unwrap();
        let b = std::fs::read(ws.path().join(format!("acts2/{layer}/values/c/0/0"))).unwrap();
        assert!(
            a == b,
            "{layer}: a second extraction must give the same bytes"
        );
    }
    // A folder of images and an unreadable one.
    let imgs = ws.path().join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    std::fs::write(imgs.join("broken.png"), b"nope").unwrap();
    let o = ws.run(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        "imgs",
        "-o",
        "acts3",
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.png") && err.contains("unreadable image"),
        "{err}"
    );
    assert!(!ws.path().join("acts3").exists());
}

/// `(store, neuroids)` of each store an extraction's summary lists, in its order.
fn stores_of(summary: &serde_json::Value) -> Vec<(&str, u64)> {
    summary["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l[0].as_str().unwrap(), l[2].as_u64().unwrap()))
        .collect()
}

#[test]
fn a_zoo_model_trains_and_extracts_under_torchvision_names() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, _) = imagenet_root(&ws, &data);
    ws.ok(&["ingest", "imagenet", root.to_str().unwrap(), "-o", "index"]);
    let small = [
        "--arch",
        "resnet18",
        "--width",
        "0.125",
        "--resolution",
        "32",
    ];
    let info = ws.json(&[&["model", "info", "--json"], &small[..]].concat());
    assert_eq!(info["model"], "resnet18 (width 0.125, 1000 classes, 32 px)");
    let layers: Vec<&str> = info["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers.first(), Some(&"conv1"));
    assert_eq!(layers.last(), Some(&"avgpool"));
    assert_eq!(layers.len(), 10);
    // CORnet's knobs are refused for a torchvision architecture.
    let o = ws.run(&[&["model", "info"], &small[..], &["--times", "1,1,1"]].concat());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`times`"));
    let t = ws.json(
        &[
            &[
                "train", "--index", "index", "-o", "w", "--epochs", "1", "--batch", "4", "--seed",
                "7", "--device", "cpu", "--json",
            ],
            &small[..],
        ]
        .concat(),
    );
    assert_eq!(t["history"].as_array().unwrap().len(), 1);
    let samples = data.join("imagenet-samples");
    let samples = samples.to_str().unwrap();
    let v = ws.json(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        samples,
        "-o",
        "acts",
        "--device",
        "cpu",
        "--layer",
        "layer2.1",
        "--layer",
        "conv1",
        "--layer",
        "avgpool",
        "--json",
    ]);
    // In forward order, one store per layer, named as the layer.
    let stores = stores_of(&v);
    // conv1: 8 channels at 16 × 16; layer2.1: 16 at 4 × 4; avgpool: 64.
    assert_eq!(
        stores,
        [
            ("conv1", 8 * 16 * 16),
            ("layer2.1", 16 * 4 * 4),
            ("avgpool", 64)
        ]
    );
    let o = ws.run(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        samples,
        "-o",
        "acts2",
        "--device",
        "cpu",
        "--layer",
        "layer5.0",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("layer5.0"));
    assert!(!ws.path().join("acts2").exists());
    // Brain-Score's layer PCA: fitted on the index's validation images; extracted for those
    // same images, every component has mean 0 and the variances descend.
    let val = root.join("val");
    let v = ws.json(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        val.to_str().unwrap(),
        "-o",
        "pca",
        "--device",
        "cpu",
        "--layer",
        "conv1",
        "--layer",
        "avgpool",
        "--pca",
        "3",
        "--pca-index",
        "index",
        "--json",
    ]);
    let stores = stores_of(&v);
    assert_eq!(stores, [("conv1", 3), ("avgpool", 3)]);
    let csv = ws.ok(&[
        "sql", "--path", "pca", "--format", "csv",
        "SELECT neuroid, avg(value) AS m, var_samp(value) AS v FROM activations WHERE layer = 'avgpool' GROUP BY neuroid ORDER BY neuroid",
    ]);
    let rows: Vec<(f64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (f[1], f[2])
        })
        .collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for w in rows.windows(2) {
        assert!(w[0].1 >= w[1].1 * (1.0 - 1e-4), "variances descend: {csv}");
    }
    for (m, v) in &rows {
        assert!(m.abs() < 1e-4 * v.sqrt().max(1e-3), "centred: {csv}");
    }
    // Within a memory too small for both PCA'd layers at once, each is fitted and extracted
    // in a pass of its own: the same stores, byte for byte.
    let low = ws.json(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        val.to_str().unwrap(),
        "-o",
        "pca-low",
        "--device",
        "cpu",
        "--layer",
        "conv1",
        "--layer",
        "avgpool",
        "--pca",
        "3",
        "--pca-index",
        "index",
        "--memory",
        "1K",
        "--json",
    ]);
    assert_eq!(stores_of(&low), stores);
    assert_eq!(
        (v["passes"].as_u64(), low["passes"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        files_of(&ws.path().join("pca")),
        files_of(&ws.path().join("pca-low"))
    );
    let o = ws.run(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        samples,
        "-o",
        "pca-bad",
        "--device",
        "cpu",
        "--pca",
        "3",
        "--pca-index",
        "index",
        "--memory",
        "lots",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`lots` is not a memory size"));
    assert!(!ws.path().join("pca-bad").exists());
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_of(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no files under {}", dir.display());
    out
}

#[test]
fn a_users_own_model_is_imported_from_torchscript_and_extracted() {
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let fixture = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/torchscript_fixture.py");
    let dir = ws.path().join("ts");
    py(&py3, &fixture, &["make", dir.to_str().unwrap()]);
    let info = ws.json(&[
        "model",
        "import",
        "--torchscript",
        dir.join("model.pt").to_str().unwrap(),
        "-o",
        "w",
        "--json",
    ]);
    assert_eq!(
        info["layers"],
        serde_json::json!(["stem.2", "right", "gate", "head"])
    );
    assert_eq!(info["config"]["resolution"], 32, "the traced resolution");
    assert_eq!(info["config"]["classes"], 7);
    // Extraction runs the file as it is; PyTorch gives the same values.
    ws.ok(&[
        "extract",
        "--weights",
        "w",
        "--stimuli",
        dir.join("input.npy").to_str().unwrap(),
        "-o",
        "acts",
        "--device",
        "cpu",
    ]);
    py(
        &py3,
        &fixture,
        &[
            "check",
            dir.to_str().unwrap(),
            ws.path().join("acts").to_str().unwrap(),
        ],
    );
    // It cannot be trained here, and a file that is not TorchScript is refused by name.
    let o = ws.run(&[
        "train",
        "--index",
        "nowhere",
        "-o",
        "t",
        "--arch",
        "torchscript",
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    std::fs::write(ws.path().join("junk.pt"), b"not a model").unwrap();
    let o = ws.run(&["model", "import", "--torchscript", "junk.pt", "-o", "w2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.pt"));
    assert!(!ws.path().join("w2").exists());
}

#[test]
fn model_stage_kinds_in_a_pipeline() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, _) = imagenet_root(&ws, &data);
    let rel = root
        .strip_prefix(ws.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    ws.write(
        "pipelines/p.toml",
        &format!(
            "[stages.index]\nkind = \"imagenet\"\ninputs = {{ root = \"{rel}\" }}\n\n\
             [stages.train]\nkind = \"train\"\ninputs = {{ index = \"stage:index\" }}\n\
             model = {{ width = 0.125, resolution = 32, times = [1, 1, 1] }}\n\
             recipe = {{ epochs = 1, batch = 5, lr = 0.01, seed = 1 }}\ndevice = \"cpu\"\n\n\
             [stages.top1]\nkind = \"evaluate\"\ninputs = {{ weights = \"stage:train\", index = \"stage:index\" }}\ndevice = \"cpu\"\n\n\
             [stages.acts]\nkind = \"extract\"\ninputs = {{ weights = \"stage:train\", stimuli = \"{rel}/val\" }}\ndevice = \"cpu\"\n\n\
             [stages.pcs]\nkind = \"extract\"\ninputs = {{ weights = \"stage:train\", stimuli = \"{rel}/val\", pca_images = \"stage:index\" }}\n\
             layers = [\"V4.output-t0\", \"IT.output-t0\"]\npca = 3\ndevice = \"cpu\"\nresources = {{ mem = \"1K\" }}\n"
        ),
    );
    let r = ws.json(&["run", "--json"]);
    let mut ran = ws.ran(&r);
    ran.sort();
    assert_eq!(ran, ["acts", "index", "pcs", "top1", "train"]);
    // The stage's memory reaches the extraction: its two PCA'd layers, a pass each.
    let key = ws.json(&["show", "pcs"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = std::fs::read_to_string(ws.path().join(format!(".ventral/logs/{key}.log"))).unwrap();
    assert!(log.contains("2 passes over the images"), "{log}");
    let r = ws.json(&["run", "--json"]);
    assert!(ws.ran(&r).is_empty());
    let csv = ws.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM assemblies WHERE kind = 'activations'",
    ]);
    // acts: V1, V2, V4, IT at one timestep each, avgpool; pcs: V4 and IT.
    assert!(csv.contains("\n7"), "{csv}");
    let show = ws.ok(&["show", "train"]);
    assert!(show.contains("epochs/001"), "{show}");

    // The index records its root relative to the workspace: the workspace moved elsewhere
    // (or its outputs pulled onto a machine whose workspace is elsewhere) still finds its
    // images, and the old place is gone.
    let index = ws.json(&["show", "index"]);
    let meta =
        std::fs::read_to_string(Path::new(index["path"].as_str().unwrap()).join("index.json"))
            .unwrap();
    assert!(meta.contains("\"root\": \"ilsvrc\""), "{meta}");
    assert!(
        meta.contains("\"root_relative_to\": \"workspace\""),
        "{meta}"
    );
    let moved = Ws::new();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", ws.path().display()))
        .arg(moved.path())
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(ws.path().join("ilsvrc")).unwrap();
    let p = moved.read("pipelines/p.toml");
    moved.write(
        "pipelines/p.toml",
        &p.replace("kind = \"evaluate\"\n", "kind = \"evaluate\"\nbatch = 3\n"),
    );
    let r = moved.json(&["run"]);
    assert_eq!(moved.ran(&r), ["top1"], "{r}");
    // `ventral eval` reads the stage's index against its `-C` workspace too.
    let (weights, index) = (
        moved.json(&["show", "train"])["path"]
            .as_str()
            .unwrap()
            .to_string(),
        moved.json(&["show", "index"])["path"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let args = [
        "eval",
        "--weights",
        &weights,
        "--index",
        &index,
        "--device",
        "cpu",
    ];
    let eval = moved.json(&args);
    assert!(eval["images"].as_u64().unwrap() > 0, "{eval}");
    // Read against another workspace, the images are not there: an error naming them.
    let o = moved
        .cmd(&[&args[..], &["-C", "/"]].concat())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ilsvrc"), "{err}");
}

/// With the Slurm executor and a `gpu_partition`, `device = "auto"` is planned for the GPU
/// nodes: CUDA in the key (and the stage then asks Slurm for a GPU) when this build's
/// libtorch has CUDA, whatever the machine the driver runs on has; `--executor local` plans
/// for this machine.
#[test]
fn auto_device_is_planned_for_the_gpu_partition() {
    let ws = Ws::new();
    ws.write("data/w.pt", "weights");
    ws.write("data/imgs/a.png", "image");
    ws.write(
        "pipelines/p.toml",
        "[stages.acts]\nkind = \"extract\"\ninputs = { weights = \"data/w.pt\", stimuli = \"data/imgs\" }\ndevice = \"auto\"\n",
    );
    let key = |args: &[&str]| -> String {
        let r = ws.json(args);
        // `status` prints the list; `run --dry-run` the list under `stages`.
        let s = &r.get("stages").unwrap_or(&r)[0];
        assert_eq!(s["stage"], "acts", "{r}");
        s["key"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    };
    let here = key(&["status"]);
    ws.write(
        "ventral.toml",
        "[executor]\nkind = \"slurm\"\ngpu_partition = \"gpu\"\n",
    );
    let planned = key(&["status"]);
    assert_eq!(key(&["run", "--dry-run"]), planned);
    assert_eq!(key(&["run", "--dry-run", "--executor", "local"]), here);
    let here_has_gpu = std::path::Path::new("/dev/nvidia0").exists();
    if ventral_model_spec::Libtorch::BUILT.cuda.is_some() && !here_has_gpu {
        assert_ne!(
            planned, here,
            "auto resolved on this machine, not for the GPU nodes"
        );
    } else {
        assert_eq!(planned, here);
    }
    // Without a GPU partition the plan is this machine's.
    ws.write("ventral.toml", "[executor]\nkind = \"slurm\"\n");
    assert_eq!(key(&["status"]), here);
}
