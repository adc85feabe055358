//! The entry point of the `sources` fuzz target in `fuzz/` (`make fuzz`), which `make test`
//! also replays over the committed corpus: whatever the bytes, it must return.

use std::path::Path;

use crate::Sources;

/// A source manifest: parsed and checked.
pub fn sources(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Sources::parse(Path::new("fuzz/manifest.toml"), text);
    }
}
