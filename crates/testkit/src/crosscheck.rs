//! Calling Brain-Score's reference (`crosscheck/reference.py`, in the crosscheck venv) from
//! tests, and writing the `.npz` files it reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The crosscheck venv's Python: `$VENTRAL_CROSSCHECK_PYTHON` (the Makefile sets it), else
/// the CI cache location. In CI its absence is a failure.
pub fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VENTRAL_CROSSCHECK_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = PathBuf::from(home).join(".cache/ventral/venv-crosscheck/bin/python");
    if p.exists() {
        return Some(p);
    }
    crate::skipped("no crosscheck venv (run `make crosscheck`)");
    None
}

/// Run one reference request.
pub fn reference(py: &Path, req: &serde_json::Value) -> serde_json::Value {
    let script = crate::repo_root().join("crosscheck/reference.py");
    let mut child = Command::new(py)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the reference");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A minimal `.npz` writer (uncompressed zip of `.npy` files).
pub struct Npz {
    entries: Vec<(String, Vec<u8>)>,
}

fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

impl Default for Npz {
    fn default() -> Self {
        Self::new()
    }
}

impl Npz {
    /// An empty archive.
    pub fn new() -> Self {
        Npz { entries: vec![] }
    }
    pub fn f32(mut self, name: &str, v: &[f32], shape: &[usize]) -> Self {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.entries.push((name.into(), npy("<f4", shape, &bytes)));
        self
    }
    pub fn f64(mut self, name: &str, v: &[f64], shape: &[usize]) -> Self {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.entries.push((name.into(), npy("<f8", shape, &bytes)));
        self
    }
    pub fn i64(mut self, name: &str, v: &[i64]) -> Self {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.entries
            .push((name.into(), npy("<i8", &[v.len()], &bytes)));
        self
    }
    pub fn str(mut self, name: &str, v: &[String]) -> Self {
        let width = v
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut bytes = Vec::new();
        for s in v {
            let mut k = 0;
            for c in s.chars() {
                bytes.extend_from_slice(&(c as u32).to_le_bytes());
                k += 1;
            }
            for _ in k..width {
                bytes.extend_from_slice(&0u32.to_le_bytes());
            }
        }
        self.entries
            .push((name.into(), npy(&format!("<U{width}"), &[v.len()], &bytes)));
        self
    }
    pub fn write(self, path: &Path) {
        let f = std::fs::File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in self.entries {
            z.start_file(format!("{name}.npy"), opts).unwrap();
            z.write_all(&data).unwrap();
        }
        z.finish().unwrap();
    }
}

/// A fixed linear congruential generator for generating test problems.
pub struct Lcg(pub u64);

impl Lcg {
    /// A uniform double in [0, 1).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n - 1)
    }
}

/// Peak resident memory of this process in MB (`VmHWM`), NaN where unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
