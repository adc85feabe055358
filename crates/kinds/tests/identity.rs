//! Code identities follow the build graph: every edit in a kind's closure changes it, no
//! edit outside does, and two computations over the same tree agree with the build's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ventral_kinds::identity::Workspace;

/// The target this test was built for (from the toolchain string the build embedded).
fn target() -> String {
    ventral_kinds::TOOLCHAIN
        .split_whitespace()
        .find(|w| w.matches('-').count() >= 2 && !w.contains(['=', '(', ')']))
        .expect("a target triple in the toolchain string")
        .to_string()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copy what identities read (manifests, lockfile, build scripts, `src/`) into a scratch
/// folder.
fn scratch_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = root();
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root.join(f), tmp.path().join(f)).unwrap();
    }
    let ws = Workspace::load(&root, "t").unwrap();
    for m in ws.members().values() {
        let from = root.join(&m.dir);
        let to = tmp.path().join(&m.dir);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
        if from.join("build.rs").is_file() {
            std::fs::copy(from.join("build.rs"), to.join("build.rs")).unwrap();
        }
        copy_dir(&from.join("src"), &to.join("src"));
    }
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// (kind, crate) of every registered kind.
fn kinds() -> Vec<(String, String)> {
    ventral_kinds::registry()
        .unwrap()
        .iter()
        .map(|(k, _)| (k.name().to_string(), k.code_crate().to_string()))
        .collect()
}

fn identities(dir: &Path, kinds: &[(String, String)]) -> BTreeMap<String, (String, Vec<String>)> {
    let ws = Workspace::load(dir, "t").unwrap();
    kinds
        .iter()
        .map(|(k, c)| {
            let id = ws.identity(c).unwrap();
            (k.clone(), (id.digest, id.workspace_closure))
        })
        .collect()
}

/// A source file of the member in `dir` (its lib.rs or main.rs).
fn a_source(dir: &Path) -> PathBuf {
    for f in ["src/lib.rs", "src/main.rs"] {
        if dir.join(f).is_file() {
            return dir.join(f);
        }
    }
    panic!("no lib.rs or main.rs in {}", dir.display());
}

#[test]
fn every_edit_in_a_kinds_closure_changes_its_identity_and_no_edit_outside_does() {
    let tmp = scratch_copy();
    let kinds = kinds();
    assert!(kinds.len() >= 17, "{kinds:?}");
    let before = identities(tmp.path(), &kinds);
    let ws = Workspace::load(tmp.path(), "t").unwrap();
    for (name, member) in ws.members() {
        let dir = tmp.path().join(&member.dir);
        // Each of: a source file, the manifest, a new module file, the build script.
        let src = a_source(&dir);
        let mut edits: Vec<PathBuf> = vec![
            src.clone(),
            dir.join("Cargo.toml"),
            dir.join("src/new_module.rs"),
        ];
        if dir.join("build.rs").is_file() {
            edits.push(dir.join("build.rs"));
        }
        for file in edits {
            let old = std::fs::read(&file).ok();
            let mut new = old.clone().unwrap_or_default();
            new.extend_from_slice(b"\n# an edit\n");
            std::fs::write(&file, &new).unwrap();
            let after = identities(tmp.path(), &kinds);
            for (kind, (digest, closure)) in &after {
                let in_closure = closure.contains(name);
                assert_eq!(
                    digest != &before[kind].0,
                    in_closure,
                    "editing {} ({name}) {} the identity of kind `{kind}` (closure: {closure:?})",
                    file.display(),
                    if in_closure {
                        "must change"
                    } else {
                        "must not change"
                    }
                );
            }
            match old {
                Some(b) => std::fs::write(&file, b).unwrap(),
                None => std::fs::remove_file(&file).unwrap(),
            }
        }
        // Tests, examples and benches are not part of any identity.
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(dir.join("tests/extra.rs"), "#[test] fn t() {}\n").unwrap();
        std::fs::create_dir_all(dir.join("examples")).unwrap();
        std::fs::write(dir.join("examples/extra.rs"), "fn main() {}\n").unwrap();
        assert_eq!(
            identities(tmp.path(), &kinds),
            before,
            "tests/examples of {name}"
        );
    }
}

#[test]
fn kinds_closures_stop_at_the_seam_and_follow_the_code() {
    let ids = identities(&root(), &kinds());
    for (kind, (_, closure)) in &ids {
        // The engine, the CLI and the registry are never part of a kind's identity.
        for outside in [
            "ventral",
            "ventral-dag",
            "ventral-kinds",
            "ventral-cas",
            "ventral-sql",
        ] {
            assert!(
                !closure.contains(&outside.to_string()),
                "kind {kind}: {closure:?}"
            );
        }
        assert!(
            closure.contains(&"ventral-stage".to_string()),
            "kind {kind}: {closure:?}"
        );
    }
    // What each kind executes is in its closure.
    assert!(ids["neural"].1.contains(&"ventral-metrics".to_string()));
    assert!(ids["neural"].1.contains(&"ventral-store".to_string()));
    assert!(ids["extract"].1.contains(&"ventral-store".to_string()));
    assert!(ids["extract"].1.contains(&"ventral-model-spec".to_string()));
    assert!(ids["synth"].1.contains(&"ventral-ingest".to_string()));
    // netCDF is read and written in the `ventral-netcdf` worker: its code is in the
    // closure of every kind that reads or writes netCDF.
    assert!(ids["brainio"].1.contains(&"ventral-netcdf".to_string()));
    assert!(ids["synth"].1.contains(&"ventral-netcdf".to_string()));
    assert_eq!(ids["cmd"].1, vec!["ventral-stage".to_string()]);
}

