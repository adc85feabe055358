//! SIGKILL at random points of a run never leaves a partial object visible, and the next run
//! completes the work with the same result as an uninterrupted run.

mod common;

use common::Ws;
use std::time::{Duration, Instant};

fn pipeline() -> String {
    let mut p = String::new();
    for i in 0..4 {
        p.push_str(&format!(
            "[stages.gen{i}]\nkind = \"cmd\"\ncmd = \"for j in 1 2 3 4 5; do seq $j {i}00 > ${{out}}/part$j.txt; sleep 0.005; done; mkdir ${{out}}/sub; cat ${{inputs.seed}} > ${{out}}/sub/seed.txt\"\ninputs = {{ seed = \"data/seed.txt\" }}\npublish = \"results/gen{i}\"\n\n"
        ));
    }
    p.push_str("[stages.join]\nkind = \"cmd\"\ncmd = \"cat ${inputs.parts} | sort -n > ${out}/all.txt\"\ninputs = { parts = \"stage:gen0/part5.txt\", more = \"stage:gen1\", rest = [\"stage:gen2\", \"stage:gen3/sub\"] }\npublish = \"results/join\"\n\n");
    p.push_str("[stages.final]\nkind = \"cmd\"\ncmd = \"wc -l ${inputs.all} | cut -d' ' -f1 > ${out}/n.txt; sleep 0.01\"\ninputs = { all = \"stage:join/all.txt\" }\n");
    p
}

fn setup() -> Ws {
    let ws = Ws::new();
    ws.write("pipelines/p.toml", &pipeline());
    ws.write("data/seed.txt", "42\n");
    ws
}

/// The output digest of every stage, from the lockfile.
fn outputs(ws: &Ws) -> Vec<(String, String)> {
    let text = ws.read("lockfiles/p.lock");
    let lf: toml::Table = toml::from_str(&text).unwrap();
    let mut v: Vec<(String, String)> = lf["stages"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, e)| (k.clone(), e["output"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn sigkill_at_fifty_random_points() {
    let reference = setup();
    reference.ok(&["run", "-j", "1"]);
    let expected = outputs(&reference);
    assert_eq!(expected.len(), 6);

    let ws = setup();
    let t0 = Instant::now();
    ws.ok(&["run", "--force"]);
    let full = t0.elapsed().as_secs_f64().max(0.02);

    // A fixed linear congruential sequence: the same kill points on every run of the test.
    let mut state: u64 = 0x5eed_cafe;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut killed_mid_run = 0;
    for k in 0..50 {
        let delay = next() * full * 1.2;
        let mut child = ws
            .cmd(&["run", "--force", "-j", if k % 2 == 0 { "1" } else { "3" }])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(delay));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The store must be intact after every kill, and the lockfile readable.
        let v = ws.json(&["verify"]);
        assert!(
            v["damaged"].as_array().unwrap().is_empty(),
            "kill {k} after {delay:.3} s: {v}"
        );
        ws.ok(&["status"]);
    }
    assert!(
        killed_mid_run >= 25,
        "only {killed_mid_run} of 50 kills landed mid-run"
    );

    // The next run completes the work; the result equals the uninterrupted one.
    ws.ok(&["run"]);
    assert_eq!(outputs(&ws), expected);
    let again = ws.json(&["run"]);
    assert!(ws.ran(&again).is_empty(), "{again}");
    assert!(
        ws.json(&["verify"])["damaged"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        std::fs::read_dir(ws.store().join("tmp")).unwrap().count(),
        0,
        "a completed run clears what killed runs left in tmp/"
    );
    assert_eq!(
        ws.read("results/join/all.txt"),
        reference.read("results/join/all.txt")
    );
}
