//! `ventral gc`: remove outputs no lockfile refers to.

use std::process::ExitCode;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ventral_cas::GcReport;
use ventral_dag::Workspace;

use super::{Ctx, Global, LockArgs, Output, emit};

/// `ventral gc`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only count what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(serde::Serialize)]
struct Collected {
    #[serde(flatten)]
    report: GcReport,
    /// The workspaces sharing the store whose lockfiles were kept.
    workspaces: Vec<PathBuf>,
    /// Registered workspaces that no longer exist (their registration is dropped).
    forgotten: Vec<PathBuf>,
    #[serde(skip)]
    dry_run: bool,
}

impl Output for Collected {
    fn text(&self) -> String {
        let r = &self.report;
        let mut lines: Vec<String> = self
            .forgotten
            .iter()
            .map(|w| format!("forgot the workspace {} (it no longer exists)", w.display()))
            .collect();
        lines.push(format!(
            "{}{} trees kept (named by the lockfiles of {} workspace{}), {} trees and {} objects ({:.1} MB) removed, {} run records removed",
            if self.dry_run { "dry run: " } else { "" },
            r.trees_kept,
            self.workspaces.len(),
            if self.workspaces.len() == 1 { "" } else { "s" },
            r.trees_removed,
            r.objects_removed,
            r.bytes_freed as f64 / 1e6,
            r.runs_removed
        ));
        lines.join("\n")
    }
}

/// Run `ventral gc`.
///
/// A store may be shared by several workspaces (each registers itself in it when it runs):
/// what any of their lockfiles names is kept, each workspace's run lock is taken so that no
/// run is between storing a result and recording it, and gc refuses while any driver holds
/// a lease on a stage key (a stage being computed, here or on a cluster node).
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let ctx = Ctx::open(g)?;
    let store = &ctx.ws.store;
    store.ensure()?;
    let _lock = ventral_cas::WorkspaceLock::acquire(store.root(), "ventral gc", a.lock.timeout())?;
    let mut roots = Workspace::registered(store);
    if !roots.contains(&ctx.ws.root) {
        roots.push(ctx.ws.root.clone());
    }
    let mut keep = BTreeSet::new();
    let mut locks = Vec::new();
    let (mut workspaces, mut forgotten) = (Vec::new(), Vec::new());
    for root in roots {
        if !root.exists() {
            forgotten.push(root);
            continue;
        }
        let ws = Workspace {
            lockfiles: root.join("lockfiles"),
            store: store.clone(),
            root: root.clone(),
        };
        locks.push(
            ws.lock("ventral gc", a.lock.timeout())
                .with_context(|| format!("waiting for runs in {}", root.display()))?,
        );
        keep.extend(ws.referenced_outputs().with_context(|| {
            format!(
                "reading the lockfiles of {} (a workspace sharing this store)",
                root.display()
            )
        })?);
        workspaces.push(root);
    }
    let live = ventral_cas::live_leases(store.root());
    if !live.is_empty() {
        bail!(
            "{} stage key{} being computed ({}{}): nothing was removed; run gc when they finish",
            live.len(),
            if live.len() == 1 { " is" } else { "s are" },
            live[0],
            if live.len() > 1 { ", …" } else { "" }
        );
    }
    let report = store.gc(&keep, a.dry_run)?;
    if !a.dry_run {
        for root in &forgotten {
            let ws = Workspace {
                lockfiles: root.join("lockfiles"),
                store: store.clone(),
                root: root.clone(),
            };
            let _ = std::fs::remove_dir_all(ws.registration_dir());
        }
    }
    emit(
        g,
        &Collected {
            report,
            workspaces,
            forgotten,
            dry_run: a.dry_run,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
