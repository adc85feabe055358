//! Kinds that belong to the engine itself rather than to a domain crate.

pub mod cmd;
