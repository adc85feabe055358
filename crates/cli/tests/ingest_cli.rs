//! `ventral ingest`, `ventral export` and `ventral manifest` on files nobody here wrote: the
//! real BrainIO files in ../shared/data, netCDF written by xarray (netCDF4 and h5netcdf
//! engines), real HvM and ImageNet images, and a corpus of bad inputs.

mod common;

use std::path::{Path, PathBuf};

use common::{Ws, crosscheck_python, imagenet_root, py, python, shared_data_or_skip};

fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()))
        .join("tests/ingest_fixtures.py")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Run a command that must fail: non-zero exit, every `needles` in stderr, `out` not created.
fn fails(ws: &Ws, args: &[&str], needles: &[&str], out: &Path) {
    let o = ws.run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in the error:\n{err}");
    }
    assert!(!out.exists(), "{args:?} left {}", out.display());
    let parent = out.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{args:?} left temporary files");
}

#[test]
fn netcdf_written_by_xarray_round_trips() {
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let nc = ws.path().join("nc");
    py(&py3, &fixtures(), &["netcdf", s(&nc)]);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(nc.join("cases.json")).unwrap()).unwrap();
    for (name, want) in cases.as_object().unwrap() {
        let file = nc.join(format!("{name}.nc"));
        let out = ws.path().join(format!("store-{name}"));
        let v = ws.json(&["ingest", "brainio", s(&file), "-o", s(&out), "--json"]);
        let a = &v["assemblies"][0];
        // One layout whatever the source: the assembly under assemblies/<id>/.
        let store = std::path::PathBuf::from(a["path"].as_str().unwrap());
        assert!(store.starts_with(out.join("assemblies")), "{store:?}");
        assert_eq!(a["dims"], want["dims"], "{name}");
        assert_eq!(a["shape"], want["shape"], "{name}");
        assert_eq!(a["identifier"], want["identifier"], "{name}");
        assert_eq!(a["nan_count"], want["nan"], "{name}");
        assert_eq!(a["digest"].as_str().unwrap().len(), 64);
        let back = ws.path().join(format!("{name}-back.nc"));
        ws.ok(&["export", "brainio", s(&store), "-o", s(&back)]);
        // Our values equal the file's (transposed to our order); the export is identical.
        py(&py3, &fixtures(), &["check", s(&file), s(&store), s(&back)]);
    }
    // Ids are strings in our stores whatever the file's type.
    let out = ws.ok(&[
        "sql",
        "--path",
        "store-legacy",
        "SELECT neuroid_id FROM neuroids ORDER BY neuroid_id LIMIT 1",
        "--format",
        "csv",
    ]);
    assert!(out.contains("100"), "{out}");
}

#[test]
fn real_brainio_files_round_trip_and_load_in_brainscore() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let dir = data.join("brainio-netcdf");
    let out = ws.path().join("all");
    let v = ws.json(&["ingest", "brainio", s(&dir), "-o", s(&out), "--json"]);
    let asms = v["assemblies"].as_array().unwrap();
    assert_eq!(asms.len(), 4);
    let feat = asms
        .iter()
        .find(|a| a["identifier"] == "resnet18-objectome240-features")
        .unwrap();
    assert_eq!(feat["shape"], serde_json::json!([2400, 512]));
    assert_eq!(
        feat["dims"],
        serde_json::json!(["stimulus_path", "neuroid"])
    );
    let probs = asms
        .iter()
        .find(|a| a["identifier"] == "alexnet-probabilities")
        .unwrap();
    assert_eq!(probs["dims"], serde_json::json!(["presentation", "choice"]));
    assert_eq!(probs["shape"], serde_json::json!([240, 24]));
    // Legacy `image_id` gave `stimulus_id`, as Brain-Score's loader does.
    assert!(
        probs["coords"]["presentation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "stimulus_id")
    );
    let bs = crosscheck_python();
    for a in asms {
        let id = a["identifier"].as_str().unwrap();
        let store = out.join("assemblies").join(id);
        let back = ws.path().join(format!("{id}.nc"));
        ws.ok(&["export", "brainio", s(&store), "-o", s(&back)]);
        py(
            &py3,
            &fixtures(),
            &[
                "check",
                s(&dir.join(format!("{id}.nc"))),
                s(&store),
                s(&back),
            ],
        );
        if let Some(bs) = &bs {
            let got: serde_json::Value =
                serde_json::from_str(&py(bs, &fixtures(), &["brainscore", s(&back)])).unwrap();
            let orig: serde_json::Value = serde_json::from_str(&py(
                bs,
                &fixtures(),
                &["brainscore", s(&dir.join(format!("{id}.nc")))],
            ))
            .unwrap();
            assert_eq!(
                got, orig,
                "{id}: Brain-Score loads our export as it loads the original"
            );
        }
    }
}

