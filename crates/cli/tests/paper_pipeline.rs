//! `pipelines/paper.toml` end to end on the embedded synthetic world: every stage runs,
//! the report holds Table 1, a second run runs nothing, and a metric change re-runs only
//! that benchmark and the report.

mod common;

use common::{Ws, py, python};

/// The table lines of the report's sections `## Table 1` and `## Generalisation…`.
fn report_tables(report: &str) -> Vec<String> {
    let mut keep = false;
    let mut out = Vec::new();
    for line in report.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            keep = h.starts_with("Table 1") || h.starts_with("Generalisation");
        } else if keep && line.starts_with('|') {
            out.push(line.to_string());
        }
    }
    out
}

/// The repository's data files the paper pipeline reads (the paper's published figures,
/// Brain-Score's region→layer maps), into the workspace `ws`.
fn copy_data(ws: &Ws, root: &std::path::Path) {
    for f in [
        "data/published/cornet-paper-models.csv",
        "data/brainscore/region_layer_maps.toml",
    ] {
        ws.write(f, &std::fs::read_to_string(root.join(f)).unwrap());
    }
}

/// README's generated block (between `<!-- table1:begin -->` and `<!-- table1:end -->`)
/// holds exactly the report's tables.
fn assert_readme_tables_are_the_reports(readme: &std::path::Path, report: &str) {
    let text = std::fs::read_to_string(readme).unwrap();
    let block: Vec<String> = text
        .split("<!-- table1:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- table1:end -->").next())
        .expect("README has a <!-- table1:begin --> … <!-- table1:end --> block")
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect();
    assert_eq!(
        block,
        report_tables(report),
        "README's Table 1 block differs from the pipeline's report: copy the tables of results/report/report.md into it"
    );
}

