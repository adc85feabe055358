//! The torchvision architectures of the paper's comparison in tch, under torchvision's
//! module and parameter names (`features.0.weight`, `layer1.0.bn1.running_mean`,
//! `features.denseblock1.denselayer1.norm1.weight`, `Mixed_5b.branch1x1.conv.weight`), so
//! a torchvision state dict loads one to one, and every candidate layer
//! ([`ZooArch::layers`]) is recorded where Brain-Score's PyTorch hooks sit: the output of
//! the module of that name.
//!
//! The forward passes are torchvision 0.26's, operation for operation (ReLUs are not
//! in place here, so a hooked convolution's output is its pre-activation value, as
//! Brain-Score's hook copies it). `width` scales every channel count (MobileNet-v2: its own
//! `width_mult`, rounded to multiples of 8); at 1.0 the shapes are torchvision's.
//! Inception-v3 runs with `transform_input` (as torchvision's pretrained model does); its
//! auxiliary classifier holds weights (so checkpoints load) but is not trained here.

use std::collections::HashSet;

use tch::nn;
use tch::{Kind, Tensor};

use ventral_model_spec::zoo::{Family, MOBILENET_V2, POOL, ZooArch, make_divisible};

/// Collects the outputs of the layers asked for.
pub(crate) struct Recorder<'a> {
    keep: Option<&'a HashSet<String>>,
    /// `(layer, output)` in forward order.
    pub out: Vec<(String, Tensor)>,
}

impl<'a> Recorder<'a> {
    /// Keep the layers in `keep` (none when `None`).
    pub fn new(keep: Option<&'a HashSet<String>>) -> Self {
        Recorder {
            keep,
            out: Vec::new(),
        }
    }

    /// Keep `t` as layer `name` if asked for; whether it was kept (a kept tensor must not be
    /// changed in place afterwards: the record shares its storage).
    fn put(&mut self, name: &str, t: &Tensor) -> bool {
        if self.keep.is_some_and(|k| k.contains(name)) {
            self.out.push((name.to_string(), t.shallow_clone()));
            return true;
        }
        false
    }
}

type Conv = nn::Conv2D;

#[allow(clippy::too_many_arguments)]
fn conv_k(
    p: nn::Path,
    i: i64,
    o: i64,
    k: [i64; 2],
    stride: i64,
    pad: [i64; 2],
    groups: i64,
    bias: bool,
) -> Conv {
    nn::conv(
        p,
        i,
        o,
        k,
        nn::ConvConfigND::<[i64; 2]> {
            stride: [stride, stride],
            padding: pad,
            groups,
            bias,
            ..Default::default()
        },
    )
}

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, pad: i64, bias: bool) -> Conv {
    conv_k(p, i, o, [k, k], stride, [pad, pad], 1, bias)
}

fn bn(p: nn::Path, c: i64, eps: f64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            eps,
            ..Default::default()
        },
    )
}

fn linear(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    nn::linear(p, i, o, Default::default())
}

/// One child of a `Sequential`.
#[derive(Debug)]
enum Op {
    Conv(Conv),
    Bn(nn::BatchNorm),
    Relu,
    Relu6,
    MaxPool { k: i64, s: i64, p: i64, ceil: bool },
    Dropout(f64),
    Linear(nn::Linear),
    AdaptiveAvg(i64),
    Fire(Box<Fire>),
    Inverted(Box<Inverted>),
    Cna(Box<Seq>),
}

impl Op {
    fn run(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Op::Conv(c) => x.apply(c),
            Op::Bn(b) => x.apply_t(b, train),
            Op::Relu => x.relu(),
            Op::Relu6 => x.clamp(0.0, 6.0),
            Op::MaxPool { k, s, p, ceil } => {
                x.max_pool2d([*k, *k], [*s, *s], [*p, *p], [1, 1], *ceil)
            }
            Op::Dropout(p) => x.dropout(*p, train),
            Op::Linear(l) => x.apply(l),
            Op::AdaptiveAvg(s) => x.adaptive_avg_pool2d([*s, *s]),
            Op::Fire(f) => f.run(x, train),
            Op::Inverted(b) => b.run(x, train),
            Op::Cna(s) => s.run(x, train, &mut Recorder::new(None)),
        }
    }
}

/// An `nn.Sequential`: children named `<name>.<index>`.
#[derive(Debug)]
struct Seq {
    name: String,
    ops: Vec<Op>,
}

impl Seq {
    fn new(name: &str) -> Seq {
        Seq {
            name: name.to_string(),
            ops: Vec::new(),
        }
    }

