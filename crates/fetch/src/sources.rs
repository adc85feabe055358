//! Source manifests: `manifests/<name>.toml`, one per source the paper's pipelines read.
//!
//! ```toml
//! [manifest]
//! format = "ventral-sources v1"
//! name = "cifar100"
//! description = "CIFAR-100, binary version"
//! to = "."                       # folder under the fetch root (`data/real`)
//! source = "where the facts below come from"
//!
//! [[file]]
//! path = "cifar-100-binary.tar.gz"
//! url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
//! md5 = "03b5dce01913d631647c71ecec9e9cb8"
//! unpack = "tar.gz"
//! ```
//!
//! A file carries the hashes its publisher gives (`sha1`, `md5`, `sha256`, or the
//! `sha256_prefix` torch hub puts in file names), optionally `size` and our `blake3` once a
//! file has been seen; every hash given must match. A file without `url` cannot be
//! downloaded (ILSVRC2012): the manifest's `manual` text tells the user where to place it,
//! and it is verified when present. `[file.brainio]` makes the file a row of the BrainIO
//! catalog (`lookup.csv`) written beside the files; `[[unpublished]]` names what the
//! pipelines read that was never published, and what to supply instead.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{FetchError, Result};

/// The format tag.
pub const SOURCES_FORMAT: &str = "ventral-sources v1";

/// The `[manifest]` table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`SOURCES_FORMAT`].
    pub format: String,
    /// The source's name (`ventral fetch NAME`).
    pub name: String,
    /// One line on what it is.
    pub description: String,
    /// The folder, relative to the fetch root, the files go to.
    #[serde(default = "dot")]
    pub to: String,
    /// Where the facts in this file come from.
    pub source: String,
    /// For files without a URL: where to get them and where to put them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
}

fn dot() -> String {
    ".".into()
}

/// The hashes a file is checked against; each one given must match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hashes {
    /// SHA-1, hex (BrainIO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// MD5, hex (ILSVRC2012, CIFAR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// SHA-256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The leading hex digits of the SHA-256 (torch hub's `<name>-<prefix>.pth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_prefix: Option<String>,
    /// blake3, hex (ours, once seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

/// A file's row in the BrainIO catalog.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrainioRow {
    /// The identifiers the pipelines read it under (more than one where a published file
    /// stands for one that was never published under the pipelines' name).
    pub identifiers: Vec<String>,
    /// The identifier Brain-Score publishes it under today.
    pub published_identifier: String,
    /// `stimulus_set` or `assembly`.
    pub lookup_type: String,
    /// The BrainIO class.
    pub class: String,
    /// An assembly's stimulus set (as the pipelines name it).
    #[serde(default)]
    pub stimulus_set_identifier: Option<String>,
}

/// One file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// Where it goes, relative to the manifest's `to`, `/`-separated.
    pub path: String,
    /// Where it is downloaded from; none: placed by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its hashes.
    #[serde(flatten)]
    pub hashes: Hashes,
    /// `tar.gz` or `tar`: unpacked into the manifest's folder once verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpack: Option<String>,
    /// Where this file's facts come from, when not the manifest's `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its BrainIO catalog row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brainio: Option<BrainioRow>,
}

/// Something the pipelines read that was never published.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Unpublished {
    /// The identifier the pipelines read.
    pub identifier: String,
    /// What exists instead, and what to do.
    pub note: String,
}

/// A source manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// The header.
    pub manifest: Header,
    /// The files.
    #[serde(default, rename = "file")]
    pub files: Vec<SourceFile>,
    /// What was never published.
    #[serde(default)]
    pub unpublished: Vec<Unpublished>,
}

fn hex(s: &str, len: Option<usize>) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit()) && len.is_none_or(|l| s.len() == l) && !s.is_empty()
}

