//! `make bench`: the remote cache's throughput on an S3-compatible server (moto on
//! 127.0.0.1, started here), for a 1 GiB stage output (8 files of 128 MiB, random bytes),
//! beside boto3 moving the same files to the same server in the same run.
//!
//! ventral: `ventral push` (upload, with multipart for large files) and `ventral pull` into
//! an empty store (download, every byte hashed, stored as a tree). boto3: `upload_file` and
//! `download_file` with its default transfer settings (multipart, 10 threads per file), the
//! 8 files 8 at a time, as `aws s3 cp --recursive` would. The files are on disk (synced)
//! before anything is timed, and each side moves them twice, in the order ventral, boto3,
//! boto3, ventral (to a fresh prefix each time), so neither gains from going second; the
//! figures are the means.
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
            "[remote.lab]\nurl = \"s3://{b}/ventral\"\noptions = {{ endpoint = \"{e}\", allow_http = \"true\" }}\n\
             [remote.lab2]\nurl = \"s3://{b}/ventral2\"\noptions = {{ endpoint = \"{e}\", allow_http = \"true\" }}\n",
            b = s3.bucket,
            e = s3.endpoint
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

    // Nothing of the written gigabyte left to flush while the transfers are timed.
    let _ = Command::new("sync").status();

    let boto = |up: bool, prefix: &str| -> f64 {
        let down = tmp.path().join(format!("boto-down-{prefix}"));
        std::fs::create_dir_all(&down).unwrap();
        let call = if up {
            format!(
                "s3.upload_file(os.path.join(src, f), {:?}, {prefix:?} + f)",
                s3.bucket
            )
        } else {
            format!(
                "s3.download_file({:?}, {prefix:?} + f, os.path.join({:?}, f))",
                s3.bucket,
                down.display().to_string()
            )
        };
        let timing = s3.boto(&format!(
            "import time, os\nfrom concurrent.futures import ThreadPoolExecutor\n\
             src = {src:?}\nfiles = sorted(os.listdir(src))\n\
             t0 = time.time()\n\
             with ThreadPoolExecutor({FILES}) as ex: list(ex.map(lambda f: {call}, files))\n\
             print(time.time() - t0)",
            src = files_dir.display().to_string(),
        ));
        timing.trim().parse::<f64>().unwrap_or(f64::NAN)
    };
    let c = tmp.path().join("c");
    workspace(&c, &s3);
    let push1 = ventral(&bin, &a, &s3, &["push", "--remote", "lab"]);
    let bup1 = boto(true, "boto1/");
    let bup2 = boto(true, "boto2/");
    let push2 = ventral(&bin, &a, &s3, &["push", "--remote", "lab2"]);
    let pull1 = ventral(&bin, &b, &s3, &["pull", "--remote", "lab"]);
    let bdown1 = boto(false, "boto1/");
    let bdown2 = boto(false, "boto2/");
    let pull2 = ventral(&bin, &c, &s3, &["pull", "--remote", "lab2"]);
    let (push, bup) = ((push1 + push2) / 2.0, (bup1 + bup2) / 2.0);
    let (pull, bdown) = ((pull1 + pull2) / 2.0, (bdown1 + bdown2) / 2.0);
    println!(
        "remote cache on S3 (moto 5.1.22 on 127.0.0.1), {FILES} files of {FILE_MB} MiB = {mb:.0} MB, each way twice (ventral {push1:.2} s, {push2:.2} s up, {pull1:.2} s, {pull2:.2} s down; boto3 {bup1:.2} s, {bup2:.2} s up, {bdown1:.2} s, {bdown2:.2} s down), means:"
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