    fn run(&self, x: &Tensor, train: bool, rec: &mut Recorder) -> Tensor {
        let mut h = x.shallow_clone();
        // The input belongs to the caller: never changed in place.
        let mut shared = true;
        for (i, op) in self.ops.iter().enumerate() {
            h = match op {
                // In place, as torchvision's ReLU(inplace=True), unless the tensor is a
                // recorded layer (or the caller's).
                Op::Relu if !shared => h.relu_(),
                Op::Relu6 if !shared => h.clamp_(0.0, 6.0),
                _ => op.run(&h, train),
            };
            shared = !self.name.is_empty() && rec.put(&format!("{}.{i}", self.name), &h);
        }
        h
    }
}

/// A `Conv2dNormActivation` (convolution without bias, batch norm, ReLU6) under `p`.
fn cna(p: &nn::Path, i: i64, o: i64, k: i64, stride: i64, groups: i64) -> Seq {
    Seq {
        name: String::new(),
        ops: vec![
            Op::Conv(conv_k(
                p / "0",
                i,
                o,
                [k, k],
                stride,
                [(k - 1) / 2; 2],
                groups,
                false,
            )),
            Op::Bn(bn(p / "1", o, 1e-5)),
            Op::Relu6,
        ],
    }
}

/// SqueezeNet's Fire module.
#[derive(Debug)]
struct Fire {
    squeeze: Conv,
    expand1x1: Conv,
    expand3x3: Conv,
}

impl Fire {
    fn new(p: nn::Path, i: i64, s: i64, e1: i64, e3: i64) -> Fire {
        Fire {
            squeeze: conv(&p / "squeeze", i, s, 1, 1, 0, true),
            expand1x1: conv(&p / "expand1x1", s, e1, 1, 1, 0, true),
            expand3x3: conv(&p / "expand3x3", s, e3, 3, 1, 1, true),
        }
    }

    fn run(&self, x: &Tensor, _train: bool) -> Tensor {
        let s = x.apply(&self.squeeze).relu();
        Tensor::cat(
            &[
                s.apply(&self.expand1x1).relu(),
                s.apply(&self.expand3x3).relu(),
            ],
            1,
        )
    }
}

/// MobileNet-v2's `InvertedResidual`.
#[derive(Debug)]
struct Inverted {
    conv: Seq,
    residual: bool,
}

impl Inverted {
    fn new(p: nn::Path, i: i64, o: i64, stride: i64, t: i64) -> Inverted {
        let hidden = ((i * t) as f64).round() as i64;
        let c = &p / "conv";
        let mut ops = Vec::new();
        if t != 1 {
            ops.push(Op::Cna(Box::new(cna(
                &(&c / ops.len()),
                i,
                hidden,
                1,
                1,
                1,
            ))));
        }
        ops.push(Op::Cna(Box::new(cna(
            &(&c / ops.len()),
            hidden,
            hidden,
            3,
            stride,
            hidden,
        ))));
        ops.push(Op::Conv(conv(&c / ops.len(), hidden, o, 1, 1, 0, false)));
        ops.push(Op::Bn(bn(&c / ops.len(), o, 1e-5)));
        Inverted {
            conv: Seq {
                name: String::new(),
                ops,
            },
            residual: stride == 1 && i == o,
        }
    }

    fn run(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.conv.run(x, train, &mut Recorder::new(None));
        if self.residual { x + y } else { y }
    }
}

/// A ResNet block (basic or bottleneck) with its optional downsampling projection.
#[derive(Debug)]
struct ResBlock {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl ResBlock {
    fn new(p: nn::Path, inplanes: i64, planes: i64, stride: i64, bottleneck: bool) -> ResBlock {
        let exp = if bottleneck { 4 } else { 1 };
        let convs = if bottleneck {
            vec![
                (
                    conv(&p / "conv1", inplanes, planes, 1, 1, 0, false),
                    bn(&p / "bn1", planes, 1e-5),
                ),
                (
                    conv(&p / "conv2", planes, planes, 3, stride, 1, false),
                    bn(&p / "bn2", planes, 1e-5),
                ),
                (
                    conv(&p / "conv3", planes, planes * exp, 1, 1, 0, false),
                    bn(&p / "bn3", planes * exp, 1e-5),
                ),
            ]
        } else {
            vec![
                (
                    conv(&p / "conv1", inplanes, planes, 3, stride, 1, false),
                    bn(&p / "bn1", planes, 1e-5),
                ),
                (
                    conv(&p / "conv2", planes, planes, 3, 1, 1, false),
                    bn(&p / "bn2", planes, 1e-5),
                ),
            ]
        };
        let downsample = (stride != 1 || inplanes != planes * exp).then(|| {
            let d = &p / "downsample";
            (
                conv(&d / "0", inplanes, planes * exp, 1, stride, 0, false),
                bn(&d / "1", planes * exp, 1e-5),
            )
        });
        ResBlock { convs, downsample }
    }

