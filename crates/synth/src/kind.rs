//! The `synth` stage kind: the synthetic world as a stage output.
//!
//! ```toml
//! [stages.world]
//! kind = "synth"
//! size = "embedded"           # or "full"; then any WorldConfig field overrides it
//! world = { seed = 0, repetitions = 10 }
//! ```

use serde_json::Value;
use ventral_stage::{BoxError, ParamSpec, ParamType, StageContext, StageKind};

use crate::WorldConfig;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        ty: ParamType::Str,
        required: false,
        doc: "embedded (default) or full",
    },
    ParamSpec {
        name: "world",
        ty: ParamType::Table,
        required: false,
        doc: "WorldConfig fields overriding the size's defaults (seed, repetitions, sites, …)",
    },
];

/// The world's configuration from a stage's params.
pub fn config(params: &serde_json::Map<String, Value>) -> Result<WorldConfig, BoxError> {
    let base = match params
        .get("size")
        .and_then(|v| v.as_str())
        .unwrap_or("embedded")
    {
        "embedded" => WorldConfig::embedded(),
        "full" => WorldConfig::full(),
        other => return Err(format!("param `size`: `{other}` (embedded or full)").into()),
    };
    let mut v = serde_json::to_value(base)?;
    if let (Some(Value::Object(over)), Value::Object(b)) = (params.get("world"), &mut v) {
        for (k, x) in over {
            b.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).map_err(|e| format!("param `world`: {e}").into())
}

/// The `synth` kind.
pub struct SynthKind;

impl StageKind for SynthKind {
    fn name(&self) -> &str {
        "synth"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        PARAMS
    }
    fn check(&self, params: &ventral_stage::Params) -> Result<(), BoxError> {
        config(params).map(drop)
    }
    fn doc(&self) -> &str {
        "the synthetic world: BrainIO catalog (stimulus sets, recordings, behaviour), an ILSVRC2012 tree, COCO, ground truth, manifest"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let cfg = config(ctx.params)?;
        let s = crate::generate(&cfg, ctx.out_dir, ctx.progress)?;
        (ctx.progress)(&format!("{} bytes in {:.1} s", s.bytes, s.seconds));
        Ok(())
    }
}