/// A worker named in `package.metadata.ventral.workers` must be a workspace crate: a typo
/// would silently leave its code out of every identity.
#[test]
fn a_declared_worker_that_is_not_a_workspace_crate_is_an_error_naming_the_manifest() {
    let tmp = scratch_copy();
    let manifest = tmp.path().join("crates/ingest/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("workers = [\"ventral-netcdf\"]"), "{text}");
    std::fs::write(
        &manifest,
        text.replace(
            "workers = [\"ventral-netcdf\"]",
            "workers = [\"ventral-netcfd\"]",
        ),
    )
    .unwrap();
    let e = match Workspace::load(tmp.path(), "t") {
        Ok(_) => panic!("a misspelt worker was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("crates/ingest/Cargo.toml") && e.contains("ventral-netcfd"),
        "{e}"
    );
}

#[test]
fn a_locked_version_change_reaches_exactly_the_kinds_that_use_that_crate() {
    let tmp = scratch_copy();
    let kinds = kinds();
    let before = identities(tmp.path(), &kinds);
    let lock = tmp.path().join("Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    // plotters is used by the report kind only.
    let edited = text.replacen(
        "name = \"plotters\"\nversion = \"",
        "name = \"plotters\"\nversion = \"9",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&lock, edited).unwrap();
    let ws = Workspace::load(tmp.path(), "t").unwrap();
    let ids: BTreeMap<_, _> = kinds
        .iter()
        .map(|(k, c)| (k.clone(), ws.identity(c).map(|i| i.digest)))
        .collect();
    for (kind, id) in &ids {
        match kind.as_str() {
            "report" => assert_ne!(id.as_ref().ok(), Some(&before[kind].0), "report"),
            _ => assert_eq!(id.as_ref().ok(), Some(&before[kind].0), "{kind}"),
        }
    }
}

#[test]
fn two_computations_over_this_tree_agree_with_each_other_and_with_the_build() {
    let a = Workspace::load(&root(), ventral_kinds::TOOLCHAIN).unwrap();
    let b = Workspace::load(&root(), ventral_kinds::TOOLCHAIN).unwrap();
    for (_, c) in kinds() {
        let (x, y) = (a.identity(&c).unwrap(), b.identity(&c).unwrap());
        assert_eq!(x, y);
        assert_eq!(
            Some(x.digest.as_str()),
            ventral_kinds::code_identity(&c),
            "{c}"
        );
    }
    // Another toolchain is another identity.
    let other = Workspace::load(&root(), "rustc 0.0.0 other-target").unwrap();
    assert_ne!(
        other.identity("ventral-stage").unwrap().digest,
        a.identity("ventral-stage").unwrap().digest
    );
}

/// The closures agree with Cargo's own resolution (`cargo metadata`): the same workspace
/// crates, and every external crate Cargo resolves for a kind's crate is hashed.
#[test]
fn closures_agree_with_cargo_metadata() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            // This target's packages only: the others are neither built nor downloaded.
            "--filter-platform",
            &target(),
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo runs");
    let mut out = Vec::new();
    let reader = {
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let _ = stdout.read_to_end(&mut out);
            out
        })
    };
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() > 120 {
            let _ = child.kill();
            panic!("cargo metadata took over 2 minutes");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "cargo metadata failed: {err}");
    let meta: serde_json::Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
    let names: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let members: std::collections::BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| names[id.as_str().unwrap()].clone())
        .collect();
    // A crate's declared workers (`package.metadata.ventral.workers`) are part of its
    // closure: Cargo does not see them, so they are added here as edges.
    let workers: BTreeMap<String, Vec<String>> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ids = p["metadata"]["ventral"]["workers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| {
                    let w = w.as_str().unwrap();
                    names.iter().find(|(_, n)| *n == w).unwrap().0.clone()
                })
                .collect();
            (p["id"].as_str().unwrap().to_string(), ids)
        })
        .collect();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_string();
        let normal_or_build: Vec<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build")
            })
            .map(|d| d["pkg"].as_str().unwrap().to_string())
            .chain(workers.get(&id).cloned().unwrap_or_default())
            .collect();
        deps.insert(id, normal_or_build);
    }
    let ws = Workspace::load(&root(), "t").unwrap();
    for (_, krate) in kinds() {
        let start = names.iter().find(|(_, n)| **n == krate).unwrap().0.clone();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone()) {
                stack.extend(deps.get(&id).cloned().unwrap_or_default());
            }
        }
        let (ws_closure, external): (Vec<String>, Vec<String>) = seen
            .iter()
            .map(|id| names[id].clone())
            .partition(|n| members.contains(n));
        let id = ws.identity(&krate).unwrap();
        let mut ws_closure = ws_closure;
        ws_closure.sort();
        ws_closure.dedup();
        assert_eq!(id.workspace_closure, ws_closure, "{krate}");
        let ours: std::collections::BTreeSet<&str> = id
            .external
            .iter()
            .map(|e| e.split(' ').next().unwrap())
            .collect();
        for e in &external {
            assert!(
                ours.contains(e.as_str()),
                "{krate}: {e} is in cargo's closure, not hashed"
            );
        }
    }
}
