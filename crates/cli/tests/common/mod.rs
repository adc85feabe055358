//! Helpers for running the `ventral` binary against scratch workspaces.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch workspace with a `pipelines/` folder.
pub struct Ws {
    pub dir: tempfile::TempDir,
    /// The object store, when not the workspace's own `.ventral` (`--store`).
    pub store: Option<PathBuf>,
}

impl Ws {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Ws { dir, store: None }
    }

    /// This workspace with its object store at `store` (every command gets `--store`).
    pub fn with_store(mut self, store: &Path) -> Self {
        self.store = Some(store.to_path_buf());
        self
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
            .args(["-p", "pipelines/p.toml"]);
        if let Some(store) = &self.store {
            c.arg("--store").arg(store);
        }
        c.args(args);
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

/// A Python from `$VAR`, else the first existing of `candidates` under the repository root
/// or `~/.cache/ventral`. Under CI a missing interpreter fails the test instead of skipping.
fn find_python(var: &str, venv: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var) {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..");
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = venv.trim_start_matches('.');
    [
        root.join(venv).join("bin/python"),
        PathBuf::from(home).join(format!(".cache/ventral/{cache}/bin/python")),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// The project venv's Python (xarray, netCDF4, zarr, Pillow), or `None` outside CI.
pub fn python() -> Option<PathBuf> {
    let p = find_python("VENTRAL_PYTHON", ".venv");
    assert!(
        p.is_some() || std::env::var("CI").is_err(),
        "CI must run this test: no venv python found"
    );
    p
}

/// The Brain-Score reference venv's Python, or `None` outside CI.
pub fn crosscheck_python() -> Option<PathBuf> {
    let p = find_python("VENTRAL_CROSSCHECK_PYTHON", ".venv-crosscheck");
    assert!(
        p.is_some() || std::env::var("CI").is_err(),
        "CI must run this test: no reference venv python found"
    );
    p
}

/// Run `python script args…`; require success and return stdout.
pub fn py(python: &Path, script: &Path, args: &[&str]) -> String {
    let o = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The shared real-data folder: `$VENTRAL_SHARED_DATA`, else `shared/data` beside the
/// repository root or any folder above it.
pub fn shared_data() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VENTRAL_SHARED_DATA") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..");
    let root = root.canonicalize().unwrap_or(root);
    root.ancestors()
        .map(|a| a.join("shared/data"))
        .find(|p| p.join("hvm/hvm_metadata.csv").is_file())
}

/// [`shared_data`], or a message and `None` (the tests that need it then skip).
pub fn shared_data_or_skip() -> Option<PathBuf> {
    let d = shared_data();
    if d.is_none() {
        skipped("../shared/data not found (set VENTRAL_SHARED_DATA)");
    }
    d
}

/// An ILSVRC2012-style root made of the real ImageNet samples in ../shared/data: even ones in
/// `train/<wnid>/`, odd ones in a flat `val/` with `LOC_val_solution.csv`.
pub fn imagenet_root(ws: &Ws, data: &Path) -> (PathBuf, Vec<(String, usize)>) {
    let root = ws.path().join("ilsvrc");
    let mut samples = Vec::new();
    for e in std::fs::read_dir(data.join("imagenet-samples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jpg") {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let label: usize = stem.rsplit('_').next().unwrap().parse().unwrap();
            samples.push((p.to_string_lossy().to_string(), label));
        }
    }
    samples.sort();
    // Even samples in train/<wnid>/, odd ones in a flat val/ with LOC_val_solution.csv.
    let mut loc = String::from("ImageId,PredictionString\n");
    for (i, (p, label)) in samples.iter().enumerate() {
        let wnid = format!("n{label:08}");
        if i % 2 == 0 {
            let d = root.join("train").join(&wnid);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(p, d.join(format!("{wnid}_{i}.JPEG"))).unwrap();
        } else {
            let d = root.join("val");
            std::fs::create_dir_all(&d).unwrap();
            let id = format!("ILSVRC2012_val_{i:08}");
            std::fs::copy(p, d.join(format!("{id}.JPEG"))).unwrap();
            loc.push_str(&format!("{id},{wnid} 1 2 3 4\n"));
        }
    }
    std::fs::write(root.join("LOC_val_solution.csv"), loc).unwrap();
    (root, samples)
}

/// See [`ventral_testkit::skipped`].
pub fn skipped(what: &str) {
    ventral_testkit::skipped(what);
}

/// A folder on another file system than the temporary folder (a tmpfs: `/dev/shm`, or one
/// mounted here as root), unmounted and removed when dropped; `None` (after
/// [`skipped`]) where there is none.
pub struct OtherFs {
    dir: tempfile::TempDir,
    mounted: Option<tempfile::TempDir>,
}

impl OtherFs {
    pub fn new() -> Option<OtherFs> {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        let tmp = std::env::temp_dir();
        let shm = Path::new("/dev/shm");
        if shm.is_dir()
            && dev(shm) != dev(&tmp)
            && let Ok(dir) = tempfile::tempdir_in(shm)
        {
            return Some(OtherFs { dir, mounted: None });
        }
        let m = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4g", "tmpfs"])
            .arg(m.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skipped("no second file system (/dev/shm, or a tmpfs mounted as root)");
            return None;
        }
        let dir = tempfile::tempdir_in(m.path()).ok()?;
        Some(OtherFs {
            dir,
            mounted: Some(m),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for OtherFs {
    fn drop(&mut self) {
        if let Some(m) = &self.mounted {
            let _ = Command::new("umount").arg(m.path()).status();
        }
    }
}

/// The hex digest `tool` (`sha1sum`, `md5sum`, …) prints for `path`.
pub fn digest_with(tool: &str, path: &Path) -> String {
    let o = Command::new(tool).arg(path).output().expect(tool);
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
