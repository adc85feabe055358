use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{CasError, IoContext, Result};

/// Files at least this large are hashed memory-mapped on all cores.
const PARALLEL_HASH_BYTES: u64 = 16 << 20;

/// A blake3 digest. Displays and parses as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The lowercase hex form.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The first `n` hex digits, for display.
    pub fn short(&self, n: usize) -> String {
        let mut h = self.to_hex();
        h.truncate(n);
        h
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short(12))
    }
}

impl FromStr for Digest {
    type Err = CasError;
    fn from_str(s: &str) -> Result<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(CasError::BadDigest(s.to_string()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| CasError::BadDigest(s.to_string()))?;
            if !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            {
                return Err(CasError::BadDigest(s.to_string()));
            }
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| CasError::BadDigest(s.to_string()))?;
        }
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The blake3 digest of a byte string.
pub fn hash_bytes(bytes: &[u8]) -> Digest {
    blake3::hash(bytes).into()
}

/// The blake3 digest of a file's contents. Large files are memory-mapped and hashed on
/// all cores; the digest does not depend on how it was computed.
pub fn hash_file(path: &Path) -> Result<Digest> {
    let len = std::fs::metadata(path).ctx("stat", path)?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= PARALLEL_HASH_BYTES {
        hasher.update_mmap_rayon(path).ctx("read", path)?;
    } else {
        hasher.update_mmap(path).ctx("read", path)?;
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = hash_bytes(b"ventral");
        let s = d.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_bad_hex() {
        assert!("xyz".parse::<Digest>().is_err());
        assert!("Z".repeat(64).parse::<Digest>().is_err());
        assert!(
            "A".repeat(64).parse::<Digest>().is_err(),
            "uppercase is not canonical"
        );
    }

    #[test]
    fn known_vector() {
        // blake3 of the empty input, from the blake3 test vectors.
        assert_eq!(
            hash_bytes(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn file_hash_matches_bytes_for_small_and_large() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1000, (PARALLEL_HASH_BYTES as usize) + 12345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{len}"));
            std::fs::write(&p, &data).unwrap();
            assert_eq!(hash_file(&p).unwrap(), hash_bytes(&data), "len {len}");
        }
    }
}
