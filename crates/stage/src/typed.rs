//! A kind's params as one Rust type.
//!
//! A kind declares its params as a struct that derives `serde::Deserialize` (with
//! `#[serde(deny_unknown_fields)]`, defaults in one place) and `schemars::JsonSchema`, one
//! doc comment per field and an enum for every closed set of values. [`specs`] turns the
//! type into the [`ParamSpec`]s `ventral kinds` and the engine's first check read; [`parse`]
//! deserialises a stage's params into it and runs its [`KindParams::check`], with errors
//! that name the param and the values allowed. [`typed_params!`](crate::typed_params)
//! writes both methods of [`StageKind`](crate::StageKind) from the type.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kind::{BoxError, ParamSpec, ParamType, Params};

/// A kind's params.
pub trait KindParams: DeserializeOwned + JsonSchema {
    /// Checks of the values beyond their types (`time_bins` increasing, a positive count).
    /// An error starts with `param `name`: ` and says what is allowed.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A stage's params as `P`, checked: unknown params, wrong types, values outside an enum and
/// the type's own checks are errors naming the param.
pub fn parse<P: KindParams>(params: &Params) -> Result<P, BoxError> {
    let v = Value::Object(params.clone());
    let p: P = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            inner
        } else {
            // `time_bins[1]`, `model.times`: the param is the first segment.
            let name = path
                .split(['.', '['])
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or(&path);
            if name == path {
                format!("param `{name}`: {inner}")
            } else {
                format!("param `{name}`: `{path}`: {inner}")
            }
        }
    })?;
    p.check()?;
    Ok(p)
}

/// The params of a kind that takes none.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl KindParams for NoParams {}

/// The params of `P` as [`ParamSpec`]s, from its JSON schema: each field's name, type,
/// doc comment, whether it is required, its default and, for an enum, the values allowed.
pub fn specs<P: JsonSchema>() -> Vec<ParamSpec> {
    let root = schemars::schema_for!(P);
    let root = root.as_value();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let defaults = root.get("default");
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, schema)| {
            let target = resolve(root, schema);
            let (ty, allowed) = type_of(root, target);
            let doc = schema
                .get("description")
                .or_else(|| target.get("description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace('\n', " ");
            let default = schema
                .get("default")
                .or_else(|| defaults.and_then(|d| d.get(name)))
                .filter(|d| !d.is_null())
                .cloned();
            ParamSpec {
                name: name.clone(),
                ty,
                required: required.contains(&name.as_str()),
                doc,
                allowed,
                default,
            }
        })
        .collect()
}

/// Follow a `$ref` into `$defs`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|n| root.get("$defs")?.get(n))
            .map(|s| resolve(root, s))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The param type of a schema, and the values of an enum.
fn type_of(root: &Value, schema: &Value) -> (ParamType, Vec<String>) {
    // Enums: `enum: [..]`, or `oneOf`/`anyOf` of `const`s (variants with doc comments);
    // `Option<T>` is `anyOf: [T, null]` or `type: [t, "null"]`.
    let consts = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            other => vec![other.to_string()],
        }
    };
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let allowed: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .flat_map(consts)
            .collect();
        return (ParamType::Str, allowed);
    }
    if let Some(c) = schema.get("const") {
        return (ParamType::Str, consts(c));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let alts: Vec<&Value> = alts
                .iter()
                .map(|a| resolve(root, a))
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if alts.len() == 1 {
                return type_of(root, alts[0]);
            }
            let mut allowed = Vec::new();
            for a in &alts {
                let (t, vals) = type_of(root, a);
                if t != ParamType::Str || vals.is_empty() {
                    return (ParamType::Any, Vec::new());
                }
                allowed.extend(vals);
            }
            return (ParamType::Str, allowed);
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    let ty = match types.as_slice() {
        ["boolean"] => ParamType::Bool,
        ["integer"] => ParamType::Int,
        ["number"] => ParamType::Float,
        ["string"] => ParamType::Str,
        ["object"] => ParamType::Table,
        ["array"] => {
            let items = schema.get("items").map(|i| resolve(root, i));
            match items.map(|i| type_of(root, i).0) {
                Some(ParamType::Str) => ParamType::StrList,
                _ => ParamType::Array,
            }
        }
        _ => ParamType::Any,
    };
    (ty, Vec::new())
}

/// Writes [`StageKind::params`](crate::StageKind::params) and
/// [`StageKind::check`](crate::StageKind::check) of a kind whose params are the type `$p`.
#[macro_export]
macro_rules! typed_params {
    ($p:ty) => {
        fn params(&self) -> Vec<$crate::ParamSpec> {
            $crate::typed::specs::<$p>()
        }
        fn check(&self, params: &$crate::Params) -> Result<(), $crate::BoxError> {
            $crate::typed::parse::<$p>(params).map(drop)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How scores are normalised.
    #[derive(serde::Deserialize, schemars::JsonSchema, Debug, PartialEq)]
    enum Norm {
        /// r / c.
        #[serde(rename = "r/c")]
        RC,
        /// (r / c)².
        #[serde(rename = "(r/c)^2")]
        RC2,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema, Debug)]
    #[serde(deny_unknown_fields)]
    struct P {
        /// The region.
        region: String,
        /// Normalisation.
        #[serde(default = "rc")]
        norm: Norm,
        /// Splits.
        #[serde(default)]
        splits: Option<u32>,
        /// A window.
        time_bins: Option<[f64; 2]>,
        /// Layers.
        #[serde(default)]
        layers: Vec<String>,
    }

    fn rc() -> Norm {
        Norm::RC
    }

    impl KindParams for P {
        fn check(&self) -> Result<(), String> {
            match self.time_bins {
                Some([a, b]) if a >= b => Err(format!(
                    "param `time_bins`: start {a} must be before end {b}"
                )),
                _ => Ok(()),
            }
        }
    }

    fn params(v: Value) -> Params {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn specs_come_from_the_type() {
        let s = specs::<P>();
        let get = |n: &str| s.iter().find(|p| p.name == n).unwrap();
        assert_eq!(get("region").ty, ParamType::Str);
        assert!(get("region").required);
        assert_eq!(get("region").doc, "The region.");
        assert_eq!(get("norm").allowed, ["r/c", "(r/c)^2"]);
        assert!(!get("norm").required);
        assert_eq!(get("splits").ty, ParamType::Int);
        assert_eq!(get("time_bins").ty, ParamType::Array);
        assert_eq!(get("layers").ty, ParamType::StrList);
    }

    #[test]
    fn errors_name_the_param_and_what_is_allowed() {
        let e = parse::<P>(&params(serde_json::json!({"region": "IT", "norm": "r/cc"})))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("param `norm`:") && e.contains("`(r/c)^2`"),
            "{e}"
        );
        let e = parse::<P>(&params(
            serde_json::json!({"region": "IT", "time_bins": [170]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("param `time_bins`:"), "{e}");
        let e = parse::<P>(&params(
            serde_json::json!({"region": "IT", "time_bins": [170, 70]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("before end"), "{e}");
        let e = parse::<P>(&params(serde_json::json!({"region": "IT", "splits": -1})))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("param `splits`:"), "{e}");
        let e = parse::<P>(&params(serde_json::json!({"region": "IT", "colour": 1})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`colour`"), "{e}");
        let p = parse::<P>(&params(serde_json::json!({"region": "IT"}))).unwrap();
        assert_eq!(p.norm, Norm::RC);
        assert_eq!(
            (p.region.as_str(), p.splits, p.layers.len()),
            ("IT", None, 0)
        );
    }
}