    fn run(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (c, b)) in self.convs.iter().enumerate() {
            h = h.apply(c).apply_t(b, train);
            if i < last {
                // The batch norm's fresh output: changed in place, as torchvision does.
                h = h.relu_();
            }
        }
        let identity = match &self.downsample {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        // `out += identity; relu(out)` on the block's own tensor, never on `x`.
        let mut h = h;
        let _ = h.g_add_(&identity);
        h.relu_()
    }
}

/// One `_DenseLayer`.
#[derive(Debug)]
struct DenseLayer {
    norm1: nn::BatchNorm,
    conv1: Conv,
    norm2: nn::BatchNorm,
    conv2: Conv,
}

/// A dense block or a transition.
// Built once per model: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum DensePart {
    Block(Vec<DenseLayer>),
    Transition(nn::BatchNorm, Conv),
}

impl DensePart {
    fn run(&self, name: &str, x: &Tensor, train: bool, rec: &mut Recorder) -> Tensor {
        match self {
            DensePart::Block(layers) => {
                let mut feats = vec![x.shallow_clone()];
                for (i, l) in layers.iter().enumerate() {
                    let cat = Tensor::cat(&feats, 1);
                    let b = cat
                        .apply_t(&l.norm1, train)
                        .relu_()
                        .apply(&l.conv1)
                        .apply_t(&l.norm2, train)
                        .relu_()
                        .apply(&l.conv2);
                    rec.put(&format!("{name}.denselayer{}", i + 1), &b);
                    feats.push(b);
                }
                Tensor::cat(&feats, 1)
            }
            DensePart::Transition(n, c) => {
                let h = x.apply_t(n, train).relu_().apply(c).avg_pool2d(
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    false,
                    true,
                    None::<i64>,
                );
                rec.put(&format!("{name}.pool"), &h);
                h
            }
        }
    }
}

/// Inception's `BasicConv2d`: convolution without bias, batch norm (ε = 0.001), ReLU.
#[derive(Debug)]
struct Basic {
    conv: Conv,
    bn: nn::BatchNorm,
}

impl Basic {
    fn new(p: nn::Path, i: i64, o: i64, k: [i64; 2], stride: i64, pad: [i64; 2]) -> Basic {
        Basic {
            conv: conv_k(&p / "conv", i, o, k, stride, pad, 1, false),
            bn: bn(&p / "bn", o, 0.001),
        }
    }
    fn sq(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, pad: i64) -> Basic {
        Basic::new(p, i, o, [k, k], stride, [pad, pad])
    }
    fn run(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu_()
    }
}

/// The Inception modules, torchvision's A to E; branches by their torchvision names.
// Built once per model: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Mixed {
    A {
        b1: Basic,
        b5: [Basic; 2],
        b3: [Basic; 3],
        pool: Basic,
    },
    B {
        b3: Basic,
        b3d: [Basic; 3],
    },
    C {
        b1: Basic,
        b7: [Basic; 3],
        b7d: [Basic; 5],
        pool: Basic,
    },
    D {
        b3: [Basic; 2],
        b7: [Basic; 4],
    },
    E {
        b1: Basic,
        b3: [Basic; 3],
        b3d: [Basic; 4],
        pool: Basic,
    },
}

fn chain(x: &Tensor, bs: &[Basic], train: bool) -> Tensor {
    bs.iter().fold(x.shallow_clone(), |h, b| b.run(&h, train))
}

fn avg3(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None::<i64>)
}

