//! `make bench`: `ventral fetch` of one 512 MiB file from a file server on 127.0.0.1
//! (started here), beside `curl -o` followed by `sha1sum` — what a user would otherwise type
//! to download and check a BrainIO file — in the same run, on the same server and file.
//!
//! Two servers: unlimited (loopback: the cost of ranges, writing at offsets and hashing),
//! and one that sends each connection at most 25 MB/s (as many HTTP and S3 servers do per
//! connection), where ranged downloads in parallel pay off.
//!
//! Usage: bench_fetch PATH/TO/ventral

use std::process::Command;
use std::time::Instant;

use ventral_testkit::http::Server;

const MB: usize = 512;

fn timed(mut c: Command) -> f64 {
    let t0 = Instant::now();
    let o = c.output().expect("spawn");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "{c:?}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    secs
}

fn main() {
    let bin = std::env::args()
        .nth(1)
        .expect("usage: bench_fetch PATH/TO/ventral");
    let bin = std::fs::canonicalize(&bin).expect("ventral binary");
    if Command::new("curl").arg("--version").output().is_err() {
        println!("bench_fetch: curl is not installed; skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    std::fs::create_dir_all(served.join("blobs")).unwrap();
    let file = served.join("blobs/big.bin");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom > {}",
            MB << 20,
            file.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let sha1 =
        String::from_utf8_lossy(&Command::new("sha1sum").arg(&file).output().unwrap().stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
    let server = Server::start(&served);
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("manifests")).unwrap();
    std::fs::write(
        ws.join("manifests/b.toml"),
        format!(
            "[manifest]\nformat = \"ventral-sources v1\"\nname = \"b\"\ndescription = \"bench\"\n\
             to = \"blobs\"\nsource = \"bench\"\n\n[[file]]\npath = \"big.bin\"\n\
             url = \"{}/blobs/big.bin\"\nsha1 = \"{sha1}\"\n",
            server.url()
        ),
    )
    .unwrap();
    println!("bench_fetch: one {MB} MiB file from a server on 127.0.0.1");
    for (label, rate) in [("unlimited", 0u64), ("25 MB/s per connection", 25_000_000)] {
        server.throttle(rate);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..2 {
            let _ = std::fs::remove_dir_all(ws.join("data"));
            let mut c = Command::new(&bin);
            c.current_dir(&ws).args(["fetch", "b"]);
            ours.push(timed(c));
            let out = tmp.path().join("curl.bin");
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "curl -sSf -o {o} {u}/blobs/big.bin && sha1sum {o} | grep -q {sha1}",
                o = out.display(),
                u = server.url()
            ));
            theirs.push(timed(c));
            let _ = std::fs::remove_file(&out);
        }
        let best = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
        let (a, b) = (best(&ours), best(&theirs));
        let mbps = |s: f64| (MB << 20) as f64 / 1e6 / s;
        println!(
            "  {label:<24} ventral fetch {a:6.2} s ({:6.1} MB/s)   curl + sha1sum {b:6.2} s ({:6.1} MB/s)   ratio {:.2}x",
            mbps(a),
            mbps(b),
            b / a
        );
    }
}
