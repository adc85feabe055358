//! Child processes of a stage: commands and workers that die with the process that started
//! them, and the worker executables installed beside the running one.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Make `cmd`'s process die (SIGKILL) with this one, and refuse to start it if this process
/// already died between the fork and the exec (the signal would then never come, and the
/// child would run on as an orphan writing into a folder the next run may reuse).
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                return Err(std::io::Error::other(
                    "the process that started it died before it started",
                ));
            }
            Ok(())
        });
    }
}

/// Where the worker executable `name` is: the path in `$env_var`, else beside the running
/// executable (or one folder up, for test harnesses under `target/*/deps`), else on `PATH`
/// (a Python interpreter running the package is not installed beside it).
pub fn find_worker(name: &str, env_var: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot tell where this executable is: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let mut candidates = vec![dir.join(name), dir.join("..").join(name)];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "the worker `{name}` is not installed beside {} nor on PATH (build it with `cargo build`, or set {env_var})",
                exe.display()
            )
        })
}
