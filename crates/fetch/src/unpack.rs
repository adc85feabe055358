//! Archives unpacked into the folder the pipelines read: into a scratch folder first, then
//! each top-level entry renamed into place, so a failed unpack leaves nothing half-written
//! under a visible name.

use std::path::Path;

use crate::{FetchError, Result};

/// Unpack `archive` (`kind` is `tar.gz` or `tar`) into `dest`, using `scratch` (removed
/// first and after). Entries with absolute paths or `..` are refused, as are links.
pub fn unpack(archive: &Path, kind: &str, dest: &Path, scratch: &Path) -> Result<Vec<String>> {
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
        let mut out = std::fs::File::create(&to).map_err(|e| FetchError::io(&to, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("entry `{name}`: {e}")))?;
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
    Ok(top)
}
