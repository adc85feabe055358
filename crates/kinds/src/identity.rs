//! Code identities derived from the build graph.
//!
//! The code identity of a workspace crate is the blake3 of
//! - every source file of the crate and of each workspace crate in its dependency closure
//!   (`Cargo.toml`, `build.rs`, everything under `src/`; tests, examples and benches do
//!   not count), by path relative to the workspace root;
//! - the name, locked version, source and checksum of every external crate in that
//!   closure (from `Cargo.lock`), with the features the workspace's manifests ask of it;
//! - the workspace's build profiles, the compiler's version and the target.
//!
//! The closure follows `[dependencies]` and `[build-dependencies]` (not dev-dependencies)
//! through the workspace's manifests, then through `Cargo.lock`, and the worker executables
//! a crate hands work to at run time: a manifest's `[package.metadata.ventral] workers =
//! ["crate", …]` names workspace crates whose executables run part of its code in another
//! process (`ventral-ingest` reads netCDF in `ventral-netcdf`), so their closures count
//! too. Nothing else is listed by hand.
//! This file is also compiled into `build.rs` (with `#[path]`), which embeds the
//! identities of every crate that implements kinds; the tests call it on scratch copies
//! of the workspace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why the identities could not be computed; names the file at fault.
#[derive(Debug)]
pub struct IdentityError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for IdentityError {}

fn err(path: &Path, message: impl Into<String>) -> IdentityError {
    IdentityError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A workspace member, as its manifest declares it.
#[derive(Clone, Debug)]
pub struct Member {
    /// The package name.
    pub name: String,
    /// Its folder, relative to the workspace root.
    pub dir: PathBuf,
    /// Workspace crates it depends on (normal and build dependencies).
    pub workspace_deps: BTreeSet<String>,
    /// Workspace crates whose executables run part of its work (`package.metadata.ventral.workers`).
    pub workers: BTreeSet<String>,
    /// External crates it depends on directly: package name → features asked for.
    pub external_deps: BTreeMap<String, BTreeSet<String>>,
}

/// One crate's identity and what went into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The crate.
    pub name: String,
    /// The blake3, hex.
    pub digest: String,
    /// The workspace crates of its closure (itself included), sorted.
    pub workspace_closure: Vec<String>,
    /// The source files hashed, relative to the workspace root, sorted.
    pub files: Vec<String>,
    /// The external crates of its closure, as `name version`, sorted.
    pub external: Vec<String>,
}

/// The workspace: its members and its lockfile.
pub struct Workspace {
    root: PathBuf,
    members: BTreeMap<String, Member>,
    /// `Cargo.lock` packages: (name, version) → (source, checksum, dependency strings).
    lock: BTreeMap<(String, String), (String, String, Vec<String>)>,
    /// The `[profile…]` tables of the root manifest, as text.
    profiles: String,
    /// The compiler and target the identities are for.
    toolchain: String,
}

fn read_toml(path: &Path) -> Result<toml::Table, IdentityError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
    text.parse::<toml::Table>()
        .map_err(|e| err(path, format!("not valid TOML: {e}")))
}

fn str_of<'a>(t: &'a toml::Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(toml::Value::as_str)
}

/// The dependency tables of a manifest that count (normal and build, including
/// target-specific ones).
fn dep_tables(manifest: &toml::Table) -> Vec<&toml::Table> {
    let mut v = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(toml::Value::as_table) {
            v.push(t);
        }
    }
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for spec in targets.values().filter_map(toml::Value::as_table) {
            for key in ["dependencies", "build-dependencies"] {
                if let Some(t) = spec.get(key).and_then(toml::Value::as_table) {
                    v.push(t);
                }
            }
        }
    }
    v
}

