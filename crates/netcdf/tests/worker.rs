//! The `ventral-netcdf` worker as `ventral-ingest` calls it: the same answers as the
//! library in-process, libhdf5's crashes turned into errors that name the file, and a worker
//! of another build refused. (The test harness finds the worker one folder up from itself,
//! as `ventral_stage::process::find_worker` looks.)

use std::path::Path;
use std::process::Command;

use ventral_ingest::netcdf::IngestOptions;

const WORKER: &str = env!("CARGO_BIN_EXE_ventral-netcdf");

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_worker_answers_as_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ventral_ingest::fuzzing::small_assembly(&store).unwrap();
    // Export: through the worker, then in-process; both files read back the same.
    let via_worker = ventral_ingest::export::export_brainio(&store, &dir.path().join("w.nc"))
        .map_err(|e| e.to_string())
        .unwrap();
    let in_process = ventral_netcdf::export_brainio(&store, &dir.path().join("p.nc")).unwrap();
    assert_eq!(
        serde_json::to_value(&via_worker).unwrap(),
        serde_json::to_value(&in_process).unwrap()
    );
    let nc = dir.path().join("w.nc");
    let header = ventral_ingest::netcdf::read_header(&nc).unwrap();
    let local = ventral_netcdf::NcFile::open(&nc).unwrap().header();
    assert_eq!(
        serde_json::to_value(&header).unwrap(),
        serde_json::to_value(&local).unwrap()
    );
    assert_eq!(header.shape, vec![12, 5]);
    assert_eq!(header.global_str("identifier"), Some("fuzz.seed"));
    // Ingest, with a small band and a producer: the same store, byte for byte.
    let opts = IngestOptions {
        producer: Some("stage-key".into()),
        band_elements: Some(7),
        ..Default::default()
    };
    let a = ventral_ingest::netcdf::ingest_netcdf(&nc, &dir.path().join("a"), &opts).unwrap();
    let b = ventral_netcdf::ingest_netcdf(&nc, &dir.path().join("b"), &opts).unwrap();
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap()
    );
    assert_eq!(files(&dir.path().join("a")), files(&dir.path().join("b")));
    // An error crosses the process boundary with its file and field.
    let e = ventral_ingest::netcdf::ingest_netcdf(&nc, &dir.path().join("a"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists and is not empty"), "{e}");
    let missing = dir.path().join("missing.nc");
    let e = ventral_ingest::netcdf::read_header(&missing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.nc"), "{e}");
}

/// The inputs that crash libhdf5 in the fuzzer's build (`fuzz/findings/netcdf`; in this
/// build libhdf5 may refuse them instead): through the worker, each is an error naming the
/// file, and nothing is written. (A worker that does die of a signal: `crates/cli/tests/
/// ingest_cli.rs`.)
#[test]
fn libhdf5_crash_inputs_are_errors_that_name_the_file() {
    let findings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings/netcdf");
    let mut n = 0;
    for e in std::fs::read_dir(&findings).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            continue;
        }
        n += 1;
        let dir = tempfile::tempdir().unwrap();
        let nc = dir.path().join("damaged.nc");
        std::fs::copy(&p, &nc).unwrap();
        let out = dir.path().join("out");
        let e = ventral_ingest::netcdf::ingest_netcdf(&nc, &out, &IngestOptions::default())
            .expect_err("a damaged file is refused");
        let msg = e.to_string();
        assert!(msg.contains("damaged.nc"), "{}: {msg}", p.display());
        assert!(!out.exists(), "{}: wrote {}", p.display(), out.display());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("damaged.nc")],
            "{}",
            p.display()
        );
        let e = ventral_ingest::netcdf::read_header(&nc).expect_err("refused");
        assert!(e.to_string().contains("damaged.nc"), "{e}");
    }
    assert!(
        n >= 2,
        "the findings are missing from {}",
        findings.display()
    );
}

#[test]
fn a_worker_of_another_build_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ventral_ingest::fuzzing::small_assembly(&store).unwrap();
    let o = Command::new(WORKER)
        .env("VENTRAL_NETCDF_CODE", "0123")
        .arg("export")
        .arg(&store)
        .arg(dir.path().join("x.nc"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(ventral_ingest::worker::EXIT_REFUSED));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("0123") && out.contains("\"error\""), "{out}");
    assert!(!dir.path().join("x.nc").exists());
    // The same call from this build is answered.
    let o = Command::new(WORKER)
        .env("VENTRAL_NETCDF_CODE", ventral_ingest::worker::WORKER_CODE)
        .arg("export")
        .arg(&store)
        .arg(dir.path().join("x.nc"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Bad usage: a message, no answer, a failure.
    let o = Command::new(WORKER).arg("ingest").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage"));
}

#[test]
fn the_worker_is_what_links_libhdf5() {
    let o = Command::new("readelf")
        .args(["-d", WORKER])
        .output()
        .expect("readelf (binutils) runs");
    let needed = String::from_utf8_lossy(&o.stdout);
    assert!(needed.contains("hdf5"), "{needed}");
}
