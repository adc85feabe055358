//! The synthetic world's properties, measured with our own ingest and metrics: determinism,
//! ceilings near the real ones, a readout of the generating features near the ceiling, a
//! shuffled control near zero, and human behaviour with a realistic ceiling.

use std::path::Path;

use ventral_ingest::catalog::{Catalog, ingest_catalog};
use ventral_metrics::i2n::{Probabilities, Trials, i2n};
use ventral_metrics::neural::{Features, NeuralOptions, Recordings, neural_predictivity};
use ventral_store::Assembly;
use ventral_store::arrow::array::{Array, AsArray};
use ventral_store::arrow::compute::cast;
use ventral_store::arrow::datatypes::{DataType, Int64Type};
use ventral_synth::{WorldConfig, generate};

fn strings(a: &Assembly, dim: &str, col: &str) -> Vec<String> {
    let t = a.coords(dim).unwrap();
    let c = cast(t.column_by_name(col).unwrap(), &DataType::Utf8).unwrap();
    let s = c.as_string::<i32>();
    (0..s.len()).map(|i| s.value(i).to_string()).collect()
}

fn ints(a: &Assembly, dim: &str, col: &str) -> Vec<i64> {
    let t = a.coords(dim).unwrap();
    let c = cast(t.column_by_name(col).unwrap(), &DataType::Int64).unwrap();
    let s = c.as_primitive::<Int64Type>();
    (0..s.len()).map(|i| s.value(i)).collect()
}

/// The recordings of one region of the MajajHong-like store.
fn recordings(store: &Path, region: &str) -> Recordings {
    let a = Assembly::open(store).unwrap();
    let regions = strings(&a, "neuroid", "region");
    let keep: Vec<usize> = (0..regions.len())
        .filter(|&j| regions[j] == region)
        .collect();
    let all = a.read_f64(&a.full()).unwrap();
    let (n, q) = (all.shape()[0], all.shape()[1]);
    let flat = all.as_standard_layout();
    let flat = flat.as_slice().unwrap();
    let mut values = Vec::with_capacity(n * keep.len());
    for i in 0..n {
        for &j in &keep {
            values.push(flat[i * q + j]);
        }
    }
    Recordings {
        values,
        n_neuroids: keep.len(),
        stimulus_id: strings(&a, "presentation", "stimulus_id"),
        object_name: strings(&a, "presentation", "object_name"),
        repetition: ints(&a, "presentation", "repetition"),
    }
}

fn features(store: &Path) -> (Vec<f32>, usize, Vec<String>) {
    let a = Assembly::open(store).unwrap();
    let v = a.read_f32(&a.full()).unwrap();
    let p = v.shape()[1];
    (
        v.as_standard_layout().as_slice().unwrap().to_vec(),
        p,
        strings(&a, "stimulus", "stimulus_id"),
    )
}

