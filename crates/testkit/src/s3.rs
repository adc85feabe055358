//! An S3-compatible server for tests: moto's server (`python -m moto.server`) on a free
//! port of 127.0.0.1, from the venv of `lockfiles/requirements-s3.txt`
//! (`$VENTRAL_S3_PYTHON`, or `.venv-s3` / `~/.cache/ventral/venv-s3`), with one bucket.
//! Dropping it stops the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct S3 {
    child: Child,
    python: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for the test.
    pub bucket: String,
}

impl S3 {
    /// Start a server with bucket `bucket`, or say why not ([`crate::skipped`], which fails
    /// under `CI`).
    pub fn start(bucket: &str) -> Option<S3> {
        let Some(python) = crate::venv_python("VENTRAL_S3_PYTHON", ".venv-s3") else {
            crate::skipped("the S3 tests need moto's venv (make s3venv)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto with {}: {e}", python.display()));
        let s = S3 {
            child,
            python,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "moto did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s.boto(&format!("s3.create_bucket(Bucket={bucket:?})"));
        Some(s)
    }

    /// The environment a client needs (test credentials and region).
    pub fn env(&self) -> [(&'static str, &'static str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
    }

    /// Run Python with a boto3 client `s3` on this server; its stdout.
    pub fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url={:?}, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}\n",
            self.endpoint
        );
        let o = Command::new(&self.python)
            .args(["-c", &script])
            .output()
            .expect("python");
        assert!(
            o.status.success(),
            "boto3 failed: {}\n{script}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Every key in the bucket under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self.boto(&format!(
            "p = s3.get_paginator('list_objects_v2')\nfor page in p.paginate(Bucket={:?}, Prefix={prefix:?}):\n    for o in page.get('Contents', []):\n        print(o['Key'])",
            self.bucket
        ));
        out.lines().map(str::to_string).collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
