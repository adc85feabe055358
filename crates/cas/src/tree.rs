use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::digest::{Digest, hash_bytes};
use crate::error::{CasError, IoContext, Result};
use crate::hashcache::HashCache;

const TREE_HEADER: &str = "ventral-tree v1";
const MAX_DEPTH: usize = 64;

/// One file of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TreeEntry {
    /// Path relative to the tree root, `/`-separated, UTF-8.
    pub path: String,
    /// blake3 of the file's bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Whether any execute bit was set.
    pub executable: bool,
}

/// A directory as a sorted list of files. Its digest is the blake3 of its text manifest,
/// so two directories with the same files, names and modes have the same digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries sorted by path (byte order).
    pub entries: Vec<TreeEntry>,
}

impl Tree {
    /// Build a tree from entries in any order.
    pub fn new(mut entries: Vec<TreeEntry>) -> Self {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Tree { entries }
    }

    /// The text manifest: a header, then `digest size mode path` per file.
    pub fn to_manifest(&self) -> String {
        let mut s = String::with_capacity(32 + self.entries.len() * 100);
        s.push_str(TREE_HEADER);
        s.push('\n');
        for e in &self.entries {
            s.push_str(&format!(
                "{} {} {} {}\n",
                e.digest,
                e.size,
                if e.executable { 'x' } else { '-' },
                e.path
            ));
        }
        s
    }

    /// The tree's digest: blake3 of its manifest.
    pub fn digest(&self) -> Digest {
        hash_bytes(self.to_manifest().as_bytes())
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Parse a manifest. `name` is used in errors (usually the tree's digest).
    pub fn parse(name: &str, text: &str) -> Result<Tree> {
        let bad = |line: usize, message: &str| CasError::BadTree {
            digest: name.to_string(),
            line,
            message: message.to_string(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(TREE_HEADER) {
            return Err(bad(1, "missing `ventral-tree v1` header"));
        }
        let mut entries = Vec::new();
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            let mut parts = line.splitn(4, ' ');
            let digest = parts
                .next()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| bad(n, "bad digest"))?;
            let size = parts
                .next()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| bad(n, "bad size"))?;
            let executable = match parts.next() {
                Some("x") => true,
                Some("-") => false,
                _ => return Err(bad(n, "bad mode")),
            };
            let path = parts.next().ok_or_else(|| bad(n, "missing path"))?;
            check_rel_path(path).map_err(|m| bad(n, &m))?;
            entries.push(TreeEntry {
                path: path.to_string(),
                digest,
                size,
                executable,
            });
        }
        let tree = Tree { entries };
        if tree
            .entries
            .windows(2)
            .any(|w| w[0].path.as_bytes() >= w[1].path.as_bytes())
        {
            return Err(bad(0, "entries are not sorted or not unique"));
        }
        Ok(tree)
    }

    /// The part of the tree at `sub` (a file or a folder), as a digest: a file's own
    /// digest, or the digest of the sub-tree. `None` when nothing is there.
    pub fn sub_digest(&self, sub: &str) -> Option<Digest> {
        let sub = sub.trim_matches('/');
        if sub.is_empty() {
            return Some(self.digest());
        }
        if let Some(e) = self.entries.iter().find(|e| e.path == sub) {
            return Some(e.digest);
        }
        let prefix = format!("{sub}/");
        let inner: Vec<TreeEntry> = self
            .entries
            .iter()
            .filter_map(|e| {
                e.path.strip_prefix(&prefix).map(|rest| TreeEntry {
                    path: rest.to_string(),
                    ..e.clone()
                })
            })
            .collect();
        if inner.is_empty() {
            None
        } else {
            Some(Tree::new(inner).digest())
        }
    }
}

/// A relative path we are willing to store: UTF-8, `/`-separated, no `.`/`..`/empty parts,
/// no control characters.
pub(crate) fn check_rel_path(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        return Err(format!("path `{p}` is not relative"));
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(format!("path {p:?} contains a control character"));
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("path `{p}` has an empty, `.` or `..` component"));
    }
    Ok(())
}

