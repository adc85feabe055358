//! Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, numbers as
//! `serde_json` prints them (shortest round-trip form for floats). Stage keys hash this
//! form, so the order in which params were written never matters.
//!
//! It is written out here rather than relying on `serde_json::Map` ordering, because another
//! crate in the build enabling serde_json's `preserve_order` feature would otherwise change
//! every key silently.

use serde_json::Value;

/// The canonical JSON text of `v`.
pub fn to_string(v: &Value) -> String {
    let mut s = String::new();
    write(v, &mut s);
    s
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2.5],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2.5]},"b":1}"#).unwrap();
        assert_eq!(to_string(&a), to_string(&b));
        assert_eq!(to_string(&a), r#"{"a":{"x":"s","y":[1,2.5]},"b":1}"#);
    }

    #[test]
    fn int_and_float_differ() {
        assert_ne!(
            to_string(&serde_json::json!({"a": 1})),
            to_string(&serde_json::json!({"a": 1.0}))
        );
    }
}