#[test]
fn stimulus_sets_and_catalogs() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let st = ws.path().join("st");
    py(
        &py3,
        &fixtures(),
        &["stimuli", s(&st), s(&data.join("hvm"))],
    );
    let out = ws.path().join("cat");
    let v = ws.json(&[
        "ingest",
        "brainio",
        s(&st.join("lookup.csv")),
        "-o",
        s(&out),
        "--json",
    ]);
    assert_eq!(v["stimulus_sets"][0]["count"], 25);
    let a = &v["assemblies"][0];
    assert_eq!(a["identifier"], "test.HvMNeural");
    assert_eq!(a["shape"], serde_json::json!([50, 4, 1]));
    // The stimulus set's columns were joined on stimulus_id.
    let pres: Vec<&str> = a["coords"]["presentation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "object_name",
        "category_name",
        "variation",
        "rxy",
        "s",
        "blake3",
    ] {
        assert!(pres.contains(&c), "{c} not in {pres:?}");
    }
    // Every image was extracted under images/ and only there.
    let images = out.join("stimulus_sets/test.hvm/images/images");
    assert_eq!(std::fs::read_dir(&images).unwrap().count(), 25);
    // SQL sees the joined coordinates.
    let csv = ws.ok(&[
        "sql",
        "--path",
        "cat",
        "SELECT category_name, COUNT(*) AS n FROM stimuli GROUP BY category_name ORDER BY category_name",
        "--format",
        "csv",
    ]);
    assert!(csv.lines().count() > 2, "{csv}");
    // The same set, ingested alone from its CSV.
    let alone = ws.path().join("alone");
    let v = ws.json(&[
        "ingest",
        "brainio",
        s(&st.join("hvm.csv")),
        "-o",
        s(&alone),
        "--json",
    ]);
    assert_eq!(v["stimulus_sets"][0]["count"], 25);
    assert!(alone.join("stimulus_sets/hvm/stimuli.parquet").is_file());
}

#[test]
fn bad_inputs_are_named_and_leave_nothing() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let st = ws.path().join("st");
    py(
        &py3,
        &fixtures(),
        &["stimuli", s(&st), s(&data.join("hvm"))],
    );
    let bad = st.join("bad");
    let out = ws.path().join("out");
    let cases: &[(&str, &[&str])] = &[
        ("truncated.nc", &["truncated.nc", "truncated"]),
        ("corrupt.nc", &["corrupt.nc", "cannot be opened"]),
        (
            "nofilename.csv",
            &["nofilename.csv", "column `filename`", "missing"],
        ),
        ("noid.csv", &["noid.csv", "column `stimulus_id`"]),
        ("dup.csv", &["dup.csv", "duplicate stimulus id"]),
        ("missing.csv", &["missing.zip", "missing", "row 2"]),
        ("escape.csv", &["escape.csv", "../escape.png"]),
        ("absolute.csv", &["absolute.csv", "/etc/passwd"]),
        (
            "evilzip.csv",
            &["evilzip.zip", "../../outside.txt", "refused"],
        ),
        ("badimage.csv", &["badimage.zip", "unreadable image"]),
        (
            "wrongsha",
            &["assy_test_HvMNeural.nc", "sha1", "0000000000"],
        ),
        ("strangers", &["stimulus_id", "`stranger`", "test.hvm"]),
    ];
    for (file, needles) in cases {
        fails(
            &ws,
            &["ingest", "brainio", s(&bad.join(file)), "-o", s(&out)],
            needles,
            &out,
        );
    }
    assert!(!ws.path().join("outside.txt").exists());
    assert!(!st.join("outside.txt").exists());
    // A missing input and an existing output are refused too.
    fails(
        &ws,
        &["ingest", "brainio", "nope.nc", "-o", s(&out)],
        &["nope.nc"],
        &out,
    );
    // Files that crash libhdf5 under the fuzzer (the fuzz findings): an error naming the
    // file, nothing written.
    let findings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings/netcdf");
    for name in [
        "segv-hdf5-H5MM_xfree-4dc5eea7",
        "oom-hdf5-asks-32gib-b647fbb2",
    ] {
        let nc = ws.path().join(format!("{name}.nc"));
        std::fs::copy(findings.join(name), &nc).unwrap();
        fails(
            &ws,
            &["ingest", "brainio", s(&nc), "-o", s(&out)],
            &[&format!("{name}.nc")],
            &out,
        );
    }
}

