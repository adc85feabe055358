//! The CORnet family in tch, with the official module and parameter names.
//!
//! CORnet-S follows SPEC "CORnet-S" exactly (53,416,616 parameters at the defaults): `V1`
//! (conv 7×7/2 → BN → ReLU → maxpool → conv 3×3 → BN → ReLU), three `CORblock_S` areas
//! (`V2` ×2, `V4` ×4, `IT` ×2 timesteps, expansion 4, batch norms per timestep, the 3×3
//! convolution strided at t = 0 only, a strided 1×1 skip at t = 0 and the identity after)
//! and a decoder (adaptive average pool → linear). The circuitry knobs of the paper's Fig. 4
//! are [`CornetConfig`] fields; at their defaults the names and shapes are the official
//! state dict's (`V1.conv1.weight`, `V2.norm1_0.running_mean`, `decoder.linear.bias`, …).
//!
//! CORnet-Z is the feedforward baseline (per area: conv → ReLU → maxpool). CORnet-R and
//! CORnet-RT (dicarlolab/CORnet) share one block — strided input convolution with group
//! norm, a recurrent 3 × 3 convolution on input + state — and run the whole network for 5
//! timesteps; in CORnet-R the areas update in sequence within a timestep, in CORnet-RT each
//! reads the previous timestep (areas above V1 start from zeros).

use std::collections::HashSet;

use tch::Tensor;
use tch::nn::{self, ModuleT};

use crate::error::Result;
use crate::zoo::{Recorder, ZooNet};