impl Mixed {
    fn a(p: nn::Path, i: i64, pool: i64, s: &impl Fn(i64) -> i64) -> Mixed {
        Mixed::A {
            b1: Basic::sq(&p / "branch1x1", i, s(64), 1, 1, 0),
            b5: [
                Basic::sq(&p / "branch5x5_1", i, s(48), 1, 1, 0),
                Basic::sq(&p / "branch5x5_2", s(48), s(64), 5, 1, 2),
            ],
            b3: [
                Basic::sq(&p / "branch3x3dbl_1", i, s(64), 1, 1, 0),
                Basic::sq(&p / "branch3x3dbl_2", s(64), s(96), 3, 1, 1),
                Basic::sq(&p / "branch3x3dbl_3", s(96), s(96), 3, 1, 1),
            ],
            pool: Basic::sq(&p / "branch_pool", i, pool, 1, 1, 0),
        }
    }
    fn b(p: nn::Path, i: i64, s: &impl Fn(i64) -> i64) -> Mixed {
        Mixed::B {
            b3: Basic::sq(&p / "branch3x3", i, s(384), 3, 2, 0),
            b3d: [
                Basic::sq(&p / "branch3x3dbl_1", i, s(64), 1, 1, 0),
                Basic::sq(&p / "branch3x3dbl_2", s(64), s(96), 3, 1, 1),
                Basic::sq(&p / "branch3x3dbl_3", s(96), s(96), 3, 2, 0),
            ],
        }
    }
    fn c(p: nn::Path, i: i64, c7: i64, s: &impl Fn(i64) -> i64) -> Mixed {
        let (r, c) = ([1, 7], [7, 1]);
        let (pr, pc) = ([0, 3], [3, 0]);
        Mixed::C {
            b1: Basic::sq(&p / "branch1x1", i, s(192), 1, 1, 0),
            b7: [
                Basic::sq(&p / "branch7x7_1", i, c7, 1, 1, 0),
                Basic::new(&p / "branch7x7_2", c7, c7, r, 1, pr),
                Basic::new(&p / "branch7x7_3", c7, s(192), c, 1, pc),
            ],
            b7d: [
                Basic::sq(&p / "branch7x7dbl_1", i, c7, 1, 1, 0),
                Basic::new(&p / "branch7x7dbl_2", c7, c7, c, 1, pc),
                Basic::new(&p / "branch7x7dbl_3", c7, c7, r, 1, pr),
                Basic::new(&p / "branch7x7dbl_4", c7, c7, c, 1, pc),
                Basic::new(&p / "branch7x7dbl_5", c7, s(192), r, 1, pr),
            ],
            pool: Basic::sq(&p / "branch_pool", i, s(192), 1, 1, 0),
        }
    }
    fn d(p: nn::Path, i: i64, s: &impl Fn(i64) -> i64) -> Mixed {
        Mixed::D {
            b3: [
                Basic::sq(&p / "branch3x3_1", i, s(192), 1, 1, 0),
                Basic::sq(&p / "branch3x3_2", s(192), s(320), 3, 2, 0),
            ],
            b7: [
                Basic::sq(&p / "branch7x7x3_1", i, s(192), 1, 1, 0),
                Basic::new(&p / "branch7x7x3_2", s(192), s(192), [1, 7], 1, [0, 3]),
                Basic::new(&p / "branch7x7x3_3", s(192), s(192), [7, 1], 1, [3, 0]),
                Basic::sq(&p / "branch7x7x3_4", s(192), s(192), 3, 2, 0),
            ],
        }
    }
    fn e(p: nn::Path, i: i64, s: &impl Fn(i64) -> i64) -> Mixed {
        Mixed::E {
            b1: Basic::sq(&p / "branch1x1", i, s(320), 1, 1, 0),
            b3: [
                Basic::sq(&p / "branch3x3_1", i, s(384), 1, 1, 0),
                Basic::new(&p / "branch3x3_2a", s(384), s(384), [1, 3], 1, [0, 1]),
                Basic::new(&p / "branch3x3_2b", s(384), s(384), [3, 1], 1, [1, 0]),
            ],
            b3d: [
                Basic::sq(&p / "branch3x3dbl_1", i, s(448), 1, 1, 0),
                Basic::sq(&p / "branch3x3dbl_2", s(448), s(384), 3, 1, 1),
                Basic::new(&p / "branch3x3dbl_3a", s(384), s(384), [1, 3], 1, [0, 1]),
                Basic::new(&p / "branch3x3dbl_3b", s(384), s(384), [3, 1], 1, [1, 0]),
            ],
            pool: Basic::sq(&p / "branch_pool", i, s(192), 1, 1, 0),
        }
    }

    fn run(&self, x: &Tensor, train: bool) -> Tensor {
        let t = train;
        match self {
            Mixed::A { b1, b5, b3, pool } => Tensor::cat(
                &[
                    b1.run(x, t),
                    chain(x, b5, t),
                    chain(x, b3, t),
                    pool.run(&avg3(x), t),
                ],
                1,
            ),
            Mixed::B { b3, b3d } => Tensor::cat(
                &[
                    b3.run(x, t),
                    chain(x, b3d, t),
                    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
                ],
                1,
            ),
            Mixed::C { b1, b7, b7d, pool } => Tensor::cat(
                &[
                    b1.run(x, t),
                    chain(x, b7, t),
                    chain(x, b7d, t),
                    pool.run(&avg3(x), t),
                ],
                1,
            ),
            Mixed::D { b3, b7 } => Tensor::cat(
                &[
                    chain(x, b3, t),
                    chain(x, b7, t),
                    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
                ],
                1,
            ),
            Mixed::E { b1, b3, b3d, pool } => {
                let h3 = b3[0].run(x, t);
                let h3 = Tensor::cat(&[b3[1].run(&h3, t), b3[2].run(&h3, t)], 1);
                let hd = chain(x, &b3d[..2], t);
                let hd = Tensor::cat(&[b3d[2].run(&hd, t), b3d[3].run(&hd, t)], 1);
                Tensor::cat(&[b1.run(x, t), h3, hd, pool.run(&avg3(x), t)], 1)
            }
        }
    }
}

