//! Dataset manifests: `manifests/<dataset>.toml` lists every file of a data root with its
//! size and blake3, so that a real-data run checks the user's copy before any stage uses it.
//!
//! ```toml
//! [manifest]
//! format = "ventral-manifest v1"
//! dataset = "ILSVRC2012"
//!
//! [[file]]
//! path = "train/n01440764/n01440764_10026.JPEG"
//! size = 13697
//! blake3 = "…"
//! ```
//!
//! Files are listed in sorted path order, so the same tree gives the same bytes. Verifying
//! ignores files the manifest does not list (a data root may hold more).
//!
//! A stage's `manifest` input may also be a source manifest (`manifests/brainio.toml`, …,
//! format `ventral-sources v1`): [`check`] takes either and checks the input against the
//! hashes its publisher gives ([`ventral_fetch::check`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid, io};

/// The format tag.
pub const MANIFEST_FORMAT: &str = "ventral-manifest v1";

/// The `[manifest]` table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The dataset's name.
    pub dataset: String,
}

/// One file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative path with `/` separators.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// blake3, hex.
    pub blake3: String,
}

/// A manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The header.
    pub manifest: Header,
    /// The files, sorted by path.
    #[serde(default, rename = "file")]
    pub files: Vec<FileEntry>,
}

/// The outcome of [`Manifest::verify`].
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let e = e.map_err(|e| io(dir, e))?;
        let p = e.path();
        let ft = std::fs::metadata(&p).map_err(|e| io(&p, e))?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

fn hash(path: &Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_mmap(path).map_err(|e| io(path, e))?;
    Ok(h.finalize())
}

impl Manifest {
    /// Hash every file under `root` (in parallel; the result is sorted).
    pub fn create(root: &Path, dataset: &str) -> Result<Manifest> {
        let mut files = Vec::new();
        walk(root, &mut files)?;
        let mut entries: Vec<FileEntry> = files
            .par_iter()
            .map(|p| {
                let rel = p.strip_prefix(root).unwrap_or(p);
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                let size = std::fs::metadata(p).map_err(|e| io(p, e))?.len();
                Ok(FileEntry {
                    path: rel,
                    size,
                    blake3: hash(p)?.to_hex().to_string(),
                })
            })
            .collect::<Result<_>>()?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Manifest {
            manifest: Header {
                format: MANIFEST_FORMAT.into(),
                dataset: dataset.into(),
            },
            files: entries,
        })
    }

    /// Read a manifest file.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        let m: Manifest =
            toml::from_str(&text).map_err(|e| invalid(path, "toml", e.to_string()))?;
        if m.manifest.format != MANIFEST_FORMAT {
            return Err(invalid(
                path,
                "manifest.format",
                format!(
                    "`{}` (this ventral reads `{MANIFEST_FORMAT}`)",
                    m.manifest.format
                ),
            ));
        }
        Ok(m)
    }

    /// The TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| invalid("manifest", "toml", e.to_string()))
    }

    /// Write to `path` (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = self.to_toml()?;
        let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
        if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
        }
        std::fs::write(&tmp, text).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    }

    /// Check every listed file under `root`: present, same size, same blake3. The error lists
    /// the first problems (and how many there are).
    pub fn verify(&self, root: &Path, manifest_path: &Path) -> Result<VerifyReport> {
        let problems: Vec<String> = self
            .files
            .par_iter()
            .filter_map(|f| {
                let Some(rel) = crate::stimuli::safe_relative(&f.path) else {
                    return Some(format!("{}: path leaves the data root", f.path));
                };
                let p = root.join(rel);
                let size = match std::fs::metadata(&p) {
                    Ok(m) => m.len(),
                    Err(_) => return Some(format!("{}: missing", f.path)),
                };
                if size != f.size {
                    return Some(format!("{}: size {size}, manifest says {}", f.path, f.size));
                }
                match hash(&p) {
                    Ok(h) if h.to_hex().as_str() == f.blake3 => None,
                    Ok(h) => Some(format!(
                        "{}: blake3 {}, manifest says {}",
                        f.path,
                        &h.to_hex()[..16],
                        &f.blake3[..f.blake3.len().min(16)]
                    )),
                    Err(e) => Some(format!("{}: {e}", f.path)),
                }
            })
            .collect();
        if !problems.is_empty() {
            let mut sorted = problems;
            sorted.sort();
            let n = sorted.len();
            let head = sorted.into_iter().take(5).collect::<Vec<_>>().join("; ");
            return Err(invalid(
                root,
                format!("manifest {}", manifest_path.display()),
                format!("{n} file(s) do not match: {head}"),
            ));
        }
        Ok(VerifyReport {
            files: self.files.len(),
            bytes: self.files.iter().map(|f| f.size).sum(),
        })
    }
}

/// Check a stage's input `root` against `manifest` — a file-tree manifest (size and blake3
/// of every file under `root`) or a source manifest (the publishers' hashes of what `root`
/// holds) — before the stage reads it; returns the line for the stage's log.
pub fn check(manifest: &Path, root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| io(manifest, e))?;
    if ventral_fetch::Sources::is_sources(&text) {
        let m = ventral_fetch::Sources::parse(manifest, &text)
            .map_err(|e| invalid(manifest, "manifest", e.to_string()))?;
        let r = ventral_fetch::check::check_against(&m, manifest, root).map_err(|e| {
            invalid(
                root,
                format!("checked against {}", manifest.display()),
                e.to_string(),
            )
        })?;
        return Ok(r.summary(root, manifest));
    }
    let r = Manifest::read(manifest)?.verify(root, manifest)?;
    Ok(format!(
        "{}: {} file(s), {} bytes match {}",
        root.display(),
        r.files,
        r.bytes,
        manifest.display()
    ))
}
