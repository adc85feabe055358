//! Helpers for running the `ventral` binary against scratch workspaces.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch workspace with a `pipelines/` folder.
pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Ws { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ventral"));
        c.current_dir(self.path())
            .env_remove("VENTRAL_HOME")
            .env_remove("VENTRAL_PROFILE")
            .env_remove("VENTRAL_PIPELINE")
            .env("RUST_LOG", "warn")
            .args(["-p", "pipelines/p.toml"])
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn ventral")
    }

    /// Run and require success; return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "ventral {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Run with --json and parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The stages a `run --json` report says ran.
    pub fn ran(&self, report: &serde_json::Value) -> Vec<String> {
        self.with_action(report, "ran")
    }

    pub fn with_action(&self, report: &serde_json::Value, action: &str) -> Vec<String> {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == action)
            .map(|s| s["stage"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join(".ventral")
    }
}
