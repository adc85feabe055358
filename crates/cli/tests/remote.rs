//! The remote cache on a plain-path remote (object_store's local file system backend):
//! a second workspace restores everything and executes nothing, push and pull, corrupt
//! objects detected, an upload without its record is a miss, concurrent uploads of a key.

mod common;

use std::path::Path;

use common::Ws;

fn pipeline(counter: &Path) -> String {
    format!(
        r#"
[stages.a]
kind = "cmd"
cmd = "echo a >> {c}; seq 1 2000 > ${{out}}/a.txt; mkdir ${{out}}/sub; echo deep > ${{out}}/sub/d.txt"

[stages.b]
kind = "cmd"
cmd = "echo b >> {c}; sort -r ${{inputs.a}} > ${{out}}/b.txt"
inputs = {{ a = "stage:a/a.txt" }}

[stages.c]
kind = "cmd"
cmd = "echo c >> {c}; wc -l < ${{inputs.b}} > ${{out}}/n.txt"
inputs = {{ b = "stage:b/b.txt" }}
publish = "results/c"
"#,
        c = counter.display()
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    remote: std::path::PathBuf,
    counter: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    Setup {
        remote: dir.path().join("remote"),
        counter: dir.path().join("count.log"),
        _dir: dir,
    }
}

fn ws(s: &Setup, default: bool) -> Ws {
    let w = Ws::new();
    w.write("pipelines/p.toml", &pipeline(&s.counter));
    w.write(
        "ventral.toml",
        &format!(
            "[remote.lab]\nurl = \"{}\"\ndefault = {default}\n",
            s.remote.display()
        ),
    );
    w
}

fn actions(report: &serde_json::Value) -> Vec<(String, String)> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn runs(s: &Setup) -> usize {
    std::fs::read_to_string(&s.counter)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn remote_objects(s: &Setup) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(s.remote.join("objects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_workspace_with_an_empty_store_restores_every_stage_and_executes_none() {
    let s = setup();
    let a = ws(&s, true);
    a.json(&["run"]);
    assert_eq!(runs(&s), 3);
    assert_eq!(std::fs::read_dir(s.remote.join("runs")).unwrap().count(), 3);
    let b = ws(&s, true);
    let r = b.json(&["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
    assert_eq!(runs(&s), 3, "a stage executed in the second workspace");
    assert_eq!(b.read("lockfiles/p.lock"), a.read("lockfiles/p.lock"));
    assert_eq!(b.read("results/c/n.txt"), "2000\n");
    // Every restored file is in b's own store and verifies.
    b.ok(&["verify"]);
    let show = b.json(&["show", "a"]);
    assert!(
        show["path"]
            .as_str()
            .unwrap()
            .starts_with(b.path().to_str().unwrap())
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(show["path"].as_str().unwrap()).join("sub/d.txt"))
            .unwrap(),
        "deep\n"
    );
}

#[test]
fn push_then_pull_then_run_restores_without_running() {
    let s = setup();
    let a = ws(&s, false);
    a.ok(&["run"]);
    assert!(
        !s.remote.join("runs").exists(),
        "no default remote: nothing uploaded"
    );
    let p = a.json(&["push", "--remote", "lab"]);
    assert_eq!(p["stages"].as_array().unwrap().len(), 3, "{p}");
    assert!(p["bytes"].as_u64().unwrap() > 0);
    // Pushing again uploads nothing.
    let p = a.json(&["push", "--remote", "lab"]);
    assert_eq!(p["already"], 3, "{p}");
    assert_eq!(p["bytes"], 0, "{p}");
    let b = ws(&s, false);
    let p = b.json(&["pull", "--remote", "lab"]);
    assert_eq!(p["stages"].as_array().unwrap().len(), 3, "{p}");
    let r = b.json(&["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
    assert_eq!(runs(&s), 3);
    // An unknown remote is named.
    let o = b.run(&["pull", "--remote", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope") && err.contains("lab"), "{err}");
}

#[test]
fn a_corrupted_remote_object_is_detected_discarded_and_the_stage_runs() {
    let s = setup();
    let a = ws(&s, true);
    a.ok(&["run"]);
    // Damage the largest object (a.txt's bytes).
    let victim = remote_objects(&s)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&victim, bytes).unwrap();
    let b = ws(&s, true);
    let o = b
        .cmd(&["--json", "run"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("corrupt")
            && err.contains(&victim.file_name().unwrap().to_string_lossy().to_string()),
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ran: Vec<_> = actions(&r)
        .into_iter()
        .filter(|(_, a)| a == "ran")
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "only the stage whose object was damaged runs: {r}"
    );
    assert_eq!(runs(&s), 4, "only the damaged stage ran again");
    assert_eq!(b.read("lockfiles/p.lock"), a.read("lockfiles/p.lock"));
    b.ok(&["verify"]);
    // The damaged copy was removed and b's upload replaced it.
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(ventral_cas::hash_file(&victim).unwrap().to_hex(), name);
}

#[test]
fn an_upload_without_its_run_record_is_a_miss() {
    let s = setup();
    let a = ws(&s, true);
    a.ok(&["run"]);
    // As if the upload of `c` had been interrupted before its record: objects only.
    let lock: toml::Table = toml::from_str(&a.read("lockfiles/p.lock")).unwrap();
    let key = lock["stages"]["c"]["key"].as_str().unwrap().to_string();
    std::fs::remove_file(s.remote.join("runs").join(format!("{key}.json"))).unwrap();
    let b = ws(&s, true);
    let r = b.json(&["run"]);
    let acts = actions(&r);
    assert_eq!(acts[2], ("c".to_string(), "ran".to_string()), "{r}");
    assert_eq!(runs(&s), 4);
    // …and b's run uploaded it, record last.
    assert!(s.remote.join("runs").join(format!("{key}.json")).exists());
}

#[test]
fn concurrent_uploads_of_one_key_both_succeed_with_one_winner() {
    let s = setup();
    let (a, b) = (ws(&s, false), ws(&s, false));
    a.ok(&["run"]);
    b.ok(&["run"]);
    assert_eq!(runs(&s), 6);
    let (ca, cb) = (a.cmd(&["--json", "push"]), b.cmd(&["--json", "push"]));
    let spawn = |mut c: std::process::Command| {
        c.arg("--remote").arg("lab");
        std::thread::spawn(move || c.output().unwrap())
    };
    let (ha, hb) = (spawn(ca), spawn(cb));
    let (oa, ob) = (ha.join().unwrap(), hb.join().unwrap());
    for o in [&oa, &ob] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read_dir(s.remote.join("runs")).unwrap().count(), 3);
    let c = ws(&s, true);
    let r = c.json(&["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
}

/// The same guarantees against an S3-compatible server (moto) on 127.0.0.1.
#[test]
fn on_s3_a_second_workspace_restores_everything_corruption_is_caught_and_concurrent_pushes_agree() {
    let Some(s3) = ventral_testkit::s3::S3::start("ventral-test") else {
        return;
    };
    let s = setup();
    let remote_toml = format!(
        "[remote.lab]\nurl = \"s3://{}/lab\"\ndefault = true\noptions = {{ endpoint = \"{}\", allow_http = \"true\" }}\n",
        s3.bucket, s3.endpoint
    );
    let mk = || {
        let w = Ws::new();
        w.write("pipelines/p.toml", &pipeline(&s.counter));
        w.write("ventral.toml", &remote_toml);
        w
    };
    let run = |w: &Ws, args: &[&str]| -> serde_json::Value {
        let mut c = w.cmd(&["--json"]);
        c.args(args).envs(s3.env());
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "ventral {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let a = mk();
    run(&a, &["run"]);
    assert_eq!(runs(&s), 3);
    assert_eq!(s3.keys("lab/runs/").len(), 3);
    let b = mk();
    let r = run(&b, &["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
    assert_eq!(runs(&s), 3, "a stage executed in the second workspace");
    assert_eq!(b.read("lockfiles/p.lock"), a.read("lockfiles/p.lock"));
    // `remote verify` lists and re-hashes through S3's API too.
    let v = run(&a, &["remote", "verify"]);
    assert_eq!(v["records"], 3, "{v}");
    assert_eq!(
        v["objects"].as_u64().unwrap() as usize,
        s3.keys("lab/objects/").len(),
        "{v}"
    );
    assert!(v["corrupt"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["incomplete"].as_array().unwrap().is_empty(), "{v}");

    // A damaged object is caught on arrival; the stage runs instead.
    let victim = s3.boto(&format!(
        "objs = s3.list_objects_v2(Bucket={b:?}, Prefix='lab/objects/')['Contents']\n\
         k = max(objs, key=lambda o: o['Size'])['Key']\n\
         body = bytearray(s3.get_object(Bucket={b:?}, Key=k)['Body'].read())\n\
         body[10] ^= 0x20\n\
         s3.put_object(Bucket={b:?}, Key=k, Body=bytes(body))\n\
         print(k)",
        b = s3.bucket
    ));
    let c = mk();
    let mut cmd = c.cmd(&["--json", "run"]);
    cmd.envs(s3.env()).env("RUST_LOG", "warn");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("corrupt") && err.contains(victim.trim()),
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ran: Vec<_> = actions(&r)
        .into_iter()
        .filter(|(_, a)| a == "ran")
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "only the stage whose object was damaged runs: {r}"
    );
    assert_eq!(runs(&s), 4);
    c.ok(&["verify"]);

    // Two uploaders of the same keys at once: both succeed, one record per key.
    s3.boto(&format!(
        "for o in s3.list_objects_v2(Bucket={b:?}, Prefix='lab/runs/')['Contents']:\n    s3.delete_object(Bucket={b:?}, Key=o['Key'])",
        b = s3.bucket
    ));
    let pushes: Vec<_> = [&a, &b]
        .iter()
        .map(|w| {
            let mut c = w.cmd(&["--json", "push"]);
            c.envs(s3.env());
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for h in pushes {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(s3.keys("lab/runs/").len(), 3);
    let d = mk();
    let r = run(&d, &["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
}

/// `ventral remote verify` re-hashes everything and names what is wrong; `ventral remote gc`
/// keeps what the lockfiles name (and anything of the last day) and drops the rest.
#[test]
fn remote_verify_finds_damage_and_gc_keeps_only_what_lockfiles_name() {
    let s = setup();
    let a = ws(&s, true);
    a.ok(&["run"]);
    let v = a.json(&["remote", "verify", "--json"]);
    assert_eq!(v["records"], 3, "{v}");
    assert!(v["objects"].as_u64().unwrap() >= 6, "{v}");
    assert!(v["corrupt"].as_array().unwrap().is_empty(), "{v}");
    // A new version of `c`: its old record and files are no lockfile's any more.
    let text = pipeline(&s.counter).replace("wc -l <", "wc -c <");
    a.write("pipelines/p.toml", &text);
    a.ok(&["run"]);
    assert_eq!(a.json(&["remote", "verify", "--json"])["records"], 4);
    // Everything of the last day stays.
    let g = a.json(&["remote", "gc", "--json"]);
    assert_eq!(g["records_removed"], 0, "{g}");
    assert_eq!(g["objects_removed"], 0, "{g}");
    // Two days later:
    let st = std::process::Command::new("find")
        .arg(&s.remote)
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "2 days ago",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let before = remote_objects(&s).len();
    let g = a.json(&["remote", "gc", "--dry-run", "--json"]);
    assert_eq!(g["records_removed"], 1, "{g}");
    assert!(g["objects_removed"].as_u64().unwrap() >= 2, "{g}");
    assert_eq!(
        remote_objects(&s).len(),
        before,
        "a dry run removed something"
    );
    let g = a.json(&["remote", "gc", "--json"]);
    assert_eq!(g["records_removed"], 1, "{g}");
    let v = a.json(&["remote", "verify", "--json"]);
    assert_eq!(v["records"], 3, "{v}");
    assert!(v["incomplete"].as_array().unwrap().is_empty(), "{v}");
    // A second workspace still restores everything the lockfile names.
    let b = ws(&s, true);
    b.write("pipelines/p.toml", &text);
    let r = b.json(&["run"]);
    assert!(actions(&r).iter().all(|(_, a)| a == "restored"), "{r}");
    // A damaged object: named, removed, and the records that need it are incomplete.
    let victim = remote_objects(&s)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    let o = a.run(&["remote", "verify"]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{t}");
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(t.contains("CORRUPT") && t.contains(&name), "{t}");
    assert!(t.contains("INCOMPLETE"), "{t}");
    assert!(!victim.exists());
}
