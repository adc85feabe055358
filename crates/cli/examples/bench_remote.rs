//! `make bench`: the remote cache's throughput on an S3-compatible server (moto on
//! 127.0.0.1, started here), for a 1 GiB stage output (8 files of 128 MiB, random bytes),
//! beside boto3 moving the same files to the same server in the same run.
//!
//! ventral: `ventral push` (upload, with multipart for large files) and `ventral pull` into
//! an empty store (download, every byte hashed, stored as a tree). boto3: `upload_file` and
//! `download_file` with its default transfer settings (multipart, 10 threads per file), the
//! 8 files 8 at a time, as `aws s3 cp --recursive` would.
//!
//! Usage: bench_remote PATH/TO/ventral

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ventral_testkit::s3::S3;

const FILES: usize = 8;
const FILE_MB: usize = 128;

fn ventral(bin: &Path, dir: &Path, s3: &S3, args: &[&str]) -> f64 {
    let t0 = Instant::now();
    let o = Command::new(bin)
        .current_dir(dir)
        .envs(s3.env())
        .env_remove("VENTRAL_HOME")
        .args(["-p", "pipelines/p.toml"])
        .args(args)
        .output()
        .expect("ventral");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "ventral {args:?}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    secs
}

fn workspace(dir: &Path, s3: &S3) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/p.toml"),
        format!(
            "[stages.big]\nkind = \"cmd\"\ncmd = \"for i in $(seq 1 {FILES}); do head -c {} /dev/urandom > ${{out}}/part$i.bin; done\"\n",
            FILE_MB << 20
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("ventral.toml"),
        format!(
            "[remote.lab]\nurl = \"s3://{}/ventral\"\noptions = {{ endpoint = \"{}\", allow_http = \"true\" }}\n",
            s3.bucket, s3.endpoint
        ),
    )
    .unwrap();
}

fn main() {
    let bin = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .expect("usage: bench_remote PATH/TO/ventral");
    let bin = std::fs::canonicalize(bin).expect("ventral binary");
    let Some(s3) = S3::start("bench") else {
        println!("remote: no S3 server could be started here (make s3venv)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    workspace(&a, &s3);
    workspace(&b, &s3);
    ventral(&bin, &a, &s3, &["run"]);
    let out = Command::new(&bin)
        .current_dir(&a)
        .args(["-p", "pipelines/p.toml", "--json", "show", "big"])
        .output()
        .unwrap();
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files_dir = PathBuf::from(show["path"].as_str().unwrap());
    let mb = (FILES * FILE_MB) as f64 * 1.048576;

    let push = ventral(&bin, &a, &s3, &["push", "--remote", "lab"]);
    let pull = ventral(&bin, &b, &s3, &["pull", "--remote", "lab"]);

    let down = tmp.path().join("boto-down");
    std::fs::create_dir_all(&down).unwrap();
    let timing = s3.boto(&format!(
        "import time, os\nfrom concurrent.futures import ThreadPoolExecutor\n\
         src = {src:?}\nfiles = sorted(os.listdir(src))\n\
         t0 = time.time()\n\
         with ThreadPoolExecutor({FILES}) as ex: list(ex.map(lambda f: s3.upload_file(os.path.join(src, f), {bucket:?}, 'boto/' + f), files))\n\
         t1 = time.time()\n\
         with ThreadPoolExecutor({FILES}) as ex: list(ex.map(lambda f: s3.download_file({bucket:?}, 'boto/' + f, os.path.join({down:?}, f)), files))\n\
         t2 = time.time()\n\
         print(t1 - t0, t2 - t1)",
        src = files_dir.display().to_string(),
        bucket = s3.bucket,
        down = down.display().to_string(),
    ));
    let mut it = timing
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
    let (bup, bdown) = (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN));
    println!(
        "remote cache on S3 (moto 5.1.22 on 127.0.0.1), {FILES} files of {FILE_MB} MiB = {mb:.0} MB:"
    );
    println!(
        "  ventral push   {push:7.2} s  {:7.1} MB/s   boto3 upload_file   {bup:7.2} s  {:7.1} MB/s   ratio {:.2}x",
        mb / push,
        mb / bup,
        bup / push
    );
    println!(
        "  ventral pull   {pull:7.2} s  {:7.1} MB/s   boto3 download_file {bdown:7.2} s  {:7.1} MB/s   ratio {:.2}x (ventral also hashes every byte and stores a tree)",
        mb / pull,
        mb / bdown,
        bdown / pull
    );
}