/// The network of one family.
// Built once per model: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Body {
    /// AlexNet and VGG: `features`, an adaptive pool, `classifier`.
    Plain {
        features: Seq,
        pool: i64,
        classifier: Seq,
    },
    ResNet {
        conv1: Conv,
        bn1: nn::BatchNorm,
        layers: Vec<Vec<ResBlock>>,
        fc: nn::Linear,
    },
    DenseNet {
        conv0: Conv,
        norm0: nn::BatchNorm,
        parts: Vec<(String, DensePart)>,
        norm5: nn::BatchNorm,
        classifier: nn::Linear,
    },
    /// SqueezeNet: `features`, then `classifier` (dropout, 1×1 conv, ReLU, global pool).
    Squeeze { features: Seq, classifier: Seq },
    MobileNet {
        features: Seq,
        classifier: nn::Linear,
    },
    Inception {
        stem: Vec<(String, Option<Basic>)>,
        mixed: Vec<(String, Mixed)>,
        #[allow(dead_code)]
        aux: (Basic, Basic, nn::Linear),
        fc: nn::Linear,
    },
}

/// A torchvision architecture with its variables.
#[derive(Debug)]
pub struct ZooNet {
    /// The architecture.
    pub arch: ZooArch,
    body: Body,
}

impl ZooNet {
    /// Build `arch` under `root` with channel widths × `width` and `classes` outputs.
    pub fn new(root: &nn::Path, arch: ZooArch, width: f64, classes: i64) -> ZooNet {
        let s = |c: i64| ((c as f64 * width).round() as i64).max(1);
        let body = match arch.family {
            Family::AlexNet => {
                let mut f = Seq::new("features");
                let fp = root / "features";
                let c = |i: usize, a, b, k, st, pd| Op::Conv(conv(&fp / i, a, b, k, st, pd, true));
                let mp = || Op::MaxPool {
                    k: 3,
                    s: 2,
                    p: 0,
                    ceil: false,
                };
                f.ops = vec![
                    c(0, 3, s(64), 11, 4, 2),
                    Op::Relu,
                    mp(),
                    c(3, s(64), s(192), 5, 1, 2),
                    Op::Relu,
                    mp(),
                    c(6, s(192), s(384), 3, 1, 1),
                    Op::Relu,
                    c(8, s(384), s(256), 3, 1, 1),
                    Op::Relu,
                    c(10, s(256), s(256), 3, 1, 1),
                    Op::Relu,
                    mp(),
                ];
                let cp = root / "classifier";
                let mut cl = Seq::new("classifier");
                cl.ops = vec![
                    Op::Dropout(0.5),
                    Op::Linear(linear(&cp / 1, s(256) * 36, s(4096))),
                    Op::Relu,
                    Op::Dropout(0.5),
                    Op::Linear(linear(&cp / 4, s(4096), s(4096))),
                    Op::Relu,
                    Op::Linear(linear(&cp / 6, s(4096), classes)),
                ];
                Body::Plain {
                    features: f,
                    pool: 6,
                    classifier: cl,
                }
            }
            Family::Vgg { cfg, bn: with_bn } => {
                let mut f = Seq::new("features");
                let fp = root / "features";
                let mut c_in = 3;
                for &c in cfg {
                    if c == POOL {
                        f.ops.push(Op::MaxPool {
                            k: 2,
                            s: 2,
                            p: 0,
                            ceil: false,
                        });
                        continue;
                    }
                    let o = s(c);
                    f.ops
                        .push(Op::Conv(conv(&fp / f.ops.len(), c_in, o, 3, 1, 1, true)));
                    if with_bn {
                        f.ops.push(Op::Bn(bn(&fp / f.ops.len(), o, 1e-5)));
                    }
                    f.ops.push(Op::Relu);
                    c_in = o;
                }
                let cp = root / "classifier";
                let mut cl = Seq::new("classifier");
                cl.ops = vec![
                    Op::Linear(linear(&cp / 0, c_in * 49, s(4096))),
                    Op::Relu,
                    Op::Dropout(0.5),
                    Op::Linear(linear(&cp / 3, s(4096), s(4096))),
                    Op::Relu,
                    Op::Dropout(0.5),
                    Op::Linear(linear(&cp / 6, s(4096), classes)),
                ];
                Body::Plain {
                    features: f,
                    pool: 7,
                    classifier: cl,
                }
            }
            Family::ResNet { bottleneck, blocks } => {
                let exp = if bottleneck { 4 } else { 1 };
                let mut inplanes = s(64);
                let mut layers = Vec::new();
                for (i, n) in blocks.iter().enumerate() {
                    let planes = s(64 << i);
                    let lp = root / format!("layer{}", i + 1);
                    let mut v = Vec::new();
                    for u in 0..*n {
                        let stride = if u == 0 && i > 0 { 2 } else { 1 };
                        v.push(ResBlock::new(&lp / u, inplanes, planes, stride, bottleneck));
                        inplanes = planes * exp;
                    }
                    layers.push(v);
                }
                Body::ResNet {
                    conv1: conv(root / "conv1", 3, s(64), 7, 2, 3, false),
                    bn1: bn(root / "bn1", s(64), 1e-5),
                    layers,
                    fc: linear(root / "fc", inplanes, classes),
                }
            }
            Family::DenseNet {
                growth,
                blocks,
                init,
            } => {
                let fp = root / "features";
                let (g, init) = (s(growth), s(init));
                let mut c = init;
                let mut parts = Vec::new();
                for (b, n) in blocks.iter().enumerate() {
                    let bp = &fp / format!("denseblock{}", b + 1);
                    let mut layers = Vec::new();
                    for l in 0..*n {
                        let lp = &bp / format!("denselayer{}", l + 1);
                        let i = c + l as i64 * g;
                        layers.push(DenseLayer {
                            norm1: bn(&lp / "norm1", i, 1e-5),
                            conv1: conv(&lp / "conv1", i, 4 * g, 1, 1, 0, false),
                            norm2: bn(&lp / "norm2", 4 * g, 1e-5),
                            conv2: conv(&lp / "conv2", 4 * g, g, 3, 1, 1, false),
                        });
                    }
                    c += *n as i64 * g;
                    parts.push((
                        format!("features.denseblock{}", b + 1),
                        DensePart::Block(layers),
                    ));
                    if b < 3 {
                        let tp = &fp / format!("transition{}", b + 1);
                        parts.push((
                            format!("features.transition{}", b + 1),
                            DensePart::Transition(
                                bn(&tp / "norm", c, 1e-5),
                                conv(&tp / "conv", c, c / 2, 1, 1, 0, false),
                            ),
                        ));
                        c /= 2;
                    }
                }
                Body::DenseNet {
                    conv0: conv(&fp / "conv0", 3, init, 7, 2, 3, false),
                    norm0: bn(&fp / "norm0", init, 1e-5),
                    parts,
                    norm5: bn(&fp / "norm5", c, 1e-5),
                    classifier: linear(root / "classifier", c, classes),
                }
            }
            Family::SqueezeNet { v1_1 } => {
                let fp = root / "features";
                let mut f = Seq::new("features");
                let mp = || Op::MaxPool {
                    k: 3,
                    s: 2,
                    p: 0,
                    ceil: true,
                };
                let fire =
                    |i: usize, a, b, c, d| Op::Fire(Box::new(Fire::new(&fp / i, a, b, c, d)));
                f.ops = if v1_1 {
                    vec![
                        Op::Conv(conv(&fp / 0, 3, s(64), 3, 2, 0, true)),
                        Op::Relu,
                        mp(),
                        fire(3, s(64), s(16), s(64), s(64)),
                        fire(4, s(128), s(16), s(64), s(64)),
                        mp(),
                        fire(6, s(128), s(32), s(128), s(128)),
                        fire(7, s(256), s(32), s(128), s(128)),
                        mp(),
                        fire(9, s(256), s(48), s(192), s(192)),
                        fire(10, s(384), s(48), s(192), s(192)),
                        fire(11, s(384), s(64), s(256), s(256)),
                        fire(12, s(512), s(64), s(256), s(256)),
                    ]
                } else {
                    vec![
                        Op::Conv(conv(&fp / 0, 3, s(96), 7, 2, 0, true)),
                        Op::Relu,
                        mp(),
                        fire(3, s(96), s(16), s(64), s(64)),
                        fire(4, s(128), s(16), s(64), s(64)),
                        fire(5, s(128), s(32), s(128), s(128)),
                        mp(),
                        fire(7, s(256), s(32), s(128), s(128)),
                        fire(8, s(256), s(48), s(192), s(192)),
                        fire(9, s(384), s(48), s(192), s(192)),
                        fire(10, s(384), s(64), s(256), s(256)),
                        mp(),
                        fire(12, s(512), s(64), s(256), s(256)),
                    ]
                };
                let mut cl = Seq::new("classifier");
                cl.ops = vec![
                    Op::Dropout(0.5),
                    Op::Conv(conv(
                        root / "classifier" / 1,
                        s(512),
                        classes,
                        1,
                        1,
                        0,
                        true,
                    )),
                    Op::Relu,
                    Op::AdaptiveAvg(1),
                ];
                Body::Squeeze {
                    features: f,
                    classifier: cl,
                }
            }
            Family::MobileNetV2 => {
                let fp = root / "features";
                let mut f = Seq::new("features");
                let mut c_in = make_divisible(32.0 * width);
                let last = make_divisible(1280.0 * width.max(1.0));
                f.ops
                    .push(Op::Cna(Box::new(cna(&(&fp / 0), 3, c_in, 3, 2, 1))));
                for (t, c, n, st) in MOBILENET_V2 {
                    let o = make_divisible(c as f64 * width);
                    for k in 0..n {
                        let stride = if k == 0 { st } else { 1 };
                        let b = Inverted::new(&fp / f.ops.len(), c_in, o, stride, t);
                        f.ops.push(Op::Inverted(Box::new(b)));
                        c_in = o;
                    }
                }
                f.ops.push(Op::Cna(Box::new(cna(
                    &(&fp / f.ops.len()),
                    c_in,
                    last,
                    1,
                    1,
                    1,
                ))));
                Body::MobileNet {
                    features: f,
                    classifier: linear(root / "classifier" / 1, last, classes),
                }
            }
            Family::InceptionV3 => {
                let b = |n: &str, i, o, k, st, pd| {
                    (n.to_string(), Some(Basic::sq(root / n, i, o, k, st, pd)))
                };
                let pool = |n: &str| (n.to_string(), None);
                let stem = vec![
                    b("Conv2d_1a_3x3", 3, s(32), 3, 2, 0),
                    b("Conv2d_2a_3x3", s(32), s(32), 3, 1, 0),
                    b("Conv2d_2b_3x3", s(32), s(64), 3, 1, 1),
                    pool("maxpool1"),
                    b("Conv2d_3b_1x1", s(64), s(80), 1, 1, 0),
                    b("Conv2d_4a_3x3", s(80), s(192), 3, 1, 0),
                    pool("maxpool2"),
                ];
                let sf = &s;
                // Input channels of each module follow from the branch widths.
                let a_out = |pool: i64| s(64) + s(64) + s(96) + pool;
                let c5b = a_out(s(32));
                let c5c = a_out(s(64));
                let c5d = a_out(s(64));
                let c6a = s(384) + s(96) + c5d;
                let c6 = 4 * s(192);
                let c7a = s(320) + s(192) + c6;
                let e_out = s(320) + 2 * s(384) + 2 * s(384) + s(192);
                let mixed = vec![
                    (
                        "Mixed_5b".to_string(),
                        Mixed::a(root / "Mixed_5b", s(192), s(32), sf),
                    ),
                    (
                        "Mixed_5c".to_string(),
                        Mixed::a(root / "Mixed_5c", c5b, s(64), sf),
                    ),
                    (
                        "Mixed_5d".to_string(),
                        Mixed::a(root / "Mixed_5d", c5c, s(64), sf),
                    ),
                    ("Mixed_6a".to_string(), Mixed::b(root / "Mixed_6a", c5d, sf)),
                    (
                        "Mixed_6b".to_string(),
                        Mixed::c(root / "Mixed_6b", c6a, s(128), sf),
                    ),
                    (
                        "Mixed_6c".to_string(),
                        Mixed::c(root / "Mixed_6c", c6, s(160), sf),
                    ),
                    (
                        "Mixed_6d".to_string(),
                        Mixed::c(root / "Mixed_6d", c6, s(160), sf),
                    ),
                    (
                        "Mixed_6e".to_string(),
                        Mixed::c(root / "Mixed_6e", c6, s(192), sf),
                    ),
                    ("Mixed_7a".to_string(), Mixed::d(root / "Mixed_7a", c6, sf)),
                    ("Mixed_7b".to_string(), Mixed::e(root / "Mixed_7b", c7a, sf)),
                    (
                        "Mixed_7c".to_string(),
                        Mixed::e(root / "Mixed_7c", e_out, sf),
                    ),
                ];
                let ap = root / "AuxLogits";
                Body::Inception {
                    stem,
                    mixed,
                    aux: (
                        Basic::sq(&ap / "conv0", c6, s(128), 1, 1, 0),
                        Basic::sq(&ap / "conv1", s(128), s(768), 5, 1, 0),
                        linear(&ap / "fc", s(768), classes),
                    ),
                    fc: linear(root / "fc", e_out, classes),
                }
            }
        };
        ZooNet { arch, body }
    }

