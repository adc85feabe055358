//! A stage's input checked against a source manifest before the stage reads it (the
//! `manifest` input of the real profile's stages: `manifests/brainio.toml`, …).
//!
//! The input is a file or a folder somewhere under a fetch root (`data/real`); which of the
//! manifest's files it holds follows from the manifest's `to` and each file's `path`:
//!
//! - a file whose path ends with `<to>/<path>` is that file (a checkpoint);
//! - a folder whose path ends with `<to>` holds the files at `<folder>/<path>` (BrainIO,
//!   ILSVRC2012's archives);
//! - a folder that `ventral fetch` unpacked from one of the manifest's archives (CIFAR-100)
//!   must still hold every file the archive held, as the archive's stamp records them.
//!
//! Each file the input holds must match every hash its publisher gives; a stamp left by
//! `ventral fetch` (size, modification time, the hashes it was checked against) spares a
//! re-hash. Files the manifest names that the input lacks are listed, not refused: the
//! stage fails on its own if it needs them. An input that holds none of the manifest's files
//! is refused (a manifest for another dataset, a renamed file) — except that a manifest of
//! files placed by hand (`manual`: ILSVRC2012's archives) may be absent when the user kept
//! only what they unpacked; the check then says the tree could not be verified.
//!
//! Nothing is written: a stage's inputs are not the stage's to change.

use std::path::{Path, PathBuf};

use crate::download::{hashes_key, read_stamp};
use crate::sources::{Hashes, SourceFile, Sources, safe_relative, verify_file};
use crate::{FetchError, Result};

/// What [`check_input`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputCheck {
    /// Files checked (for an unpacked folder: every file it held).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Of those, files hashed now (the rest matched a stamp `ventral fetch` left).
    pub hashed: usize,
    /// Files the manifest names that the input does not hold.
    pub absent: Vec<String>,
    /// Set when nothing could be checked: what the user should know.
    pub unverified: Option<String>,
}

impl InputCheck {
    /// One line for a stage's log.
    pub fn summary(&self, input: &Path, manifest: &Path) -> String {
        if let Some(u) = &self.unverified {
            return format!(
                "{}: not verified against {}: {u}",
                input.display(),
                manifest.display()
            );
        }
        let mut s = format!(
            "{}: {} file(s), {} bytes match {} ({} hashed now, {} by ventral fetch's stamps)",
            input.display(),
            self.files,
            self.bytes,
            manifest.display(),
            self.hashed,
            self.files - self.hashed
        );
        if !self.absent.is_empty() {
            let head: Vec<&str> = self.absent.iter().take(5).map(String::as_str).collect();
            s.push_str(&format!(
                "; {} it names are not there ({}{})",
                self.absent.len(),
                head.join(", "),
                if self.absent.len() > 5 { ", …" } else { "" }
            ));
        }
        s
    }
}

/// Check `input` against the source manifest at `manifest`.
pub fn check_input(manifest: &Path, input: &Path) -> Result<InputCheck> {
    let m = Sources::read(manifest)?;
    check_against(&m, manifest, input)
}

fn refuse(manifest: &Path, field: &str, message: String) -> FetchError {
    FetchError::Manifest {
        path: manifest.to_path_buf(),
        field: field.to_string(),
        message,
    }
}

