//! The process executor: each stage in a `ventral exec-stage` process of its own, the same
//! lockfile as an in-process run, and each stage's peak memory in its run record.

mod common;

use common::Ws;

/// `big` holds 160 MiB at once (Python, touching every page); `small` does next to nothing.
const PIPELINE: &str = r#"
[stages.big]
kind = "cmd"
cmd = "python3 -c \"b = bytearray(160 << 20); b[:] = bytes(range(256)) * (len(b) // 256); print(sum(b[::4096]))\" > ${out}/sum.txt"

[stages.small]
kind = "cmd"
cmd = "cat ${inputs.big} > ${out}/copy.txt"
inputs = { big = "stage:big/sum.txt" }
"#;

fn peak(ws: &Ws, stage: &str) -> Option<u64> {
    let shown = ws.json(&["show", stage, "--json"]);
    shown["run"]["peak_rss_bytes"].as_u64()
}

#[test]
fn each_stage_runs_in_its_own_process_to_the_same_lockfile_with_its_peak_memory() {
    let local = Ws::new();
    local.write("pipelines/p.toml", PIPELINE);
    local.ok(&["run"]);
    let ws = Ws::new();
    ws.write("pipelines/p.toml", PIPELINE);
    ws.write("ventral.toml", "[executor]\nkind = \"process\"\n");
    let r = ws.json(&["run", "--json"]);
    let mut ran = ws.ran(&r);
    ran.sort();
    assert_eq!(ran, ["big", "small"], "{r}");
    assert_eq!(ws.read("lockfiles/p.lock"), local.read("lockfiles/p.lock"));
    let big = peak(&ws, "big").expect("no peak memory recorded for `big`");
    let small = peak(&ws, "small").expect("no peak memory recorded for `small`");
    assert!(big >= 160 << 20, "big: {big} bytes");
    assert!(small < 160 << 20, "small: {small} bytes");
    let text = ws.ok(&["show", "big"]);
    assert!(text.contains("peak memory"), "{text}");
    // In the engine's process there is no figure of the stage's own.
    assert_eq!(peak(&local, "big"), None);
    // Each process's output is kept beside the store.
    let logs = std::fs::read_dir(ws.path().join(".ventral/logs/process"))
        .unwrap()
        .count();
    assert_eq!(logs, 2);
}

/// A small stage's figure is its own, even after the engine has hashed a large input
/// (memory-mapped, so the engine's high-water mark is the input's size): a stage's process
/// does not report the high-water mark Linux carries from the forking engine into
/// `ru_maxrss`.
#[test]
fn a_small_stage_after_a_large_input_reports_its_own_peak() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.count]\nkind = \"cmd\"\ncmd = \"wc -c < ${inputs.data} > ${out}/n.txt\"\n\
         inputs = { data = \"data/large.bin\" }\n",
    );
    let data: Vec<u8> = (0..(192usize << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(ws.path().join("data")).unwrap();
    std::fs::write(ws.path().join("data/large.bin"), &data).unwrap();
    drop(data);
    ws.ok(&["run", "--executor", "process"]);
    let n = peak(&ws, "count").expect("no peak memory recorded for `count`");
    assert!(
        n < 96 << 20,
        "count: {n} bytes for `wc -c` on a 192 MiB input"
    );
}

#[test]
fn a_failing_stage_process_is_reported_with_the_end_of_its_log() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        "[stages.bad]\nkind = \"cmd\"\ncmd = \"echo the-last-words >&2; exit 7\"\n",
    );
    let o = ws.run(&["run", "--executor", "process"]);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the-last-words") && t.contains("exited with status"),
        "{t}"
    );
    let lock = ws.path().join("lockfiles/p.lock");
    assert!(!lock.exists() || !ws.read("lockfiles/p.lock").contains("[stages.bad]"));
    // A wrong executor name is refused with the choices.
    let o = ws.run(&["run", "--executor", "threads"]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_ne!(o.status.code(), Some(0));
    assert!(e.contains("process") && e.contains("slurm"), "{e}");
}
