//! The ImageNet baselines of the paper's comparison, as torchvision defines them: their
//! names, families, candidate layers and input sizes — data only; the networks are built in
//! `ventral-model` under exactly these names.
//!
//! Layer names are torchvision's module names (`features.12`, `layer4.1`,
//! `features.denseblock2`, `Mixed_6e`), so a torchvision state dict loads one to one and a
//! layer means what it means in Brain-Score's PyTorch wrappers, which hook those modules.
//! The candidate layers of an architecture are Brain-Score's list for that model where
//! brainscore-vision 2.4.2 ships a PyTorch plugin for it, else every block's output (see
//! [`ZooArch::layers`]).

use serde::{Deserialize, Serialize};

/// The family of a zoo architecture (what builds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// AlexNet (one weird trick).
    AlexNet,
    /// VGG, configuration A/B/D/E, with or without batch norm.
    Vgg {
        /// Convolutions per stage.
        cfg: &'static [i64],
        /// Batch norm after every convolution (`vgg16_bn`).
        bn: bool,
    },
    /// ResNet v1.5 (stride on the 3 × 3 convolution).
    ResNet {
        /// Bottleneck blocks (ResNet-50 and deeper) instead of basic blocks.
        bottleneck: bool,
        /// Blocks per stage.
        blocks: [usize; 4],
    },
    /// DenseNet-BC.
    DenseNet {
        /// Growth rate.
        growth: i64,
        /// Layers per dense block.
        blocks: [usize; 4],
        /// Channels of the stem.
        init: i64,
    },
    /// SqueezeNet 1.0 or 1.1.
    SqueezeNet {
        /// 1.1 (cheaper stem, earlier pooling) instead of 1.0.
        v1_1: bool,
    },
    /// MobileNet-v2.
    MobileNetV2,
    /// Inception-v3 (with `transform_input`, as torchvision's pretrained model runs).
    InceptionV3,
}

/// `M` in a VGG configuration: a 2 × 2 max pool.
pub const POOL: i64 = 0;
const VGG_A: &[i64] = &[
    64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL,
];
const VGG_B: &[i64] = &[
    64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL,
];
const VGG_D: &[i64] = &[
    64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL,
];
const VGG_E: &[i64] = &[
    64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL, 512, 512,
    512, 512, POOL,
];

/// A zoo architecture: torchvision's name and how it is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZooArch {
    /// torchvision's builder name (`resnet50`).
    pub name: &'static str,
    /// What builds it.
    pub family: Family,
}

/// Every zoo architecture, in the order `ventral model` lists them.
pub const ZOO: &[ZooArch] = &[
    ZooArch {
        name: "alexnet",
        family: Family::AlexNet,
    },
    ZooArch {
        name: "vgg11",
        family: Family::Vgg {
            cfg: VGG_A,
            bn: false,
        },
    },
    ZooArch {
        name: "vgg13",
        family: Family::Vgg {
            cfg: VGG_B,
            bn: false,
        },
    },
    ZooArch {
        name: "vgg16",
        family: Family::Vgg {
            cfg: VGG_D,
            bn: false,
        },
    },
    ZooArch {
        name: "vgg19",
        family: Family::Vgg {
            cfg: VGG_E,
            bn: false,
        },
    },
    ZooArch {
        name: "vgg16_bn",
        family: Family::Vgg {
            cfg: VGG_D,
            bn: true,
        },
    },
    ZooArch {
        name: "vgg19_bn",
        family: Family::Vgg {
            cfg: VGG_E,
            bn: true,
        },
    },
    ZooArch {
        name: "resnet18",
        family: Family::ResNet {
            bottleneck: false,
            blocks: [2, 2, 2, 2],
        },
    },
    ZooArch {
        name: "resnet34",
        family: Family::ResNet {
            bottleneck: false,
            blocks: [3, 4, 6, 3],
        },
    },
    ZooArch {
        name: "resnet50",
        family: Family::ResNet {
            bottleneck: true,
            blocks: [3, 4, 6, 3],
        },
    },
    ZooArch {
        name: "resnet101",
        family: Family::ResNet {
            bottleneck: true,
            blocks: [3, 4, 23, 3],
        },
    },
    ZooArch {
        name: "resnet152",
        family: Family::ResNet {
            bottleneck: true,
            blocks: [3, 8, 36, 3],
        },
    },
    ZooArch {
        name: "densenet121",
        family: Family::DenseNet {
            growth: 32,
            blocks: [6, 12, 24, 16],
            init: 64,
        },
    },
    ZooArch {
        name: "densenet161",
        family: Family::DenseNet {
            growth: 48,
            blocks: [6, 12, 36, 24],
            init: 96,
        },
    },
    ZooArch {
        name: "densenet169",
        family: Family::DenseNet {
            growth: 32,
            blocks: [6, 12, 32, 32],
            init: 64,
        },
    },
    ZooArch {
        name: "densenet201",
        family: Family::DenseNet {
            growth: 32,
            blocks: [6, 12, 48, 32],
            init: 64,
        },
    },
    ZooArch {
        name: "squeezenet1_0",
        family: Family::SqueezeNet { v1_1: false },
    },
    ZooArch {
        name: "squeezenet1_1",
        family: Family::SqueezeNet { v1_1: true },
    },
    ZooArch {
        name: "mobilenet_v2",
        family: Family::MobileNetV2,
    },
    ZooArch {
        name: "inception_v3",
        family: Family::InceptionV3,
    },
];

