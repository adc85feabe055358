//! Archives unpacked into the folder the pipelines read: into a scratch folder first, then
//! each top-level entry renamed into place, so a failed unpack leaves nothing half-written
//! under a visible name. What was unpacked is recorded (size and blake3 of every file), so
//! that a stage reading the folder later can check it still holds what the verified
//! archive held ([`crate::check`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{FetchError, Result};

/// One unpacked file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TreeFile {
    /// Bytes.
    pub size: u64,
    /// blake3, hex.
    pub blake3: String,
}

/// What an archive unpacked to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unpacked {
    /// Its top-level entries, as placed in the destination.
    pub top: Vec<String>,
    /// Every file, by its `/`-separated path under the destination.
    pub files: BTreeMap<String, TreeFile>,
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Unpack `archive` (`kind` is `tar.gz` or `tar`) into `dest`, using `scratch` (removed
/// first and after). Entries with absolute paths or `..` are refused, as are links.
pub fn unpack(archive: &Path, kind: &str, dest: &Path, scratch: &Path) -> Result<Unpacked> {
    let bad = |message: String| FetchError::Archive {
        path: archive.to_path_buf(),
        message,
    };
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| FetchError::io(scratch, e))?;
    let f = std::fs::File::open(archive).map_err(|e| FetchError::io(archive, e))?;
    let reader: Box<dyn std::io::Read> = match kind {
        "tar.gz" => Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f))),
        "tar" => Box::new(std::io::BufReader::new(f)),
        other => return Err(bad(format!("unknown archive kind `{other}`"))),
    };
    let mut tar = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .to_string();
        let ty = entry.header().entry_type();
        if !(ty.is_file() || ty.is_dir()) {
            return Err(bad(format!("entry `{name}` is not a file or folder")));
        }
        let Some(rel) = crate::sources::safe_relative(&name) else {
            return Err(bad(format!("entry `{name}` leaves the folder")));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let to = scratch.join(&rel);
        if ty.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| FetchError::io(&to, e))?;
            continue;
        }
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(|e| FetchError::io(p, e))?;
        }
        let out = std::fs::File::create(&to).map_err(|e| FetchError::io(&to, e))?;
        let mut out = Hashing {
            inner: std::io::BufWriter::new(out),
            hasher: blake3::Hasher::new(),
            size: 0,
        };
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("entry `{name}`: {e}")))?;
        out.flush().map_err(|e| FetchError::io(&to, e))?;
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.insert(
            key,
            TreeFile {
                size: out.size,
                blake3: out.hasher.finalize().to_hex().to_string(),
            },
        );
    }
    let mut top = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(scratch)
        .map_err(|e| FetchError::io(scratch, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let from = scratch.join(&name);
        let to = dest.join(&name);
        if to.is_dir() {
            std::fs::remove_dir_all(&to).map_err(|e| FetchError::io(&to, e))?;
        }
        std::fs::rename(&from, &to).map_err(|e| FetchError::io(&to, e))?;
        top.push(name.to_string_lossy().to_string());
    }
    let _ = std::fs::remove_dir_all(scratch);
    Ok(Unpacked { top, files })
}
