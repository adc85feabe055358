//! The fuzz target's entry point (`fuzz/fuzz_targets/checkpoint.rs`), also replayed on the
//! stable toolchain by `tests/fuzz_corpora.rs`.

use std::path::Path;

/// Read `data` as a checkpoint file: it must be read or refused, never panic, and every
/// tensor read must hold exactly the bytes its shape and type say.
pub fn checkpoint(data: &[u8]) {
    if let Ok(tensors) = crate::read_bytes(data, Path::new("fuzz.pth")) {
        for t in tensors {
            let count: i64 = t.shape.iter().product();
            assert_eq!(
                t.data.len() as i64,
                count * t.dtype.size() as i64,
                "tensor {} of shape {:?}",
                t.name,
                t.shape
            );
        }
    }
}
