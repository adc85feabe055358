//! The process executor: every stage in a `ventral exec-stage KEY` process of its own on
//! this machine — the contract a Slurm node runs, without Slurm. A stage that crashes
//! (or is killed by the kernel for memory) takes only its process down, and each run record
//! carries the stage's own peak memory (`exec-stage` measures itself and its children).
//!
//! The child's output goes to `<store>/logs/process/KEY.log`; a failure reports its last
//! lines. The children share the driver's process group, so Ctrl-C reaches them too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ventral_cas::Store;
use ventral_dag::{DagError, Executed, Executor, Job};

use crate::slurm::{finished_output, log_tail, result_peak};

/// Runs each job as `COMMAND exec-stage KEY`.
pub struct ProcessExecutor {
    store: Store,
    command: Vec<OsString>,
}

impl ProcessExecutor {
    /// `command` is the `ventral` binary with its `--workspace`/`--store` options.
    pub fn new(store: Store, command: Vec<OsString>) -> Self {
        ProcessExecutor { store, command }
    }

    fn log_path(&self, job: &Job) -> PathBuf {
        self.store
            .root()
            .join("logs/process")
            .join(format!("{}.log", job.key))
    }
}

impl Executor for ProcessExecutor {
    fn execute(
        &self,
        job: &Job,
        progress: &(dyn Fn(&str) + Sync),
    ) -> ventral_dag::Result<Executed> {
        let fail = |message: String| DagError::StageFailed {
            stage: job.stage.clone(),
            message,
        };
        let log = self.log_path(job);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        let _ = std::fs::remove_file(self.store.job_result_path(&job.key));
        let out = std::fs::File::create(&log)
            .map_err(|e| fail(format!("creating {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| fail(format!("{}: {e}", log.display())))?;
        let Some((program, args)) = self.command.split_first() else {
            return Err(fail("no ventral binary to run".into()));
        };
        let mut child = Command::new(program)
            .args(args)
            .arg("exec-stage")
            .arg(job.key.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| fail(format!("starting {}: {e}", program.to_string_lossy())))?;
        progress(&format!("running in process {}", child.id()));
        let status = child
            .wait()
            .map_err(|e| fail(format!("waiting for process {}: {e}", child.id())))?;
        if status.success()
            && let Some(output) = finished_output(&self.store, &job.key)
        {
            return Ok(Executed {
                output,
                peak_rss_bytes: result_peak(&self.store, &job.key),
            });
        }
        let how = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(0), _) => "ended without a result".to_string(),
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => format!("ended: {status}"),
        };
        Err(fail(format!("its process {how}; {}", log_tail(&log, 20))))
    }
}
