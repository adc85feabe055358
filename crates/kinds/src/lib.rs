//! `ventral-kinds`: every built-in stage kind, registered with its code identity.
//!
//! A kind's code identity is derived from the build graph ([`identity`]): the sources of
//! the workspace crate that implements it and of that crate's dependency closure, plus the
//! locked versions and features of its external crates. `build.rs` computes it for every
//! workspace crate; [`registry`] gives each kind the identity of the crate its
//! [`StageKind::code_crate`] names. Every front end — the `ventral` binary, the
//! `ventral-torch` model worker, the Python package — gets its registry here, so they all
//! compute the same keys.
//!
//! The model kinds are registered as stand-ins ([`worker::ModelKind`]) declared by
//! `ventral-model-spec` that run each job in the `ventral-torch` worker process, so nothing
//! that links this crate loads libtorch.
//!
//! **Architecture invariant:** no crate that links libtorch is a dependency of this one;
//! no list of files or crates is kept by hand.

pub mod identity;
pub mod worker;

use std::sync::Arc;

use ventral_stage::{Registry, StageKind};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/identities.rs"));
}

pub use generated::TOOLCHAIN;

/// A kind's crate has no identity in this build (a crate outside the workspace).
#[derive(Debug, thiserror::Error)]
#[error("kind `{kind}` is implemented in `{krate}`, which is not a workspace crate of this build")]
pub struct UnknownCrate {
    /// The kind.
    pub kind: String,
    /// The crate it names.
    pub krate: String,
}

/// The code identity of workspace crate `krate` in this build.
pub fn code_identity(krate: &str) -> Option<&'static str> {
    generated::IDENTITIES
        .iter()
        .find(|(c, ..)| *c == krate)
        .map(|(_, id, ..)| *id)
}

/// The workspace crates whose sources make up `krate`'s identity, and how many external
/// crates it locks.
pub fn closure(krate: &str) -> (&'static [&'static str], usize) {
    generated::IDENTITIES
        .iter()
        .find(|(c, ..)| *c == krate)
        .map_or((&[][..], 0), |(_, _, w, e)| (*w, *e))
}

/// Register `kind` with the identity of the crate it names.
pub fn register(r: &mut Registry, kind: Arc<dyn StageKind>) -> Result<(), UnknownCrate> {
    let krate = kind.code_crate();
    let id = code_identity(krate).ok_or_else(|| UnknownCrate {
        kind: kind.name().to_string(),
        krate: krate.to_string(),
    })?;
    r.register(kind, id);
    Ok(())
}

/// Every built-in kind of this build.
pub fn registry() -> Result<Registry, UnknownCrate> {
    use ventral_benchmarks::kinds::{
        BehaviourKind, CommitKind, CompositeKind, NeuralKind, OstKind, TransferKind,
    };
    use ventral_ingest::kinds::{BrainioKind, CifarKind, CocoKind, ImagenetKind};
    let mut r = Registry::new();
    let kinds: Vec<Arc<dyn StageKind>> = vec![
        Arc::new(ventral_stage::cmd::CmdKind),
        Arc::new(BrainioKind),
        Arc::new(ImagenetKind),
        Arc::new(CocoKind),
        Arc::new(CifarKind),
        Arc::new(ventral_synth::kind::SynthKind),
        Arc::new(NeuralKind),
        Arc::new(CommitKind),
        Arc::new(BehaviourKind),
        Arc::new(OstKind),
        Arc::new(TransferKind),
        Arc::new(CompositeKind),
        Arc::new(ventral_report::ReportKind),
    ];
    for k in kinds {
        register(&mut r, k)?;
    }
    for decl in ventral_model_spec::KINDS {
        register(&mut r, Arc::new(worker::ModelKind::new(decl)))?;
    }
    Ok(r)
}
