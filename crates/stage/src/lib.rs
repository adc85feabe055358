//! `ventral-stage`: the seam between the engine and the code that does the work.
//!
//! A stage kind is a pure function from (params, input paths) to an output folder
//! ([`StageKind`]); it sees the world through a [`StageContext`]. The engine
//! (`ventral-dag`) and every crate that implements kinds depend on this crate, and on
//! nothing of each other.
//!
//! A kind's code identity — the part of every stage key that says which code computed it —
//! is derived from the build graph: the sources of the workspace crate that implements the
//! kind ([`StageKind::code_crate`]) and of its dependency closure, plus the locked versions
//! of its external crates (computed by `ventral-kinds` at build time). This crate is in
//! every kind's closure, so keep it small: an edit here re-runs every stage.
//!
//! **Architecture invariant:** this crate knows neither the engine's scheduling nor any
//! domain; it depends on no other ventral crate.

pub mod canonical;
pub mod cmd;
mod kind;
pub mod process;
pub mod typed;

pub use kind::{
    BoxError, ParamError, ParamSpec, ParamType, Params, Registry, StageContext, StageKind,
};
pub use typed::KindParams;

/// Implements [`StageKind::code_crate`] with the name of the crate the macro is expanded
/// in, so that a kind's code identity can never be taken from the wrong crate.
#[macro_export]
macro_rules! code_crate {
    () => {
        fn code_crate(&self) -> &'static str {
            env!("CARGO_PKG_NAME")
        }
    };
}
