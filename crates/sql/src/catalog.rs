//! What the session is built from: store roots and lockfile rows, gathered from a
//! workspace by [`Catalog::of_workspace`] (the CLI's `ventral sql` and the Python package's
//! `ventral.sql` both call it, so they see the same tables).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ventral_dag::{Lockfile, Workspace};
use ventral_remote::{ReadCounters, Remote};

use crate::error::{Result, SqlError};

/// A folder that holds assemblies or score tables (usually a stage's output).
#[derive(Clone, Debug)]
pub struct StoreRoot {
    /// The folder.
    pub path: PathBuf,
    /// The pipeline whose lockfile names it, if any.
    pub pipeline: Option<String>,
    /// The stage that produced it, if any.
    pub stage: Option<String>,
    /// The stage key, if any.
    pub key: Option<String>,
    /// The output digest (a tree), if any.
    pub digest: Option<String>,
    /// The blake3 of every file of the tree, by its path inside the folder, when the folder
    /// is a stage output: what the session checks a chunk against before decoding it.
    pub files: Option<Arc<BTreeMap<String, ventral_cas::Digest>>>,
    /// Where the files are read from when they are not the folder `path` on disk (a stage
    /// output read where it lies in a remote; `path` then only names it). Such a source
    /// checks what it hands out itself.
    pub source: Option<Arc<dyn ventral_store::Source>>,
}

impl StoreRoot {
    /// A folder on disk outside any pipeline.
    pub fn folder(path: PathBuf) -> StoreRoot {
        StoreRoot {
            path,
            pipeline: None,
            stage: None,
            key: None,
            digest: None,
            files: None,
            source: None,
        }
    }

    /// Where its files are read from.
    pub fn source(&self) -> Arc<dyn ventral_store::Source> {
        self.source
            .clone()
            .unwrap_or_else(|| Arc::new(ventral_store::LocalDir::new(&self.path)))
    }
}

/// One stage of a lockfile, for the `runs` table.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    /// Pipeline name.
    pub pipeline: String,
    /// Profile.
    pub profile: String,
    /// Stage name.
    pub stage: String,
    /// Kind.
    pub kind: String,
    /// Stage key.
    pub key: String,
    /// Output digest.
    pub output: String,
    /// Code identity of the kind.
    pub code: String,
    /// Runtime, if any.
    pub runtime: Option<String>,
    /// Params as canonical JSON.
    pub params: String,
    /// Seconds the run took, from its run record.
    pub seconds: Option<f64>,
    /// When it finished (seconds since the epoch), from its run record.
    pub finished_unix: Option<i64>,
    /// Host it ran on.
    pub host: Option<String>,
}

/// Everything a session is built from.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Folders to search for stores.
    pub roots: Vec<StoreRoot>,
    /// Lockfile rows.
    pub runs: Vec<RunRow>,
}

impl Catalog {
    /// Every stage output named by a lockfile in the workspace's `lockfiles/` folder, plus
    /// the `extra` folders (stores written outside a pipeline, e.g. by `ventral ingest`).
    pub fn of_workspace(ws: &Workspace, extra: &[PathBuf]) -> Result<Catalog> {
        Catalog::of_workspace_with(ws, extra, None)
    }

    /// [`Catalog::of_workspace`], and the outputs that are not in the local store read where
    /// they lie in `remote` (its run record of the stage key, then the output's manifest;
    /// each file fetched only when a query reads it). Reads from the remote are counted in
    /// `remote`'s [`ReadCounters`].
    pub fn of_workspace_with(
        ws: &Workspace,
        extra: &[PathBuf],
        remote: Option<(&Arc<Remote>, Arc<ReadCounters>)>,
    ) -> Result<Catalog> {
        let mut cat = Catalog::default();
        let mut elsewhere = 0usize;
        for f in Lockfile::list(&ws.lockfiles) {
            let lf = Lockfile::load(&f, "", "").map_err(|e| SqlError::Catalog {
                path: f.display().to_string(),
                message: e.to_string(),
            })?;
            for (stage, e) in &lf.stages {
                let out = ws.store.out_path(&e.output);
                let mut rec = ws.store.get_run(&e.key).ok().flatten();
                if !out.is_dir()
                    && let Some((remote, counters)) = &remote
                {
                    let remote_err = |err: ventral_remote::RemoteError| SqlError::Catalog {
                        path: f.display().to_string(),
                        message: format!("stage `{stage}`: {err}"),
                    };
                    match remote.get_record(&e.key).map_err(remote_err)? {
                        Some(r) if r.output == e.output => {
                            let tree = remote
                                .tree(&e.output, counters.clone())
                                .map_err(remote_err)?;
                            cat.roots.push(StoreRoot {
                                path: ventral_store::Source::locate(&tree, ""),
                                pipeline: Some(lf.pipeline.clone()),
                                stage: Some(stage.clone()),
                                key: Some(e.key.to_string()),
                                digest: Some(e.output.to_string()),
                                files: None,
                                source: Some(Arc::new(tree)),
                            });
                            rec = Some(r);
                        }
                        // A record of another output: a run whose result differs from
                        // the lockfile's (a non-deterministic stage); not this lockfile's.
                        Some(_) | None => elsewhere += 1,
                    }
                }
                cat.runs.push(RunRow {
                    pipeline: lf.pipeline.clone(),
                    profile: lf.profile.clone(),
                    stage: stage.clone(),
                    kind: e.kind.clone(),
                    key: e.key.to_string(),
                    output: e.output.to_string(),
                    code: e.code.clone(),
                    runtime: e.runtime.clone(),
                    params: serde_json::Value::Object(e.params.clone()).to_string(),
                    seconds: rec.as_ref().map(|r| r.duration_s),
                    finished_unix: rec.as_ref().map(|r| r.finished_unix as i64),
                    host: rec.as_ref().map(|r| r.host.clone()),
                });
                if out.is_dir() {
                    // The cheap check `run` makes of its inputs (every file present, its
                    // size and untouched object time): a store changed after it was written
                    // is named here instead of being read as numbers.
                    let damaged = |path: PathBuf, problem: String| SqlError::Damaged {
                        path: path.display().to_string(),
                        problem: format!(
                            "{problem} (output of stage `{stage}` in {})",
                            f.display()
                        ),
                    };
                    let tree = ws
                        .store
                        .read_tree(&e.output)
                        .map_err(|err| damaged(ws.store.object_path(&e.output), err.to_string()))?;
                    if let Some(d) = ws.store.check_files(&e.output, &tree).into_iter().next() {
                        return Err(damaged(d.path, d.problem));
                    }
                    let files = tree
                        .entries
                        .into_iter()
                        .map(|t| (t.path, t.digest))
                        .collect();
                    cat.roots.push(StoreRoot {
                        path: out,
                        pipeline: Some(lf.pipeline.clone()),
                        stage: Some(stage.clone()),
                        key: Some(e.key.to_string()),
                        digest: Some(e.output.to_string()),
                        files: Some(Arc::new(files)),
                        source: None,
                    });
                }
            }
        }
        if let Some((remote, _)) = remote
            && elsewhere > 0
        {
            tracing::warn!(
                "{elsewhere} stage output(s) the lockfiles name are neither in the local store \
                 nor in remote `{}`: their tables are left out",
                remote.name()
            );
        }
        for p in extra {
            cat.roots.push(StoreRoot::folder(canonical(p)?));
        }
        Ok(cat)
    }
}

fn canonical(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| SqlError::Catalog {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}
