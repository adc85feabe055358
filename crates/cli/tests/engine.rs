//! The engine's rules, exercised through the `ventral` binary on scratch workspaces.

mod common;

use common::Ws;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// a -> b -> c, and d independent; b has a param.
const CHAIN: &str = r#"
[vars]
factor = 2

[stages.a]
kind = "cmd"
cmd = "sort ${inputs.raw} > ${out}/sorted.txt"
inputs = { raw = "data/in.txt" }
outs = ["sorted.txt"]

[stages.b]
kind = "cmd"
cmd = "head -n ${vars.factor} ${inputs.s} > ${out}/head.txt"
inputs = { s = "stage:a/sorted.txt" }
params = { note = "x", level = 1 }

[stages.c]
kind = "cmd"
cmd = "wc -l < ${inputs.h} > ${out}/count.txt"
inputs = { h = "stage:b/head.txt" }
publish = "results/count"

[stages.d]
kind = "cmd"
cmd = "echo independent > ${out}/d.txt"
"#;

fn chain() -> Ws {
    let ws = Ws::new();
    ws.write("pipelines/p.toml", CHAIN);
    ws.write("data/in.txt", "c\nb\na\nd\n");
    ws
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn first_run_runs_all_then_nothing() {
    let ws = chain();
    let r = ws.json(&["run"]);
    assert_eq!(sorted(ws.ran(&r)), ["a", "b", "c", "d"]);
    assert_eq!(ws.read("results/count/count.txt").trim(), "2");
    let r = ws.json(&["run"]);
    assert!(ws.ran(&r).is_empty(), "{r}");
    assert_eq!(ws.with_action(&r, "up-to-date").len(), 4);
    let st = ws.json(&["status"]);
    assert!(
        st.as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "up-to-date"),
        "{st}"
    );
}

/// Resources say where a stage may run, not what it computes: adding or changing them
/// re-runs nothing, and `dag --json` shows them.
#[test]
fn resources_never_enter_a_key() {
    let ws = chain();
    ws.ok(&["run"]);
    let with = CHAIN.replace(
        "params = { note = \"x\", level = 1 }",
        "params = { note = \"x\", level = 1 }\nresources = { cpus = 2, mem = \"1G\", time = \"10\" }",
    );
    ws.write("pipelines/p.toml", &with);
    assert!(ws.ran(&ws.json(&["run"])).is_empty());
    let dag = ws.json(&["dag"]);
    let b = dag
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "b")
        .unwrap();
    assert_eq!(b["resources"]["mem"], "1G", "{dag}");
    ws.write("pipelines/p.toml", &with.replace("cpus = 2", "cpus = 8"));
    assert!(ws.ran(&ws.json(&["run"])).is_empty());
}

#[test]
fn changing_one_param_reruns_that_stage_and_downstream_only() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.write("pipelines/p.toml", &CHAIN.replace("level = 1", "level = 2"));
    let st = ws.json(&["status"]);
    let by: BTreeMap<String, serde_json::Value> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(by["a"]["status"], "up-to-date");
    assert_eq!(by["b"]["status"], "stale");
    assert_eq!(by["b"]["reasons"][0]["reason"], "param-changed");
    assert_eq!(by["b"]["reasons"][0]["name"], "params");
    assert_eq!(by["c"]["status"], "waiting");
    assert_eq!(by["d"]["status"], "up-to-date");
    let r = ws.json(&["run"]);
    // b re-ran; its output bytes are identical, so c is cut off (early cutoff).
    assert_eq!(ws.ran(&r), ["b"]);
    assert_eq!(ws.with_action(&r, "up-to-date").len(), 3);
}

#[test]
fn changed_output_propagates_downstream() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.write(
        "pipelines/p.toml",
        &CHAIN.replace("factor = 2", "factor = 3"),
    );
    let r = ws.json(&["run"]);
    assert_eq!(ws.ran(&r), ["b", "c"]);
    assert_eq!(ws.read("results/count/count.txt").trim(), "3");
    // Back to the old value: both results come from the run cache, nothing runs.
    ws.write("pipelines/p.toml", CHAIN);
    let r = ws.json(&["run"]);
    assert!(ws.ran(&r).is_empty(), "{r}");
    assert_eq!(sorted(ws.with_action(&r, "restored")), ["b", "c"]);
    assert_eq!(ws.read("results/count/count.txt").trim(), "2");
}

