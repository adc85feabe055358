//! What the two executables of this package share: the `ventral` command line (which never
//! loads libtorch) and the `ventral-torch` model worker it hands model work to.

pub mod model_args;

/// What both executables do first in `main`, before any thread starts: let a closed pipe
/// downstream (`ventral … | head`) end the process quietly, as it ends any Unix tool,
/// instead of a "Broken pipe" panic (Rust ignores SIGPIPE by default); and log warnings
/// (or what `RUST_LOG` asks for) to stderr.
pub fn init_process() {
    // SAFETY: restores a signal's default disposition; no thread has started yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}
