//! Gives the model worker `ventral-torch` an rpath to libtorch (found by torch-sys), so
//! that it runs without LD_LIBRARY_PATH. `ventral` itself never links libtorch.

fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bin=ventral-torch=-Wl,-rpath,{dir}");
    }
}
