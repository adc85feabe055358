//! Lockfiles: `lockfiles/<pipeline>.lock`, what the last run produced, per stage.
//!
//! A stable, diffable TOML file meant to be committed: stages sorted by name, one line per
//! field and per input, digests in full. Written atomically after every stage, so a killed
//! run keeps the work it finished.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ventral_cas::{Digest, atomic_write};

use crate::error::{DagError, Result};
use ventral_stage::Params;

/// One input's recorded digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInput {
    /// How the pipeline spelled it (`data/a.csv`, `stage:train`, …).
    pub source: String,
    /// For globs and stage groups, the matched path or stage; else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The digest of the file, folder (tree) or stage output.
    pub digest: Digest,
}

/// One stage's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The kind.
    pub kind: String,
    /// The kind's code identity when it ran.
    pub code: String,
    /// The runtime, for kinds that depend on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The stage key.
    pub key: Digest,
    /// The output tree.
    pub output: Digest,
    /// Params as written.
    #[serde(default)]
    pub params: Params,
    /// Input digests by input name.
    #[serde(default)]
    pub inputs: BTreeMap<String, Vec<LockInput>>,
}

/// A whole lockfile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version (1).
    pub version: u32,
    /// The pipeline's name.
    pub pipeline: String,
    /// The profile it ran with.
    pub profile: String,
    /// Stages by name.
    #[serde(default)]
    pub stages: BTreeMap<String, LockEntry>,
}

impl Lockfile {
    /// The lockfiles (`*.lock`) in `dir`, sorted by path; none when `dir` cannot be read.
    pub fn list(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "lock"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// An empty lockfile for `pipeline` and `profile`.
    pub fn new(pipeline: &str, profile: &str) -> Self {
        Lockfile {
            version: 1,
            pipeline: pipeline.into(),
            profile: profile.into(),
            stages: BTreeMap::new(),
        }
    }

    /// Read `path`; a missing file is an empty lockfile.
    pub fn load(path: &Path, pipeline: &str, profile: &str) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lockfile::new(pipeline, profile));
            }
            Err(e) => {
                return Err(DagError::Lockfile {
                    file: path.to_path_buf(),
                    message: format!("cannot read: {e}"),
                });
            }
        };
        Self::parse(path, &text)
    }

    /// Parse lockfile text; `path` is for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let lf: Lockfile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            DagError::Lockfile {
                file: path.to_path_buf(),
                message: format!(
                    "line {line}: {} (delete the lockfile to start afresh)",
                    e.message()
                ),
            }
        })?;
        if lf.version != 1 {
            return Err(DagError::Lockfile {
                file: path.to_path_buf(),
                message: format!(
                    "version {} is not supported (this ventral writes version 1)",
                    lf.version
                ),
            });
        }
        Ok(lf)
    }

    /// The stable text form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        s.push_str("# Written by `ventral run`: what each stage of this pipeline last produced.\n");
        s.push_str("# Commit it; do not edit it by hand.\n");
        let _ = writeln!(s, "version = {}", self.version);
        let _ = writeln!(s, "pipeline = {}", toml_str(&self.pipeline));
        let _ = writeln!(s, "profile = {}", toml_str(&self.profile));
        for (name, e) in &self.stages {
            let _ = writeln!(s, "\n[stages.{}]", toml_key(name));
            let _ = writeln!(s, "kind = {}", toml_str(&e.kind));
            let _ = writeln!(s, "code = {}", toml_str(&e.code));
            if let Some(rt) = &e.runtime {
                let _ = writeln!(s, "runtime = {}", toml_str(rt));
            }
            let _ = writeln!(s, "key = \"{}\"", e.key);
            let _ = writeln!(s, "output = \"{}\"", e.output);
            if !e.params.is_empty() {
                let _ = writeln!(s, "\n[stages.{}.params]", toml_key(name));
                // Sorted here: serde_json's map keeps insertion order when any crate in the
                // build enables its `preserve_order` feature (DataFusion's dependencies do).
                let mut keys: Vec<&String> = e.params.keys().collect();
                keys.sort();
                for k in keys {
                    let _ = writeln!(s, "{} = {}", toml_key(k), toml_value(&e.params[k]));
                }
            }
            if !e.inputs.is_empty() {
                let _ = writeln!(s, "\n[stages.{}.inputs]", toml_key(name));
                for (k, list) in &e.inputs {
                    let _ = writeln!(s, "{} = [", toml_key(k));
                    for i in list {
                        let member = i
                            .member
                            .as_ref()
                            .map(|m| format!(", member = {}", toml_str(m)))
                            .unwrap_or_default();
                        let _ = writeln!(
                            s,
                            "  {{ source = {}{member}, digest = \"{}\" }},",
                            toml_str(&i.source),
                            i.digest
                        );
                    }
                    s.push_str("]\n");
                }
            }
        }
        s
    }

    /// Write atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic_write(path, self.to_text().as_bytes())?;
        Ok(())
    }
}

