//! Pipeline files: parsing, profiles, variables, matrix expansion, and checking params
//! against the kinds' declarations.
//!
//! ```toml
//! [pipeline]
//! name = "demo"            # the lockfile is lockfiles/demo.lock (default: the file name)
//! profile = "embedded"     # the default profile
//!
//! [vars]
//! seed = 0
//!
//! [profiles.real]          # `--profile real` overrides vars
//! seed = 1
//!
//! [stages.prepare]
//! kind = "cmd"
//! cmd = "sort ${inputs.raw} > ${out}/sorted.txt"
//! inputs = { raw = "data/*.txt" }
//! outs = ["sorted.txt"]
//!
//! [stages.score]
//! kind = "cmd"
//! foreach = { region = ["V4", "IT"] }   # two stages: score@region=V4, score@region=IT
//! # or an array of tables, exactly those instances, named by their scalar values; a
//! # table-valued field is read as `${meta.id}`:
//! # foreach = [{ region = "V4", meta = { id = "V4 sites" } }, …]
//! cmd = "grep ${region} ${inputs.sorted} > ${out}/hits.txt"
//! inputs = { sorted = "stage:prepare/sorted.txt" }
//! publish = "results/${region}"
//! ```
//!
//! Every key of a stage table other than `kind`, `inputs`, `foreach`, `publish`,
//! `resources` ([`crate::Resources`]: what the stage asks of the machine, never in its key),
//! `profiles` and `description` is a param of its kind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::error::{DagError, Result};
use crate::resources::Resources;
use ventral_stage::{Params, Registry};

const RESERVED: [&str; 7] = [
    "kind",
    "inputs",
    "foreach",
    "publish",
    "resources",
    "profiles",
    "description",
];

/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputRef {
    /// Another stage's output, or a file or folder inside it.
    Stage {
        /// The stage instance.
        stage: String,
        /// A path inside its output, if any.
        sub: Option<String>,
    },
    /// A path in the workspace (relative to its root) or an absolute path; may be a glob.
    Path(String),
}

impl InputRef {
    /// How the pipeline file spells it.
    pub fn source(&self) -> String {
        match self {
            InputRef::Stage { stage, sub: None } => format!("stage:{stage}"),
            InputRef::Stage {
                stage,
                sub: Some(s),
            } => format!("stage:{stage}/{s}"),
            InputRef::Path(p) => p.clone(),
        }
    }
}

/// One stage after profiles, variables and matrices are applied.
#[derive(Clone, Debug)]
pub struct StageSpec {
    /// The instance name: the table name, plus `@k=v,…` for matrix instances.
    pub name: String,
    /// The table name in the file.
    pub base: String,
    /// This instance's matrix values.
    pub matrix: BTreeMap<String, Value>,
    /// The kind.
    pub kind: String,
    /// The params as written (interpolated).
    pub params: Params,
    /// Inputs by name.
    pub inputs: BTreeMap<String, Vec<InputRef>>,
    /// A workspace path where a link to the output is published, if any.
    pub publish: Option<String>,
    /// What it asks of the machine that runs it (not part of its key).
    pub resources: Resources,
    /// One line of description.
    pub description: Option<String>,
    /// The line of the stage's table.
    pub line: usize,
    /// The line of each param's value.
    pub param_lines: BTreeMap<String, usize>,
    /// The line of the `inputs` value (or of the table).
    pub inputs_line: usize,
}

/// A parsed, expanded pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Its name (the lockfile's stem).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The selected profile.
    pub profile: String,
    /// The file's default profile.
    pub default_profile: String,
    /// Stages in file order (matrix instances in expansion order).
    pub stages: Vec<StageSpec>,
}

/// A TOML table whose values remember where they were written.
type RawTable = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    pipeline: Option<Spanned<RawMeta>>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    #[serde(default)]
    stages: BTreeMap<String, Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Option<String>,
    profile: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
}

/// Byte offsets to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }
    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct Ctx<'a> {
    file: &'a Path,
    lines: Lines,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, stage: Option<&str>, message: impl Into<String>) -> DagError {
        DagError::Pipeline {
            file: self.file.to_path_buf(),
            line: self.lines.line(offset),
            stage: stage.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Convert a TOML value to JSON. Non-finite floats are refused (JSON cannot hold them).
fn to_json(v: &toml::Value) -> std::result::Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a finite number"))?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(to_json)
                .collect::<std::result::Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
    })
}

