//! The world: its objects, its stimulus sets and its hidden brain.

use serde::{Deserialize, Serialize};

use crate::render::{Background, Placed, Pose, Scene, Shape};
use crate::rng::Rng;

/// HvM's eight categories and their objects' names.
pub const HVM: [(&str, [&str; 8]); 8] = [
    (
        "Animals",
        [
            "ELEPHANT_M",
            "GORILLA",
            "LIONESS",
            "TURTLE_L",
            "bear",
            "blCow",
            "breed_pug",
            "hedgehog",
        ],
    ),
    (
        "Boats",
        [
            "BAHRAIN",
            "CGTG_L",
            "DTUG_L",
            "MQUEEN_L",
            "SISTER_L",
            "cruiser",
            "motoryacht",
            "support",
        ],
    ),
    (
        "Cars",
        [
            "Beetle", "alfa155", "astra", "bmw325", "bora_a", "celica", "clio", "z3",
        ],
    ),
    (
        "Chairs",
        [
            "_001", "_004", "_008", "_010", "_011", "_014", "_031", "_033",
        ],
    ),
    (
        "Faces",
        [
            "face0001", "face0002", "face0003", "face0004", "face0005", "face0006", "face0007",
            "face0008",
        ],
    ),
    (
        "Fruits",
        [
            "Apple_Fruit_obj",
            "Apricot_obj",
            "Peach_obj",
            "Pear_obj",
            "Strawberry_obj",
            "raspberry_obj",
            "walnut_obj",
            "watermelon_obj",
        ],
    ),
    (
        "Planes",
        [
            "_01_Airliner_2jetEngines",
            "_05_future",
            "_19_flyingBoat",
            "f16",
            "junkers88",
            "mig29",
            "rdbarren",
            "sopwith",
        ],
    ),
    (
        "Tables",
        ["_08", "_10", "_11", "_12", "_18", "_37", "_38", "_44"],
    ),
];

/// A variation level: `(level, rxy, rxz, ryz, ty, tz, (s_min, s_max))`, half-widths.
pub type Level = (u8, f64, f64, f64, f64, f64, (f64, f64));

/// HvM's pose ranges per variation level, from ../shared/data/hvm/hvm_metadata.csv:
/// `(rxy, rxz, ryz, ty, tz, (s_min, s_max))` half-widths (uniform, symmetric).
pub const VARIATION: [Level; 3] = [
    (0, 0.0, 0.0, 0.0, 0.0, 0.0, (1.0, 1.0)),
    (3, 52.2, 44.9, 93.4, 0.3, 0.6, (0.769, 1.3)),
    (6, 90.0, 90.0, 168.3, 0.6, 1.2, (0.625, 1.6)),
];

/// Sizes of the world; `embedded()` and `full()` are the two profiles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// The seed of everything.
    pub seed: u64,
    /// HvM-like images per object at variation 0, 3, 6.
    pub hvm_per_object: [usize; 3],
    /// HvM image size (pixels).
    pub hvm_size: u32,
    /// Repetitions of each HvM image in the recordings.
    pub repetitions: usize,
    /// Recorded V4 and IT sites.
    pub sites: [usize; 2],
    /// Target split-half (Spearman–Brown) ceilings of V4 and IT.
    pub ceilings: [f64; 2],
    /// Objectome-like images per object (24 objects).
    pub objectome_per_object: usize,
    /// Human 2-AFC trials per objectome image.
    pub trials_per_image: usize,
    /// Objectome-like fitting images per object (what a model's behavioural readout is
    /// trained on; Brain-Score uses 2,160 = 24 × 90).
    pub objectome_fitting_per_object: usize,
    /// ImageNet-like classes, training and validation images per class, image size.
    pub imagenet: [usize; 3],
    /// ImageNet-like image size.
    pub imagenet_size: u32,
    /// COCO-like (Kar2019) objects and images per object.
    pub coco: [usize; 2],
    /// COCO-like image size.
    pub coco_size: u32,
    /// Repetitions of the time-binned IT recordings on the COCO-like images.
    pub ost_repetitions: usize,
    /// The generalisation test "new neurons, old images": IT sites of another animal, and
    /// how many of the HvM images they were recorded on (the paper: 288 on 640).
    pub new_neurons: [usize; 2],
    /// The generalisation test "new objects": how many objects outside the objectome's 24
    /// (the paper: 20) and test images per object (10).
    pub new_objects: [usize; 2],
    /// The transfer test's CIFAR-100-like set: classes (100 for the real layout: 20
    /// superclasses of 5), training and test images per class, at 32 px.
    pub cifar: [usize; 3],
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig::embedded()
    }
}

