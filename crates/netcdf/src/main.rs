//! `ventral-netcdf`: the netCDF worker. The only executable that links libhdf5;
//! `ventral-ingest` starts it for each netCDF file it reads or writes. Not meant to be typed
//! by users (`--version` says which build it is).
//!
//! ```text
//! ventral-netcdf header FILE.nc                  the file's structure
//! ventral-netcdf ingest FILE.nc OUT OPTIONS.json  into a new assembly at OUT
//! ventral-netcdf export STORE OUT.nc              an assembly back to netCDF4
//! ```
//!
//! The answer is one JSON line on stdout, `{"ok": …}` or `{"error": …}`
//! (`ventral_ingest::worker::Answer`). With `$VENTRAL_NETCDF_CODE` set, a worker whose code
//! identity differs refuses (exit 2).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use ventral_ingest::netcdf::IngestOptions;
use ventral_ingest::worker::{Answer, EXIT_REFUSED, WORKER_CODE, WireError};
use ventral_ingest::{IngestError, invalid};

fn answer<T: Serialize>(a: &Answer<T>) -> ExitCode {
    let line = serde_json::to_string(a).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"kind":"other","message":"cannot encode the answer: {e}"}}}}"#)
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    match a {
        Answer::Ok(_) => ExitCode::SUCCESS,
        Answer::Error(_) => ExitCode::from(1),
    }
}

fn reply<T: Serialize>(r: Result<T, IngestError>) -> ExitCode {
    match r {
        Ok(v) => answer(&Answer::Ok(v)),
        Err(e) => answer::<()>(&Answer::Error(WireError::from(&e))),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ventral-netcdf header FILE | ingest FILE OUT OPTIONS_JSON | export STORE OUT | --version (started by ventral)"
    );
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let op = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    if op == "--version" {
        println!(
            "ventral-netcdf {} (code {WORKER_CODE})",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(want) = std::env::var_os("VENTRAL_NETCDF_CODE")
        && want != WORKER_CODE
    {
        let message = format!(
            "this netCDF worker ({}) is code {WORKER_CODE}, but the caller was built with {}: install the two from one build (or set VENTRAL_NETCDF to the right one)",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            want.to_string_lossy()
        );
        let _ = answer::<()>(&Answer::Error(WireError::Other { message }));
        return ExitCode::from(EXIT_REFUSED as u8);
    }
    let path = |i: usize| args.get(i).map(PathBuf::from);
    match (op, path(1), path(2), args.get(3), args.len()) {
        ("header", Some(file), None, None, 2) => {
            reply(ventral_netcdf::NcFile::open(&file).map(|nc| nc.header()))
        }
        ("ingest", Some(file), Some(out), Some(opts), 4) => {
            let opts: Result<IngestOptions, IngestError> = opts
                .to_str()
                .ok_or_else(|| invalid(&file, "options", "not UTF-8"))
                .and_then(|s| {
                    serde_json::from_str(s).map_err(|e| invalid(&file, "options", e.to_string()))
                });
            reply(opts.and_then(|o| ventral_netcdf::ingest_netcdf(&file, &out, &o)))
        }
        ("export", Some(store), Some(out), None, 3) => {
            reply(ventral_netcdf::export_brainio(&store, &out))
        }
        _ => usage(),
    }
}