pub use ventral_model_spec::config::{Arch, CornetConfig};

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64, bias: bool) -> nn::Conv2D {
    nn::conv2d(
        p,
        i,
        o,
        k,
        nn::ConvConfig {
            stride,
            padding,
            bias,
            ..Default::default()
        },
    )
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

/// One `CORblock_S`.
#[derive(Debug)]
struct BlockS {
    conv_input: nn::Conv2D,
    skip: Option<(nn::Conv2D, nn::BatchNorm)>,
    conv1: Option<nn::Conv2D>,
    conv2: nn::Conv2D,
    conv3: Option<nn::Conv2D>,
    /// `norms[t] = (norm1_t, norm2_t, norm3_t)`; one entry when shared. `norm1` is absent
    /// with fewer than three convolutions, `norm3` with one.
    norms: Vec<(Option<nn::BatchNorm>, nn::BatchNorm, Option<nn::BatchNorm>)>,
    times: usize,
}

impl BlockS {
    fn new(p: nn::Path, i: i64, o: i64, times: usize, cfg: &CornetConfig) -> BlockS {
        let s = cfg.scale;
        let conv_input = conv(&p / "conv_input", i, o, 1, 1, 0, false);
        let skip = cfg.skip.then(|| {
            (
                conv(&p / "skip", o, o, 1, 2, 0, false),
                bn(&p / "norm_skip", o),
            )
        });
        // Channels after each convolution for 3, 2 and 1 convolutions per block.
        let (conv1, c2_in, c2_out, conv3) = match cfg.convs {
            3 => (
                Some(conv(&p / "conv1", o, o * s, 1, 1, 0, false)),
                o * s,
                o * s,
                Some(conv(&p / "conv3", o * s, o, 1, 1, 0, false)),
            ),
            2 => (
                None,
                o,
                o * s,
                Some(conv(&p / "conv3", o * s, o, 1, 1, 0, false)),
            ),
            _ => (None, o, o, None),
        };
        let conv2 = conv(&p / "conv2", c2_in, c2_out, 3, 2, 1, false);
        let sets = if cfg.shared_norm { 1 } else { times };
        let norms = (0..sets)
            .map(|t| {
                let suffix = if cfg.shared_norm {
                    String::new()
                } else {
                    format!("_{t}")
                };
                (
                    conv1
                        .as_ref()
                        .map(|_| bn(&p / format!("norm1{suffix}"), o * s)),
                    bn(&p / format!("norm2{suffix}"), c2_out),
                    conv3.as_ref().map(|_| bn(&p / format!("norm3{suffix}"), o)),
                )
            })
            .collect();
        BlockS {
            conv_input,
            skip,
            conv1,
            conv2,
            conv3,
            norms,
            times,
        }
    }

    /// Every timestep's output.
    fn forward(&self, inp: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = inp.apply(&self.conv_input);
        let mut outs = Vec::with_capacity(self.times);
        for t in 0..self.times {
            let (n1, n2, n3) = &self.norms[t.min(self.norms.len() - 1)];
            let skip = match (&self.skip, t) {
                (Some((c, n)), 0) => Some(x.apply(c).apply_t(n, train)),
                (Some(_), _) => Some(x.shallow_clone()),
                (None, _) => None,
            };
            let stride = if t == 0 { 2 } else { 1 };
            let mut y = x.shallow_clone();
            if let (Some(c1), Some(n1)) = (&self.conv1, n1) {
                y = y.apply(c1).apply_t(n1, train).relu();
            }
            y = y
                .conv2d(
                    &self.conv2.ws,
                    None::<Tensor>,
                    [stride, stride],
                    [1, 1],
                    [1, 1],
                    1,
                )
                .apply_t(n2, train);
            if let (Some(c3), Some(n3)) = (&self.conv3, n3) {
                y = y.relu().apply(c3).apply_t(n3, train);
            }
            if let Some(s) = skip {
                y += s;
            }
            x = y.relu();
            outs.push(x.shallow_clone());
        }
        outs
    }
}

/// One `CORblock_R` / `CORblock_RT` (the same modules; the networks differ in timing).
#[derive(Debug)]
struct BlockR {
    conv_input: nn::Conv2D,
    norm_input: nn::GroupNorm,
    conv1: nn::Conv2D,
    norm1: nn::GroupNorm,
    channels: i64,
}

impl BlockR {
    fn new(p: nn::Path, i: i64, o: i64, k: i64, stride: i64) -> BlockR {
        BlockR {
            conv_input: conv(&p / "conv_input", i, o, k, stride, k / 2, true),
            norm_input: nn::group_norm(&p / "norm_input", 32, o, Default::default()),
            conv1: conv(&p / "conv1", o, o, 3, 1, 1, false),
            norm1: nn::group_norm(&p / "norm1", 32, o, Default::default()),
            channels: o,
        }
    }

    /// `(output, state)` from an input (or none: zeros of `shape`) and the previous state.
    fn step(
        &self,
        inp: Option<&Tensor>,
        state: Option<&Tensor>,
        zeros: (i64, i64, tch::Device),
    ) -> Tensor {
        let x = match inp {
            Some(x) => x.apply(&self.conv_input).apply(&self.norm_input).relu(),
            None => Tensor::zeros(
                [zeros.0, self.channels, zeros.1, zeros.1],
                (tch::Kind::Float, zeros.2),
            ),
        };
        let skip = match state {
            Some(s) => x + s,
            None => x,
        };
        skip.apply(&self.conv1).apply(&self.norm1).relu()
    }
}

/// One `CORblock_Z`.
#[derive(Debug)]
struct BlockZ {
    conv: nn::Conv2D,
}

impl BlockZ {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per model, built once
enum Body {
    S {
        v1_conv1: nn::Conv2D,
        v1_norm1: nn::BatchNorm,
        v1_conv2: nn::Conv2D,
        v1_norm2: nn::BatchNorm,
        areas: Vec<BlockS>,
    },
    Z {
        areas: Vec<BlockZ>,
    },
    R {
        areas: Vec<BlockR>,
        realtime: bool,
    },
    Zoo(ZooNet),
    /// A TorchScript module whose forward returns a dict of layer outputs and `output`.
    Script(tch::CModule),
}

/// A CORnet with its variables in a [`nn::VarStore`] under the official names.
#[derive(Debug)]
pub struct Cornet {
    /// The configuration it was built with.
    pub config: CornetConfig,
    body: Body,
    /// CORnet's decoder (a zoo network has its own classifier).
    linear: Option<nn::Linear>,
}

/// The outputs of one forward pass with every registered layer.
pub struct Outputs {
    /// `(layer name, activation)` in [`CornetConfig::layers`] order.
    pub layers: Vec<(String, Tensor)>,
    /// The logits.
    pub logits: Tensor,
}

impl Cornet {
    /// Build under `root` (normally `vs.root()`).
    pub fn new(root: &nn::Path, config: &CornetConfig) -> Result<Cornet> {
        config.validate()?;
        let [c1, c2, c4, ci] = config.channels();
        let body = match config.arch {
            Arch::S => {
                let v1 = root / "V1";
                Body::S {
                    v1_conv1: conv(&v1 / "conv1", 3, c1, 7, 2, 3, false),
                    v1_norm1: bn(&v1 / "norm1", c1),
                    v1_conv2: conv(&v1 / "conv2", c1, c1, 3, 1, 1, false),
                    v1_norm2: bn(&v1 / "norm2", c1),
                    areas: vec![
                        BlockS::new(root / "V2", c1, c2, config.times[0], config),
                        BlockS::new(root / "V4", c2, c4, config.times[1], config),
                        BlockS::new(root / "IT", c4, ci, config.times[2], config),
                    ],
                }
            }
            Arch::R | Arch::RT => Body::R {
                areas: vec![
                    BlockR::new(root / "V1", 3, c1, 7, 4),
                    BlockR::new(root / "V2", c1, c2, 3, 2),
                    BlockR::new(root / "V4", c2, c4, 3, 2),
                    BlockR::new(root / "IT", c4, ci, 3, 2),
                ],
                realtime: config.arch == Arch::RT,
            },
            Arch::Zoo(z) => Body::Zoo(ZooNet::new(root, z, config.width, config.classes)),
            Arch::TorchScript => {
                return Err(crate::ModelError::Config {
                    field: "arch".into(),
                    message: "a TorchScript model is opened from its file (`ventral model import --torchscript`), not built".into(),
                });
            }
            Arch::Z => {
                let block = |name: &str, i, o, k, s| BlockZ {
                    conv: conv(&(root / name) / "conv", i, o, k, s, k / 2, true),
                };
                Body::Z {
                    areas: vec![
                        block("V1", 3, c1, 7, 2),
                        block("V2", c1, c2, 3, 1),
                        block("V4", c2, c4, 3, 1),
                        block("IT", c4, ci, 3, 1),
                    ],
                }
            }
        };
        let linear = config.arch.zoo().is_none().then(|| {
            nn::linear(
                &(root / "decoder") / "linear",
                ci,
                config.classes,
                Default::default(),
            )
        });
        Ok(Cornet {
            config: config.clone(),
            body,
            linear,
        })
    }

    fn run(&self, x: &Tensor, train: bool, wanted: Option<&HashSet<String>>) -> Outputs {
        if let Body::Script(m) = &self.body {
            return script_forward(m, x, wanted);
        }
        if let Body::Zoo(net) = &self.body {
            let mut rec = Recorder::new(wanted);
            let logits = net.run(x, train, &mut rec);
            return Outputs {
                layers: rec.out,
                logits,
            };
        }
        let keep = wanted.is_some();
        let mut layers = Vec::new();
        let it = match &self.body {
            Body::S {
                v1_conv1,
                v1_norm1,
                v1_conv2,
                v1_norm2,
                areas,
            } => {
                let v1 = x
                    .apply(v1_conv1)
                    .apply_t(v1_norm1, train)
                    .relu()
                    .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
                    .apply(v1_conv2)
                    .apply_t(v1_norm2, train)
                    .relu();
                if keep {
                    layers.push(("V1.output-t0".to_string(), v1.shallow_clone()));
                }
                let mut h = v1;
                for (area, block) in ["V2", "V4", "IT"].iter().zip(areas) {
                    let outs = block.forward(&h, train);
                    h = outs[outs.len() - 1].shallow_clone();
                    if keep {
                        for (t, o) in outs.into_iter().enumerate() {
                            layers.push((format!("{area}.output-t{t}"), o));
                        }
                    }
                }
                h
            }
            Body::R { areas, realtime } => {
                // Spatial sizes of the zero inputs at t = 0 (56, 28, 14, 7 at 224 px).
                let n = x.size()[0];
                let mut side = (x.size()[3] - 1) / 4 + 1;
                let mut sides = vec![side];
                for _ in 1..4 {
                    side = (side - 1) / 2 + 1;
                    sides.push(side);
                }
                let names = ["V1", "V2", "V4", "IT"];
                let times = self.config.times[0];
                let mut outputs: Vec<Tensor> = Vec::with_capacity(4);
                let mut states: Vec<Tensor> = Vec::with_capacity(4);
                for (b, block) in areas.iter().enumerate() {
                    let inp = (b == 0).then_some(x);
                    let out = block.step(inp, None, (n, sides[b], x.device()));
                    if keep {
                        layers.push((format!("{}.output-t0", names[b]), out.shallow_clone()));
                    }
                    states.push(out.shallow_clone());
                    outputs.push(out);
                }
                for t in 1..times {
                    // CORnet-RT: every area reads the previous timestep's outputs; CORnet-R:
                    // the areas update in order, each reading the one below at this step.
                    let previous: Vec<Tensor> = outputs.iter().map(Tensor::shallow_clone).collect();
                    for (b, block) in areas.iter().enumerate() {
                        let below = if b == 0 {
                            x.shallow_clone()
                        } else if *realtime {
                            previous[b - 1].shallow_clone()
                        } else {
                            outputs[b - 1].shallow_clone()
                        };
                        let out =
                            block.step(Some(&below), Some(&states[b]), (n, sides[b], x.device()));
                        if keep {
                            layers.push((format!("{}.output-t{t}", names[b]), out.shallow_clone()));
                        }
                        states[b] = out.shallow_clone();
                        outputs[b] = out;
                    }
                }
                if keep {
                    // Registered in area order, as CornetConfig::layers lists them.
                    layers.sort_by_key(|(name, _)| {
                        let area = names.iter().position(|a| name.starts_with(a)).unwrap_or(0);
                        let t: usize = name
                            .rsplit("-t")
                            .next()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        (area, t)
                    });
                }
                outputs[3].shallow_clone()
            }
            Body::Z { areas } => {
                let mut h = x.shallow_clone();
                for (area, block) in ["V1", "V2", "V4", "IT"].iter().zip(areas) {
                    h = block.forward(&h);
                    if keep {
                        layers.push((format!("{area}.output-t0"), h.shallow_clone()));
                    }
                }
                h
            }
            Body::Zoo(_) | Body::Script(_) => unreachable!("handled above"),
        };
        let pooled = it.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        if keep {
            layers.push(("decoder.avgpool-t0".to_string(), pooled.shallow_clone()));
        }
        let logits = match &self.linear {
            Some(l) => pooled.apply(l),
            None => pooled,
        };
        if let Some(w) = wanted {
            layers.retain(|(name, _)| w.contains(name));
        }
        Outputs { layers, logits }
    }

    /// A TorchScript model (its configuration lists its layers).
    pub(crate) fn from_script(config: CornetConfig, m: tch::CModule) -> Cornet {
        Cornet {
            config,
            body: Body::Script(m),
            linear: None,
        }
    }

    /// A TorchScript model's parameter count (`None` for a network built here).
    pub(crate) fn script_parameters(&self) -> Option<i64> {
        match &self.body {
            Body::Script(m) => Some(crate::script_parameter_count(m)),
            _ => None,
        }
    }

    /// Every registered layer and the logits (evaluation mode unless `train`).
    pub fn forward_layers(&self, x: &Tensor, train: bool) -> Outputs {
        let all: HashSet<String> = self.config.layers().into_iter().collect();
        self.run(x, train, Some(&all))
    }

    /// The layers named in `layers` (all registered layers when empty), in forward order,
    /// and the logits. A zoo network keeps only those alive.
    pub fn forward_selected(&self, x: &Tensor, train: bool, layers: &[String]) -> Outputs {
        if layers.is_empty() {
            return self.forward_layers(x, train);
        }
        let set: HashSet<String> = layers.iter().cloned().collect();
        self.run(x, train, Some(&set))
    }
}

/// Run a TorchScript module made by `tools/torchscript_layers.py`: its forward returns a
/// `Dict[str, Tensor]` of layer outputs in order, and the model's output as `output`. A
/// module that fails, or returns anything else, panics with what it returned — as a failing
/// libtorch operation does; `import_torchscript` has run it once before it is stored.
fn script_forward(m: &tch::CModule, x: &Tensor, wanted: Option<&HashSet<String>>) -> Outputs {
    let out = m
        .forward_is(&[tch::IValue::Tensor(x.shallow_clone())])
        .unwrap_or_else(|e| panic!("the TorchScript model's forward failed: {e}"));
    let (layers, logits) = crate::script_outputs(out)
        .unwrap_or_else(|e| panic!("the TorchScript model's forward: {e}"));
    Outputs {
        layers: layers
            .into_iter()
            .filter(|(n, _)| wanted.is_some_and(|w| w.contains(n)))
            .collect(),
        logits,
    }
}

impl ModuleT for Cornet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.run(xs, train, None).logits
    }
}

