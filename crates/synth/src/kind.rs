//! The `synth` stage kind: the synthetic world as a stage output.
//!
//! ```toml
//! [stages.world]
//! kind = "synth"
//! size = "embedded"           # or "full"; then any WorldConfig field overrides it
//! world = { seed = 0, repetitions = 10 }
//! ```

use serde_json::Value;
use ventral_stage::{BoxError, KindParams, Params, StageContext, StageKind};

use crate::WorldConfig;

/// The world's size: the base the `world` table overrides.
#[derive(
    Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The embedded world (tests, `make reproduce-paper`).
    #[default]
    Embedded,
    /// The paper's sizes.
    Full,
}

/// The params of `synth`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthParams {
    /// The world's size (embedded or full); the `world` table overrides its fields.
    #[serde(default)]
    pub size: Size,
    /// WorldConfig fields overriding the size's defaults (seed, repetitions, sites, …).
    #[serde(default)]
    pub world: Params,
}

impl SynthParams {
    /// The world's configuration.
    pub fn config(&self) -> Result<WorldConfig, String> {
        let base = match self.size {
            Size::Embedded => WorldConfig::embedded(),
            Size::Full => WorldConfig::full(),
        };
        let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
        if let Value::Object(b) = &mut v {
            for (k, x) in &self.world {
                b.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).map_err(|e| format!("param `world`: {e}"))
    }
}

impl KindParams for SynthParams {
    fn check(&self) -> Result<(), String> {
        self.config().map(drop)
    }
}

/// The world's configuration from a stage's params.
pub fn config(params: &Params) -> Result<WorldConfig, BoxError> {
    Ok(ventral_stage::typed::parse::<SynthParams>(params)?.config()?)
}

/// The `synth` kind.
pub struct SynthKind;

impl StageKind for SynthKind {
    fn name(&self) -> &str {
        "synth"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(SynthParams);
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