/// The strings of an array value (none when it is absent or not an array).
fn strings(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn features_of(spec: &toml::Value) -> BTreeSet<String> {
    let mut f: BTreeSet<String> = strings(spec.get("features")).into_iter().collect();
    if spec.get("default-features").and_then(toml::Value::as_bool) == Some(false) {
        f.insert("-default".into());
    }
    f
}

impl Workspace {
    /// Read the workspace rooted at `root` (its `Cargo.toml`, members and `Cargo.lock`).
    /// `toolchain` (the compiler's version and the target) enters every identity.
    pub fn load(root: &Path, toolchain: &str) -> Result<Workspace, IdentityError> {
        let root_manifest_path = root.join("Cargo.toml");
        let root_manifest = read_toml(&root_manifest_path)?;
        let ws = root_manifest
            .get("workspace")
            .and_then(toml::Value::as_table)
            .ok_or_else(|| err(&root_manifest_path, "no [workspace] table"))?;
        let ws_deps = ws
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        // Member folders: the `members` entries, a trailing `/*` expanded.
        let mut dirs = Vec::new();
        for m in ws
            .get("members")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
        {
            if let Some(parent) = m.strip_suffix("/*") {
                let read = std::fs::read_dir(root.join(parent))
                    .map_err(|e| err(&root.join(parent), e.to_string()))?;
                for e in read.flatten() {
                    if e.path().join("Cargo.toml").is_file() {
                        dirs.push(Path::new(parent).join(e.file_name()));
                    }
                }
            } else {
                dirs.push(PathBuf::from(m));
            }
        }
        dirs.sort();
        // First pass: package names by folder, for path dependencies.
        let mut manifests = Vec::new();
        let mut name_of_dir = BTreeMap::new();
        for d in &dirs {
            let path = root.join(d).join("Cargo.toml");
            let m = read_toml(&path)?;
            let name = m
                .get("package")
                .and_then(toml::Value::as_table)
                .and_then(|p| str_of(p, "name"))
                .ok_or_else(|| err(&path, "no [package] name"))?
                .to_string();
            name_of_dir.insert(normalise(d), name.clone());
            manifests.push((d.clone(), path, name, m));
        }
        let mut members = BTreeMap::new();
        for (dir, path, name, m) in manifests {
            let mut member = Member {
                name: name.clone(),
                dir: dir.clone(),
                workspace_deps: BTreeSet::new(),
                workers: m
                    .get("package")
                    .and_then(|p| p.get("metadata"))
                    .and_then(|p| p.get("ventral"))
                    .and_then(|v| v.get("workers"))
                    .map(|w| strings(Some(w)).into_iter().collect())
                    .unwrap_or_default(),
                external_deps: BTreeMap::new(),
            };
            for table in dep_tables(&m) {
                for (key, spec) in table {
                    // `workspace = true` inherits the root's entry (features add up).
                    let inherited =
                        spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
                    let base = if inherited {
                        ws_deps.get(key).ok_or_else(|| {
                            err(
                                &path,
                                format!("dependency `{key}` is not in [workspace.dependencies]"),
                            )
                        })?
                    } else {
                        spec
                    };
                    let path_dep = base.get("path").and_then(toml::Value::as_str).map(|p| {
                        if inherited {
                            normalise(Path::new(p))
                        } else {
                            normalise(&dir.join(p))
                        }
                    });
                    if let Some(p) = path_dep {
                        let dep = name_of_dir.get(&p).ok_or_else(|| {
                            err(
                                &path,
                                format!(
                                    "path dependency `{key}` ({}) is not a workspace member",
                                    p.display()
                                ),
                            )
                        })?;
                        member.workspace_deps.insert(dep.clone());
                        continue;
                    }
                    let package = base
                        .get("package")
                        .and_then(toml::Value::as_str)
                        .unwrap_or(key)
                        .to_string();
                    let mut features = features_of(base);
                    if inherited {
                        features.extend(features_of(spec));
                    }
                    member
                        .external_deps
                        .entry(package)
                        .or_default()
                        .extend(features);
                }
            }
            members.insert(name, member);
        }
        for m in members.values() {
            if let Some(w) = m.workers.iter().find(|w| !members.contains_key(*w)) {
                return Err(err(
                    &root.join(&m.dir).join("Cargo.toml"),
                    format!("package.metadata.ventral.workers: `{w}` is not a workspace member"),
                ));
            }
        }
        let lock_path = root.join("Cargo.lock");
        let lock_toml = read_toml(&lock_path)?;
        let mut lock = BTreeMap::new();
        for p in lock_toml
            .get("package")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
        {
            let (Some(name), Some(version)) = (str_of(p, "name"), str_of(p, "version")) else {
                return Err(err(&lock_path, "a [[package]] without name or version"));
            };
            let deps = strings(p.get("dependencies"));
            lock.insert(
                (name.to_string(), version.to_string()),
                (
                    str_of(p, "source").unwrap_or("").to_string(),
                    str_of(p, "checksum").unwrap_or("").to_string(),
                    deps,
                ),
            );
        }
        let mut profiles = String::new();
        if let Some(p) = root_manifest.get("profile") {
            profiles = p.to_string();
        }
        Ok(Workspace {
            root: root.to_path_buf(),
            members,
            lock,
            profiles,
            toolchain: toolchain.to_string(),
        })
    }

    /// The members, by package name.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// Every file whose edits change some identity (for `rerun-if-changed`).
    pub fn watched(&self) -> Vec<PathBuf> {
        let mut v = vec![self.root.join("Cargo.toml"), self.root.join("Cargo.lock")];
        for m in self.members.values() {
            let d = self.root.join(&m.dir);
            v.push(d.join("Cargo.toml"));
            if d.join("build.rs").is_file() {
                v.push(d.join("build.rs"));
            }
            v.push(d.join("src"));
        }
        v
    }

    /// The lock entry a dependency string of `Cargo.lock` (`name`, `name version` or
    /// `name version (source)`) names.
    fn lock_key(&self, dep: &str) -> Option<(String, String)> {
        let mut parts = dep.split_whitespace();
        let name = parts.next()?;
        match parts.next() {
            Some(v) => {
                Some((name.to_string(), v.to_string())).filter(|k| self.lock.contains_key(k))
            }
            None => self.lock.keys().find(|(n, _)| n == name).cloned(),
        }
    }

    /// The identity of workspace crate `name`.
    pub fn identity(&self, name: &str) -> Result<Identity, IdentityError> {
        let lock_path = self.root.join("Cargo.lock");
        if !self.members.contains_key(name) {
            return Err(err(
                &self.root.join("Cargo.toml"),
                format!("`{name}` is not a workspace member"),
            ));
        }
        // Workspace closure.
        let mut closure = BTreeSet::new();
        let mut queue = VecDeque::from([name.to_string()]);
        while let Some(c) = queue.pop_front() {
            if closure.insert(c.clone())
                && let Some(m) = self.members.get(&c)
            {
                queue.extend(m.workspace_deps.iter().cloned());
                queue.extend(m.workers.iter().cloned());
            }
        }
        // External closure: the versions Cargo.lock resolves each member's direct
        // dependencies to, then theirs.
        // Features: what any workspace manifest asks of a crate, since Cargo unifies them
        // across the build (an over-approximation: a feature asked outside the closure
        // also counts).
        let mut features: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in self.members.values() {
            for (dep, f) in &m.external_deps {
                features
                    .entry(dep.clone())
                    .or_default()
                    .extend(f.iter().cloned());
            }
        }
        let mut external = BTreeSet::new();
        let mut queue = VecDeque::new();
        for c in &closure {
            let m = &self.members[c];
            let member_deps = self
                .lock
                .iter()
                .find(|((n, _), _)| n == c)
                .map(|(_, (_, _, d))| d.clone())
                .unwrap_or_default();
            for dep in m.external_deps.keys() {
                let resolved = member_deps
                    .iter()
                    .find(|d| d.split_whitespace().next() == Some(dep.as_str()))
                    .and_then(|d| self.lock_key(d))
                    .or_else(|| self.lock_key(dep))
                    .ok_or_else(|| {
                        err(
                            &lock_path,
                            format!("`{dep}` (a dependency of `{c}`) is not locked"),
                        )
                    })?;
                queue.push_back(resolved);
            }
        }
        while let Some(k) = queue.pop_front() {
            if self.members.contains_key(&k.0) || !external.insert(k.clone()) {
                continue;
            }
            if let Some((_, _, deps)) = self.lock.get(&k) {
                queue.extend(deps.iter().filter_map(|d| self.lock_key(d)));
            }
        }
        let mut h = blake3::Hasher::new();
        h.update(b"ventral-code-identity v2\0");
        h.update(format!("toolchain {}\0profiles {}\0", self.toolchain, self.profiles).as_bytes());
        let mut files = Vec::new();
        for c in &closure {
            let m = &self.members[c];
            h.update(format!("crate {c}\0").as_bytes());
            let dir = self.root.join(&m.dir);
            let mut rel: Vec<PathBuf> = vec![m.dir.join("Cargo.toml")];
            if dir.join("build.rs").is_file() {
                rel.push(m.dir.join("build.rs"));
            }
            let mut src = Vec::new();
            walk(&dir.join("src"), &mut src).map_err(|e| err(&dir.join("src"), e.to_string()))?;
            for f in src {
                let r = f
                    .strip_prefix(&self.root)
                    .map(Path::to_path_buf)
                    .unwrap_or(f);
                rel.push(r);
            }
            rel.sort();
            for r in rel {
                let p = self.root.join(&r);
                let bytes = std::fs::read(&p).map_err(|e| err(&p, e.to_string()))?;
                let shown = r.to_string_lossy().replace('\\', "/");
                h.update(shown.as_bytes());
                h.update(b"\0");
                h.update(blake3::hash(&bytes).as_bytes());
                files.push(shown);
            }
        }
        let mut ext = Vec::new();
        for (n, v) in &external {
            let (source, checksum, _) =
                self.lock.get(&(n.clone(), v.clone())).ok_or_else(|| {
                    err(
                        &lock_path,
                        format!("`{n} {v}` is named as a dependency but not locked"),
                    )
                })?;
            let f: Vec<String> = features
                .get(n)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            h.update(format!("extern {n} {v} {source} {checksum} [{}]\0", f.join(",")).as_bytes());
            ext.push(format!("{n} {v}"));
        }
        Ok(Identity {
            name: name.to_string(),
            digest: h.finalize().to_hex().to_string(),
            workspace_closure: closure.into_iter().collect(),
            files,
            external: ext,
        })
    }
}

/// The compiler, the target and what else shapes the machine code, as a build script sees
/// them: the profile, its optimisation level and any RUSTFLAGS (`-C target-cpu=native` can
/// change results).
pub fn toolchain_from_build_env() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    format!(
        "{version} {} profile={} opt-level={} rustflags={:?}",
        var("TARGET"),
        var("PROFILE"),
        var("OPT_LEVEL"),
        var("CARGO_ENCODED_RUSTFLAGS")
    )
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Every file under `dir`, recursively (none if it does not exist).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}