#[test]
fn reordering_params_changes_nothing_but_removing_one_does() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.write(
        "pipelines/p.toml",
        &CHAIN.replace(
            "params = { note = \"x\", level = 1 }",
            "params = { level = 1, note = \"x\" }",
        ),
    );
    assert!(ws.ran(&ws.json(&["run"])).is_empty());
    // Moving whole tables around changes nothing either.
    let moved = CHAIN.replace(
        "[stages.d]\nkind = \"cmd\"\ncmd = \"echo independent > ${out}/d.txt\"\n",
        "",
    );
    let moved = moved.replace(
        "[stages.a]",
        "[stages.d]\nkind = \"cmd\"\ncmd = \"echo independent > ${out}/d.txt\"\n\n[stages.a]",
    );
    ws.write("pipelines/p.toml", &moved);
    assert!(ws.ran(&ws.json(&["run"])).is_empty());
    // Removing the whole `params` param is a change.
    ws.write(
        "pipelines/p.toml",
        &CHAIN.replace("params = { note = \"x\", level = 1 }\n", ""),
    );
    let st = ws.json(&["status", "b"]);
    let b = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "b")
        .unwrap();
    assert_eq!(b["reasons"][0]["reason"], "param-removed", "{b}");
    assert_eq!(ws.ran(&ws.json(&["run"])), ["b"]);
}

#[test]
fn editing_an_input_file_reruns_its_readers_and_status_says_which() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.write("data/in.txt", "z\ny\nx\n");
    let st = ws.ok(&["status"]);
    assert!(
        st.contains("input `raw` changed: data/in.txt content changed"),
        "{st}"
    );
    let r = ws.json(&["run"]);
    assert_eq!(ws.ran(&r), ["a", "b", "c"]);
}

#[test]
fn glob_inputs_track_added_files() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.cat]\nkind = \"cmd\"\ncmd = \"cat ${inputs.parts} > ${out}/all.txt\"\ninputs = { parts = \"data/*.txt\" }\n",
    );
    ws.write("data/1.txt", "one\n");
    ws.ok(&["run"]);
    ws.write("data/2.txt", "two\n");
    let st = ws.ok(&["status"]);
    assert!(st.contains("data/2.txt added"), "{st}");
    assert_eq!(ws.ran(&ws.json(&["run"])), ["cat"]);
    let show = ws.json(&["show", "cat"]);
    let path = show["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{path}/all.txt")).unwrap(),
        "one\ntwo\n"
    );
}

#[test]
fn input_edited_mid_run_is_not_recorded() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.self]\nkind = \"cmd\"\ncmd = \"cat ${inputs.x} > ${out}/o; echo more >> data/x.txt\"\ninputs = { x = \"data/x.txt\" }\n",
    );
    ws.write("data/x.txt", "start\n");
    let o = ws.run(&["run"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("input `x` changed while the stage ran"),
        "{out}"
    );
    assert!(
        !ws.path().join("lockfiles/p.lock").exists()
            || !ws.read("lockfiles/p.lock").contains("[stages.self]")
    );
}