impl WorldConfig {
    /// Small enough for the whole paper pipeline in minutes on 2 cores.
    pub fn embedded() -> Self {
        WorldConfig {
            seed: 0,
            hvm_per_object: [2, 4, 4],
            hvm_size: 256,
            repetitions: 10,
            sites: [40, 60],
            ceilings: [0.90, 0.82],
            objectome_per_object: 10,
            trials_per_image: 391,
            objectome_fitting_per_object: 20,
            imagenet: [10, 120, 20],
            imagenet_size: 64,
            coco: [10, 16],
            coco_size: 128,
            ost_repetitions: 10,
            new_neurons: [40, 640],
            new_objects: [20, 10],
            cifar: [100, 20, 5],
        }
    }

    /// The real datasets' sizes (for testing scale).
    pub fn full() -> Self {
        WorldConfig {
            seed: 0,
            hvm_per_object: [10, 40, 40],
            hvm_size: 256,
            repetitions: 50,
            sites: [88, 168],
            ceilings: [0.90, 0.82],
            // Rajalingham2018's I2n: 240 test images (10 per object) against ≈ 927k human
            // trials, ≈ 168 per image and distractor (SPEC "Behaviour").
            objectome_per_object: 10,
            trials_per_image: 3_864,
            objectome_fitting_per_object: 90,
            imagenet: [1000, 1300, 50],
            imagenet_size: 256,
            coco: [10, 132],
            coco_size: 256,
            ost_repetitions: 40,
            new_neurons: [288, 640],
            new_objects: [20, 10],
            cifar: [100, 500, 100],
        }
    }
}

/// One object of the world: its category, outline, surface and latent identity.
#[derive(Clone, Debug)]
pub struct Object {
    /// Category name.
    pub category: String,
    /// Category index.
    pub category_index: usize,
    /// Object name.
    pub name: String,
    /// Outline and surface.
    pub shape: Shape,
    /// Latent identity (what the hidden IT encodes).
    pub latent: Vec<f64>,
}

/// Latent dimensions of object identity.
pub const LATENT: usize = 12;

/// The dominant harmonics of each family (categories and ImageNet-like classes).
fn family_harmonics(family: usize) -> Vec<f64> {
    let base = [
        2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0,
    ];
    let h = base[family % base.len()];
    vec![h, (h * 2.0).min(16.0), 1.0 + (family as f64 % 3.0)]
}

/// A shape of `family`, varied by `rng` (`spread` scales the object-to-object variation).
pub fn family_shape(family: usize, rng: &mut Rng, spread: f64, colour: bool) -> Shape {
    let hs = family_harmonics(family);
    let harmonics = vec![
        (
            hs[0],
            0.22 + spread * rng.range(-0.06, 0.06),
            rng.range(0.0, std::f64::consts::TAU),
        ),
        (
            hs[1],
            0.06 + spread * rng.range(-0.04, 0.04),
            rng.range(0.0, std::f64::consts::TAU),
        ),
        (
            hs[2],
            spread * rng.range(0.0, 0.12),
            rng.range(0.0, std::f64::consts::TAU),
        ),
    ];
    let aspect = 1.0 + 0.08 * (family % 4) as f64 + spread * rng.range(-0.1, 0.1);
    let g = rng.range(0.55, 0.95);
    let color = if colour {
        let hue = (family as f64 * 0.137 + spread * rng.range(-0.05, 0.05)).fract();
        hsv(hue, 0.7, g)
    } else {
        [g, g, g]
    };
    Shape {
        harmonics,
        aspect,
        texture: (rng.range(1.0, 4.0), rng.range(0.0, std::f64::consts::PI)),
        color,
        contrast: rng.range(0.05, 0.15),
    }
}

