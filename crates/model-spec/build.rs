//! Finds, at build time, the libtorch this build links (the same way torch-sys does: the
//! `LIBTORCH` folder, or the venv's torch when `LIBTORCH_USE_PYTORCH` is set) and records
//! its version, CUDA and cuDNN versions, so that stage keys declare them without loading
//! libtorch.

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> String {
    std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into())
}

/// (version, cuda, cudnn) of the venv's torch, and the file to watch.
fn from_pytorch() -> Option<(String, String, String, PathBuf)> {
    let script = "import torch, os\n\
        cudnn = torch.backends.cudnn.version() if torch.version.cuda else None\n\
        print(torch.__version__)\n\
        print(torch.version.cuda or '')\n\
        print(cudnn or '')\n\
        print(os.path.join(os.path.dirname(torch.__file__), 'version.py'))\n";
    let out = Command::new(python()).arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines().map(str::trim);
    Some((
        lines.next()?.to_string(),
        lines.next()?.to_string(),
        lines.next()?.to_string(),
        PathBuf::from(lines.next()?),
    ))
}

/// (version, cuda) from a libtorch folder's `build-version` (e.g. `2.11.0+cu130`).
fn from_libtorch(dir: &Path) -> Option<(String, String, String, PathBuf)> {
    let file = dir.join("build-version");
    let version = std::fs::read_to_string(&file).ok()?.trim().to_string();
    let cuda = version
        .split_once("+cu")
        .map(|(_, c)| match c.len() {
            3 => format!("{}.{}", &c[..2], &c[2..]),
            _ => c.to_string(),
        })
        .unwrap_or_default();
    Some((version, cuda, String::new(), file))
}

fn main() {
    for v in ["LIBTORCH", "LIBTORCH_USE_PYTORCH", "PYTHON_SYS_EXECUTABLE"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let found = match std::env::var_os("LIBTORCH") {
        Some(dir) => from_libtorch(Path::new(&dir)),
        None if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() => from_pytorch(),
        None => None,
    };
    let (version, cuda, cudnn) = match found {
        Some((v, c, d, watch)) => {
            println!("cargo:rerun-if-changed={}", watch.display());
            (v, c, d)
        }
        // tch's build would fail first; say so plainly if it ever gets here.
        None => ("unknown".into(), String::new(), String::new()),
    };
    println!("cargo:rustc-env=VENTRAL_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=VENTRAL_LIBTORCH_CUDA={cuda}");
    println!("cargo:rustc-env=VENTRAL_LIBTORCH_CUDNN={cudnn}");
}