/// List the regular files under `dir` (recursively), as (relative path, absolute path).
/// With `follow_links`, symbolic links are followed; without, a link is an error.
pub(crate) fn list_files(dir: &Path, follow_links: bool) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    walk(dir, "", follow_links, 0, &mut out)?;
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    follow: bool,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(CasError::Unstorable {
            path: dir.to_path_buf(),
            message: format!("more than {MAX_DEPTH} nested folders (a symbolic-link loop?)"),
        });
    }
    for entry in std::fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| CasError::Unstorable {
            path: path.clone(),
            message: "file name is not UTF-8".into(),
        })?;
        let relp = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        check_rel_path(&relp).map_err(|message| CasError::Unstorable {
            path: path.clone(),
            message,
        })?;
        let mut ft = entry.file_type().ctx("stat", &path)?;
        if ft.is_symlink() {
            if !follow {
                return Err(CasError::Unstorable {
                    path,
                    message: "symbolic links cannot be stored; write a regular file".into(),
                });
            }
            ft = std::fs::metadata(&path).ctx("stat", &path)?.file_type();
        }
        if ft.is_dir() {
            walk(&path, &relp, follow, depth + 1, out)?;
        } else if ft.is_file() {
            out.push((relp, path));
        } else {
            return Err(CasError::Unstorable {
                path,
                message: "not a regular file or folder".into(),
            });
        }
    }
    Ok(())
}

/// Hash a folder in the workspace (following symbolic links) as a [`Tree`], reusing cached
/// digests of unchanged files. Files are hashed in parallel; the result does not depend on
/// the order.
pub fn hash_dir(dir: &Path, cache: &HashCache) -> Result<Tree> {
    let files = list_files(dir, true)?;
    let entries = files
        .par_iter()
        .map(|(rel, abs)| {
            let meta = std::fs::metadata(abs).ctx("stat", abs)?;
            Ok(TreeEntry {
                path: rel.clone(),
                digest: cache.hash_file(abs)?,
                size: meta.len(),
                executable: meta.permissions().mode() & 0o111 != 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tree::new(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, b: &[u8]) -> TreeEntry {
        TreeEntry {
            path: p.into(),
            digest: hash_bytes(b),
            size: b.len() as u64,
            executable: false,
        }
    }

    #[test]
    fn manifest_round_trip_and_order_independence() {
        let a = Tree::new(vec![entry("b/c", b"1"), entry("a", b"2")]);
        let b = Tree::new(vec![entry("a", b"2"), entry("b/c", b"1")]);
        assert_eq!(a.digest(), b.digest());
        let parsed = Tree::parse("t", &a.to_manifest()).unwrap();
        assert_eq!(parsed, a);
    }

    #[test]
    fn sub_digest_of_file_and_folder() {
        let t = Tree::new(vec![
            entry("x/a", b"1"),
            entry("x/b", b"2"),
            entry("y", b"3"),
        ]);
        assert_eq!(t.sub_digest("y"), Some(hash_bytes(b"3")));
        let inner = Tree::new(vec![entry("a", b"1"), entry("b", b"2")]);
        assert_eq!(t.sub_digest("x"), Some(inner.digest()));
        assert_eq!(t.sub_digest("x/"), Some(inner.digest()));
        assert_eq!(t.sub_digest("nothing"), None);
        assert_eq!(t.sub_digest(""), Some(t.digest()));
    }

    #[test]
    fn parse_rejects_damage() {
        let t = Tree::new(vec![entry("a", b"1")]);
        let m = t.to_manifest();
        assert!(Tree::parse("t", &m.replace("ventral-tree", "other")).is_err());
        assert!(Tree::parse("t", &m.replace(" - a", " - ../a")).is_err());
        assert!(Tree::parse("t", &format!("{m}{}", m.lines().nth(1).unwrap())).is_err());
    }

    #[test]
    fn hash_dir_matches_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join("s/f"), b"1").unwrap();
        std::fs::write(dir.path().join("g"), b"2").unwrap();
        let t = hash_dir(dir.path(), &HashCache::in_memory()).unwrap();
        assert_eq!(t, Tree::new(vec![entry("s/f", b"1"), entry("g", b"2")]));
    }
}