/// A netCDF worker that dies of a signal (as libhdf5 does on some damaged files): `ventral`
/// reports the file and the signal, exits 1 and writes nothing.
#[test]
fn a_netcdf_worker_killed_by_a_signal_is_an_error_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Ws::new();
    let worker = ws.path().join("crashing-worker");
    std::fs::write(&worker, "#!/bin/sh\nkill -SEGV $$\n").unwrap();
    std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nc = ws.path().join("some.nc");
    std::fs::write(&nc, b"\x89HDF\r\n\x1a\n").unwrap();
    let out = ws.path().join("out");
    let o = ws
        .cmd(&["ingest", "brainio", s(&nc), "-o", s(&out)])
        .env("VENTRAL_NETCDF", &worker)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("some.nc") && err.contains("signal 11") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left");
}

#[test]
fn imagenet_layouts_and_manifests() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, samples) = imagenet_root(&ws, &data);
    let out = ws.path().join("imagenet");
    let v = ws.json(&["ingest", "imagenet", s(&root), "-o", s(&out), "--json"]);
    assert_eq!(v["counts"]["train"], 10);
    assert_eq!(v["counts"]["val"], 10);
    let mut wnids: Vec<usize> = samples.iter().map(|x| x.1).collect();
    wnids.sort();
    wnids.dedup();
    assert_eq!(v["classes"], wnids.len());
    // Class index = sorted wnid order; each image keeps its own label.
    let t = ventral_store::read_parquet(&out.join("images.parquet")).unwrap();
    use ventral_store::arrow::array::AsArray;
    use ventral_store::arrow::datatypes::Int64Type;
    let label = t
        .column_by_name("label")
        .unwrap()
        .as_primitive::<Int64Type>();
    let wnid = t.column_by_name("wnid").unwrap().as_string::<i32>();
    for i in 0..t.num_rows() {
        let w: usize = wnid.value(i)[1..].parse().unwrap();
        assert_eq!(
            label.value(i) as usize,
            wnids.iter().position(|&x| x == w).unwrap()
        );
    }

    // Manifests: create, verify, then damage one file.
    let man = ws.path().join("manifests/ilsvrc.toml");
    let v = ws.json(&[
        "manifest",
        "create",
        s(&root),
        "--dataset",
        "ilsvrc",
        "-o",
        s(&man),
        "--json",
    ]);
    assert_eq!(v["files"], 21);
    let again = ws.path().join("again.toml");
    ws.ok(&[
        "manifest",
        "create",
        s(&root),
        "--dataset",
        "ilsvrc",
        "-o",
        s(&again),
    ]);
    assert_eq!(
        std::fs::read(&man).unwrap(),
        std::fs::read(&again).unwrap(),
        "same tree, same manifest bytes"
    );
    ws.ok(&["manifest", "verify", s(&root), s(&man)]);
    let out2 = ws.path().join("imagenet2");
    ws.ok(&[
        "ingest",
        "imagenet",
        s(&root),
        "-o",
        s(&out2),
        "--manifest",
        s(&man),
    ]);
    let victim = std::fs::read_dir(root.join("val"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    let out3 = ws.path().join("imagenet3");
    fails(
        &ws,
        &["manifest", "verify", s(&root), s(&man)],
        &[&name, "blake3"],
        &out3,
    );
    fails(
        &ws,
        &[
            "ingest",
            "imagenet",
            s(&root),
            "-o",
            s(&out3),
            "--manifest",
            s(&man),
        ],
        &[&name, "blake3", "ilsvrc.toml"],
        &out3,
    );
    // An unreadable image is named.
    std::fs::write(&victim, b"not a jpeg at all").unwrap();
    fails(
        &ws,
        &["ingest", "imagenet", s(&root), "-o", s(&out3)],
        &[&name, "unreadable image"],
        &out3,
    );
    // A flat val/ without labels is refused with the way out.
    std::fs::remove_file(root.join("LOC_val_solution.csv")).unwrap();
    fails(
        &ws,
        &["ingest", "imagenet", s(&root), "-o", s(&out3)],
        &["val", "labels"],
        &out3,
    );
}

#[test]
fn imagenet_per_wnid_val_and_brainscore_labels() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let (root, _) = imagenet_root(&ws, &data);
    // Brain-Score's imagenet2012.csv labels instead of Kaggle's.
    let loc = std::fs::read_to_string(root.join("LOC_val_solution.csv")).unwrap();
    let mut bs = String::from(",filename,filepath,image_file_sha1,image_id,label,synset\n");
    for (i, line) in loc.lines().skip(1).enumerate() {
        let (id, rest) = line.split_once(',').unwrap();
        let wnid = rest.split_whitespace().next().unwrap();
        bs.push_str(&format!(
            "{i},{id}.JPEG,/x/{id}.JPEG,0,{id}.JPEG,0,{wnid}\n"
        ));
    }
    let labels = ws.path().join("imagenet2012.csv");
    std::fs::write(&labels, bs).unwrap();
    std::fs::remove_file(root.join("LOC_val_solution.csv")).unwrap();
    let a = ws.json(&[
        "ingest",
        "imagenet",
        s(&root),
        "-o",
        "a",
        "--val-labels",
        s(&labels),
        "--json",
    ]);
    // Now move val/ into per-wnid folders: same index.
    for line in loc.lines().skip(1) {
        let (id, rest) = line.split_once(',').unwrap();
        let wnid = rest.split_whitespace().next().unwrap();
        let d = root.join("val").join(wnid);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::rename(
            root.join("val").join(format!("{id}.JPEG")),
            d.join(format!("{id}.JPEG")),
        )
        .unwrap();
    }
    let b = ws.json(&["ingest", "imagenet", s(&root), "-o", "b", "--json"]);
    assert_eq!(a["counts"], b["counts"]);
    assert_eq!(a["classes"], b["classes"]);
}