#[test]
fn damaged_output_is_found_and_recomputed() {
    let ws = chain();
    ws.ok(&["run"]);
    let show = ws.json(&["show", "a"]);
    let f = std::path::PathBuf::from(show["path"].as_str().unwrap()).join("sorted.txt");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&f, "a\nb\nc\nX\n").unwrap(); // same size, different bytes
    let st = ws.ok(&["status"]);
    assert!(
        st.contains("output damaged") && st.contains("sorted.txt"),
        "{st}"
    );
    let v = ws.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "verify must fail on damage");
    let vout = String::from_utf8_lossy(&v.stdout);
    assert!(
        vout.contains("DAMAGED") && vout.contains("sorted.txt"),
        "{vout}"
    );
    // After verify quarantined it, a run recomputes `a` and the store is clean again.
    let r = ws.json(&["run"]);
    assert!(ws.ran(&r).contains(&"a".to_string()), "{r}");
    let v = ws.json(&["verify"]);
    assert_eq!(v["damaged"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(
        ws.read(&format!(
            "{}/sorted.txt",
            ws.json(&["show", "a"])["path"].as_str().unwrap()
        )),
        "a\nb\nc\nd\n"
    );
}

#[test]
fn the_binary_lists_every_kind_with_the_identity_of_its_crate_computed_from_this_tree() {
    // Recompute every crate's identity from the sources as they are now: a stale embedding
    // (a build that missed an edit) fails here.
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tree = ventral_kinds::identity::Workspace::load(&root, ventral_kinds::TOOLCHAIN).unwrap();
    let ws = Ws::new();
    let listed = ws.json(&["kinds"]);
    let listed = listed.as_array().unwrap();
    assert!(listed.len() >= 17, "{listed:?}");
    for k in listed {
        let name = k["kind"].as_str().unwrap();
        let krate = k["crate"].as_str().unwrap();
        let id = tree.identity(krate).unwrap();
        assert_eq!(
            k["code"].as_str().unwrap(),
            id.digest,
            "kind {name} ({krate})"
        );
        assert_eq!(
            k["closure"],
            serde_json::json!(id.workspace_closure),
            "kind {name}"
        );
    }
}

#[test]
fn two_concurrent_runs_do_the_work_once() {
    let ws = Ws::new();
    let mut p = String::new();
    for i in 0..6 {
        p.push_str(&format!(
            "[stages.s{i}]\nkind = \"cmd\"\ncmd = \"echo s{i} >> counter.log; sleep 0.1; echo {i} > ${{out}}/o\"\n\n"
        ));
    }
    ws.write("pipelines/p.toml", &p);
    let mut a = ws
        .cmd(&["run", "--json", "-j", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let mut b = ws
        .cmd(&["run", "--json", "-j", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let mut lines: Vec<String> = ws.read("counter.log").lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["s0", "s1", "s2", "s3", "s4", "s5"],
        "each stage ran exactly once"
    );
    let v = ws.json(&["verify"]);
    assert!(v["damaged"].as_array().unwrap().is_empty());
}

#[test]
fn lock_timeout_names_the_holder() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.slow]\nkind = \"cmd\"\ncmd = \"sleep 1.5; echo > ${out}/o\"\n",
    );
    let mut a = ws
        .cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let o = ws.run(&["run", "--lock-timeout", "0.2"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is locked by `ventral run`") && err.contains(&format!("pid {}", a.id())),
        "{err}"
    );
    assert!(a.wait().unwrap().success());
}

#[test]
fn failed_stage_skips_dependents_and_exits_1() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.bad]\nkind = \"cmd\"\ncmd = \"echo boom >&2; exit 3\"\n[stages.after]\nkind = \"cmd\"\ncmd = \"true\"\ninputs = { x = \"stage:bad\" }\n",
    );
    let o = ws.run(&["run"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FAILED") && out.contains("exit status: 3") && out.contains("boom"),
        "{out}"
    );
    assert!(out.contains("skipped    after"), "{out}");
    // The reason is on stderr too, for scripts that keep only diagnostics.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ventral run: stage `bad` failed:")
            && err.contains("exit status: 3")
            && err.contains("boom"),
        "{err}"
    );
    assert!(
        !err.contains("`after`"),
        "a skipped stage is not a failure: {err}"
    );
    // Nothing partial: no output tree, nothing left in tmp.
    assert_eq!(
        std::fs::read_dir(ws.store().join("out")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(ws.store().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn declared_outs_are_checked() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\nouts = [\"missing.txt\"]\n",
    );
    let o = ws.run(&["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("missing.txt"));
}

#[test]
fn publish_never_replaces_user_files() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.x]\nkind = \"cmd\"\ncmd = \"echo > ${out}/o\"\npublish = \"results/x\"\n",
    );
    ws.write("results/x/precious.txt", "mine");
    let o = ws.run(&["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(ws.read("results/x/precious.txt"), "mine");
}

#[test]
fn matrix_stages_and_group_inputs() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        r#"
[stages.gen]
kind = "cmd"
foreach = { n = [1, 2, 3] }
cmd = "seq ${n} > ${out}/seq.txt"
[stages.sum]
kind = "cmd"
cmd = "cat ${inputs.all} | paste -sd+ | bc > ${out}/sum.txt"
inputs = { all = "stage:gen/seq.txt" }
publish = "results/sum"
"#,
    );
    let r = ws.json(&["run"]);
    assert_eq!(ws.ran(&r).len(), 4);
    assert_eq!(ws.read("results/sum/sum.txt").trim(), "10");
    let r = ws.json(&["run", "gen@n=2", "--force"]);
    assert_eq!(ws.ran(&r), ["gen@n=2"]);
    let dag = ws.ok(&["dag"]);
    assert!(
        dag.contains("sum (cmd) <- gen@n=1, gen@n=2, gen@n=3"),
        "{dag}"
    );
    let dot = ws.ok(&["dag", "--dot"]);
    assert!(dot.contains("\"gen@n=3\" -> \"sum\""), "{dot}");
}

#[test]
fn dry_run_runs_nothing() {
    let ws = chain();
    let out = ws.ok(&["run", "--dry-run"]);
    assert!(out.contains("dry run: nothing was run"), "{out}");
    assert!(!ws.path().join("lockfiles/p.lock").exists());
    assert!(!ws.path().join("results").exists());
}

#[test]
fn gc_drops_unreferenced_outputs() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.write(
        "pipelines/p.toml",
        &CHAIN.replace("factor = 2", "factor = 3"),
    );
    ws.ok(&["run"]);
    let g = ws.json(&["gc"]);
    assert_eq!(g["trees_removed"], 2, "old b and c outputs: {g}");
    assert!(ws.ran(&ws.json(&["run"])).is_empty());
    assert!(
        ws.json(&["verify"])["damaged"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The old params now need a real run again: their results were collected.
    ws.write("pipelines/p.toml", CHAIN);
    assert_eq!(ws.ran(&ws.json(&["run"])), ["b", "c"]);
}

#[test]
fn exec_stage_runs_a_prepared_job() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.x]\nkind = \"cmd\"\ncmd = \"true\"\n",
    );
    let key = "ab".repeat(32);
    let job = serde_json::json!({
        "key": key,
        "stage": "remote",
        "kind": "cmd",
        "params": { "cmd": "cat ${inputs.x} > ${out}/copy.txt" },
        "inputs": { "x": [ws.path().join("data/in.txt")] },
        "workspace": ws.path(),
    });
    ws.write("data/in.txt", "payload\n");
    // A job prepared by another build (another code identity of `cmd`) is refused: exit 2,
    // one line naming both identities, nothing stored.
    let here = ws
        .json(&["kinds"])
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "cmd")
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut other = job.clone();
    other["code"] = "0".repeat(64).into();
    ws.write(&format!(".ventral/jobs/{key}.json"), &other.to_string());
    let o = ws.run(&["exec-stage", &key]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&"0".repeat(64)) && err.contains(&here),
        "{err}"
    );
    assert!(
        !ws.path()
            .join(format!(".ventral/jobs/{key}.result.json"))
            .exists()
    );
    let mut job = job;
    job["code"] = here.into();
    ws.write(&format!(".ventral/jobs/{key}.json"), &job.to_string());
    let r = ws.json(&["exec-stage", &key]);
    let out = r["output"].as_str().unwrap();
    assert_eq!(
        ws.read(&format!(".ventral/out/{out}/copy.txt")),
        "payload\n"
    );
    let result = ws.read(&format!(".ventral/jobs/{key}.result.json"));
    assert!(result.contains(out));
}

