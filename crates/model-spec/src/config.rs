//! The model's configuration: the architecture and its circuitry knobs ([`CornetConfig`],
//! the `model` param of the model kinds), without libtorch.

use serde::{Deserialize, Serialize};

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model config `{field}`: {message}")]
pub struct ConfigError {
    /// The knob.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Arch {
    /// CORnet-S (recurrent, with skips and per-timestep batch norms).
    #[serde(rename = "CORnet-S")]
    S,
    /// CORnet-Z (feedforward).
    #[serde(rename = "CORnet-Z")]
    Z,
    /// CORnet-R (recurrent; areas updated in sequence within a timestep).
    #[serde(rename = "CORnet-R")]
    R,
    /// CORnet-RT (recurrent; every area reads the previous timestep — "real time").
    #[serde(rename = "CORnet-RT")]
    RT,
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cornet-s" | "s" => Ok(Arch::S),
            "cornet-z" | "z" => Ok(Arch::Z),
            "cornet-r" | "r" => Ok(Arch::R),
            "cornet-rt" | "rt" => Ok(Arch::RT),
            other => Err(format!(
                "unknown architecture `{other}` (CORnet-S, CORnet-Z, CORnet-R or CORnet-RT)"
            )),
        }
    }
}

/// Architecture and circuitry knobs (the paper's Fig. 4 variants).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CornetConfig {
    /// The architecture.
    pub arch: Arch,
    /// Timesteps of V2, V4, IT (CORnet-S: 2, 4, 2). CORnet-R and CORnet-RT run the whole
    /// network for `times[0]` timesteps (5).
    pub times: [usize; 3],
    /// Expansion of the bottleneck convolutions (4).
    pub scale: i64,
    /// The skip connection in each block (on).
    pub skip: bool,
    /// Convolutions per block: 3 (1×1 expand, 3×3, 1×1 reduce), 2 (3×3 expand, 1×1 reduce)
    /// or 1 (one 3×3).
    pub convs: usize,
    /// One set of batch norms shared by all timesteps instead of one per timestep.
    pub shared_norm: bool,
    /// Channel width multiplier (1.0 = 64, 128, 256, 512).
    pub width: f64,
    /// Output classes (1000).
    pub classes: i64,
    /// Input resolution in pixels (224).
    pub resolution: i64,
}

impl Default for CornetConfig {
    fn default() -> Self {
        CornetConfig {
            arch: Arch::S,
            times: [2, 4, 2],
            scale: 4,
            skip: true,
            convs: 3,
            shared_norm: false,
            width: 1.0,
            classes: 1000,
            resolution: 224,
        }
    }
}

impl CornetConfig {
    /// CORnet-Z at the official sizes.
    pub fn z() -> Self {
        CornetConfig {
            arch: Arch::Z,
            times: [1, 1, 1],
            ..CornetConfig::default()
        }
    }

    /// CORnet-R at the official sizes (5 timesteps).
    pub fn r() -> Self {
        CornetConfig {
            arch: Arch::R,
            times: [5, 5, 5],
            ..CornetConfig::default()
        }
    }

    /// CORnet-RT at the official sizes (5 timesteps).
    pub fn rt() -> Self {
        CornetConfig {
            arch: Arch::RT,
            ..CornetConfig::r()
        }
    }

    /// The configuration an architecture starts from.
    pub fn for_arch(arch: Arch) -> Self {
        match arch {
            Arch::S => CornetConfig::default(),
            Arch::Z => CornetConfig::z(),
            Arch::R => CornetConfig::r(),
            Arch::RT => CornetConfig::rt(),
        }
    }

    /// Depth as the paper's Fig. 3 counts it: the convolutions and linear layers on the
    /// longest path from image to logits, with the recurrent areas unrolled in time.
    /// CORnet-S: V1's 2 convolutions, per area the input convolution plus `convs` per
    /// timestep, and the decoder's linear layer (standard: 2 + 7 + 13 + 7 + 1 = 30);
    /// CORnet-Z: 5. `None` for CORnet-R/RT, whose unrolled graph this does not model.
    pub fn depth(&self) -> Option<usize> {
        match self.arch {
            Arch::S => Some(2 + self.times.iter().map(|t| 1 + t * self.convs).sum::<usize>() + 1),
            Arch::Z => Some(5),
            Arch::R | Arch::RT => None,
        }
    }

    /// The channels of V1, V2, V4, IT.
    pub fn channels(&self) -> [i64; 4] {
        [64, 128, 256, 512].map(|c| ((c as f64 * self.width).round() as i64).max(1))
    }

    /// Check the knobs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, msg: String| {
            Err(ConfigError {
                field: field.into(),
                message: msg,
            })
        };
        if self.times.contains(&0) {
            return bad(
                "times",
                format!("{:?}: every area needs ≥ 1 timestep", self.times),
            );
        }
        if !(1..=3).contains(&self.convs) {
            return bad("convs", format!("{} (1, 2 or 3)", self.convs));
        }
        if self.scale < 1 {
            return bad("scale", format!("{} (≥ 1)", self.scale));
        }
        if !(self.width > 0.0 && self.width <= 16.0) {
            return bad("width", format!("{} (0 < width ≤ 16)", self.width));
        }
        if self.classes < 1 {
            return bad("classes", format!("{}", self.classes));
        }
        if self.resolution < 16 {
            return bad("resolution", format!("{} (≥ 16 px)", self.resolution));
        }
        if matches!(self.arch, Arch::R | Arch::RT) && self.channels().iter().any(|c| c % 32 != 0) {
            return bad(
                "width",
                format!(
                    "{}: CORnet-R/RT's group norms need channels divisible by 32 ({:?})",
                    self.width,
                    self.channels()
                ),
            );
        }
        Ok(())
    }

    /// The registered layers, in order: `V1.output-t0`, `V2.output-t0`, …,
    /// `decoder.avgpool-t0`.
    pub fn layers(&self) -> Vec<String> {
        if matches!(self.arch, Arch::R | Arch::RT) {
            let mut v = Vec::new();
            for area in ["V1", "V2", "V4", "IT"] {
                for k in 0..self.times[0] {
                    v.push(format!("{area}.output-t{k}"));
                }
            }
            v.push("decoder.avgpool-t0".into());
            return v;
        }
        let mut v = vec!["V1.output-t0".to_string()];
        for (area, t) in ["V2", "V4", "IT"].iter().zip(self.times) {
            let t = if self.arch == Arch::Z { 1 } else { t };
            for k in 0..t {
                v.push(format!("{area}.output-t{k}"));
            }
        }
        v.push("decoder.avgpool-t0".into());
        v
    }
}