#[test]
fn coco_index_with_grayscale_subset() {
    let Some(data) = shared_data_or_skip() else {
        return;
    };
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let images = ws.path().join("coco/val2017");
    std::fs::create_dir_all(&images).unwrap();
    let mut entries = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("imagenet-samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    for (i, p) in files.iter().take(6).enumerate() {
        let name = format!("{:012}.jpg", i + 1);
        if i < 2 {
            py(&py3, &fixtures(), &["gray", s(p), s(&images.join(&name))]);
        } else {
            std::fs::copy(p, images.join(&name)).unwrap();
        }
        entries.push(serde_json::json!({"id": i + 1, "file_name": name, "width": 1, "height": 1}));
    }
    let inst = serde_json::json!({
        "images": entries,
        "categories": [{"id": 1, "name": "dog", "supercategory": "animal"},
                        {"id": 2, "name": "car", "supercategory": "vehicle"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "area": 50.0, "bbox": [0, 0, 5, 10], "iscrowd": 0, "segmentation": [[0, 0, 1, 1]]},
            {"id": 2, "image_id": 1, "category_id": 2, "area": 90.0, "bbox": [1, 1, 9, 10], "iscrowd": 0},
            {"id": 3, "image_id": 3, "category_id": 2, "area": 10.0, "bbox": [1, 1, 2, 5], "iscrowd": 0}
        ]
    });
    let json_path = ws.path().join("coco/instances_val2017.json");
    std::fs::write(&json_path, inst.to_string()).unwrap();
    let v = ws.json(&[
        "ingest",
        "coco",
        s(&images),
        "--instances",
        s(&json_path),
        "-o",
        "coco-all",
        "--json",
    ]);
    assert_eq!(v["images"], 6);
    assert_eq!(v["grayscale"], 2);
    assert_eq!(v["annotations"], 3);
    let v = ws.json(&[
        "ingest",
        "coco",
        s(&images),
        "--instances",
        s(&json_path),
        "-o",
        "coco-gray",
        "--grayscale-only",
        "--json",
    ]);
    assert_eq!(v["images"], 2);
    assert_eq!(v["annotations"], 2);
    // A damaged instances file is named with its position.
    std::fs::write(&json_path, "{\"images\": [}").unwrap();
    let out = ws.path().join("coco-bad");
    fails(
        &ws,
        &[
            "ingest",
            "coco",
            s(&images),
            "--instances",
            s(&json_path),
            "-o",
            s(&out),
        ],
        &["instances_val2017.json", "line 1"],
        &out,
    );
}