#[test]
fn golden_lockfile_shape() {
    let ws = chain();
    ws.ok(&["run"]);
    let text = ws.read("lockfiles/p.lock");
    let mut masked = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        // Mask every 64-hex digest: they depend on the cmd kind's code identity.
        let bytes: Vec<char> = l.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < bytes.len() {
            if i + 64 <= bytes.len() && bytes[i..i + 64].iter().all(|c| c.is_ascii_hexdigit()) {
                out.push_str("<digest>");
                i += 64;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        l = out;
        masked.push_str(&l);
        masked.push('\n');
    }
    let golden = r#"# Written by `ventral run`: what each stage of this pipeline last produced.
# Commit it; do not edit it by hand.
version = 1
pipeline = "p"
profile = "default"

[stages.a]
kind = "cmd"
code = "<digest>"
key = "<digest>"
output = "<digest>"

[stages.a.params]
cmd = "sort ${inputs.raw} > ${out}/sorted.txt"
outs = ["sorted.txt"]

[stages.a.inputs]
raw = [
  { source = "data/in.txt", digest = "<digest>" },
]

[stages.b]
kind = "cmd"
code = "<digest>"
key = "<digest>"
output = "<digest>"

[stages.b.params]
cmd = "head -n 2 ${inputs.s} > ${out}/head.txt"
params = { level = 1, note = "x" }

[stages.b.inputs]
s = [
  { source = "stage:a/sorted.txt", digest = "<digest>" },
]

[stages.c]
kind = "cmd"
code = "<digest>"
key = "<digest>"
output = "<digest>"

[stages.c.params]
cmd = "wc -l < ${inputs.h} > ${out}/count.txt"

[stages.c.inputs]
h = [
  { source = "stage:b/head.txt", digest = "<digest>" },
]

[stages.d]
kind = "cmd"
code = "<digest>"
key = "<digest>"
output = "<digest>"

[stages.d.params]
cmd = "echo independent > ${out}/d.txt"
"#;
    assert_eq!(masked, golden);
    // Same inputs, fresh workspace: byte-identical lockfile.
    let ws2 = chain();
    ws2.ok(&["run", "-j", "1"]);
    assert_eq!(ws2.read("lockfiles/p.lock"), text);
}

#[test]
fn input_digests_are_cached_between_runs() {
    let ws = chain();
    ws.ok(&["run"]);
    ws.ok(&["run"]);
    let cache = ws.read(".ventral/cache/files.tsv");
    assert!(cache.contains("data/in.txt"), "{cache}");
}

#[test]
fn the_ventral_binary_links_neither_libtorch_nor_libhdf5_and_the_worker_no_libhdf5() {
    let needed = |exe: &str| {
        let o = std::process::Command::new("readelf")
            .args(["-d", exe])
            .output()
            .expect("readelf (binutils) runs");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let ventral = needed(env!("CARGO_BIN_EXE_ventral"));
    assert!(ventral.contains("NEEDED"), "{ventral}");
    assert!(
        !ventral.contains("torch"),
        "ventral links libtorch:\n{ventral}"
    );
    // netCDF files are read in the `ventral-netcdf` worker (its own tests check it links
    // libhdf5).
    assert!(
        !ventral.contains("hdf5"),
        "ventral links libhdf5:\n{ventral}"
    );
    let worker = needed(env!("CARGO_BIN_EXE_ventral-torch"));
    assert!(
        worker.contains("libtorch"),
        "the worker links libtorch:\n{worker}"
    );
    assert!(
        !worker.contains("hdf5"),
        "the model worker links libhdf5:\n{worker}"
    );
    // And no command that runs no model loads it, not even with dlopen: the dynamic
    // loader lists every library it opens.
    let ws = chain();
    for args in [
        &["--version"][..],
        &["status"],
        &["kinds"],
        &["sql", "SELECT 1"],
    ] {
        let o = ws.cmd(args).env("LD_DEBUG", "files").output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let loaded = String::from_utf8_lossy(&o.stderr);
        assert!(loaded.contains("file="), "LD_DEBUG had no effect: {loaded}");
        assert!(!loaded.contains("libtorch"), "{args:?} loaded libtorch");
        assert!(!loaded.contains("libhdf5"), "{args:?} loaded libhdf5");
    }
}

/// `ventral … | head`: a closed pipe downstream ends any command quietly — no panic, no
/// "Broken pipe" message — and a closed stdout is no error either.
#[test]
fn commands_end_quietly_when_their_output_pipe_is_closed() {
    let ws = chain();
    ws.ok(&["run"]);
    let commands: &[&[&str]] = &[
        &["--help"],
        &["--version"],
        &["kinds"],
        &["kinds", "--json"],
        &["status"],
        &["status", "--json"],
        &["dag"],
        &["dag", "--dot"],
        &["show", "a"],
        &["run"],
        &["run", "--dry-run"],
        &["verify"],
        &["gc", "--dry-run"],
        &["sql", "SELECT * FROM runs"],
        &["sql", "--format", "csv", "SELECT 1"],
        &["completions", "bash"],
        &["man"],
        &["model", "info", "--width", "0.125", "--resolution", "32"],
    ];
    for args in commands {
        for closed in ["pipe", "null"] {
            let mut cmd = ws.cmd(args);
            if closed == "pipe" {
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                cmd.stdout(writer);
            } else {
                cmd.stdout(std::process::Stdio::null());
            }
            let o = cmd.stderr(std::process::Stdio::piped()).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !err.contains("panicked") && !err.contains("Broken pipe"),
                "{args:?} ({closed}): {err}"
            );
            use std::os::unix::process::ExitStatusExt;
            assert!(
                o.status.success() || o.status.signal() == Some(libc::SIGPIPE),
                "{args:?} ({closed}): {:?} {err}",
                o.status
            );
        }
    }
}

#[test]
fn two_workspaces_sharing_a_store_compute_each_stage_once_and_gc_keeps_both() {
    let shared = tempfile::tempdir().unwrap();
    let store = shared.path().join("store");
    let counter = shared.path().join("count.log");
    let pipeline = format!(
        "[stages.slow]\nkind = \"cmd\"\ncmd = \"echo x >> {} && sleep 1.5 && echo done > ${{out}}/o.txt\"\n",
        counter.display()
    );
    let (a, b) = (Ws::new().with_store(&store), Ws::new().with_store(&store));
    a.write("pipelines/p.toml", &pipeline);
    b.write("pipelines/p.toml", &pipeline);
    let ca = a.cmd(&["--json", "run"]).output();
    // Both drivers at once, each in its own workspace: one computes, the other waits on the
    // key's lease and takes the result.
    let hb = {
        let mut c = b.cmd(&["--json", "run"]);
        std::thread::spawn(move || c.output().unwrap())
    };
    let (oa, ob) = (ca.unwrap(), hb.join().unwrap());
    for o in [&oa, &ob] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let action = |o: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["stages"][0]["action"].as_str().unwrap().to_string()
    };
    let mut actions = [action(&oa), action(&ob)];
    actions.sort();
    assert_eq!(actions, ["ran".to_string(), "restored".to_string()]);
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1
    );
    assert_eq!(a.read("lockfiles/p.lock"), b.read("lockfiles/p.lock"));
    // a moves on to other work; its gc must keep what b's lockfile still names.
    a.write(
        "pipelines/p.toml",
        "[stages.other]\nkind = \"cmd\"\ncmd = \"echo other > ${out}/o.txt\"\n",
    );
    a.ok(&["run"]);
    let gc = a.json(&["gc"]);
    assert_eq!(gc["workspaces"].as_array().unwrap().len(), 2, "{gc}");
    let st = b.json(&["status"]);
    assert_eq!(st[0]["status"], "up-to-date", "{st}");
    // A workspace that is gone is forgotten, and its outputs are collected.
    let b_root = b.path().to_path_buf();
    drop(b);
    assert!(!b_root.exists());
    let gc = a.json(&["gc"]);
    assert_eq!(gc["forgotten"].as_array().unwrap().len(), 1, "{gc}");
    assert_eq!(gc["trees_removed"], 1, "{gc}");
}
