//! Gives the model worker `ventral-torch` an rpath to libtorch (found by torch-sys), so
//! that it runs without LD_LIBRARY_PATH. `ventral` itself never links libtorch.

fn main() {
    // `ventral` starts in a few milliseconds only if the dynamic loader has little to do: a
    // position-dependent executable has its ~350,000 relative relocations (DataFusion's and
    // arrow's tables of pointers) resolved at link time instead of at every start (measured
    // here: `ventral --version` 17 ms as a PIE, 11 ms without).
    println!("cargo:rustc-link-arg-bin=ventral=-no-pie");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bin=ventral-torch=-Wl,-rpath,{dir}");
    }
}