    /// The logits, recording the layers `rec` keeps.
    pub(crate) fn run(&self, x: &Tensor, train: bool, rec: &mut Recorder) -> Tensor {
        match &self.body {
            Body::Plain {
                features,
                pool,
                classifier,
            } => {
                let h = features.run(x, train, rec);
                let h = h.adaptive_avg_pool2d([*pool, *pool]);
                rec.put("avgpool", &h);
                classifier.run(&h.flatten(1, -1), train, rec)
            }
            Body::ResNet {
                conv1,
                bn1,
                layers,
                fc,
            } => {
                let h = x.apply(conv1);
                rec.put("conv1", &h);
                let mut h = h.apply_t(bn1, train);
                let h = if rec.put("bn1", &h) {
                    h.relu()
                } else {
                    h.relu_()
                };
                rec.put("relu", &h);
                let mut h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
                rec.put("maxpool", &h);
                for (i, stage) in layers.iter().enumerate() {
                    for (u, block) in stage.iter().enumerate() {
                        h = block.run(&h, train);
                        rec.put(&format!("layer{}.{u}", i + 1), &h);
                    }
                    rec.put(&format!("layer{}", i + 1), &h);
                }
                let h = h.adaptive_avg_pool2d([1, 1]);
                rec.put("avgpool", &h);
                h.flatten(1, -1).apply(fc)
            }
            Body::DenseNet {
                conv0,
                norm0,
                parts,
                norm5,
                classifier,
            } => {
                let h = x.apply(conv0);
                rec.put("features.conv0", &h);
                let h = h.apply_t(norm0, train);
                rec.put("features.norm0", &h);
                let h = h.relu();
                let mut h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
                rec.put("features.pool0", &h);
                for (name, part) in parts {
                    h = part.run(name, &h, train, rec);
                    rec.put(name, &h);
                }
                let h = h.apply_t(norm5, train);
                rec.put("features.norm5", &h);
                let h = h.relu().adaptive_avg_pool2d([1, 1]);
                rec.put("avgpool", &h);
                h.flatten(1, -1).apply(classifier)
            }
            Body::Squeeze {
                features,
                classifier,
            } => {
                let h = features.run(x, train, rec);
                classifier.run(&h, train, rec).flatten(1, -1)
            }
            Body::MobileNet {
                features,
                classifier,
            } => {
                let h = features.run(x, train, rec);
                let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
                rec.put("classifier.0", &h);
                h.dropout(0.2, train).apply(classifier)
            }
            Body::Inception {
                stem, mixed, fc, ..
            } => {
                // transform_input: from ImageNet normalisation to the (x - 0.5) / 0.5 the
                // original weights expect.
                let ch = |i: i64, std: f64, mean: f64| {
                    x.narrow(1, i, 1) * (std / 0.5) + (mean - 0.5) / 0.5
                };
                let mut h = Tensor::cat(
                    &[
                        ch(0, 0.229, 0.485),
                        ch(1, 0.224, 0.456),
                        ch(2, 0.225, 0.406),
                    ],
                    1,
                );
                for (name, b) in stem {
                    h = match b {
                        Some(b) => b.run(&h, train),
                        None => h.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
                    };
                    rec.put(name, &h);
                }
                for (name, m) in mixed {
                    h = m.run(&h, train);
                    rec.put(name, &h);
                }
                let h = h.adaptive_avg_pool2d([1, 1]);
                rec.put("avgpool", &h);
                h.dropout(0.5, train).flatten(1, -1).apply(fc)
            }
        }
    }
}

/// torchvision's initialisation, in name order from torch's generator: convolutions
/// He-normal (fan-out, as ResNet, VGG and MobileNet-v2 do), batch norms 1 and 0, biases 0;
/// linear weights keep libtorch's default (PyTorch's).
pub fn init(vs: &nn::VarStore) {
    crate::cornet::he_normal_in_name_order(vs, |name, t| {
        if t.size().len() == 1 && name.ends_with(".bias") && t.kind() == Kind::Float {
            let _ = t.zero_();
        }
    });
}
