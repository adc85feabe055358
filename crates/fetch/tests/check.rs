//! A stage's input checked against a source manifest (`ventral_fetch::check`): files that
//! `ventral fetch` verified (trusted by their stamps), a folder it unpacked (every file as
//! the archive held it), files placed by hand (hashed), and what is refused.

use std::path::{Path, PathBuf};

use sha1::Digest as _;
use ventral_fetch::{FetchError, FetchOptions, FileStatus, Sources, check_input, fetch};
use ventral_testkit::http::Server;

fn sha1_hex(data: &[u8]) -> String {
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `pack/` (two files, one in a subfolder) as a tar.gz.
fn tar_gz(dir: &Path) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (name, data) in [
        ("pack/a.bin", &b"first file"[..]),
        ("pack/sub/b.bin", &[7u8; 3000][..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, data).unwrap();
    }
    let bytes = t.into_inner().unwrap().finish().unwrap();
    std::fs::write(dir.join("pack.tar.gz"), &bytes).unwrap();
    bytes
}

struct World {
    _tmp: tempfile::TempDir,
    _server: Server,
    root: PathBuf,
    manifest: PathBuf,
}

/// A server holding a checkpoint and an archive; a manifest for both (`to = "models"`),
/// fetched into `root`.
fn fetched() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served/models");
    std::fs::create_dir_all(&served).unwrap();
    let ckpt = vec![42u8; 5000];
    std::fs::write(served.join("net.pth"), &ckpt).unwrap();
    let pack = tar_gz(&served);
    let server = Server::start(&tmp.path().join("served"));
    let text = format!(
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"t\"\ndescription = \"d\"\n\
         to = \"models\"\nsource = \"this test\"\n\n\
         [[file]]\npath = \"net.pth\"\nurl = \"{u}/models/net.pth\"\nsha1 = \"{a}\"\n\n\
         [[file]]\npath = \"pack.tar.gz\"\nurl = \"{u}/models/pack.tar.gz\"\nsha1 = \"{b}\"\n\
         unpack = \"tar.gz\"\n",
        u = server.url(),
        a = sha1_hex(&ckpt),
        b = sha1_hex(&pack),
    );
    let manifest = tmp.path().join("t.toml");
    std::fs::write(&manifest, &text).unwrap();
    let root = tmp.path().join("data/real");
    let m = Sources::parse(&manifest, &text).unwrap();
    let reports = fetch(&[m], &FetchOptions::new(&root)).unwrap();
    assert!(
        reports.iter().all(|r| r.status == FileStatus::Fetched),
        "{reports:?}"
    );
    World {
        _tmp: tmp,
        _server: server,
        root,
        manifest,
    }
}

#[test]
fn fetched_files_and_unpacked_folders_match_until_they_change() {
    let w = fetched();
    let ckpt = w.root.join("models/net.pth");
    // A fetched file: trusted by its stamp, not hashed again.
    let c = check_input(&w.manifest, &ckpt).unwrap();
    assert_eq!((c.files, c.hashed, c.bytes), (1, 0, 5000), "{c:?}");
    // The unpacked folder: every file it held, hashed.
    let pack = w.root.join("models/pack");
    let c = check_input(&w.manifest, &pack).unwrap();
    assert_eq!((c.files, c.bytes), (2, 3010), "{c:?}");
    assert!(c.absent.is_empty(), "{c:?}");
    // The manifest's folder: both files there, by their stamps.
    let c = check_input(&w.manifest, &w.root.join("models")).unwrap();
    assert_eq!((c.files, c.hashed), (2, 0), "{c:?}");

    // A file changed since it was unpacked (same size) is named, with its archive.
    let b = pack.join("sub/b.bin");
    std::fs::write(&b, [8u8; 3000]).unwrap();
    let e = check_input(&w.manifest, &pack).unwrap_err();
    assert!(matches!(e, FetchError::Unpacked { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("sub/b.bin") && msg.contains("pack.tar.gz") && msg.contains("changed"),
        "{msg}"
    );
    // … and one that is gone.
    std::fs::remove_file(&b).unwrap();
    let msg = check_input(&w.manifest, &pack).unwrap_err().to_string();
    assert!(msg.contains("sub/b.bin") && msg.contains("gone"), "{msg}");

    // A checkpoint changed in place: its stamp no longer holds, it is hashed and refused
    // with the expected and the actual SHA-1.
    std::fs::write(&ckpt, vec![43u8; 5000]).unwrap();
    let e = check_input(&w.manifest, &ckpt).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, FetchError::Mismatch { .. }) && msg.contains("net.pth") && msg.contains("sha1"),
        "{msg}"
    );
}

#[test]
fn placed_by_hand_files_are_hashed_and_foreign_inputs_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data/real/brainio");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("one.nc"), b"recordings").unwrap();
    let text = format!(
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"b\"\ndescription = \"d\"\n\
         to = \"brainio\"\nsource = \"this test\"\n\n\
         [[file]]\npath = \"one.nc\"\nurl = \"https://example.org/one.nc\"\nsha1 = \"{}\"\n\n\
         [[file]]\npath = \"two.nc\"\nurl = \"https://example.org/two.nc\"\nsha1 = \"{}\"\n",
        sha1_hex(b"recordings"),
        sha1_hex(b"other"),
    );
    let manifest = tmp.path().join("b.toml");
    std::fs::write(&manifest, &text).unwrap();
    // No stamp: hashed; the file it lacks is listed, not refused.
    let c = check_input(&manifest, &data).unwrap();
    assert_eq!((c.files, c.hashed), (1, 1), "{c:?}");
    assert_eq!(c.absent, vec!["two.nc".to_string()]);
    assert!(c.summary(&data, &manifest).contains("two.nc"));
    // A folder or file the manifest does not describe is refused, naming both.
    let other = tmp.path().join("data/real/other");
    std::fs::create_dir_all(&other).unwrap();
    let msg = check_input(&manifest, &other).unwrap_err().to_string();
    assert!(
        msg.contains("b.toml") && msg.contains("names none of the files"),
        "{msg}"
    );
    let stray = other.join("x.nc");
    std::fs::write(&stray, b"x").unwrap();
    let msg = check_input(&manifest, &stray).unwrap_err().to_string();
    assert!(
        msg.contains("names no file at") && msg.contains("x.nc"),
        "{msg}"
    );
    // A manifest of files placed by hand (ILSVRC2012's archives) whose files were not
    // kept: not refused, but said to be unverified.
    let manual = tmp.path().join("m.toml");
    std::fs::write(
        &manual,
        "[manifest]\nformat = \"ventral-sources v1\"\nname = \"m\"\ndescription = \"d\"\n\
         to = \"brainio\"\nsource = \"this test\"\nmanual = \"place it by hand\"\n\n\
         [[file]]\npath = \"archive.tar\"\nmd5 = \"00112233445566778899aabbccddeeff\"\n",
    )
    .unwrap();
    let c = check_input(&manual, &data).unwrap();
    assert_eq!(c.files, 0);
    assert!(
        c.summary(&data, &manual).contains("not verified against"),
        "{}",
        c.summary(&data, &manual)
    );
}
