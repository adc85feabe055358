//! The seam between the engine and the code that does the work: [`StageKind`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// A stage's params: names to JSON values (from the pipeline's TOML).
pub type Params = serde_json::Map<String, Value>;

/// The error type stage kinds return; the engine reports it with the stage's name.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The type a param must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `true` / `false`.
    Bool,
    /// An integer.
    Int,
    /// A number (an integer is accepted).
    Float,
    /// A string.
    Str,
    /// An array of strings.
    StrList,
    /// Any array.
    Array,
    /// A table.
    Table,
    /// Anything.
    Any,
}

impl ParamType {
    /// Whether `v` has this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            ParamType::Bool => v.is_boolean(),
            ParamType::Int => v.is_i64() || v.is_u64(),
            ParamType::Float => v.is_number(),
            ParamType::Str => v.is_string(),
            ParamType::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            ParamType::Array => v.is_array(),
            ParamType::Table => v.is_object(),
            ParamType::Any => true,
        }
    }

    /// How to say this type in an error message.
    pub fn describe(self) -> &'static str {
        match self {
            ParamType::Bool => "a boolean",
            ParamType::Int => "an integer",
            ParamType::Float => "a number",
            ParamType::Str => "a string",
            ParamType::StrList => "an array of strings",
            ParamType::Array => "an array",
            ParamType::Table => "a table",
            ParamType::Any => "any value",
        }
    }
}

/// One param a kind accepts, as `ventral kinds` shows it: generated from the kind's params
/// type ([`crate::typed::specs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Its name in the stage table.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
    /// Whether the stage must set it.
    pub required: bool,
    /// One line for `ventral kinds` (the field's doc comment).
    pub doc: String,
    /// The values allowed, for a closed set (an enum); empty otherwise.
    pub allowed: Vec<String>,
    /// Its default, when it has one that is not "unset".
    pub default: Option<Value>,
}

/// A param whose value can only be checked against an upstream output (a layer an
/// imported model does not have, an activation store that is not there), refused by the
/// kind when its stage starts, before any work. The engine reports it as a bad param: the
/// run exits 2, as for a value refused when the pipeline is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The param.
    pub param: String,
    /// What is wrong, with the values allowed.
    pub message: String,
}

impl ParamError {
    /// The error, boxed as kinds return it.
    pub fn boxed(param: impl Into<String>, message: impl Into<String>) -> BoxError {
        Box::new(ParamError {
            param: param.into(),
            message: message.into(),
        })
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "param `{}`: {}", self.param, self.message)
    }
}

impl std::error::Error for ParamError {}

/// What a kind's `run` sees.
pub struct StageContext<'a> {
    /// The stage's (instance) name.
    pub stage: &'a str,
    /// Its params, as written (after interpolation).
    pub params: &'a Params,
    /// Its inputs: for each input name, the paths (files or folders) to read. Stage outputs
    /// are read-only folders in the store.
    pub inputs: &'a BTreeMap<String, Vec<PathBuf>>,
    /// An empty folder to write the output into. Everything in it becomes the output.
    pub out_dir: &'a Path,
    /// The workspace root (the working directory of `cmd` stages).
    pub workspace: &'a Path,
    /// A file for the stage's log.
    pub log: &'a Path,
    /// The runtime the stage's key declares ([`StageKind::runtime`]: library versions and
    /// the device, `auto` already resolved), which the kind must honour.
    pub runtime: Option<&'a str>,
    /// A folder kept between attempts at this stage key, on the store's file system, for
    /// work a killed run can resume (a training run's epoch checkpoints). Created by the
    /// kind when it needs it; the engine removes it once the output is stored.
    pub resume_dir: &'a Path,
    /// The memory the stage asked for (`resources.mem`, in bytes), if it did: a kind that
    /// can trade time for memory (layer PCA at extraction) keeps within it.
    pub memory: Option<u64>,
    /// Report progress (shown in the live display).
    pub progress: &'a (dyn Fn(&str) + Sync),
}

impl StageContext<'_> {
    /// The paths of input `name`, or an error naming it.
    pub fn input(&self, name: &str) -> Result<&[PathBuf], BoxError> {
        self.inputs
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("input `{name}` is required").into())
    }

    /// The one path of input `name` (an error if it is missing or names several).
    pub fn one_input(&self, name: &str) -> Result<&Path, BoxError> {
        match self.input(name)? {
            [p] => Ok(p.as_path()),
            many => Err(format!("input `{name}` must be one path, it is {}", many.len()).into()),
        }
    }

    /// The one path of input `name`, if the stage has that input.
    pub fn optional_input(&self, name: &str) -> Result<Option<&Path>, BoxError> {
        if self.inputs.contains_key(name) {
            self.one_input(name).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A kind of stage: a pure function from (params, inputs) to an output folder.
///
/// Implementations must be deterministic: the same params and input bytes give the same
/// output bytes, whatever the thread count. Timings, hosts and dates go to the log and the
/// progress callback, never into the output. Whatever else their result depends on (a
/// library version, the device) they report through [`StageKind::runtime`], which enters
/// the key.
pub trait StageKind: Send + Sync {
    /// The name used in pipeline files (`cmd`, `score.i2n`, …).
    fn name(&self) -> &str;
    /// The workspace crate that implements the kind; write `ventral_stage::code_crate!();`
    /// in the impl. The kind's code identity is that crate's, computed from its dependency
    /// closure when the registry is built.
    fn code_crate(&self) -> &'static str;
    /// The params it accepts (write `ventral_stage::typed_params!(T);` for a kind whose
    /// params are the type `T`, which also writes [`StageKind::check`]).
    fn params(&self) -> Vec<ParamSpec>;
    /// One line describing it.
    fn doc(&self) -> &str {
        ""
    }
    /// Check the params' values (their JSON types are already checked against
    /// [`StageKind::params`]), before any stage of the pipeline runs. An error names the
    /// param (`param `x`: …`) and the values allowed.
    fn check(&self, _params: &Params) -> Result<(), BoxError> {
        Ok(())
    }
    /// The runtime its result depends on (library versions, CPU/GPU), or `None`. Declared,
    /// not probed: computing it must not load a runtime library (it runs for every
    /// `ventral status`); the stage verifies it when it runs.
    fn runtime(&self, _params: &Params) -> Result<Option<String>, BoxError> {
        Ok(None)
    }
    /// Produce the output in `ctx.out_dir`.
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError>;
}

/// The kinds a binary knows, by name, each with its code identity.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, (Arc<dyn StageKind>, String)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Add a kind with its code identity (replacing one of the same name).
    pub fn register(
        &mut self,
        kind: Arc<dyn StageKind>,
        code_identity: impl Into<String>,
    ) -> &mut Self {
        self.kinds
            .insert(kind.name().to_string(), (kind, code_identity.into()));
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StageKind>> {
        self.kinds.get(name).map(|(k, _)| k)
    }

    /// The code identity of the kind called `name`.
    pub fn code_identity(&self, name: &str) -> Option<&str> {
        self.kinds.get(name).map(|(_, c)| c.as_str())
    }

    /// Every kind with its code identity, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<dyn StageKind>, &str)> {
        self.kinds.values().map(|(k, c)| (k, c.as_str()))
    }

    /// Names of all kinds.
    pub fn names(&self) -> Vec<&str> {
        self.kinds.keys().map(String::as_str).collect()
    }
}
