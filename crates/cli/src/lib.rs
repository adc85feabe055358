//! What the two executables of this package share: the `ventral` command line (which never
//! loads libtorch) and the `ventral-torch` model worker it hands model work to.

pub mod model_args;

/// Let a closed pipe downstream (`ventral … | head`) end the process quietly, as it ends any
/// Unix tool, instead of a "Broken pipe" panic: Rust ignores SIGPIPE by default. Call first
/// thing in `main`, before any thread starts.
pub fn die_quietly_on_closed_pipe() {
    // SAFETY: restores a signal's default disposition; no thread has started yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