#[test]
fn brainio_stage_kind_checks_the_manifest_and_feeds_sql() {
    let Some(shared) = shared_data_or_skip() else {
        return;
    };
    let ws = Ws::new();
    let data = ws.path().join("data/brainio");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["alexnet-probabilities.nc", "resnet18-probabilities.nc"] {
        std::fs::copy(shared.join("brainio-netcdf").join(f), data.join(f)).unwrap();
    }
    ws.ok(&[
        "manifest",
        "create",
        "data/brainio",
        "--dataset",
        "brainio",
        "-o",
        "manifests/brainio.toml",
    ]);
    ws.write(
        "pipelines/p.toml",
        "[stages.recordings]\nkind = \"brainio\"\n\
         inputs = { source = \"data/brainio\", manifest = \"manifests/brainio.toml\" }\n\
         identifiers = [\"alexnet-probabilities\"]\n",
    );
    let report = ws.json(&["run", "--json"]);
    assert_eq!(ws.ran(&report), ["recordings"]);
    let report = ws.json(&["run", "--json"]);
    assert!(ws.ran(&report).is_empty(), "a second run runs nothing");
    let csv = ws.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT identifier, stage FROM assemblies",
    ]);
    assert!(csv.contains("alexnet-probabilities"), "{csv}");
    assert!(!csv.contains("resnet18"), "{csv}");
    // A changed data file no longer matches the manifest: the stage fails and names it.
    let f = data.join("alexnet-probabilities.nc");
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0x55;
    std::fs::write(&f, bytes).unwrap();
    let o = ws.run(&["run"]);
    assert!(!o.status.success());
    let log = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("alexnet-probabilities.nc") && log.contains("blake3"),
        "{log}"
    );
}

#[test]
fn synth_takes_the_world_s_fields_on_the_command_line() {
    let ws = Ws::new();
    let small = "{ hvm_per_object = [1, 1, 1], hvm_size = 32, repetitions = 2, sites = [4, 6], \
                 objectome_per_object = 1, trials_per_image = 4, objectome_fitting_per_object = 1, \
                 imagenet = [3, 2, 1], imagenet_size = 32, coco = [2, 2], coco_size = 32, \
                 ost_repetitions = 2, new_neurons = [4, 8], new_objects = [2, 1], cifar = [4, 2, 1] }";
    let out = ws.path().join("world");
    let j = ws.json(&["synth", "-o", s(&out), "--world", small, "--json"]);
    let images: std::collections::BTreeMap<String, u64> = j["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    // 3 ImageNet-like classes × (2 training + 1 validation) images; 4 CIFAR classes × (2 + 1).
    for (set, n) in [
        ("ILSVRC2012-train", 6),
        ("ILSVRC2012-val", 3),
        ("cifar-100-train", 8),
        ("cifar-100-test", 4),
        ("dicarlo.hvm-public", 3 * 64),
    ] {
        assert_eq!(images.get(set), Some(&n), "{set}: {j}");
    }
    let train = std::fs::read_dir(out.join("ILSVRC2012/train"))
        .unwrap()
        .count();
    assert_eq!(train, 3, "one folder per class");
    // A field the world does not have, or a value of the wrong type: an error naming it, and
    // nothing written.
    let bad = ws.path().join("bad");
    fails(
        &ws,
        &[
            "synth",
            "-o",
            s(&bad),
            "--world",
            "{ imagenett = [1, 1, 1] }",
        ],
        &["imagenett"],
        &bad,
    );
    fails(
        &ws,
        &["synth", "-o", s(&bad), "--world", "imagenet = 3"],
        &["--world", "inline TOML table"],
        &bad,
    );
}