impl Sources {
    /// Parse and check a manifest's text; errors name `path` and the field.
    pub fn parse(path: &Path, text: &str) -> Result<Sources> {
        let s: Sources = toml::from_str(text).map_err(|e| FetchError::Manifest {
            path: path.to_path_buf(),
            field: e
                .span()
                .map(|r| format!("line {}", text[..r.start].lines().count().max(1)))
                .unwrap_or_else(|| "document".into()),
            message: e.message().to_string(),
        })?;
        let bad = |field: String, message: String| FetchError::Manifest {
            path: path.to_path_buf(),
            field,
            message,
        };
        if s.manifest.format != SOURCES_FORMAT {
            return Err(bad(
                "manifest.format".into(),
                format!("`{}` (expected `{SOURCES_FORMAT}`)", s.manifest.format),
            ));
        }
        if safe_relative(&s.manifest.to).is_none() {
            return Err(bad(
                "manifest.to".into(),
                format!("`{}` leaves the fetch root", s.manifest.to),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in s.files.iter().enumerate() {
            let at = |k: &str| format!("file[{i}] ({}).{k}", f.path);
            if safe_relative(&f.path).is_none() || f.path.is_empty() || f.path == "." {
                return Err(bad(
                    format!("file[{i}].path"),
                    format!("`{}` is not a relative path inside the folder", f.path),
                ));
            }
            if !seen.insert(f.path.clone()) {
                return Err(bad(at("path"), "listed twice".into()));
            }
            let h = &f.hashes;
            for (k, v, len) in [
                ("sha1", &h.sha1, Some(40)),
                ("md5", &h.md5, Some(32)),
                ("sha256", &h.sha256, Some(64)),
                ("sha256_prefix", &h.sha256_prefix, None),
                ("blake3", &h.blake3, Some(64)),
            ] {
                if let Some(v) = v
                    && !hex(v, len)
                {
                    return Err(bad(at(k), format!("`{v}` is not a hex digest")));
                }
            }
            if h == &Hashes::default() {
                return Err(bad(
                    at("sha1"),
                    "no hash: a file must carry at least one of sha1, md5, sha256, \
                     sha256_prefix, blake3"
                        .into(),
                ));
            }
            if let Some(u) = &f.unpack
                && u != "tar.gz"
                && u != "tar"
            {
                return Err(bad(at("unpack"), format!("`{u}` (expected tar.gz or tar)")));
            }
            if let Some(u) = &f.url
                && !(u.starts_with("https://") || u.starts_with("http://"))
            {
                return Err(bad(at("url"), format!("`{u}` is not an http(s) URL")));
            }
            if f.url.is_none() && s.manifest.manual.is_none() {
                return Err(bad(
                    at("url"),
                    "no URL, and the manifest has no `manual` text telling where to get it".into(),
                ));
            }
            if let Some(b) = &f.brainio
                && b.lookup_type != "assembly"
                && b.lookup_type != "stimulus_set"
            {
                return Err(bad(
                    at("brainio.lookup_type"),
                    format!("`{}` (expected assembly or stimulus_set)", b.lookup_type),
                ));
            }
        }
        Ok(s)
    }

    /// Read a manifest file.
    pub fn read(path: &Path) -> Result<Sources> {
        let text = std::fs::read_to_string(path).map_err(|e| FetchError::io(path, e))?;
        Sources::parse(path, &text)
    }

    /// Whether `text` is a source manifest (rather than a file-tree manifest).
    pub fn is_sources(text: &str) -> bool {
        text.contains(SOURCES_FORMAT)
    }

    /// The folder the files go to under `root`.
    pub fn folder(&self, root: &Path) -> PathBuf {
        match safe_relative(&self.manifest.to) {
            Some(rel) if !rel.as_os_str().is_empty() => root.join(rel),
            _ => root.to_path_buf(),
        }
    }
}

/// `p` as a relative path without `..`, absolute parts or empty components.
pub fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(x) => out.push(x),
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// What a file's hashes came to.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Checked {
    /// Bytes.
    pub size: u64,
    /// blake3, hex.
    pub blake3: String,
}

/// Hash `path` once with every algorithm `want` names and compare; the first mismatch is an
/// error naming the file, the algorithm, the expected and the actual value.
pub fn verify_file(path: &Path, want: &Hashes, size: Option<u64>) -> Result<Checked> {
    use md5::Digest as _;
    let mut f = std::fs::File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut sha1 = want.sha1.as_ref().map(|_| sha1::Sha1::default());
    let mut md5 = want.md5.as_ref().map(|_| md5::Md5::new());
    let mut sha256 =
        (want.sha256.is_some() || want.sha256_prefix.is_some()).then(sha2::Sha256::new);
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        n_total += n as u64;
        if let Some(h) = sha1.as_mut() {
            sha1::Digest::update(h, chunk);
        }
        if let Some(h) = md5.as_mut() {
            h.update(chunk);
        }
        if let Some(h) = sha256.as_mut() {
            h.update(chunk);
        }
        b3.update(chunk);
    }
    let mismatch = |algo: &str, expected: &str, got: String| FetchError::Mismatch {
        path: path.to_path_buf(),
        algo: algo.to_string(),
        expected: expected.to_string(),
        got,
    };
    if let Some(s) = size
        && s != n_total
    {
        return Err(mismatch("size", &s.to_string(), n_total.to_string()));
    }
    let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if let (Some(h), Some(w)) = (sha1, &want.sha1) {
        let got = hexs(&sha1::Digest::finalize(h));
        if !got.eq_ignore_ascii_case(w) {
            return Err(mismatch("sha1", w, got));
        }
    }
    if let (Some(h), Some(w)) = (md5, &want.md5) {
        let got = hexs(&h.finalize());
        if !got.eq_ignore_ascii_case(w) {
            return Err(mismatch("md5", w, got));
        }
    }
    if let Some(h) = sha256 {
        let got = hexs(&h.finalize());
        if let Some(w) = &want.sha256
            && !got.eq_ignore_ascii_case(w)
        {
            return Err(mismatch("sha256", w, got));
        }
        if let Some(w) = &want.sha256_prefix
            && !got.to_lowercase().starts_with(&w.to_lowercase())
        {
            return Err(mismatch("sha256_prefix", w, got));
        }
    }
    let blake3 = b3.finalize().to_hex().to_string();
    if let Some(w) = &want.blake3
        && !blake3.eq_ignore_ascii_case(w)
    {
        return Err(mismatch("blake3", w, blake3));
    }
    Ok(Checked {
        size: n_total,
        blake3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[manifest]
format = "ventral-sources v1"
name = "t"
description = "a test"
source = "here"

[[file]]
path = "a.bin"
url = "http://127.0.0.1/a.bin"
sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d"
md5 = "900150983cd24fb0d6963f7d28e17f72"
sha256_prefix = "ba7816bf"
"#;

    #[test]
    fn parses_and_verifies_every_hash_given() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sources::parse(Path::new("t.toml"), GOOD).unwrap();
        let f = &s.files[0];
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"abc").unwrap();
        let c = verify_file(&p, &f.hashes, Some(3)).unwrap();
        assert_eq!(c.size, 3);
        std::fs::write(&p, b"abd").unwrap();
        let e = verify_file(&p, &f.hashes, None).unwrap_err().to_string();
        assert!(e.contains("a.bin") && e.contains("sha1"), "{e}");
        assert!(
            e.contains("a9993e364706816aba3e25717850c26c9cd0d89d"),
            "{e}"
        );
        let e = verify_file(&p, &Hashes::default(), Some(4)).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let p = Path::new("m.toml");
        for (edit, want) in [
            (GOOD.replace("ventral-sources v1", "v0"), "manifest.format"),
            (
                GOOD.replace("a.bin\"\nurl", "../a.bin\"\nurl"),
                "file[0].path",
            ),
            (GOOD.replace("md5 = \"9001", "md5 = \"z001"), "md5"),
            (GOOD.replace("http://127", "ftp://127"), "url"),
            (GOOD.replace("sha256_prefix", "sha257"), "line"),
            (
                GOOD.replace("url = \"http://127.0.0.1/a.bin\"\n", ""),
                "no URL",
            ),
        ] {
            let e = Sources::parse(p, &edit).unwrap_err().to_string();
            assert!(e.contains("m.toml") && e.contains(want), "{want}: {e}");
        }
    }
}
