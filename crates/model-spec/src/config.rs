//! The model's configuration: the architecture and its circuitry knobs ([`CornetConfig`],
//! the `model` param of the model kinds), without libtorch.

use serde::{Deserialize, Serialize};

pub use crate::zoo::{Family, ZooArch};

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model config `{field}`: {message}")]
pub struct ConfigError {
    /// The knob.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Which network: a member of the CORnet family, or an ImageNet baseline of the zoo
/// ([`crate::zoo`]). Written as its name: `CORnet-S`, …, or torchvision's (`resnet50`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// CORnet-S (recurrent, with skips and per-timestep batch norms).
    S,
    /// CORnet-Z (feedforward).
    Z,
    /// CORnet-R (recurrent; areas updated in sequence within a timestep).
    R,
    /// CORnet-RT (recurrent; every area reads the previous timestep — "real time").
    RT,
    /// A torchvision architecture.
    Zoo(ZooArch),
    /// A user's model as a TorchScript file whose forward returns its layers by name
    /// (`tools/torchscript_layers.py`), run as it is.
    TorchScript,
}

impl Arch {
    /// The name pipelines and `model.json` use.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::S => "CORnet-S",
            Arch::Z => "CORnet-Z",
            Arch::R => "CORnet-R",
            Arch::RT => "CORnet-RT",
            Arch::Zoo(z) => z.name,
            Arch::TorchScript => "torchscript",
        }
    }

    /// The zoo architecture, if this is one.
    pub fn zoo(&self) -> Option<ZooArch> {
        match self {
            Arch::Zoo(z) => Some(*z),
            _ => None,
        }
    }

    /// Every architecture's name.
    pub fn names() -> Vec<&'static str> {
        let mut v = vec!["CORnet-S", "CORnet-Z", "CORnet-R", "CORnet-RT"];
        v.extend(crate::zoo::ZOO.iter().map(|a| a.name));
        v.push("torchscript");
        v
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cornet-s" | "s" => Ok(Arch::S),
            "cornet-z" | "z" => Ok(Arch::Z),
            "cornet-r" | "r" => Ok(Arch::R),
            "cornet-rt" | "rt" => Ok(Arch::RT),
            "torchscript" => Ok(Arch::TorchScript),
            _ => ZooArch::find(s)
                .map(Arch::Zoo)
                .ok_or_else(|| crate::zoo::unknown(s)),
        }
    }
}

impl Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Arch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Arch".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": Arch::names(),
        })
    }
}

/// Where a layer's activations live under an `extract` output, and the area and timestep
/// the store records: `(IT-t1, IT, 1)` for CORnet's `IT.output-t1`, the layer's own name
/// and timestep 0 for a layer of the zoo (`(layer4.1, layer4.1, 0)`).
pub fn store_of(layer: &str) -> (String, String, i64) {
    if let Some((area, rest)) = layer.split_once('.')
        && let Some((_, t)) = rest.rsplit_once("-t")
        && let Ok(t) = t.parse::<i64>()
    {
        return (format!("{area}-t{t}"), area.to_string(), t);
    }
    (layer.to_string(), layer.to_string(), 0)
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
    /// A TorchScript model's layers, in the order its forward returns them (set by
    /// `ventral model import --torchscript`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script_layers: Vec<String>,
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
            script_layers: Vec::new(),
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
            Arch::Zoo(z) => CornetConfig {
                arch,
                resolution: z.resolution(),
                ..CornetConfig::default()
            },
            Arch::TorchScript => CornetConfig {
                arch,
                ..CornetConfig::default()
            },
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
            Arch::R | Arch::RT | Arch::Zoo(_) | Arch::TorchScript => None,
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
        if (self.arch == Arch::TorchScript) == self.script_layers.is_empty() {
            return bad(
                "script_layers",
                if self.arch == Arch::TorchScript {
                    "a TorchScript model lists its layers (`ventral model import --torchscript` does)".into()
                } else {
                    "only a TorchScript model lists its layers".into()
                },
            );
        }
        if self.arch == Arch::TorchScript {
            let d = CornetConfig::default();
            if self.times != d.times
                || self.scale != d.scale
                || self.skip != d.skip
                || self.convs != d.convs
                || self.shared_norm != d.shared_norm
                || self.width != d.width
            {
                return bad(
                    "arch",
                    "a TorchScript model takes only classes, resolution and its layers".into(),
                );
            }
        }
        if let Arch::Zoo(z) = self.arch {
            // CORnet's circuitry knobs mean nothing for a torchvision architecture: refuse
            // them rather than ignore them.
            let d = CornetConfig::default();
            for (field, same) in [
                ("times", self.times == d.times),
                ("scale", self.scale == d.scale),
                ("skip", self.skip == d.skip),
                ("convs", self.convs == d.convs),
                ("shared_norm", self.shared_norm == d.shared_norm),
            ] {
                if !same {
                    return bad(
                        field,
                        format!(
                            "a CORnet knob; `{}` takes only width, classes and resolution",
                            z.name
                        ),
                    );
                }
            }
            let min = z.min_resolution();
            if self.resolution < min {
                return bad(
                    "resolution",
                    format!("{} (`{}` needs ≥ {min} px)", self.resolution, z.name),
                );
            }
        }
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
    /// `decoder.avgpool-t0`; for a zoo architecture its candidate layers
    /// ([`ZooArch::layers`]).
    pub fn layers(&self) -> Vec<String> {
        if let Arch::Zoo(z) = self.arch {
            return z.layers();
        }
        if self.arch == Arch::TorchScript {
            return self.script_layers.clone();
        }
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