fn hsv(h: f64, s: f64, v: f64) -> [f64; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    match (i as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// HvM's 64 objects: category = family, objects vary within it; latents cluster by category.
pub fn hvm_objects(seed: u64) -> Vec<Object> {
    let mut out = Vec::new();
    for (c, (cat, names)) in HVM.iter().enumerate() {
        let mut crng = Rng::new(seed, "category-latent", c as u64);
        let centre: Vec<f64> = (0..LATENT).map(|_| crng.normal()).collect();
        for (k, name) in names.iter().enumerate() {
            let mut r = Rng::new(seed, "hvm-object", (c * 8 + k) as u64);
            let shape = family_shape(c, &mut r, 1.0, false);
            let latent = centre.iter().map(|m| m + 0.8 * r.normal()).collect();
            out.push(Object {
                category: cat.to_string(),
                category_index: c,
                name: name.to_string(),
                shape,
                latent,
            });
        }
    }
    out
}

/// One stimulus: its scene and the facts the brain and the metrics need.
#[derive(Clone, Debug)]
pub struct Stimulus {
    /// `stimulus_id` (a SHA1-like hex, as BrainIO's).
    pub id: String,
    /// Object index into the set's objects.
    pub object: usize,
    /// Variation level (HvM) or 0.
    pub variation: u8,
    /// The pose.
    pub pose: Pose,
    /// Background id.
    pub background_id: String,
    /// The scene.
    pub scene: Scene,
    /// How hard it is to recognise (0 easy … 1 hard).
    pub difficulty: f64,
}

pub(crate) fn hex_id(seed: u64, stream: &str, i: u64) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(stream.as_bytes());
    h.update(&i.to_le_bytes());
    h.finalize().to_hex()[..40].to_string()
}

fn pose_for(rng: &mut Rng, level: usize) -> Pose {
    let (_, rxy, rxz, ryz, ty, tz, (s0, s1)) = VARIATION[level];
    Pose {
        rxy: rng.range(-rxy, rxy),
        rxz: rng.range(-rxz, rxz),
        ryz: rng.range(-ryz, ryz),
        ty: rng.range(-ty, ty),
        tz: rng.range(-tz, tz),
        s: if s0 == s1 { s0 } else { rng.range(s0, s1) },
    }
}

fn difficulty(p: &Pose, clutter: usize) -> f64 {
    let rot = (p.rxz.abs() / 90.0 + p.ryz.abs() / 180.0 + p.rxy.abs() / 90.0) / 3.0;
    let pos = (p.ty.abs() / 0.6 + p.tz.abs() / 1.2) / 2.0;
    let small = (1.6 - p.s).max(0.0) / 1.0;
    (0.45 * rot + 0.25 * pos + 0.2 * small + 0.1 * clutter as f64 / 4.0).clamp(0.0, 1.0)
}

/// HvM-like stimuli: every object at variation 0, 3, 6, grayscale, disc-faded.
pub fn hvm_stimuli(cfg: &WorldConfig, objects: &[Object]) -> Vec<Stimulus> {
    let mut out = Vec::new();
    for (o, obj) in objects.iter().enumerate() {
        for (level, &count) in cfg.hvm_per_object.iter().enumerate() {
            for k in 0..count {
                let idx = ((o * 3 + level) * 1000 + k) as u64;
                let mut r = Rng::new(cfg.seed, "hvm-stimulus", idx);
                let pose = pose_for(&mut r, level);
                let bg_index = r.below(100_000) as u64;
                let mut brng = Rng::new(cfg.seed, "background", bg_index);
                let background = Background::random(&mut brng, false);
                let scene = Scene {
                    background,
                    objects: vec![Placed {
                        shape: obj.shape.clone(),
                        pose,
                        size: 0.22,
                    }],
                    gray: true,
                    disc: true,
                };
                out.push(Stimulus {
                    id: hex_id(cfg.seed, "hvm-id", idx),
                    object: o,
                    variation: VARIATION[level].0,
                    pose,
                    background_id: hex_id(cfg.seed, "bg", bg_index),
                    scene,
                    difficulty: difficulty(&pose, 0),
                });
            }
        }
    }
    out
}

/// The objectome's 24 objects (3 from each HvM category), as indices into the HvM objects.
pub fn objectome_objects() -> Vec<usize> {
    (0..8).flat_map(|c| [c * 8, c * 8 + 3, c * 8 + 6]).collect()
}

/// `count` HvM objects that are not among the objectome's (the "new objects" test), spread
/// over the categories.
pub fn new_objects(count: usize) -> Vec<usize> {
    let old = objectome_objects();
    let mut v: Vec<usize> = [1, 4, 7, 2, 5]
        .iter()
        .flat_map(|k| (0..8).map(move |c| c * 8 + k))
        .filter(|o| !old.contains(o))
        .collect();
    v.truncate(count.min(40));
    v
}

/// Objectome-like stimuli: 24 objects (3 from each HvM category), `per_object` images each at
/// high variation, grayscale. `fitting` draws the readout's training images instead of the
/// test images (other streams, other ids).
pub fn objectome_stimuli(
    cfg: &WorldConfig,
    objects: &[Object],
    fitting: bool,
) -> (Vec<usize>, Vec<Stimulus>) {
    let (tag, count) = if fitting {
        ("objectome-fitting", cfg.objectome_fitting_per_object)
    } else {
        ("objectome", cfg.objectome_per_object)
    };
    let chosen = objectome_objects();
    let out = task_stimuli(cfg, objects, &chosen, tag, count);
    (chosen, out)
}

/// `count` objectome-like images of each object of `chosen` (HvM indices); `tag` names the
/// random streams and ids. `Stimulus::object` indexes `chosen`.
pub fn task_stimuli(
    cfg: &WorldConfig,
    objects: &[Object],
    chosen: &[usize],
    tag: &str,
    count: usize,
) -> Vec<Stimulus> {
    let mut out = Vec::new();
    for (j, &o) in chosen.iter().enumerate() {
        for k in 0..count {
            let idx = (j * 10_000 + k) as u64;
            let mut r = Rng::new(cfg.seed, &format!("{tag}-stimulus"), idx);
            let level = 1 + r.below(2);
            let pose = pose_for(&mut r, level);
            let mut brng = Rng::new(cfg.seed, &format!("{tag}-bg"), idx);
            let scene = Scene {
                background: Background::random(&mut brng, false),
                objects: vec![Placed {
                    shape: objects[o].shape.clone(),
                    pose,
                    size: 0.22,
                }],
                gray: true,
                disc: false,
            };
            out.push(Stimulus {
                id: hex_id(cfg.seed, &format!("{tag}-id"), idx),
                object: j,
                variation: VARIATION[level].0,
                pose,
                background_id: hex_id(cfg.seed, &format!("{tag}-bg"), idx),
                scene,
                difficulty: difficulty(&pose, 0),
            });
        }
    }
    out
}

/// COCO-like cluttered grayscale scenes for OST: a target object among 1–4 distractors.
pub fn coco_stimuli(cfg: &WorldConfig, objects: &[Object]) -> (Vec<usize>, Vec<Stimulus>) {
    let [n_obj, per] = cfg.coco;
    let chosen: Vec<usize> = (0..n_obj.min(objects.len()))
        .map(|i| (i * 13) % objects.len())
        .collect();
    let mut out = Vec::new();
    for (j, &o) in chosen.iter().enumerate() {
        for k in 0..per {
            let idx = (j * 10_000 + k) as u64;
            let mut r = Rng::new(cfg.seed, "coco-stimulus", idx);
            let level = 1 + r.below(2);
            let pose = pose_for(&mut r, level);
            let clutter = 1 + r.below(4);
            let mut placed = Vec::new();
            for c in 0..clutter {
                let mut cr = Rng::new(cfg.seed, "coco-clutter", idx * 8 + c as u64);
                let fam = cr.below(12);
                placed.push(Placed {
                    shape: family_shape(fam, &mut cr, 1.0, false),
                    pose: Pose {
                        ty: cr.range(-1.6, 1.6),
                        tz: cr.range(-3.2, 3.2),
                        s: cr.range(0.3, 0.7),
                        rxy: cr.range(-90.0, 90.0),
                        ..Pose::default()
                    },
                    size: 0.22,
                });
            }
            placed.push(Placed {
                shape: objects[o].shape.clone(),
                pose,
                size: 0.22,
            });
            let mut brng = Rng::new(cfg.seed, "coco-bg", idx);
            out.push(Stimulus {
                id: hex_id(cfg.seed, "coco-id", idx),
                object: j,
                variation: 0,
                pose,
                background_id: hex_id(cfg.seed, "coco-bg", idx),
                scene: Scene {
                    background: Background::random(&mut brng, false),
                    objects: placed,
                    gray: true,
                    disc: false,
                },
                difficulty: difficulty(&pose, clutter),
            });
        }
    }
    (chosen, out)
}

/// An ImageNet-like image of class `class`: a colour object of that family (varied per
/// image), a random pose, 0–2 distractors of other families, a colour background.
pub fn imagenet_scene(cfg: &WorldConfig, class: usize, split: &str, k: usize) -> Scene {
    let idx = (class * 1_000_000 + k) as u64;
    let mut r = Rng::new(cfg.seed, &format!("imagenet-{split}"), idx);
    let mut objects = Vec::new();
    let clutter = r.below(3);
    let classes = cfg.imagenet[0];
    for c in 0..clutter {
        let mut cr = Rng::new(
            cfg.seed,
            &format!("imagenet-clutter-{split}"),
            idx * 4 + c as u64,
        );
        let fam = (class + 1 + cr.below(classes.max(2) - 1)) % classes.max(1);
        objects.push(Placed {
            shape: family_shape(fam, &mut cr, 1.5, true),
            pose: Pose {
                ty: cr.range(-1.5, 1.5),
                tz: cr.range(-3.0, 3.0),
                s: cr.range(0.3, 0.6),
                rxy: cr.range(-180.0, 180.0),
                ..Pose::default()
            },
            size: 0.25,
        });
    }
    objects.push(Placed {
        shape: family_shape(class, &mut r, 1.5, true),
        pose: Pose {
            rxy: r.range(-180.0, 180.0),
            rxz: r.range(-60.0, 60.0),
            ryz: r.range(-60.0, 60.0),
            ty: r.range(-0.5, 0.5),
            tz: r.range(-1.0, 1.0),
            s: r.range(0.7, 1.3),
        },
        size: 0.28,
    });
    Scene {
        background: Background::random(&mut r, true),
        objects,
        gray: false,
        disc: false,
    }
}
