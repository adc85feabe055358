#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ventral_sql::fuzzing::statement(data));