/// A TOML basic string. Written here, not by the toml crate, so the lockfile's bytes do not
/// depend on that crate's choice of quoting.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_str(k)
    }
}

/// A JSON value as an inline TOML value (params come from TOML, so there is no null).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => toml::Value::Float(f).to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => toml_str(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => {
            if m.is_empty() {
                return "{}".into();
            }
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{} = {}", toml_key(k), toml_value(&m[*k])))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ventral_cas::hash_bytes;

    fn sample() -> Lockfile {
        let mut lf = Lockfile::new("demo", "default");
        let params: Params =
            serde_json::from_str(r#"{"cmd":"echo 'hi' \"x\"","n":3,"lr":0.1,"t":{"a":[1,2]}}"#)
                .unwrap();
        lf.stages.insert(
            "score@region=IT".into(),
            LockEntry {
                kind: "cmd".into(),
                code: "abc".into(),
                runtime: Some("rt".into()),
                key: hash_bytes(b"k"),
                output: hash_bytes(b"o"),
                params,
                inputs: BTreeMap::from([(
                    "data".into(),
                    vec![
                        LockInput {
                            source: "data/*.csv".into(),
                            member: Some("data/a.csv".into()),
                            digest: hash_bytes(b"a"),
                        },
                        LockInput {
                            source: "stage:x".into(),
                            member: None,
                            digest: hash_bytes(b"x"),
                        },
                    ],
                )]),
            },
        );
        lf
    }

    #[test]
    fn round_trips() {
        let lf = sample();
        let text = lf.to_text();
        let back = Lockfile::parse(Path::new("l.lock"), &text).unwrap();
        assert_eq!(back, lf);
        assert_eq!(back.to_text(), text);
    }

    #[test]
    fn golden_text() {
        let expected = format!(
            r#"# Written by `ventral run`: what each stage of this pipeline last produced.
# Commit it; do not edit it by hand.
version = 1
pipeline = "demo"
profile = "default"

[stages."score@region=IT"]
kind = "cmd"
code = "abc"
runtime = "rt"
key = "{k}"
output = "{o}"

[stages."score@region=IT".params]
cmd = "echo 'hi' \"x\""
lr = 0.1
n = 3
t = {{ a = [1, 2] }}

[stages."score@region=IT".inputs]
data = [
  {{ source = "data/*.csv", member = "data/a.csv", digest = "{a}" }},
  {{ source = "stage:x", digest = "{x}" }},
]
"#,
            k = hash_bytes(b"k"),
            o = hash_bytes(b"o"),
            a = hash_bytes(b"a"),
            x = hash_bytes(b"x"),
        );
        assert_eq!(sample().to_text(), expected);
    }

    #[test]
    fn damaged_lockfile_names_line() {
        let e = Lockfile::parse(Path::new("l.lock"), "version = 1\npipeline = \n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l.lock: line 2:"), "{e}");
    }
}
