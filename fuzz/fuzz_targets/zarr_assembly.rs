#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ventral_ingest::fuzzing::zarr_assembly(data));
