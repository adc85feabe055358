//! `ventral fetch` against a file server on 127.0.0.1 that drops connections and throttles
//! on demand; `ventral manifest verify` on source manifests; the committed manifests against
//! the publishers' metadata in the installed wheels.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Ws, crosscheck_python, python};
use ventral_testkit::http::Server;

/// Deterministic bytes (xorshift), `n` of them.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha1_hex(path: &Path) -> String {
    common::digest_with("sha1sum", path)
}

fn md5_hex(path: &Path) -> String {
    common::digest_with("md5sum", path)
}

/// A served folder with `big.bin` (8 MiB) and `small.txt`, and a manifest `t` for them.
fn setup(ws: &Ws) -> (Server, Vec<u8>) {
    let served = ws.path().join("served/blobs");
    std::fs::create_dir_all(&served).unwrap();
    let big = bytes(8 << 20, 7);
    std::fs::write(served.join("big.bin"), &big).unwrap();
    std::fs::write(served.join("small.txt"), b"a small file\n").unwrap();
    let server = Server::start(&ws.path().join("served"));
    let manifest = format!(
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"t\"\ndescription = \"test files\"\n\
         to = \"blobs\"\nsource = \"this test\"\n\n\
         [[file]]\npath = \"big.bin\"\nurl = \"{u}/blobs/big.bin\"\nsha1 = \"{s1}\"\nsize = {n}\n\n\
         [[file]]\npath = \"small.txt\"\nurl = \"{u}/blobs/small.txt\"\nmd5 = \"{m2}\"\n",
        u = server.url(),
        s1 = sha1_hex(&served.join("big.bin")),
        n = big.len(),
        m2 = md5_hex(&served.join("small.txt")),
    );
    ws.write("manifests/t.toml", &manifest);
    (server, big)
}

#[test]
fn dropped_connections_are_resumed_from_the_byte_reached() {
    let ws = Ws::new();
    let (server, big) = setup(&ws);
    // Every chunk's first two GETs break after 100 kB.
    server.drop_after("/blobs/big.bin", 6, 100_000);
    let r = ws.json(&["fetch", "t", "--chunk-mib", "2", "--json"]);
    let files = r["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["status"] == "fetched"), "{r}");
    assert_eq!(
        std::fs::read(ws.path().join("data/real/blobs/big.bin")).unwrap(),
        big
    );
    // A re-request starts where the broken one stopped (100 kB further each time), not at
    // its chunk's start.
    let log = server.log();
    let mid: Vec<u64> = log
        .iter()
        .filter(|q| q.method == "GET" && q.path == "/blobs/big.bin")
        .map(|q| q.start)
        .filter(|s| s % (2 << 20) != 0)
        .collect();
    assert!(
        !mid.is_empty() && mid.iter().all(|s| (s % (2 << 20)) % 100_000 == 0),
        "{log:?}"
    );
    assert!(!ws.path().join("data/real/blobs/big.bin.part").exists());
    // Fetching again transfers nothing: the stamp vouches for the verified file.
    let before = server.log().len();
    let r = ws.json(&["fetch", "t", "--json"]);
    assert!(
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "present"),
        "{r}"
    );
    assert_eq!(server.log().len(), before, "a present file was requested");
}

#[test]
fn a_killed_fetch_resumes_from_its_part_file() {
    let ws = Ws::new();
    let (server, big) = setup(&ws);
    server.throttle(2 << 20);
    let mut child = ws
        .cmd(&["fetch", "t", "--chunk-mib", "1", "--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = ws.path().join("data/real/blobs/big.bin.part.json");
    let t0 = Instant::now();
    let done = |s: &serde_json::Value| {
        s["done"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|x| x == &&serde_json::Value::Bool(true))
                    .count()
            })
            .unwrap_or(0)
    };
    loop {
        let s: serde_json::Value = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if done(&s) >= 2 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no chunk finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let finished: Vec<u64> = s["done"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, d)| d.as_bool() == Some(true))
        .map(|(i, _)| i as u64 * (1 << 20))
        .collect();
    assert!(finished.len() < 8, "the whole file arrived before the kill");
    // Nothing under the file's name until it is complete and verified.
    assert!(!ws.path().join("data/real/blobs/big.bin").exists());
    server.throttle(0);
    let before = server.log().len();
    let r = ws.json(&["fetch", "t", "--chunk-mib", "1", "--json"]);
    let big_report = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("big.bin"))
        .unwrap()
        .clone();
    assert_eq!(big_report["status"], "fetched", "{r}");
    assert_eq!(
        big_report["transferred"].as_u64().unwrap(),
        (8 << 20) - (finished.len() as u64) * (1 << 20),
        "{r}"
    );
    let again: Vec<u64> = server.log()[before..]
        .iter()
        .filter(|q| q.method == "GET" && q.path == "/blobs/big.bin")
        .map(|q| q.start)
        .collect();
    for f in &finished {
        assert!(!again.contains(f), "chunk at {f} fetched twice: {again:?}");
    }
    assert_eq!(
        std::fs::read(ws.path().join("data/real/blobs/big.bin")).unwrap(),
        big
    );
    assert!(!state.exists());
}

