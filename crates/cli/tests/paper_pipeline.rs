//! `pipelines/paper.toml` end to end on the embedded synthetic world: every stage runs,
//! the report holds Table 1, a second run runs nothing, and a metric change re-runs only
//! that benchmark and the report.

mod common;

use common::Ws;

#[test]
fn the_paper_pipeline_runs_end_to_end_and_reruns_only_what_changed() {
    let ws = Ws::new();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let paper = std::fs::read_to_string(root.join("pipelines/paper.toml")).unwrap();
    ws.write("pipelines/p.toml", &paper);
    ws.write(
        "lockfiles/requirements.txt",
        &std::fs::read_to_string(root.join("lockfiles/requirements.txt")).unwrap(),
    );
    ws.write(
        "Cargo.lock",
        &std::fs::read_to_string(root.join("Cargo.lock")).unwrap(),
    );
    let r = ws.json(&["run", "--json"]);
    let mut ran = ws.ran(&r);
    ran.sort();
    assert_eq!(
        ran,
        [
            "activations",
            "activations_fitting",
            "activations_kar",
            "activations_objectome",
            "behaviour",
            "environment",
            "imagenet",
            "it",
            "ost",
            "recordings",
            "report",
            "top1",
            "train",
            "v4",
            "world"
        ]
    );
    let report = ws.read("results/report/report.md");
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
    // Nothing changed: nothing runs.
    let r = ws.json(&["run", "--json"]);
    assert!(ws.ran(&r).is_empty(), "a second run ran: {}", r["stages"]);
    // The synthetic world's promise: the trained model predicts IT (and V4) better than the
    // same model untrained.
    let show = |stage: &str| {
        ws.json(&["show", stage, "--json"])["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (rec, acts) = (show("recordings"), show("activations"));
    // Written outside the workspace, so the workspace stays as the pipeline left it.
    let scratch = tempfile::tempdir().unwrap();
    let untrained_w = scratch.path().join("w").to_string_lossy().to_string();
    let untrained_a = scratch.path().join("a").to_string_lossy().to_string();
    ws.ok(&[
        "model",
        "init",
        "-o",
        &untrained_w,
        "--seed",
        "0",
        "--width",
        "0.25",
        "--resolution",
        "64",
        "--classes",
        "10",
    ]);
    ws.ok(&[
        "extract",
        "--weights",
        &untrained_w,
        "--stimuli",
        &format!("{rec}/stimulus_sets/dicarlo.hvm-public"),
        "-o",
        &untrained_a,
        "--device",
        "cpu",
        "--batch",
        "32",
    ]);
    let target = format!("{rec}/assemblies/dicarlo.MajajHong2015.public");
    for area in ["IT", "V4"] {
        let score = |source: &str| {
            ws.json(&[
                "score", "neural", "--source", source, "--target", &target, "--region", area,
                "--json",
            ])["ceiled"]
                .as_f64()
                .unwrap()
        };
        let trained = score(&format!("{acts}/{area}-t0"));
        let untrained = score(&format!("{untrained_a}/{area}-t0"));
        eprintln!("{area}: trained {trained:.4}, untrained {untrained:.4}");
        assert!(
            trained > untrained,
            "{area}: trained {trained} <= untrained {untrained}"
        );
    }
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
        "--json",
    ]);
    assert_eq!(v["raw"], stage_score("ost")["raw"]);
    // One metric parameter changed: that benchmark and the report run, nothing else.
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
    assert_eq!(ran, ["it", "report"]);
    let csv = ws.ok(&["sql", "--format", "csv", "SELECT benchmark FROM scores WHERE quantity = 'ceiled' AND split IS NULL ORDER BY benchmark"]);
    assert!(
        csv.contains("MajajHong2015.IT-pls")
            && csv.contains("MajajHong2015.V4-pls")
            && csv.contains("Rajalingham2018-i2n")
            && csv.contains("Kar2019-ost"),
        "{csv}"
    );
}