/// Trainable parameters of a variable store (batch-norm running statistics excluded), per
/// top-level module, in name order.
pub fn parameter_counts(vs: &nn::VarStore) -> Vec<(String, i64)> {
    let mut per: std::collections::BTreeMap<String, i64> = Default::default();
    for (name, t) in vs.variables() {
        if !t.requires_grad() {
            continue;
        }
        let top = name.split('.').next().unwrap_or_default().to_string();
        *per.entry(top).or_default() += t.numel() as i64;
    }
    per.into_iter().collect()
}

/// He-normal convolution weights, unit/zero batch norms — the official initialisation —
/// drawn from torch's generator (seed it with `tch::manual_seed`).
pub fn init_official(vs: &nn::VarStore) {
    he_normal_in_name_order(vs, |name, t| {
        if name.contains("norm") && name.ends_with(".weight") {
            let _ = t.fill_(1.0);
        } else if name.contains("norm") && name.ends_with(".bias") {
            let _ = t.zero_();
        }
    });
}

/// Every 4-D `.weight` He-normal (fan-out: `std = sqrt(2 / (out · kh · kw))`), and `other`
/// called on every other variable, in name order: the draws must not depend on a hash map's
/// iteration order.
pub(crate) fn he_normal_in_name_order(vs: &nn::VarStore, other: impl Fn(&str, &mut Tensor)) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut t) in vars {
            let size = t.size();
            if name.ends_with(".weight") && size.len() == 4 {
                let n = (size[0] * size[2] * size[3]) as f64;
                let _ = t.normal_(0.0, (2.0 / n).sqrt());
            } else {
                other(&name, &mut t);
            }
        }
    });
}