/// MobileNet-v2's inverted-residual settings: expansion `t`, channels `c`, repeats `n`,
/// first stride `s`.
pub const MOBILENET_V2: [(i64, i64, usize, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, never more than 10 %
/// below `v`.
pub fn make_divisible(v: f64) -> i64 {
    let d = 8.0;
    let mut n = (((v + d / 2.0) as i64) / 8 * 8).max(8);
    if (n as f64) < 0.9 * v {
        n += 8;
    }
    n
}

impl ZooArch {
    /// Look an architecture up by torchvision's name; `-` and `.` are accepted for `_`
    /// (`resnet-50`, `squeezenet1.1`, `mobilenet-v2`), case ignored.
    pub fn find(name: &str) -> Option<ZooArch> {
        let norm = |s: &str| {
            s.to_ascii_lowercase()
                .replace('.', "_")
                .replace("-v", "_v")
                .replace('-', "")
        };
        let n = norm(name);
        ZOO.iter().copied().find(|a| norm(a.name) == n)
    }

    /// The input side Brain-Score feeds this model (Inception-v3: 299, else 224).
    pub fn resolution(&self) -> i64 {
        match self.family {
            Family::InceptionV3 => 299,
            _ => 224,
        }
    }

    /// The smallest input side the network runs on (its strides and pools leave ≥ 1 pixel).
    pub fn min_resolution(&self) -> i64 {
        match self.family {
            Family::AlexNet => 63,
            Family::InceptionV3 => 75,
            _ => 32,
        }
    }

    /// The candidate layers, in forward order: what `extract` writes by default, what layer
    /// commitment chooses from. The last one is the behavioural readout layer (the
    /// penultimate representation, as Brain-Score commits it).
    pub fn layers(&self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.family {
            Family::AlexNet => s(&[
                "features.2",
                "features.5",
                "features.7",
                "features.9",
                "features.12",
                "classifier.2",
                "classifier.5",
            ]),
            Family::Vgg { cfg, bn } => {
                // Brain-Score's `vgg_16` and `vgg_19` lists; for the others the same
                // pattern (every max pool, then fc6 and fc7 before their ReLUs).
                if self.name == "vgg19" {
                    return s(&[
                        "features.4",
                        "features.8",
                        "features.18",
                        "features.27",
                        "features.36",
                        "classifier.0",
                        "classifier.3",
                    ]);
                }
                let mut v = Vec::new();
                let mut i = 0;
                for &c in cfg {
                    i += if c == POOL {
                        1
                    } else if bn {
                        3
                    } else {
                        2
                    };
                    if c == POOL {
                        v.push(format!("features.{}", i - 1));
                    }
                }
                v.push("classifier.0".into());
                v.push("classifier.3".into());
                v
            }
            Family::ResNet { blocks, .. } => {
                let mut v = vec!["conv1".to_string()];
                for (stage, n) in blocks.iter().enumerate() {
                    for unit in 0..*n {
                        v.push(format!("layer{}.{unit}", stage + 1));
                    }
                }
                v.push("avgpool".into());
                v
            }
            Family::DenseNet { blocks, .. } => {
                // Brain-Score's `densenet-121`/`-169` list: every dense layer's new
                // features, every transition's pool.
                let mut v = vec!["features.norm0".to_string(), "features.pool0".to_string()];
                for (b, n) in blocks.iter().enumerate() {
                    for l in 1..=*n {
                        v.push(format!("features.denseblock{}.denselayer{l}", b + 1));
                    }
                    if b < 3 {
                        v.push(format!("features.transition{}.pool", b + 1));
                    }
                }
                v.push("features.norm5".into());
                v
            }
            Family::SqueezeNet { .. } => {
                // No Brain-Score plugin: the stem's pool, every Fire module and pool, and the
                // pooled class map.
                let mut v: Vec<String> = (2..=12).map(|i| format!("features.{i}")).collect();
                v.push("classifier.3".into());
                v
            }
            Family::MobileNetV2 => {
                // Brain-Score wraps only TensorFlow ports: every block of torchvision's, and
                // the pooled features (`classifier.0`, the dropout, is the identity in eval).
                let n: usize = MOBILENET_V2.iter().map(|x| x.2).sum::<usize>() + 2;
                let mut v: Vec<String> = (0..n).map(|i| format!("features.{i}")).collect();
                v.push("classifier.0".into());
                v
            }
            // Brain-Score's plugin wraps timm's copy of these weights (`Pool1`,
            // `global_pool`): every block under torchvision's names.
            Family::InceptionV3 => s(&[
                "Conv2d_1a_3x3",
                "Conv2d_2a_3x3",
                "Conv2d_2b_3x3",
                "maxpool1",
                "Conv2d_3b_1x1",
                "Conv2d_4a_3x3",
                "maxpool2",
                "Mixed_5b",
                "Mixed_5c",
                "Mixed_5d",
                "Mixed_6a",
                "Mixed_6b",
                "Mixed_6c",
                "Mixed_6d",
                "Mixed_6e",
                "Mixed_7a",
                "Mixed_7b",
                "Mixed_7c",
                "avgpool",
            ]),
        }
    }
}

impl Serialize for ZooArch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

impl<'de> Deserialize<'de> for ZooArch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ZooArch::find(&name).ok_or_else(|| serde::de::Error::custom(unknown(&name)))
    }
}

