#![no_main]

// `read_parquet` turns a panic of the Arrow/Parquet readers into an error; libfuzzer-sys's
// panic hook aborts before that can happen, so this target goes back to the default hook.
// A panic nobody catches still aborts (libfuzzer-sys catches it at the entry point).
libfuzzer_sys::fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| ventral_ingest::fuzzing::zarr_assembly(data)
);
