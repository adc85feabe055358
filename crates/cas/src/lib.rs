//! `ventral-cas`: the content-addressed object store under `.ventral/`.
//!
//! Everything here is about bytes and files, never about pipelines or neuroscience:
//!
//! * [`Digest`]: a blake3 digest, printed as 64 hex characters.
//! * [`HashCache`]: file digests cached by (path, size, mtime, inode), so an unchanged large
//!   input is not re-read.
//! * [`Store`]: immutable objects (`objects/ab/cdef…`), trees (a sorted text manifest of
//!   `digest size mode path` lines, itself an object) materialised read-only under
//!   `out/<tree>/`, run records and job files. Every write goes to `tmp/` first and is renamed
//!   in, so a killed process never leaves a partial object visible.
//! * [`WorkspaceLock`]: an advisory `flock` on the workspace with a timeout and a record of
//!   who holds it.
//! * [`atomic_write`]: temp file, fsync, rename, fsync of the directory.

mod atomic;
mod digest;
mod error;
mod hashcache;
mod lease;
mod lock;
mod store;
mod tree;

pub use atomic::{atomic_write, fsync_dir};
pub use digest::{Digest, hash_bytes, hash_file};
pub use error::{CasError, Result};
pub use hashcache::HashCache;
pub use lease::{Lease, LeaseHolder, live_leases};
pub use lock::{LockHolder, WorkspaceLock, hostname};
pub use store::{Damage, GcReport, RunRecord, Store, TmpDir, VerifyReport};
pub use tree::{Tree, TreeEntry, hash_dir};

/// The modification time (seconds since the epoch) that every stored object carries.
///
/// Objects are immutable; stamping them with one fixed time lets a cheap `stat` tell whether
/// anyone wrote to an object since it was stored: any write moves the mtime to "now".
pub const OBJECT_MTIME: i64 = 1_000_000_000;
