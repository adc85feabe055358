//! Bad pipeline files: one clear message naming file, line and stage; exit 2; nothing written.

mod common;

use common::Ws;

fn check(src: &str, expect: &[&str]) {
    check_with(
        src,
        expect,
        &[&["run"], &["run", "--dry-run"], &["status"], &["dag"]],
    );
}

fn check_with(src: &str, expect: &[&str], cmds: &[&[&str]]) {
    let ws = Ws::new();
    ws.write("pipelines/p.toml", src);
    for cmd in cmds {
        let o = ws.run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        let cmd: &[&str] = cmd;
        assert_eq!(
            o.status.code(),
            Some(2),
            "{cmd:?} on:\n{src}\nstderr: {err}"
        );
        for e in expect {
            assert!(err.contains(e), "{cmd:?}: expected {e:?} in: {err}");
        }
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        for written in [".ventral", "lockfiles", "results"] {
            assert!(!ws.path().join(written).exists(), "{cmd:?} wrote {written}");
        }
    }
}

#[test]
fn cycle() {
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { y = \"stage:y\" }\n\n[stages.y]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { x = \"stage:x\" }\n",
        &["pipelines/p.toml:", "cycle", "x -> y"],
    );
}

#[test]
fn unknown_stage() {
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { y = \"stage:nope\" }\n",
        &["pipelines/p.toml:4: stage `x`: input `y` refers to unknown stage `nope`"],
    );
}

#[test]
fn unknown_kind() {
    check(
        "\n[stages.x]\nkind = \"trian\"\n",
        &["pipelines/p.toml:2: stage `x`: unknown kind `trian`"],
    );
}

#[test]
fn missing_input() {
    // `dag` shows structure only; every command that hashes inputs refuses.
    let check = |src: &str, expect: &[&str]| {
        check_with(src, expect, &[&["run"], &["run", "--dry-run"], &["status"]])
    };
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { raw = \"data/absent.csv\" }\n",
        &["pipelines/p.toml:4: stage `x`: input `raw`: `data/absent.csv` does not exist"],
    );
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { raw = \"data/*.none\" }\n",
        &["pipelines/p.toml:4: stage `x`: input `raw`: `data/*.none` matches nothing"],
    );
}

#[test]
fn two_stages_writing_one_output() {
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\npublish = \"results/out\"\n\n[stages.y]\nkind = \"cmd\"\ncmd = \"true\"\npublish = \"results/out\"\n",
        &[
            "pipelines/p.toml:",
            "publishes to `results/out`, which stage `x` also writes",
        ],
    );
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\nforeach = { k = [1, 2] }\npublish = \"results/same\"\n",
        &["publishes to `results/same`"],
    );
}

#[test]
fn param_of_the_wrong_type() {
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\nouts = \"not-a-list\"\n",
        &[
            "pipelines/p.toml:4: stage `x`: param `outs` must be an array of strings, got \"not-a-list\"",
        ],
    );
}

#[test]
fn unparseable_toml() {
    check("[stages.x]\nkind = \"cmd\n", &["pipelines/p.toml:2:"]);
    check(
        "[stages.x]\nkind = \"cmd\"\n[stages.x]\nkind = \"cmd\"\n",
        &["pipelines/p.toml:3:"],
    );
}

#[test]
fn unknown_variable_and_profile() {
    check(
        "[stages.x]\nkind = \"cmd\"\ncmd = \"echo ${vars.missing}\"\n",
        &["pipelines/p.toml:3: stage `x`: param `cmd`: unknown variable `${vars.missing}`"],
    );
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\n",
    );
    let o = ws.run(&["--profile", "real", "status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no profile `real`"));
}

#[test]
fn missing_pipeline_file() {
    let ws = Ws::new();
    let o = ws.run(&["status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pipelines/p.toml:0: no such pipeline file")
    );
    assert!(!ws.path().join(".ventral").exists());
}

/// A typo in a value of any stage of the paper's pipeline: exit 2 within a second, one
/// line naming the file, the line, the stage and the param, and nothing run or written.
#[test]
fn a_bad_value_anywhere_in_the_paper_pipeline_is_refused_before_anything_runs() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let paper = std::fs::read_to_string(root.join("pipelines/paper.toml")).unwrap();
    // Without the one input file the check never reaches (the published figures).
    let published = ", published = \"data/published/cornet-paper-models.csv\"";
    assert!(
        paper.contains(published),
        "the report's `published` input moved"
    );
    let paper = paper.replacen(published, "", 1);
    let cases: &[(&str, &str, &str, &str)] = &[
        // (text, typo, stage, param)
        (
            "readout = \"${vars.ost_readout}\"",
            "readout = \"convergd\"",
            "ost",
            "readout",
        ),
        (
            "time_bins = [190, 210]",
            "time_bins = [170]",
            "it_late",
            "time_bins",
        ),
        (
            "time_bins = [90, 110]",
            "time_bins = [110, 90]",
            "it_early",
            "time_bins",
        ),
        (
            "recipe = { epochs = 12,",
            "recipe = { epoch = 12,",
            "train",
            "recipe",
        ),
        (
            "lr_step = 8,",
            "lr_step = 8, amp = \"fp8\",",
            "train",
            "recipe",
        ),
        ("size = \"embedded\"", "size = \"tiny\"", "world", "size"),
    ];
    for (text, typo, stage, param) in cases {
        assert!(paper.contains(text), "{text} is no longer in paper.toml");
        let src = paper.replacen(text, typo, 1);
        let line = src
            .lines()
            .position(|l| l.contains(typo.split(',').next().unwrap_or(typo)))
            .unwrap()
            + 1;
        let t0 = std::time::Instant::now();
        check_with(
            &src,
            &[
                &format!("pipelines/p.toml:{line}: stage `{stage}`"),
                &format!("param `{param}`"),
            ],
            &[&["run"], &["status"]],
        );
        assert!(
            t0.elapsed().as_secs_f64() < 2.0,
            "{typo}: {:?}",
            t0.elapsed()
        );
    }
    // A device typo in any model stage.
    let src = paper.replacen("device = \"cpu\"", "device = \"gpu0\"", 1);
    check_with(
        &src,
        &["param `device`", "cpu, cuda, cuda:N or auto"],
        &[&["run"]],
    );
}