/// Variables visible to `${…}`: `vars.NAME` and the matrix keys.
struct Scope<'a> {
    vars: &'a BTreeMap<String, Value>,
    matrix: &'a BTreeMap<String, Value>,
}

/// Render a value for splicing into a string.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => crate::canonical::to_string(other),
    }
}

/// Replace `${…}` in `s`. `${out}` and `${inputs.NAME}` are left for run time; `$${` is a
/// literal `${`. A string that is exactly one placeholder takes the variable's value and type.
fn interpolate_str(s: &str, scope: &Scope<'_>) -> std::result::Result<Value, String> {
    let lookup = |name: &str| -> std::result::Result<Option<Value>, String> {
        if name == "out" || name.starts_with("inputs.") {
            return Ok(None);
        }
        if let Some(v) = name.strip_prefix("vars.") {
            return scope
                .vars
                .get(v)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("unknown variable `${{{name}}}` (no `{v}` in [vars])"));
        }
        // `${meta.id}`: a field of a table-valued matrix variable.
        if let Some((root, path)) = name.split_once('.')
            && let Some(Value::Object(_)) = scope.matrix.get(root)
        {
            let mut v = &scope.matrix[root];
            for part in path.split('.') {
                v = v.get(part).ok_or_else(|| {
                    format!("unknown variable `${{{name}}}` (`{root}` has no field `{part}`)")
                })?;
            }
            return Ok(Some(v.clone()));
        }
        scope.matrix.get(name).cloned().map(Some).ok_or_else(|| {
            let known: Vec<String> = scope
                .matrix
                .keys()
                .cloned()
                .chain(scope.vars.keys().map(|k| format!("vars.{k}")))
                .collect();
            format!(
                "unknown variable `${{{name}}}` (known here: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    };
    if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !inner.contains(['{', '}', '$'])
    {
        if let Some(v) = lookup(inner)? {
            return Ok(v);
        }
        return Ok(Value::String(s.to_string()));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
            let name = &after[..end];
            match lookup(name)? {
                Some(v) => out.push_str(&render(&v)),
                None => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn interpolate(v: &Value, scope: &Scope<'_>) -> std::result::Result<Value, String> {
    Ok(match v {
        Value::String(s) => interpolate_str(s, scope)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| interpolate(x, scope))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), interpolate(x, scope)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The matrix instances of a `foreach` value: a table of arrays (every combination) or an
/// array of tables (exactly those).
fn expand_foreach(v: &Value) -> std::result::Result<Vec<BTreeMap<String, Value>>, String> {
    match v {
        Value::Object(table) => {
            let mut combos: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
            for (k, vals) in table {
                let vals = vals
                    .as_array()
                    .ok_or_else(|| format!("foreach `{k}` must be an array of values"))?;
                if vals.is_empty() {
                    return Err(format!("foreach `{k}` is empty"));
                }
                let mut next = Vec::with_capacity(combos.len() * vals.len());
                for c in &combos {
                    for val in vals {
                        let mut c2 = c.clone();
                        c2.insert(k.clone(), val.clone());
                        next.push(c2);
                    }
                }
                combos = next;
            }
            Ok(combos)
        }
        Value::Array(items) => items
            .iter()
            .map(|it| {
                it.as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .ok_or_else(|| "foreach as an array must hold tables".to_string())
            })
            .collect(),
        _ => Err("foreach must be a table of arrays or an array of tables".into()),
    }
}

/// `base@k=v,…` over the matrix's scalar values; tables and arrays (a whole model
/// configuration, say) stay out of the name when a scalar names the instance.
fn instance_name(base: &str, matrix: &BTreeMap<String, Value>) -> String {
    if matrix.is_empty() {
        return base.to_string();
    }
    let scalar = |v: &Value| !v.is_object() && !v.is_array();
    let named: Vec<(&String, &Value)> = if matrix.values().any(scalar) {
        matrix.iter().filter(|(_, v)| scalar(v)).collect()
    } else {
        matrix.iter().collect()
    };
    let parts: Vec<String> = named
        .iter()
        .map(|(k, v)| format!("{k}={}", render(v)))
        .collect();
    format!("{base}@{}", parts.join(","))
}

fn valid_stage_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.chars().all(|c| c == '.')
}

struct RawStage {
    spec: StageSpec,
    raw_inputs: BTreeMap<String, (Vec<String>, usize)>,
    offset: usize,
}

impl Pipeline {
    /// Read and expand the pipeline at `file` for `profile` (`None`: the file's default).
    pub fn load(file: &Path, profile: Option<&str>) -> Result<Pipeline> {
        let src = std::fs::read_to_string(file).map_err(|e| DagError::Pipeline {
            file: file.to_path_buf(),
            line: 0,
            stage: None,
            message: format!("cannot read: {e}"),
        })?;
        Pipeline::parse(file, &src, profile)
    }

    /// Parse and expand pipeline source text. `file` is used in messages and for the name.
    pub fn parse(file: &Path, src: &str, profile: Option<&str>) -> Result<Pipeline> {
        let ctx = Ctx {
            file,
            lines: Lines::new(src),
        };
        let raw: RawFile = toml::from_str(src).map_err(|e| {
            let off = e.span().map(|s| s.start).unwrap_or(0);
            ctx.err(off, None, e.message().to_string())
        })?;
        let meta = raw.pipeline.as_ref().map(|m| m.get_ref());
        let name = meta
            .and_then(|m| m.name.clone())
            .or_else(|| file.file_stem().map(|s| s.to_string_lossy().to_string()))
            .unwrap_or_else(|| "pipeline".into());
        if !valid_stage_name(&name) {
            let off = raw.pipeline.as_ref().map(|m| m.span().start).unwrap_or(0);
            return Err(ctx.err(
                off,
                None,
                format!("pipeline name `{name}` may only use letters, digits, `_`, `-`, `.`"),
            ));
        }
        let default_profile = meta
            .and_then(|m| m.profile.clone())
            .unwrap_or_else(|| "default".into());
        let profile = profile
            .map(str::to_string)
            .unwrap_or_else(|| default_profile.clone());

        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            let j = to_json(v.get_ref())
                .map_err(|m| ctx.err(v.span().start, None, format!("var `{k}`: {m}")))?;
            vars.insert(k.clone(), j);
        }
        if let Some(over) = raw.profiles.get(&profile) {
            for (k, v) in over.get_ref() {
                if !vars.contains_key(k) {
                    return Err(ctx.err(
                        v.span().start,
                        None,
                        format!("profile `{profile}` sets `{k}`, which is not declared in [vars]"),
                    ));
                }
                let j = to_json(v.get_ref())
                    .map_err(|m| ctx.err(v.span().start, None, format!("var `{k}`: {m}")))?;
                vars.insert(k.clone(), j);
            }
        } else if profile != default_profile {
            let known: Vec<&str> = raw.profiles.keys().map(String::as_str).collect();
            return Err(ctx.err(
                0,
                None,
                format!(
                    "no profile `{profile}` (this file has: {})",
                    std::iter::once(default_profile.as_str())
                        .chain(known)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }

        // Phase 1: expand every stage table into instances.
        let mut tables: Vec<(&String, &Spanned<RawTable>)> = raw.stages.iter().collect();
        tables.sort_by_key(|(_, t)| t.span().start);
        let mut raws: Vec<RawStage> = Vec::new();
        let mut bases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (base, table) in tables {
            let off = table.span().start;
            let t = table.get_ref();
            let sname = Some(base.as_str());
            if !valid_stage_name(base) {
                return Err(ctx.err(
                    off,
                    sname,
                    "stage names may only use letters, digits, `_`, `-`, `.`",
                ));
            }
            if let Some(p) = t.get("profiles") {
                let list = to_json(p.get_ref()).ok();
                let names: Option<Vec<&str>> = list
                    .as_ref()
                    .and_then(|l| l.as_array())
                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                match names {
                    Some(n) if !n.is_empty() => {
                        if !n.contains(&profile.as_str()) {
                            continue;
                        }
                    }
                    _ => {
                        return Err(ctx.err(
                            p.span().start,
                            sname,
                            "`profiles` must be a non-empty array of profile names",
                        ));
                    }
                }
            }
            let kind = match t.get("kind") {
                Some(k) => k
                    .get_ref()
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ctx.err(k.span().start, sname, "`kind` must be a string"))?,
                None => return Err(ctx.err(off, sname, "missing `kind`")),
            };
            let empty = BTreeMap::new();
            let vars_scope = Scope {
                vars: &vars,
                matrix: &empty,
            };
            let instances = match t.get("foreach") {
                None => vec![BTreeMap::new()],
                Some(f) => {
                    let j = to_json(f.get_ref()).map_err(|m| ctx.err(f.span().start, sname, m))?;
                    let j = interpolate(&j, &vars_scope)
                        .map_err(|m| ctx.err(f.span().start, sname, m))?;
                    expand_foreach(&j).map_err(|m| ctx.err(f.span().start, sname, m))?
                }
            };
            let mut seen_names = std::collections::BTreeSet::new();
            for matrix in instances {
                let iname = instance_name(base, &matrix);
                if !seen_names.insert(iname.clone()) {
                    return Err(ctx.err(
                        off,
                        sname,
                        format!("two matrix instances are both named `{iname}`: give each a distinct scalar value"),
                    ));
                }
                if iname.contains('/') || iname.contains(char::is_whitespace) {
                    return Err(ctx.err(
                        off,
                        sname,
                        format!("matrix instance name `{iname}` may not contain `/` or spaces"),
                    ));
                }
                let scope = Scope {
                    vars: &vars,
                    matrix: &matrix,
                };
                let mut params = Params::new();
                let mut param_lines = BTreeMap::new();
                for (k, v) in t {
                    if RESERVED.contains(&k.as_str()) {
                        continue;
                    }
                    let at = v.span().start;
                    let j = to_json(v.get_ref())
                        .map_err(|m| ctx.err(at, sname, format!("param `{k}`: {m}")))?;
                    let j = interpolate(&j, &scope)
                        .map_err(|m| ctx.err(at, sname, format!("param `{k}`: {m}")))?;
                    params.insert(k.clone(), j);
                    param_lines.insert(k.clone(), ctx.lines.line(at));
                }
                let mut raw_inputs = BTreeMap::new();
                let mut inputs_line = ctx.lines.line(off);
                if let Some(inp) = t.get("inputs") {
                    inputs_line = ctx.lines.line(inp.span().start);
                    let table = match inp.get_ref() {
                        toml::Value::Table(tb) => tb,
                        _ => {
                            return Err(ctx.err(
                                inp.span().start,
                                sname,
                                "`inputs` must be a table of name = path or [paths]",
                            ));
                        }
                    };
                    for (iname_, v) in table {
                        let j = to_json(v).map_err(|m| ctx.err(inp.span().start, sname, m))?;
                        let j = interpolate(&j, &scope).map_err(|m| {
                            ctx.err(inp.span().start, sname, format!("input `{iname_}`: {m}"))
                        })?;
                        let list: Vec<String> = match j {
                            Value::String(s) => vec![s],
                            Value::Array(a) if a.iter().all(Value::is_string) && !a.is_empty() => a
                                .into_iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect(),
                            _ => {
                                return Err(ctx.err(
                                    inp.span().start,
                                    sname,
                                    format!("input `{iname_}` must be a path, `stage:NAME`, or a non-empty array of them"),
                                ));
                            }
                        };
                        raw_inputs.insert(iname_.clone(), (list, inp.span().start));
                    }
                }
                let publish = match t.get("publish") {
                    None => None,
                    Some(p) => {
                        let j =
                            to_json(p.get_ref()).map_err(|m| ctx.err(p.span().start, sname, m))?;
                        match interpolate(&j, &scope)
                            .map_err(|m| ctx.err(p.span().start, sname, m))?
                        {
                            Value::String(s) if is_workspace_relative(s.trim_end_matches('/')) => {
                                Some(s.trim_end_matches('/').to_string())
                            }
                            other => {
                                let shown = match &other {
                                    Value::String(s) => format!("`{s}`"),
                                    v => v.to_string(),
                                };
                                return Err(ctx.err(
                                    p.span().start,
                                    sname,
                                    format!(
                                        "`publish = {shown}` must be a relative path inside the workspace (no empty, `.` or `..` parts, not under `.ventral`)"
                                    ),
                                ));
                            }
                        }
                    }
                };
                let resources = match t.get("resources") {
                    None => Resources::default(),
                    Some(r) => {
                        let j =
                            to_json(r.get_ref()).map_err(|m| ctx.err(r.span().start, sname, m))?;
                        let j = interpolate(&j, &scope)
                            .map_err(|m| ctx.err(r.span().start, sname, m))?;
                        Resources::from_json(j).map_err(|m| ctx.err(r.span().start, sname, m))?
                    }
                };
                let description = t
                    .get("description")
                    .and_then(|d| d.get_ref().as_str().map(str::to_string));
                bases.entry(base.clone()).or_default().push(iname.clone());
                raws.push(RawStage {
                    spec: StageSpec {
                        name: iname,
                        base: base.clone(),
                        matrix,
                        kind: kind.clone(),
                        params,
                        inputs: BTreeMap::new(),
                        publish,
                        resources,
                        description,
                        line: ctx.lines.line(off),
                        param_lines,
                        inputs_line,
                    },
                    raw_inputs,
                    offset: off,
                });
            }
        }

        // Phase 2: resolve inputs now that every instance name is known.
        let mut seen = BTreeSet::new();
        for r in &raws {
            if !seen.insert(r.spec.name.clone()) {
                return Err(ctx.err(r.offset, Some(&r.spec.name), "two stages have this name"));
            }
        }
        let publishes: Vec<(String, String)> = raws
            .iter()
            .filter_map(|r| r.spec.publish.clone().map(|p| (p, r.spec.name.clone())))
            .collect();
        for r in &mut raws {
            let sname = r.spec.name.clone();
            for (input, (list, off)) in std::mem::take(&mut r.raw_inputs) {
                let mut refs = Vec::new();
                for s in list {
                    if let Some(rest) = s.strip_prefix("stage:") {
                        let (st, sub) = match rest.split_once('/') {
                            Some((a, b)) if !b.trim_matches('/').is_empty() => {
                                (a, Some(b.trim_matches('/').to_string()))
                            }
                            Some((a, _)) => (a, None),
                            None => (rest, None),
                        };
                        if let Some(sub) = &sub
                            && !is_inner_path(sub)
                        {
                            return Err(ctx.err(
                                off,
                                Some(&sname),
                                format!(
                                    "input `{input}`: `{s}` leaves stage `{st}`'s output (a path inside it has no empty, `.` or `..` parts)"
                                ),
                            ));
                        }
                        if seen.contains(st) {
                            refs.push(InputRef::Stage {
                                stage: st.to_string(),
                                sub,
                            });
                        } else if let Some(instances) = bases.get(st) {
                            refs.extend(instances.iter().map(|i| InputRef::Stage {
                                stage: i.clone(),
                                sub: sub.clone(),
                            }));
                        } else {
                            let mut known: Vec<&str> = bases.keys().map(String::as_str).collect();
                            known.sort();
                            return Err(ctx.err(
                                off,
                                Some(&sname),
                                format!(
                                    "input `{input}` refers to unknown stage `{st}` (stages: {})",
                                    known.join(", ")
                                ),
                            ));
                        }
                    } else if s.trim().is_empty() {
                        return Err(ctx.err(
                            off,
                            Some(&sname),
                            format!("input `{input}` is an empty path"),
                        ));
                    } else {
                        // A path under another stage's publish link is that stage's output.
                        let norm = s.trim_start_matches("./").trim_end_matches('/').to_string();
                        let owner = publishes
                            .iter()
                            .find(|(p, _)| norm == *p || norm.starts_with(&format!("{p}/")));
                        match owner {
                            Some((p, st)) => {
                                let sub = norm[p.len()..].trim_matches('/');
                                if !sub.is_empty() && !is_inner_path(sub) {
                                    return Err(ctx.err(
                                        off,
                                        Some(&sname),
                                        format!(
                                            "input `{input}`: `{s}` leaves stage `{st}`'s output published at `{p}` (a path inside it has no empty, `.` or `..` parts)"
                                        ),
                                    ));
                                }
                                refs.push(InputRef::Stage {
                                    stage: st.clone(),
                                    sub: (!sub.is_empty()).then(|| sub.to_string()),
                                });
                            }
                            None => refs.push(InputRef::Path(s)),
                        }
                    }
                }
                r.spec.inputs.insert(input, refs);
            }
        }
        Ok(Pipeline {
            name,
            file: file.to_path_buf(),
            profile,
            default_profile,
            stages: raws.into_iter().map(|r| r.spec).collect(),
        })
    }

    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The lockfile's file name: `<name>.lock` for the default profile, else
    /// `<name>@<profile>.lock`.
    pub fn lockfile_name(&self) -> String {
        if self.profile == self.default_profile {
            format!("{}.lock", self.name)
        } else {
            format!("{}@{}.lock", self.name, self.profile)
        }
    }

    /// An error about stage `s`, at the line of the param it names (`param `x``), else at
    /// the stage's header.
    pub fn stage_error(&self, s: &StageSpec, message: impl Into<String>) -> DagError {
        let message = message.into();
        let line = message
            .split("param `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .and_then(|name| s.param_lines.get(name).copied())
            .unwrap_or(s.line);
        self.err(line, &s.name, message)
    }

    fn err(&self, line: usize, stage: &str, message: impl Into<String>) -> DagError {
        DagError::Pipeline {
            file: self.file.clone(),
            line,
            stage: Some(stage.to_string()),
            message: message.into(),
        }
    }

    /// Check every stage against `registry`: the kind exists, required params are set,
    /// no param is unknown, every param has its declared type, and no two stages publish
    /// to the same or nested paths.
    pub fn validate(&self, registry: &Registry) -> Result<()> {
        // Each kind's param specs once (they are generated from its params type's schema).
        let mut spec_cache: BTreeMap<&str, Vec<ventral_stage::ParamSpec>> = BTreeMap::new();
        for s in &self.stages {
            let Some(kind) = registry.get(&s.kind) else {
                return Err(self.err(
                    s.line,
                    &s.name,
                    format!(
                        "unknown kind `{}` (known kinds: {})",
                        s.kind,
                        registry.names().join(", ")
                    ),
                ));
            };
            let specs = spec_cache
                .entry(s.kind.as_str())
                .or_insert_with(|| kind.params());
            for (k, v) in &s.params {
                let line = s.param_lines.get(k).copied().unwrap_or(s.line);
                let Some(spec) = specs.iter().find(|p| &p.name == k) else {
                    let known: Vec<&str> = specs.iter().map(|p| p.name.as_str()).collect();
                    return Err(self.err(
                        line,
                        &s.name,
                        format!(
                            "unknown param `{k}` for kind `{}` (it takes: {})",
                            s.kind,
                            if known.is_empty() {
                                "no params".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                };
                if !spec.ty.accepts(v) {
                    return Err(self.err(
                        line,
                        &s.name,
                        format!(
                            "param `{k}` must be {}, got {}",
                            spec.ty.describe(),
                            crate::canonical::to_string(v)
                        ),
                    ));
                }
            }
            for spec in specs.iter().filter(|p| p.required) {
                if !s.params.contains_key(&spec.name) {
                    return Err(self.err(
                        s.line,
                        &s.name,
                        format!("missing required param `{}` ({})", spec.name, spec.doc),
                    ));
                }
            }
            // The kind's own checks of the values, and the runtime its key will declare
            // (a device this build cannot use is an error now, not after upstream ran).
            if let Err(e) = kind
                .check(&s.params)
                .and_then(|()| kind.runtime(&s.params).map(drop))
            {
                return Err(self.stage_error(s, e.to_string()));
            }
        }
        let mut pubs: Vec<(&str, &StageSpec)> = self
            .stages
            .iter()
            .filter_map(|s| s.publish.as_deref().map(|p| (p, s)))
            .collect();
        pubs.sort_by(|a, b| a.0.cmp(b.0));
        for w in pubs.windows(2) {
            let (p1, s1) = w[0];
            let (p2, s2) = w[1];
            if p1 == p2 || p2.starts_with(&format!("{p1}/")) {
                return Err(self.err(
                    s2.line,
                    &s2.name,
                    format!(
                        "publishes to `{p2}`, which stage `{}` also writes (`{p1}`)",
                        s1.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A relative path that stays inside its folder: no empty, `.` or `..` parts.
fn is_inner_path(p: &str) -> bool {
    !p.starts_with('/') && !p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
}

/// A path inside the workspace that names something below its root, outside the store:
/// relative, without empty, `.` or `..` components, not under `.ventral`.
fn is_workspace_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c == ".ventral")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Pipeline> {
        Pipeline::parse(Path::new("p.toml"), src, None)
    }

    fn perr(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn matrix_and_interpolation() {
        let p = parse(
            r#"
[vars]
n = 3
[stages.a]
kind = "cmd"
cmd = "echo ${x} ${vars.n} ${out}"
count = "${vars.n}"
foreach = { x = ["p", "q"], y = [1, 2] }
[stages.b]
kind = "cmd"
cmd = "cat ${inputs.all}"
inputs = { all = "stage:a", one = "stage:a@x=p,y=1/f.txt" }
"#,
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["a@x=p,y=1", "a@x=p,y=2", "a@x=q,y=1", "a@x=q,y=2", "b"]
        );
        assert_eq!(p.stages[2].params["cmd"], "echo q 3 ${out}");
        assert_eq!(
            p.stages[0].params["count"],
            serde_json::json!(3),
            "a whole placeholder keeps its type"
        );
        let b = p.stage("b").unwrap();
        assert_eq!(b.inputs["all"].len(), 4);
        assert_eq!(
            b.inputs["one"],
            vec![InputRef::Stage {
                stage: "a@x=p,y=1".into(),
                sub: Some("f.txt".into())
            }]
        );
    }

    #[test]
    fn table_valued_matrices_are_named_by_their_scalars() {
        let src = r#"
[stages.train]
kind = "cmd"
foreach = [{ variant = "a", model = { times = [1, 1, 1] } }, { variant = "b", model = { skip = false } }]
cmd = "train"
model = "${model}"
"#;
        let p = Pipeline::parse(Path::new("p.toml"), src, None).unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["train@variant=a", "train@variant=b"]);
        assert_eq!(
            p.stage("train@variant=b").unwrap().params["model"]["skip"],
            false
        );
        // A field of a table-valued matrix variable.
        let field = src.replace(
            "model = \"${model}\"",
            "times = \"${model.times}\"\nlabel = \"v ${variant}: ${model.times}\"",
        );
        let p = Pipeline::parse(
            Path::new("p.toml"),
            &field.replace(", { variant = \"b\", model = { skip = false } }", ""),
            None,
        )
        .unwrap();
        assert_eq!(p.stages[0].params["times"], serde_json::json!([1, 1, 1]));
        let bad = field.replace("${model.times}\"\n", "${model.depth}\"\n");
        let e = Pipeline::parse(Path::new("p.toml"), &bad, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`model` has no field `depth`"), "{e}");
        let dup = src.replace("variant = \"b\"", "variant = \"a\"");
        let e = Pipeline::parse(Path::new("p.toml"), &dup, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("both named `train@variant=a`"), "{e}");
    }

    #[test]
    fn profiles_override_vars_and_select_stages() {
        let src = r#"
[pipeline]
name = "demo"
profile = "small"
[vars]
size = 1
[profiles.big]
size = 100
[stages.only_big]
kind = "cmd"
cmd = "x"
profiles = ["big"]
[stages.s]
kind = "cmd"
cmd = "gen ${vars.size}"
"#;
        let small = Pipeline::parse(Path::new("p.toml"), src, None).unwrap();
        assert_eq!(small.stages.len(), 1);
        assert_eq!(small.lockfile_name(), "demo.lock");
        let big = Pipeline::parse(Path::new("p.toml"), src, Some("big")).unwrap();
        assert_eq!(big.stages.len(), 2);
        assert_eq!(big.stage("s").unwrap().params["cmd"], "gen 100");
        assert_eq!(big.lockfile_name(), "demo@big.lock");
        let e = Pipeline::parse(Path::new("p.toml"), src, Some("huge"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no profile `huge`"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_stage() {
        let e = perr("[stages.a]\nkind = \"cmd\"\ncmd = \"${nope}\"\n");
        assert!(
            e.starts_with("p.toml:3: stage `a`: param `cmd`: unknown variable `${nope}`"),
            "{e}"
        );
        let e = perr(
            "[stages.a]\nkind = \"cmd\"\n\n[stages.b]\nkind = \"cmd\"\ninputs = { x = \"stage:zzz\" }\n",
        );
        assert!(
            e.starts_with("p.toml:6: stage `b`: input `x` refers to unknown stage `zzz`"),
            "{e}"
        );
        let e = perr("[stages.a]\nkind = \n");
        assert!(e.starts_with("p.toml:2:"), "{e}");
        let e = perr("[stagez.a]\n");
        assert!(e.contains("unknown field `stagez`"), "{e}");
        let e = perr("[stages.a]\ncmd = \"x\"\n");
        assert!(e.contains("missing `kind`"), "{e}");
        let e = perr("[stages.a]\nkind = \"cmd\"\npublish = \"../x\"\n");
        assert!(e.contains("publish"), "{e}");
        for p in [".", "./", "a//b", "a/./b", ".ventral/x", "/abs"] {
            let e = perr(&format!("[stages.a]\nkind = \"cmd\"\npublish = \"{p}\"\n"));
            assert!(e.contains("publish"), "{p}: {e}");
        }
        assert!(perr("[stages.\"..\"]\nkind = \"cmd\"\n").contains("stage names"));
        let two = "[stages.b]\nkind = \"cmd\"\npublish = \"r/b\"\n[stages.a]\nkind = \"cmd\"\n";
        for i in ["stage:b/../x", "stage:b/./x", "r/b/../../x"] {
            let e = perr(&format!("{two}inputs = {{ x = \"{i}\" }}\n"));
            assert!(e.contains("leaves stage `b`"), "{i}: {e}");
        }
    }

    #[test]
    fn resources_are_read_checked_and_kept_out_of_params() {
        let p = parse(
            r#"
[vars]
part = "gpu"
[stages.a]
kind = "cmd"
cmd = "true"
foreach = { n = [1, 2] }
resources = { cpus = 4, mem = "16G", gpus = 1, time = "2:00:00", partition = "${vars.part}" }
"#,
        )
        .unwrap();
        for s in &p.stages {
            assert_eq!(s.resources.partition.as_deref(), Some("gpu"));
            assert_eq!(s.resources.mem_bytes(), Some(16 << 30));
            assert!(!s.params.contains_key("resources"), "{:?}", s.params);
        }
        for (bad, needle) in [
            ("resources = { mem = \"16Q\" }", "`resources.mem`"),
            ("resources = { gpu = 1 }", "`gpu`"),
            ("resources = { time = \"2h\" }", "`resources.time`"),
            ("resources = 4", "`resources`"),
        ] {
            let e = perr(&format!(
                "[stages.a]\nkind = \"cmd\"\ncmd = \"true\"\n{bad}\n"
            ));
            assert!(e.starts_with("p.toml:4: stage `a`:"), "{bad}: {e}");
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn published_paths_become_stage_inputs() {
        let p = parse(
            r#"
[stages.a]
kind = "cmd"
publish = "results/a"
[stages.b]
kind = "cmd"
inputs = { x = "results/a/sub/f.csv", y = "data/raw.csv" }
"#,
        )
        .unwrap();
        let b = p.stage("b").unwrap();
        assert_eq!(
            b.inputs["x"],
            vec![InputRef::Stage {
                stage: "a".into(),
                sub: Some("sub/f.csv".into())
            }]
        );
        assert_eq!(b.inputs["y"], vec![InputRef::Path("data/raw.csv".into())]);
    }

    #[test]
    fn escapes_and_runtime_placeholders_survive() {
        let p =
            parse("[stages.a]\nkind = \"cmd\"\ncmd = \"echo $${HOME} $PATH ${inputs.x} ${out}\"\n")
                .unwrap();
        assert_eq!(
            p.stages[0].params["cmd"],
            "echo ${HOME} $PATH ${inputs.x} ${out}"
        );
    }
}
