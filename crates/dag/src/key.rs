//! Stage keys.
//!
//! `key = blake3("ventral-stage-key v1\0" ‖ canonical JSON of {kind, code, runtime, params,
//! inputs})`, where `inputs` maps each input name to its list of (member, digest) pairs. The
//! spelling of an input (its path, or which stage produced it) is *not* part of the key: the
//! bytes are. So renaming a file or a stage re-runs nothing, and an upstream stage that re-ran
//! but produced identical bytes does not re-run its dependents (early cutoff).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use ventral_cas::{Digest, hash_bytes};

use crate::lockfile::LockInput;
use ventral_stage::Params;

/// Everything that determines a stage's output.
#[derive(Clone, Debug)]
pub struct KeyMaterial<'a> {
    /// The kind's name.
    pub kind: &'a str,
    /// The kind's code identity.
    pub code: &'a str,
    /// The runtime the result depends on, if any.
    pub runtime: Option<&'a str>,
    /// Params as written.
    pub params: &'a Params,
    /// Input digests by input name.
    pub inputs: &'a BTreeMap<String, Vec<LockInput>>,
}

impl KeyMaterial<'_> {
    /// The canonical JSON that is hashed.
    pub fn canonical(&self) -> String {
        let inputs: serde_json::Map<String, Value> = self
            .inputs
            .iter()
            .map(|(name, list)| {
                let items: Vec<Value> = list
                    .iter()
                    .map(|i| json!([i.member, i.digest.to_hex()]))
                    .collect();
                (name.clone(), Value::Array(items))
            })
            .collect();
        let v = json!({
            "kind": self.kind,
            "code": self.code,
            "runtime": self.runtime,
            "params": Value::Object(self.params.clone()),
            "inputs": Value::Object(inputs),
        });
        crate::canonical::to_string(&v)
    }

    /// The stage key.
    pub fn key(&self) -> Digest {
        let mut bytes = b"ventral-stage-key v1\0".to_vec();
        bytes.extend_from_slice(self.canonical().as_bytes());
        hash_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(source: &str, data: &[u8]) -> LockInput {
        LockInput {
            source: source.into(),
            digest: hash_bytes(data),
            member: None,
        }
    }

    #[test]
    fn key_depends_on_bytes_not_spelling() {
        let params: Params = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let params2: Params = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        let i1 = BTreeMap::from([("x".to_string(), vec![input("data/a.csv", b"1")])]);
        let i2 = BTreeMap::from([("x".to_string(), vec![input("data/renamed.csv", b"1")])]);
        let m = |p, i| KeyMaterial {
            kind: "k",
            code: "c",
            runtime: None,
            params: p,
            inputs: i,
        };
        assert_eq!(m(&params, &i1).key(), m(&params2, &i2).key());
        let i3 = BTreeMap::from([("x".to_string(), vec![input("data/a.csv", b"2")])]);
        assert_ne!(m(&params, &i1).key(), m(&params, &i3).key());
        let mut with_rt = m(&params, &i1);
        with_rt.runtime = Some("libtorch 2.11.0 cpu");
        assert_ne!(with_rt.key(), m(&params, &i1).key());
        let mut other_code = m(&params, &i1);
        other_code.code = "d";
        assert_ne!(other_code.key(), m(&params, &i1).key());
    }
}