/// A TOML value of the wrong type for a param of type `ty` (as `ventral kinds --json`
/// names it), and a valid one.
fn wrong_and_right(ty: &str) -> Option<(&'static str, &'static str)> {
    Some(match ty {
        "a boolean" => ("\"yes\"", "true"),
        "an integer" => ("\"ten\"", "2"),
        "a number" => ("\"high\"", "0.5"),
        "a string" => ("42", "\"IT\""),
        "an array of strings" => ("[1, 2]", "[\"a\"]"),
        "an array" => ("\"list\"", "[1, 2]"),
        "a table" => ("3", "{}"),
        _ => return None,
    })
}

/// Every param of every kind the binary registers (from `ventral kinds --json`, so a new
/// kind or param is covered without editing this test): a value of the wrong type, a value
/// outside a closed set and an unknown param each exit 2 with one line naming the file,
/// the line, the stage and the param, before anything runs.
#[test]
fn every_param_of_every_kind_refuses_a_bad_value() {
    let ws = Ws::new();
    let kinds = ws.json(&["kinds", "--json"]);
    let mut cases = 0;
    for k in kinds.as_array().unwrap() {
        let kind = k["kind"].as_str().unwrap();
        let params = k["params"].as_array().unwrap();
        // The required params, with valid values.
        let required: Vec<(&str, &str)> = params
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| {
                let (_, right) = wrong_and_right(p["type"].as_str().unwrap()).unwrap();
                let right = if kind == "cmd" { "\"true\"" } else { right };
                (p["name"].as_str().unwrap(), right)
            })
            .collect();
        let stage = |param: &str, line: &str| {
            let mut src = format!("[stages.s]\nkind = \"{kind}\"\n");
            for (n, v) in required.iter().filter(|(n, _)| *n != param) {
                src.push_str(&format!("{n} = {v}\n"));
            }
            src.push_str(line);
            src.push('\n');
            src
        };
        let mut bad: Vec<(String, String)> = Vec::new();
        for p in params {
            let name = p["name"].as_str().unwrap();
            if let Some((wrong, _)) = wrong_and_right(p["type"].as_str().unwrap()) {
                bad.push((name.to_string(), format!("{name} = {wrong}")));
            }
            if let Some(first) = p["allowed"].as_array().and_then(|a| a.first()) {
                let typo = format!("{}x", first.as_str().unwrap());
                bad.push((name.to_string(), format!("{name} = \"{typo}\"")));
            }
        }
        bad.push(("colour".into(), "colour = 1".into()));
        for (param, line) in bad {
            let src = stage(&param, &line);
            let n = src.lines().position(|l| l == line).unwrap() + 1;
            check_with(
                &src,
                &[
                    &format!("pipelines/p.toml:{n}: stage `s`"),
                    &format!("`{param}`"),
                ],
                &[&["run"]],
            );
            cases += 1;
        }
    }
    assert!(cases > 60, "only {cases} cases");
}

/// A value only an upstream output can show to be bad (an activation store or a model layer
/// that is not there) is refused when its stage starts, before any work: exit 2, the param
/// named with the values there are, and nothing stored for the stage.
#[test]
fn a_value_checked_against_an_upstream_output_exits_2_when_its_stage_starts() {
    let ws = Ws::new();
    ws.write("data/rec", "not read");
    std::fs::create_dir_all(ws.path().join("data/imgs")).unwrap();
    // Each case in a pipeline of its own: a failed stage stops the run from starting others.
    let cases = [
        (
            r#"
[stages.acts]
kind = "cmd"
cmd = "mkdir -p ${out}/IT-t0 ${out}/IT-t1 && echo '{}' > ${out}/IT-t0/zarr.json && echo '{}' > ${out}/IT-t1/zarr.json"

[stages.it]
kind = "neural"
inputs = { activations = "stage:acts", recordings = "data/rec" }
region = "IT"
layer = "IT-t9"
"#,
            "acts",
            "param `layer`: input `activations` has no activation store `IT-t9` (stores: IT-t0, IT-t1)",
        ),
        (
            r#"
[stages.weights]
kind = "init"
model = { width = 0.125, resolution = 32, classes = 4 }

[stages.features]
kind = "extract"
inputs = { weights = "stage:weights", stimuli = "data/imgs" }
layers = ["V9"]
device = "cpu"
"#,
            "weights",
            "param `layers`: `V9` is not a layer of",
        ),
    ];
    for (src, upstream, needle) in cases {
        ws.write("pipelines/p.toml", src);
        let o = ws.run(&["run"]);
        let err = String::from_utf8_lossy(&o.stderr);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
        assert!(out.contains(needle), "{out}");
        // The upstream stage ran and is stored; the refusing stage stored nothing.
        let v = ws.json(&["status"]);
        for s in v.as_array().unwrap() {
            let up = s["status"] == "up-to-date";
            assert_eq!(up, s["stage"] == upstream, "{s}");
        }
    }
}