#[test]
fn the_embedded_world_has_the_promised_properties() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let cfg = WorldConfig::embedded();
    let s = generate(&cfg, &world, &|_| {}).unwrap();
    eprintln!("embedded world: {} bytes in {:.1} s", s.bytes, s.seconds);
    let cat = Catalog::read(&world.join("brainio/lookup.csv")).unwrap();
    let stores = dir.path().join("stores");
    ingest_catalog(&cat, &[], &stores, None).unwrap();
    let mh = stores.join("assemblies/dicarlo.MajajHong2015.public");
    let opts = NeuralOptions::default();
    for (region, target, feats) in [
        ("V4", 0.90, "hvm-features-V4"),
        ("IT", 0.82, "hvm-features-IT"),
    ] {
        let rec = recordings(&mh, region);
        let ceiling = rec.internal_consistency(10, 1).unwrap().center;
        eprintln!("{region}: ceiling {ceiling:.3} (target {target})");
        assert!(
            (ceiling - target).abs() <= 0.03,
            "{region} ceiling {ceiling}"
        );
        let avg = rec.average().unwrap();
        let (values, p, ids) = features(&world.join("truth").join(feats));
        let f = Features {
            values: &values,
            n_features: p,
            stimulus_id: &ids,
        };
        let score = neural_predictivity(&f, &avg, &opts).unwrap().center;
        eprintln!(
            "{region}: generating features {score:.3} = {:.2} of the ceiling",
            score / ceiling
        );
        assert!(
            score >= 0.9 * ceiling,
            "{region}: readout {score} < 0.9 × ceiling {ceiling}"
        );
        // The same features on shuffled stimuli predict nothing.
        // A random permutation of the stimuli (a rotation would keep blocks of one object
        // together and stay predictable).
        let mut shuffled = ids.clone();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let f = Features {
            values: &values,
            n_features: p,
            stimulus_id: &shuffled,
        };
        let control = neural_predictivity(&f, &avg, &opts).unwrap().center;
        eprintln!("{region}: shuffled control {control:.3}");
        assert!(control.abs() < 0.15, "{region}: shuffled control {control}");
    }
    // Human behaviour: a split-half ceiling in the range of the real one (≈ .48).
    let raj = Assembly::open(&stores.join("assemblies/dicarlo.Rajalingham2018.public")).unwrap();
    let trials = Trials {
        stimulus_id: strings(&raj, "presentation", "stimulus_id"),
        sample_obj: strings(&raj, "presentation", "sample_obj"),
        dist_obj: strings(&raj, "presentation", "dist_obj"),
        choice: strings(&raj, "presentation", "choice"),
        truth: strings(&raj, "presentation", "truth"),
    };
    let mut objects: Vec<String> = trials.truth.clone();
    objects.sort();
    objects.dedup();
    let mut images: Vec<(String, String)> = trials
        .stimulus_id
        .iter()
        .cloned()
        .zip(trials.truth.iter().cloned())
        .collect();
    images.sort();
    images.dedup();
    // A model that knows each image's accuracy but nothing of which distractor confuses it:
    // behaviour is not accuracy alone, so it stays well below the human ceiling.
    let mut right = std::collections::HashMap::<&str, (f64, f64)>::new();
    for (i, id) in trials.stimulus_id.iter().enumerate() {
        let e = right.entry(id.as_str()).or_default();
        e.1 += 1.0;
        if trials.choice[i] == trials.truth[i] {
            e.0 += 1.0;
        }
    }
    let ids: Vec<String> = images.iter().map(|x| x.0.clone()).collect();
    let mut probs = Vec::new();
    for (id, truth) in &images {
        let (k, n) = right[id.as_str()];
        let acc = (k / n).clamp(0.01, 0.99);
        for o in &objects {
            probs.push(if o == truth {
                acc
            } else {
                (1.0 - acc) / (objects.len() - 1) as f64
            });
        }
    }
    let p = Probabilities {
        values: &probs,
        stimulus_id: &ids,
        choice: &objects,
    };
    let s = i2n(&p, &trials, 2, 0).unwrap();
    let ceiling = s.ceiling.unwrap();
    eprintln!(
        "human I2n ceiling {ceiling:.3}; accuracy-only model raw {:.3}",
        s.score
    );
    assert!((0.40..=0.56).contains(&ceiling), "human ceiling {ceiling}");
    assert!(
        s.score < 0.8 * ceiling,
        "accuracy alone explains the pattern: {}",
        s.score
    );
}

#[test]
fn same_seed_same_bytes_at_any_thread_count_and_seeds_differ() {
    let tiny = WorldConfig {
        hvm_per_object: [1, 1, 0],
        hvm_size: 64,
        repetitions: 2,
        sites: [4, 4],
        objectome_per_object: 1,
        trials_per_image: 4,
        objectome_fitting_per_object: 1,
        imagenet: [3, 2, 1],
        imagenet_size: 32,
        coco: [3, 2],
        coco_size: 64,
        ost_repetitions: 2,
        new_neurons: [3, 8],
        new_objects: [2, 1],
        cifar: [6, 2, 1],
        ..WorldConfig::embedded()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: usize, seed: u64, name: &str| {
        let out = dir.path().join(name);
        let cfg = WorldConfig {
            seed,
            ..tiny.clone()
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| generate(&cfg, &out, &|_| {}).unwrap());
        std::fs::read_to_string(out.join("manifest.toml")).unwrap()
    };
    let a = run(1, 5, "a");
    let b = run(2, 5, "b");
    assert_eq!(
        a, b,
        "the manifest (every file's blake3) must not depend on the thread count"
    );
    let c = run(2, 6, "c");
    assert_ne!(a, c, "another seed, another world");
}