/// The error text for a name that is no architecture.
pub fn unknown(name: &str) -> String {
    format!(
        "unknown architecture `{name}` (CORnet-S, CORnet-Z, CORnet-R, CORnet-RT, {})",
        ZOO.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_the_usual_spellings() {
        for (spelling, name) in [
            ("resnet-50", "resnet50"),
            ("ResNet50", "resnet50"),
            ("squeezenet1.1", "squeezenet1_1"),
            ("mobilenet-v2", "mobilenet_v2"),
            ("densenet-169", "densenet169"),
            ("inception_v3", "inception_v3"),
            ("vgg16_bn", "vgg16_bn"),
        ] {
            assert_eq!(
                ZooArch::find(spelling).map(|a| a.name),
                Some(name),
                "{spelling}"
            );
        }
        assert!(ZooArch::find("resnet51").is_none());
        for a in ZOO {
            assert_eq!(ZooArch::find(a.name), Some(*a));
            let l = a.layers();
            let mut d = l.clone();
            d.dedup();
            assert_eq!(d.len(), l.len(), "{}", a.name);
        }
    }

    #[test]
    fn make_divisible_is_torchvisions() {
        // torchvision: _make_divisible(32 * 1.0, 8) = 32, (32 * 0.5) = 16, (24 * 0.35) = 8,
        // (1280 * 1.0) = 1280, (96 * 0.75) = 72, (160 * 0.35) = 56.
        assert_eq!(make_divisible(32.0), 32);
        assert_eq!(make_divisible(16.0), 16);
        assert_eq!(make_divisible(24.0 * 0.35), 8);
        assert_eq!(make_divisible(1280.0), 1280);
        assert_eq!(make_divisible(72.0), 72);
        assert_eq!(make_divisible(160.0 * 0.35), 56);
    }

    #[test]
    fn vgg_layers_are_the_pools() {
        let v = ZooArch::find("vgg16").unwrap().layers();
        assert_eq!(
            v,
            [
                "features.4",
                "features.9",
                "features.16",
                "features.23",
                "features.30",
                "classifier.0",
                "classifier.3"
            ]
        );
        assert_eq!(ZooArch::find("densenet121").unwrap().layers().len(), 64);
        assert_eq!(ZooArch::find("densenet169").unwrap().layers().len(), 88);
        assert_eq!(ZooArch::find("resnet101").unwrap().layers().len(), 35);
        assert_eq!(ZooArch::find("resnet152").unwrap().layers().len(), 52);
        let v = ZooArch::find("vgg16_bn").unwrap().layers();
        assert_eq!(v[0], "features.6");
        assert_eq!(v[4], "features.43");
    }
}
