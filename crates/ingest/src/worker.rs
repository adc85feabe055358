//! The `ventral-netcdf` worker, as this crate calls it: one process per netCDF file.
//!
//! `ventral-netcdf <operation> ARGS…` is found beside the running executable (or named by
//! `$VENTRAL_NETCDF`, or on `PATH`), started with [`WORKER_CODE`] in `$VENTRAL_NETCDF_CODE`
//! (a worker of another build refuses), and answers with one JSON line on stdout:
//! `{"ok": …}` or `{"error": …}` (a [`WireError`]). A worker killed by a signal — libhdf5
//! crashing on a damaged file — becomes an error naming the file; nothing of the engine's
//! process is touched.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{IngestError, Result, invalid, io};

/// The worker executable's file name.
pub const WORKER: &str = "ventral-netcdf";

/// The code identity of `ventral-netcdf` in this build (what the worker must be).
pub const WORKER_CODE: &str = env!("VENTRAL_NETCDF_CODE");

/// Exit status of a worker that refuses the call (another build's code).
pub const EXIT_REFUSED: i32 = 2;

/// An error as the worker reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WireError {
    /// [`IngestError::Io`].
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// [`IngestError::Invalid`].
    Invalid {
        /// The file.
        file: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Any other error, as worded.
    Other {
        /// The message.
        message: String,
    },
}

impl From<&IngestError> for WireError {
    fn from(e: &IngestError) -> Self {
        match e {
            IngestError::Io { path, message } => WireError::Io {
                path: path.to_string_lossy().into_owned(),
                message: message.clone(),
            },
            IngestError::Invalid {
                file,
                field,
                message,
            } => WireError::Invalid {
                file: file.to_string_lossy().into_owned(),
                field: field.clone(),
                message: message.clone(),
            },
            other => WireError::Other {
                message: other.to_string(),
            },
        }
    }
}

impl From<WireError> for IngestError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io { path, message } => IngestError::Io {
                path: PathBuf::from(path),
                message,
            },
            WireError::Invalid {
                file,
                field,
                message,
            } => IngestError::Invalid {
                file: PathBuf::from(file),
                field,
                message,
            },
            WireError::Other { message } => IngestError::Worker { message },
        }
    }
}

/// The worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer<T> {
    /// The operation's result.
    Ok(T),
    /// Why it failed.
    Error(WireError),
}

/// Run `ventral-netcdf ARGS…` for `file` (named in errors) and decode its answer.
pub(crate) fn call<T: DeserializeOwned>(file: &Path, args: &[&OsStr]) -> Result<T> {
    let exe =
        ventral_stage::process::find_worker(WORKER, "VENTRAL_NETCDF").map_err(|e| io(file, e))?;
    let mut cmd = Command::new(&exe);
    cmd.args(args)
        .env("VENTRAL_NETCDF_CODE", WORKER_CODE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ventral_stage::process::die_with_parent(&mut cmd);
    let out = cmd.output().map_err(|e| {
        io(
            file,
            format!("cannot start the netCDF worker {}: {e}", exe.display()),
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Answer<T>>(l).ok());
    match answer {
        Some(Answer::Ok(v)) if out.status.success() => Ok(v),
        Some(Answer::Error(e)) => Err(e.into()),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            Err(match out.status.signal() {
                Some(sig) => invalid(
                    file,
                    "file",
                    format!(
                        "the netCDF4/HDF5 reader (libhdf5, in the worker {}) died of signal {sig} on it: the file is damaged or not netCDF4; nothing was written",
                        exe.display()
                    ),
                ),
                None => io(
                    file,
                    format!(
                        "the netCDF worker {} failed ({}) without an answer{}",
                        exe.display(),
                        out.status,
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {tail}")
                        }
                    ),
                ),
            })
        }
    }
}