#[test]
fn a_corrupt_download_is_named_discarded_and_fails() {
    let ws = Ws::new();
    let (_server, _) = setup(&ws);
    // The server's copy changes after the manifest was written: one byte.
    let f = ws.path().join("served/blobs/big.bin");
    let mut b = std::fs::read(&f).unwrap();
    b[5_000_000] ^= 1;
    std::fs::write(&f, &b).unwrap();
    let want = ws.read("manifests/t.toml");
    let o = ws.run(&["fetch", "t"]);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{t}");
    let expected = want
        .lines()
        .find_map(|l| l.strip_prefix("sha1 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    assert!(
        t.contains("big.bin") && t.contains("sha1 mismatch") && t.contains(&expected),
        "{t}"
    );
    assert!(t.contains(&sha1_hex(&f)), "{t}");
    let dir = ws.path().join("data/real/blobs");
    assert!(!dir.join("big.bin").exists() && !dir.join("big.bin.part").exists());
    // The other file of the manifest still arrived.
    assert!(dir.join("small.txt").is_file());
    // `manifest verify` on a source manifest: the folder's files against their hashes.
    std::fs::write(dir.join("big.bin"), &b).unwrap();
    let o = ws.run(&[
        "manifest",
        "verify",
        dir.to_str().unwrap(),
        ws.path().join("manifests/t.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sha1 mismatch"));
    b[5_000_000] ^= 1;
    std::fs::write(dir.join("big.bin"), &b).unwrap();
    let out = ws.ok(&[
        "manifest",
        "verify",
        dir.to_str().unwrap(),
        ws.path().join("manifests/t.toml").to_str().unwrap(),
    ]);
    assert!(out.contains("2 files"), "{out}");
}

#[test]
fn what_cannot_be_downloaded_is_explained_and_unknown_names_are_refused() {
    let ws = Ws::new();
    ws.write(
        "manifests/m.toml",
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"imagenet-like\"\n\
         description = \"placed by hand\"\nto = \"IN\"\nsource = \"test\"\n\
         manual = \"register somewhere, then put the archive in data/real/IN\"\n\n\
         [[file]]\npath = \"a.tar\"\nmd5 = \"900150983cd24fb0d6963f7d28e17f72\"\n",
    );
    let o = ws.run(&["fetch", "imagenet-like"]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("MISSING") && t.contains("register somewhere"),
        "{t}"
    );
    std::fs::create_dir_all(ws.path().join("data/real/IN")).unwrap();
    std::fs::write(ws.path().join("data/real/IN/a.tar"), b"abc").unwrap();
    let t = ws.ok(&["fetch", "imagenet-like"]);
    assert!(t.contains("present"), "{t}");
    let o = ws.run(&["fetch", "nope"]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1));
    assert!(e.contains("nope") && e.contains("imagenet-like"), "{e}");
    // A malformed manifest is named with its field.
    ws.write(
        "manifests/bad.toml",
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"b\"\ndescription = \"\"\n\
         source = \"\"\n\n[[file]]\npath = \"../x\"\nurl = \"http://h/x\"\nsha1 = \"00\"\n",
    );
    let o = ws.run(&["fetch", "--all"]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(e.contains("bad.toml") && e.contains("file[0].path"), "{e}");
}

/// The committed manifests are exactly what `manifests/generate.py` derives from the
/// installed brainscore-vision and torchvision wheels.
#[test]
fn the_committed_manifests_are_the_publishers_metadata() {
    let (Some(py), Some(xpy)) = (python(), crosscheck_python()) else {
        common::skipped("no venvs (run `make test`)");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    for (p, what) in [(&xpy, "brainscore"), (&py, "torchvision")] {
        let o = Command::new(p)
            .arg(root.join("manifests/generate.py"))
            .args([what, out.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut n = 0;
    for e in std::fs::read_dir(out.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let committed = std::fs::read_to_string(root.join("manifests").join(&name))
            .unwrap_or_else(|_| panic!("manifests/{name} is not committed"));
        assert_eq!(
            committed,
            std::fs::read_to_string(&p).unwrap(),
            "manifests/{name} differs from what generate.py writes"
        );
        // And each parses as a source manifest.
        ventral_fetch::Sources::parse(&p, &committed).unwrap();
        n += 1;
    }
    assert_eq!(n, 5);
    // Brain-Score's published region→layer maps, from the same wheel.
    let maps = tempfile::tempdir().unwrap();
    let o = Command::new(&xpy)
        .arg(root.join("manifests/generate.py"))
        .args(["region-layer-maps", maps.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(root.join("data/brainscore/region_layer_maps.toml")).unwrap(),
        std::fs::read_to_string(maps.path().join("region_layer_maps.toml")).unwrap(),
        "data/brainscore/region_layer_maps.toml differs from what generate.py writes"
    );
    // `fetch --list` reads them all.
    let ws = Ws::new();
    let t = ws.ok(&[
        "fetch",
        "--list",
        "--manifests",
        root.join("manifests").to_str().unwrap(),
    ]);
    for name in ["brainio", "cornet", "torchvision", "cifar100", "ilsvrc2012"] {
        assert!(t.contains(name), "{t}");
    }
    assert!(t.contains("dicarlo.Kar2019.IT"), "{t}");
}

#[test]
fn server_errors_are_retried_and_a_missing_file_is_named() {
    let ws = Ws::new();
    let (server, big) = setup(&ws);
    // Five 503s in a row (HEADs and GETs alike): retried with backoff.
    server.fail_next(5, 503);
    let r = ws.json(&["fetch", "t", "--chunk-mib", "4", "--json"]);
    assert!(
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "fetched"),
        "{r}"
    );
    assert_eq!(
        std::fs::read(ws.path().join("data/real/blobs/big.bin")).unwrap(),
        big
    );
    // A 404 is not retried: the file fails with its URL and status.
    std::fs::remove_file(ws.path().join("served/blobs/small.txt")).unwrap();
    std::fs::remove_file(ws.path().join("data/real/blobs/small.txt")).unwrap();
    let o = ws.run(&["fetch", "t"]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("small.txt") && t.contains("404"), "{t}");
}

/// A full disk: the fetch fails naming the file and "No space", nothing appears under the
/// file's name, and once space is freed the next fetch completes (root only: it mounts a
/// small tmpfs).
#[test]
fn a_full_disk_fails_cleanly_and_the_next_fetch_completes() {
    if unsafe { libc::geteuid() } != 0 {
        common::skipped("not root: cannot mount a tmpfs");
        return;
    }
    let ws = Ws::new();
    let (_server, big) = setup(&ws);
    let mnt = ws.path().join("data/real");
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = |size: &str| {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
    };
    let umount = || {
        let _ = Command::new("umount").arg(&mnt).status();
    };
    mount("4m");
    let o = ws.run(&["fetch", "t", "--chunk-mib", "1"]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let full_listing: Vec<String> = std::fs::read_dir(mnt.join("blobs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    umount();
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("big.bin") && t.contains("No space"), "{t}");
    assert!(
        !full_listing.contains(&"big.bin".to_string()),
        "{full_listing:?}"
    );
    // With room, the same command completes.
    mount("64m");
    let r = ws.json(&["fetch", "t", "--chunk-mib", "1", "--json"]);
    let ok = std::fs::read(mnt.join("blobs/big.bin")).ok() == Some(big);
    umount();
    assert!(
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "fetched" || f["status"] == "present"),
        "{r}"
    );
    assert!(ok, "big.bin differs after the second fetch");
}