/// Every stage of `ours` has the key and the output the committed lockfile records.
fn assert_reproduces_committed_lock(ours: &str, committed: &std::path::Path) {
    let parse = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
    let ours = parse(ours);
    let theirs = parse(&std::fs::read_to_string(committed).unwrap());
    let stages = |t: &toml::Table| t["stages"].as_table().unwrap().clone();
    let (ours, theirs) = (stages(&ours), stages(&theirs));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the stages of {}",
        committed.display()
    );
    let mut differ = Vec::new();
    for (name, entry) in &ours {
        for field in ["code", "runtime", "key", "output"] {
            if entry.get(field) != theirs[name].get(field) {
                differ.push(format!(
                    "{name}.{field}: ran {:?}, committed {:?}",
                    entry.get(field).map(|v| v.to_string()),
                    theirs[name].get(field).map(|v| v.to_string())
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "this run does not reproduce {} (if the code changed, `make reproduce-paper` rewrites it: commit it; if only outputs differ, a stage is not deterministic):\n{}",
        committed.display(),
        differ.join("\n")
    );
}

#[test]
fn the_paper_pipeline_runs_end_to_end_through_slurm_and_reruns_only_what_changed() {
    // The store on another file system than the workspace, as on a cluster's scratch disk:
    // every stage (training's resume folder included) must work across it.
    let Some(other) = common::OtherFs::new() else {
        return;
    };
    let store = other.path().join("store");
    let ws = Ws::new().with_store(&store);
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..");
    let paper = std::fs::read_to_string(root.join("pipelines/paper.toml")).unwrap();
    ws.write("pipelines/p.toml", &paper);
    copy_data(&ws, &root);
    ws.write(
        "lockfiles/requirements.txt",
        &std::fs::read_to_string(root.join("lockfiles/requirements.txt")).unwrap(),
    );
    ws.write(
        "Cargo.lock",
        &std::fs::read_to_string(root.join("Cargo.lock")).unwrap(),
    );
    // The first run goes through the Slurm executor on a one-node cluster: its lockfile
    // must be the committed one, which a local run wrote.
    let Some(cluster) = ventral_testkit::slurm::Cluster::start() else {
        return;
    };
    let o = ws
        .cmd(&["--json", "run", "--executor", "slurm"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the Slurm run failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    drop(cluster);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut ran = ws.ran(&r);
    ran.sort();
    // Every stage ran: the paper's own, and the zoo's for each of its three baselines.
    let mut all: Vec<String> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    assert_eq!(ran, all);
    for stage in [
        "world",
        "train",
        "brain_score",
        "report",
        "zoo_train@net=alexnet",
        "zoo_commit@net=resnet18",
        "zoo_neural@net=mobilenet_v2,region=IT",
        "zoo_brain_score@net=resnet18",
    ] {
        assert!(
            ran.iter().any(|s| s == stage),
            "{stage} did not run: {ran:?}"
        );
    }
    assert_eq!(ran.len(), 57, "{ran:?}");
    let train = ws.json(&["show", "train"])["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(train.starts_with(store.to_str().unwrap()), "{train}");
    assert!(!ws.path().join(".ventral").exists());
    let resume = store.join("resume");
    assert!(!resume.exists() || std::fs::read_dir(&resume).unwrap().next().is_none());
    // Same inputs, same bytes: this run reproduces the committed lockfile, stage for stage.
    assert_reproduces_committed_lock(
        &ws.read("lockfiles/paper.lock"),
        &root.join("lockfiles/paper.lock"),
    );
    let report = ws.read("results/report/report.md");
    // README's tables are this report's, not typed by hand.
    assert_readme_tables_are_the_reports(&root.join("README.md"), &report);
    assert!(
        report.contains("| CORnet-S (published, real data) | 0.471 |"),
        "{report}"
    );
    assert!(
        report.contains("CORnet-S (narrow, 64 px) (embedded (synthetic world))"),
        "{report}"
    );
    let top1: f64 = ws
        .read("results/report/table1.csv")
        .lines()
        .find(|l| l.contains("ImageNet top-1"))
        .and_then(|l| l.rsplit(',').nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        top1 > 0.3,
        "the narrow CORnet-S must learn the synthetic classes well above chance (0.1): {top1}"
    );
    // The composite is the mean of the four Table 1 benchmarks, and every figure the
    // paper's pipeline can draw is there, as SVG and PNG.
    let score_of = |stage: &str| -> f64 {
        let p = ws.json(&["show", stage, "--json"])["path"]
            .as_str()
            .unwrap()
            .to_string();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{p}/score.json")).unwrap())
                .unwrap();
        v["ceiled"].as_f64().unwrap()
    };
    let mean = ["v4", "it", "behaviour", "ost"]
        .iter()
        .map(|s| score_of(s))
        .sum::<f64>()
        / 4.0;
    assert!((score_of("brain_score") - mean).abs() < 1e-12);
    assert!(
        report.contains(&format!("| {:.3} |", mean)),
        "the composite in Table 1: {report}"
    );
    for fig in [
        "fig1_brainscore_vs_top1",
        "table1",
        "fig5_ost",
        "fig7_early_late_it",
    ] {
        let png = std::fs::read(ws.path().join(format!("results/report/{fig}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{fig}.png");
        let svg = ws.read(&format!("results/report/{fig}.svg"));
        assert!(svg.contains("<svg"), "{fig}.svg");
    }
    // Generalisation: the transfer readout beats chance (1 %) on the CIFAR-like set, and
    // the reliable-neuron filter kept some but not all of the Kar2019 IT sites.
    let transfer = score_of("cifar_transfer");
    assert!(transfer > 0.03, "CIFAR-like transfer accuracy {transfer}");
    for col in [
        "Kubilius2019.IT-new-neurons",
        "Kar2019.IT-new-images",
        "Rajalingham2018.new-objects-i2n",
        "CIFAR-100-transfer",
        "Kar2019.IT-early",
        "Kar2019.IT-late",
    ] {
        assert!(report.contains(col), "{col} in the report: {report}");
    }
    // Nothing changed: nothing runs.
    let r = ws.json(&["run", "--json"]);
    assert!(ws.ran(&r).is_empty(), "a second run ran: {}", r["stages"]);
    // Not asserted here: DESIGN's "a trained model beats the same model untrained on IT".
    // The embedded world does not keep it. Its ImageNet-like classes are told apart by hue
    // alone (each family has its own colour), so the narrow CORnet-S trained on them is a
    // colour classifier (validation top-1 .62 in colour, .11 — chance — on the same images
    // in grayscale) and HvM's grayscale objects gain nothing from it: on IT its score lies
    // within the spread of the same architecture untrained (seeds 0–3: .047–.117; trained:
    // .081 with AVX2 kernels, .097 with AVX-512's, both measured 2026-12-07). A comparison
    // of the two passed or failed with the CPU's rounding, so it tested nothing.
    let show = |stage: &str| {
        ws.json(&["show", stage, "--json"])["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (rec, acts) = (show("recordings"), show("activations"));
    // The direct commands give the stages' numbers.
    let stage_score = |stage: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(format!("{}/score.json", show(stage))).unwrap(),
        )
        .unwrap()
    };
    let v = ws.json(&[
        "score",
        "i2n",
        "--fitting",
        &format!("{}/decoder-t0", show("activations_fitting")),
        "--test",
        &format!("{}/decoder-t0", show("activations_objectome")),
        "--trials",
        &format!("{rec}/assemblies/dicarlo.Rajalingham2018.public"),
        "--json",
    ]);
    assert_eq!(v["raw"], stage_score("behaviour")["raw"]);
    let v = ws.json(&[
        "score",
        "ost",
        "--activations",
        &show("activations_kar"),
        "--monkey",
        &format!("{rec}/assemblies/dicarlo.Kar2019"),
        "--readout",
        "converged",
        "--json",
    ]);
    assert_eq!(v["raw"], stage_score("ost")["raw"]);
    // Scoring a BrainIO netCDF file directly gives the stage's number for its store.
    let nc = format!(
        "{}/brainio/assy_dicarlo_MajajHong2015_public.nc",
        show("world")
    );
    let v = ws.json(&[
        "score",
        "neural",
        "--source",
        &format!("{acts}/IT-t0"),
        "--target",
        &nc,
        "--region",
        "IT",
        "--json",
    ]);
    assert_eq!(v["score"], stage_score("it")["raw"]);
    // A time window and the reliability filter, directly.
    let v = ws.json(&[
        "score",
        "neural",
        "--source",
        &format!("{}/IT-t1", show("activations_kar")),
        "--target",
        &format!("{rec}/assemblies/dicarlo.Kar2019.IT"),
        "--region",
        "IT",
        "--time-bins",
        "190",
        "210",
        "--json",
    ]);
    assert_eq!(v["score"], stage_score("it_late")["raw"]);
    // One metric parameter changed: that benchmark, the composite and the report run.
    ws.write(
        "pipelines/p.toml",
        &paper.replacen(
            "region = \"IT\"",
            "region = \"IT\"\nnormalisation = \"(r/c)^2\"",
            1,
        ),
    );
    let r = ws.json(&["run", "--json"]);
    let mut ran = ws.ran(&r);
    ran.sort();
    assert_eq!(ran, ["brain_score", "it", "report"]);
    let csv = ws.ok(&["sql", "--format", "csv", "SELECT benchmark FROM scores WHERE quantity = 'ceiled' AND split IS NULL ORDER BY benchmark"]);
    assert!(
        csv.contains("MajajHong2015.IT-pls")
            && csv.contains("MajajHong2015.V4-pls")
            && csv.contains("Rajalingham2018-i2n")
            && csv.contains("Kar2019-ost")
            && csv.contains("Brain-Score")
            && csv.contains("CIFAR-100-transfer"),
        "{csv}"
    );
}

#[test]
fn the_real_profile_runs_on_a_data_root_in_the_real_formats() {
    let Some(py3) = python() else {
        common::skipped("no project venv (run `make test`)");
        return;
    };
    let ws = Ws::new();
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..");
    copy_data(&ws, &root);
    // The real profile, pointed at a narrow model so that the test stays short.
    let paper = std::fs::read_to_string(root.join("pipelines/paper.toml")).unwrap();
    let narrow = "model = { width = 0.25, resolution = 64, classes = 10 }";
    let real = paper.replacen("model = { arch = \"CORnet-S\" }", narrow, 1);
    assert_ne!(real, paper, "the real profile's model line moved");
    // And the zoo's imports, at the same small size.
    let zoo_line = "model = { arch = \"${net}\" }";
    let small_zoo = "model = { arch = \"${net}\", width = 0.25, resolution = 64, classes = 10 }";
    assert!(real.contains(zoo_line), "the zoo import's model line moved");
    let real = real.replacen(zoo_line, small_zoo, 1);
    ws.write("pipelines/p.toml", &real);
    for f in ["lockfiles/requirements.txt", "Cargo.lock"] {
        ws.write(f, &std::fs::read_to_string(root.join(f)).unwrap());
    }
    // A server holding the files as their publishers do (BrainIO files, CIFAR-100's
    // tarball, checkpoints that torch writes), and an ILSVRC2012 tree placed by hand.
    ws.ok(&["synth", "-o", "served"]);
    std::fs::create_dir_all(ws.path().join("data/real")).unwrap();
    std::fs::rename(
        ws.path().join("served/ILSVRC2012"),
        ws.path().join("data/real/ILSVRC2012"),
    )
    .unwrap();
    let fixtures = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/ingest_fixtures.py");
    // Small weights (width ¼, 64 px, 10 classes) of `arch`, written as torch.save writes
    // checkpoints, at `file` under the data root.
    let checkpoint = |arch: &str, file: &str| {
        let w = format!("w-{arch}");
        ws.ok(&[
            "model",
            "init",
            "-o",
            &w,
            "--arch",
            arch,
            "--width",
            "0.25",
            "--resolution",
            "64",
            "--classes",
            "10",
            "--seed",
            "3",
        ]);
        let out = ws.path().join(file);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        py(
            &py3,
            &fixtures,
            &[
                "checkpoint",
                ws.path()
                    .join(&w)
                    .join("weights.safetensors")
                    .to_str()
                    .unwrap(),
                out.to_str().unwrap(),
            ],
        );
    };
    checkpoint("CORnet-S", "served/cornet_s_epoch43.pth.tar");
    // The zoo's baselines, as torchvision's checkpoints come.
    for net in ["alexnet", "resnet18", "mobilenet_v2"] {
        checkpoint(net, &format!("served/models/{net}.pth"));
    }
    let served = ws.path().join("served");
    let st = std::process::Command::new("tar")
        .current_dir(&served)
        .args(["czf", "cifar-100-binary.tar.gz", "cifar-100-binary"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(served.join("cifar-100-binary")).unwrap();
    let server = ventral_testkit::http::Server::start(&served);
    write_manifests(&ws, &served, server.url());
    // `ventral fetch --all` lays out data/real as the real profile reads it.
    let fetched = ws.json(&["fetch", "--all", "--json"]);
    assert!(
        fetched["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "fetched"),
        "{fetched}"
    );
    assert!(
        ws.path()
            .join("data/real/cifar-100-binary/train.bin")
            .is_file()
    );
    assert!(ws.path().join("data/real/brainio/lookup.csv").is_file());
    // ILSVRC2012 is placed by hand (its archives are not kept here): its stage says the
    // tree could not be checked against the publisher's hashes, and reads it.
    ws.write(
        "manifests/ilsvrc2012.toml",
        &std::fs::read_to_string(root.join("manifests/ilsvrc2012.toml")).unwrap(),
    );
    let r = ws.json(&["run", "--profile", "real", "--json"]);
    let mut ran = ws.ran(&r);
    ran.sort();
    assert!(
        ran.contains(&"import".to_string())
            && !ran.contains(&"train".to_string())
            && !ran.contains(&"world".to_string()),
        "{ran:?}"
    );
    assert!(ran.contains(&"report".to_string()), "{ran:?}");
    let report = ws.read("results/report/report.md");
    assert!(report.contains("**real data** profile"), "{report}");
    assert!(report.contains("| CORnet-S (real data) |"), "{report}");
    assert!(report.contains("| AlexNet (real data) |"), "{report}");
    // The lockfile of the real profile is its own.
    assert!(ws.path().join("lockfiles/paper@real.lock").is_file());
    // AlexNet is committed to Brain-Score's published map; ResNet-18, which has none, by
    // layer selection.
    let commitment = |net: &str| {
        let shown = ws.json(&[
            "show",
            "--profile",
            "real",
            &format!("zoo_commit@net={net}"),
        ]);
        let dir = std::path::PathBuf::from(shown["path"].as_str().unwrap());
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
        };
        (read("commitment.json"), read("region_layer_map.json"))
    };
    let (how, map) = commitment("alexnet");
    assert_eq!(how["how"], "published", "{how}");
    assert_eq!(
        map,
        serde_json::json!({"V4": "features.7", "IT": "features.12"})
    );
    let (how, _) = commitment("resnet18");
    assert_eq!(how["how"], "selected", "{how}");
    assert!(
        how["note"]
            .as_str()
            .unwrap()
            .contains("no region→layer map for resnet18"),
        "{how}"
    );
    // Each stage checked its data against the source manifests before reading it.
    let log = |stage: &str| {
        let shown = ws.json(&["show", "--profile", "real", stage]);
        let key = shown["key"].as_str().unwrap().to_string();
        std::fs::read_to_string(ws.path().join(format!(".ventral/logs/{key}.log")))
            .unwrap_or_default()
    };
    for (stage, manifest) in [
        ("recordings", "manifests/brainio.toml"),
        ("cifar", "manifests/cifar100.toml"),
        ("import", "manifests/cornet.toml"),
        ("zoo_import@net=alexnet", "manifests/torchvision.toml"),
    ] {
        let l = log(stage);
        assert!(
            l.contains(&format!("match {}", ws.path().join(manifest).display())),
            "{stage}: {l}"
        );
    }
    assert!(
        log("imagenet").contains("not verified against"),
        "{}",
        log("imagenet")
    );
    // A file changed since it was unpacked, or a checkpoint since it was fetched, stops
    // the stage that reads it, naming the file; nothing is recorded for it.
    let flipped_run_fails = |rel: &str, at: usize, expect: &[&str]| {
        let path = ws.path().join(rel);
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let out = ws.run(&["run", "--profile", "real"]);
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{err}");
        assert!(expect.iter().all(|e| err.contains(e)), "{err}");
        std::fs::write(&path, &good).unwrap();
    };
    flipped_run_fails(
        "data/real/cifar-100-binary/train.bin",
        100,
        &["train.bin", "unpacked from"],
    );
    let ckpt_len = std::fs::metadata(ws.path().join("data/real/models/resnet18.pth"))
        .unwrap()
        .len() as usize;
    flipped_run_fails(
        "data/real/models/resnet18.pth",
        ckpt_len - 10,
        &["resnet18.pth", "sha1 mismatch"],
    );
}

/// Source manifests for the files under `served` (as `manifests/` has them for the
/// publishers' servers), pointing at `url`: BrainIO rows from the served `lookup.csv`.
fn write_manifests(ws: &Ws, served: &std::path::Path, url: &str) {
    let head = |name: &str, to: &str| {
        format!(
            "[manifest]\nformat = \"ventral-sources v1\"\nname = \"{name}\"\n\
             description = \"test\"\nto = \"{to}\"\nsource = \"the test's server\"\n"
        )
    };
    let lookup = std::fs::read_to_string(served.join("brainio/lookup.csv")).unwrap();
    let mut files: std::collections::BTreeMap<String, Vec<Vec<String>>> = Default::default();
    for line in lookup.lines().skip(1) {
        let c: Vec<String> = line.split(',').map(str::to_string).collect();
        files.entry(c[4].clone()).or_default().push(c);
    }
    let mut m = head("brainio", "brainio");
    for (file, rows) in &files {
        let ids: Vec<String> = rows.iter().map(|r| format!("\"{}\"", r[0])).collect();
        let r = &rows[0];
        m.push_str(&format!(
            "\n[[file]]\npath = \"{file}\"\nurl = \"{url}/brainio/{file}\"\nsha1 = \"{}\"\n\
             [file.brainio]\nidentifiers = [{}]\npublished_identifier = \"{}\"\n\
             lookup_type = \"{}\"\nclass = \"{}\"\n{}",
            r[5],
            ids.join(", "),
            r[0],
            r[1],
            r[2],
            if r[6].is_empty() {
                String::new()
            } else {
                format!("stimulus_set_identifier = \"{}\"\n", r[6])
            }
        ));
    }
    ws.write("manifests/brainio.toml", &m);
    for (name, to, files) in [
        ("cornet", ".", &["cornet_s_epoch43.pth.tar"][..]),
        (
            "torchvision",
            "models",
            &["alexnet.pth", "resnet18.pth", "mobilenet_v2.pth"][..],
        ),
    ] {
        let mut m = head(name, to);
        for f in files {
            let at = if to == "." {
                f.to_string()
            } else {
                format!("{to}/{f}")
            };
            m.push_str(&format!(
                "\n[[file]]\npath = \"{f}\"\nurl = \"{url}/{at}\"\nsha1 = \"{}\"\n",
                common::digest_with("sha1sum", &served.join(&at))
            ));
        }
        ws.write(&format!("manifests/{name}.toml"), &m);
    }
    let m = format!(
        "{}\n[[file]]\npath = \"cifar-100-binary.tar.gz\"\nurl = \"{url}/cifar-100-binary.tar.gz\"\n\
         md5 = \"{}\"\nunpack = \"tar.gz\"\n",
        head("cifar100", "."),
        common::digest_with("md5sum", &served.join("cifar-100-binary.tar.gz"))
    );
    ws.write("manifests/cifar100.toml", &m);
}