/// [`check_input`] with the manifest already read.
pub fn check_against(m: &Sources, manifest: &Path, input: &Path) -> Result<InputCheck> {
    let to = safe_relative(&m.manifest.to).unwrap_or_default();
    let meta = std::fs::metadata(input).map_err(|e| FetchError::io(input, e))?;
    let mut out = InputCheck::default();
    if meta.is_file() {
        for f in &m.files {
            let rel = safe_relative(&f.path).unwrap_or_default();
            if input.ends_with(to.join(&rel)) {
                let folder = input
                    .ancestors()
                    .nth(rel.components().count())
                    .unwrap_or(input);
                check_file(folder, f, input, &mut out)?;
                return Ok(out);
            }
        }
        return Err(refuse(
            manifest,
            "file",
            format!(
                "names no file at {} (it names {})",
                input.display(),
                names(m)
            ),
        ));
    }
    // A folder the manifest's files go to.
    let mut absent = Vec::new();
    if input.ends_with(&to) {
        for f in &m.files {
            let p = input.join(safe_relative(&f.path).unwrap_or_default());
            if p.is_file() {
                check_file(input, f, &p, &mut out)?;
            } else {
                absent.push(f.path.clone());
            }
        }
    }
    // A folder unpacked from one of its archives.
    let mut unpacked = false;
    if let (Some(parent), Some(name)) = (input.parent(), input.file_name())
        && parent.ends_with(&to)
    {
        let name = name.to_string_lossy();
        for f in m.files.iter().filter(|f| f.unpack.is_some()) {
            let Some(stamp) = read_stamp(parent, &f.path) else {
                continue;
            };
            if !stamp.unpacked.iter().any(|t| *t == name) {
                continue;
            }
            let archive = parent.join(&f.path);
            if stamp.hashes != hashes_key(f) {
                return Err(refuse(
                    manifest,
                    &format!("file ({})", f.path),
                    format!(
                        "{} was unpacked from {} as checked against other hashes than these; \
                         run `ventral fetch {}` again",
                        input.display(),
                        archive.display(),
                        m.manifest.name
                    ),
                ));
            }
            if stamp.tree.is_empty() {
                return Err(refuse(
                    manifest,
                    &format!("file ({})", f.path),
                    format!(
                        "no record of what {} held when {} was unpacked; run `ventral fetch {}` \
                         again (it records it)",
                        archive.display(),
                        input.display(),
                        m.manifest.name
                    ),
                ));
            }
            check_tree(parent, &name, &archive, &stamp.tree, &mut out)?;
            unpacked = true;
        }
    }
    if !unpacked {
        out.absent = absent;
    }
    if out.files == 0 {
        if m.manifest.manual.is_some() && !unpacked {
            out.unverified = Some(format!(
                "none of the {} file(s) it names ({}) is in this folder, so what was unpacked \
                 from them cannot be checked against their publisher's hashes (keep them \
                 there to have it checked)",
                m.files.len(),
                names(m)
            ));
            return Ok(out);
        }
        return Err(refuse(
            manifest,
            "file",
            format!(
                "names none of the files in {} (it names {}{})",
                input.display(),
                names(m),
                if m.files.iter().any(|f| f.unpack.is_some()) {
                    "; a folder unpacked from one of them is recognised by the stamp `ventral \
                     fetch` leaves beside the archive"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(out)
}

fn names(m: &Sources) -> String {
    let head: Vec<&str> = m.files.iter().take(4).map(|f| f.path.as_str()).collect();
    format!(
        "{}{}",
        head.join(", "),
        if m.files.len() > 4 { ", …" } else { "" }
    )
}

/// `path`, the manifest's `f` under `folder`: trusted by its stamp or hashed.
fn check_file(folder: &Path, f: &SourceFile, path: &Path, out: &mut InputCheck) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| FetchError::io(path, e))?;
    let stamped = read_stamp(folder, &f.path).is_some_and(|s| s.holds_for(&meta, f));
    if !stamped {
        verify_file(path, &f.hashes, f.size)?;
        out.hashed += 1;
    } else if let Some(s) = f.size
        && s != meta.len()
    {
        return Err(FetchError::Mismatch {
            path: path.to_path_buf(),
            algo: "size".into(),
            expected: s.to_string(),
            got: meta.len().to_string(),
        });
    }
    out.files += 1;
    out.bytes += meta.len();
    Ok(())
}

/// The folder `parent/name` against what the archive held under `name/`.
fn check_tree(
    parent: &Path,
    name: &str,
    archive: &Path,
    tree: &std::collections::BTreeMap<String, crate::unpack::TreeFile>,
    out: &mut InputCheck,
) -> Result<()> {
    let prefix = format!("{name}/");
    for (rel, want) in tree.iter().filter(|(k, _)| k.starts_with(&prefix)) {
        let path: PathBuf = parent.join(safe_relative(rel).unwrap_or_default());
        let changed = |message: String| FetchError::Unpacked {
            path: path.clone(),
            archive: archive.to_path_buf(),
            message,
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| changed(format!("was unpacked from it, and is gone ({e})")))?;
        if meta.len() != want.size {
            return Err(changed(format!(
                "size {}, unpacked as {} bytes",
                meta.len(),
                want.size
            )));
        }
        let got = verify_file(&path, &Hashes::default(), None)?.blake3;
        if got != want.blake3 {
            return Err(changed(format!(
                "blake3 {}, unpacked as {}: changed since",
                &got[..16],
                &want.blake3[..want.blake3.len().min(16)]
            )));
        }
        out.files += 1;
        out.bytes += want.size;
        out.hashed += 1;
    }
    Ok(())
}
