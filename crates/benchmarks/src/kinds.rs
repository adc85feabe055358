//! The benchmarks as stage kinds.
//!
//! ```toml
//! [stages.it]
//! kind = "neural"
//! inputs = { activations = "stage:activations", recordings = "stage:recordings/assemblies/dicarlo.MajajHong2015.public" }
//! region = "IT"                 # the recordings' neuroids of this region
//! benchmark = "MajajHong2015.IT-pls"
//! normalisation = "r/c"         # (r/c)^2, r^2/c
//! time_bins = [190, 210]        # average these 10-ms bins (early/late IT); default: the one bin
//! min_consistency = 0.9         # only reliable neuroids (the new-images test)
//! ```
//!
//! The activation store is chosen by the time-bin commitment: the recordings' time bin (its
//! `time_bin_start`, or the window's first bin) picks the region's nearest model timestep,
//! `<region>-t<k>`; `layer` names a store directly instead.

use ventral_metrics::neural::{NeuralOptions, Normalisation};
use ventral_stage::{BoxError, ParamSpec, ParamType, StageContext, StageKind};

use crate::neural::{Selection, score, window_start};
use crate::{commit_timestep, write_scores};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "region",
        ty: ParamType::Str,
        required: true,
        doc: "the recorded region (V4, IT) and model area",
    },
    ParamSpec {
        name: "benchmark",
        ty: ParamType::Str,
        required: false,
        doc: "the benchmark's name in the scores (default MajajHong2015.<region>-pls)",
    },
    ParamSpec {
        name: "layer",
        ty: ParamType::Str,
        required: false,
        doc: "the activation store to use (default: by the time-bin commitment)",
    },
    ParamSpec {
        name: "normalisation",
        ty: ParamType::Str,
        required: false,
        doc: "r/c (default, the 2019 paper), (r/c)^2 or r^2/c",
    },
    ParamSpec {
        name: "model",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name in the scores (default: the activations' `model`)",
    },
    ParamSpec {
        name: "n_components",
        ty: ParamType::Int,
        required: false,
        doc: "PLS components (25)",
    },
    ParamSpec {
        name: "splits",
        ty: ParamType::Int,
        required: false,
        doc: "cross-validation splits (10)",
    },
    ParamSpec {
        name: "time_bins",
        ty: ParamType::Array,
        required: false,
        doc: "[start, end] ms: average the recordings' time bins within (default: the store's single bin)",
    },
    ParamSpec {
        name: "min_consistency",
        ty: ParamType::Float,
        required: false,
        doc: "keep only neuroids whose internal consistency is at least this (default: all)",
    },
];

/// The `normalisation` param (default `r/c`).
fn normalisation(p: &ventral_stage::Params) -> Result<Normalisation, BoxError> {
    p.get("normalisation")
        .and_then(|v| v.as_str())
        .unwrap_or("r/c")
        .parse()
        .map_err(|e| format!("param `normalisation`: {e}").into())
}

/// The `readout` param of `ost` (default `brain-score`).
fn readout(p: &ventral_stage::Params) -> Result<crate::ost::OstReadout, BoxError> {
    p.get("readout")
        .and_then(|v| v.as_str())
        .unwrap_or("brain-score")
        .parse()
        .map_err(|e| format!("param `readout`: {e}").into())
}

/// Integer param `name`, if set, must be at least `min`.
fn positive(p: &ventral_stage::Params, name: &str, min: u64) -> Result<(), BoxError> {
    match p.get(name) {
        Some(v) if v.as_u64().is_none_or(|n| n < min) => {
            Err(format!("param `{name}`: {v} (a whole number ≥ {min})").into())
        }
        _ => Ok(()),
    }
}

/// The grid of inverse regularisation strengths of `transfer` (`c_range = [low, high, steps]`).
fn c_grid(p: &ventral_stage::Params) -> Result<Vec<f64>, BoxError> {
    Ok(match p.get("c_range") {
        None => crate::transfer::log_grid(0.0005, 0.05, 10),
        Some(v) => match v.as_array().map(Vec::as_slice) {
            Some([lo, hi, n]) => match (lo.as_f64(), hi.as_f64(), n.as_u64()) {
                (Some(lo), Some(hi), Some(n)) if lo > 0.0 && hi >= lo && n > 0 => {
                    crate::transfer::log_grid(lo, hi, n as usize)
                }
                _ => {
                    return Err(format!(
                        "param `c_range`: {v} is not [low > 0, high ≥ low, steps ≥ 1]"
                    )
                    .into());
                }
            },
            _ => {
                return Err(
                    format!("param `c_range`: expected [low, high, steps], got {v}").into(),
                );
            }
        },
    })
}

/// The `[start, end]` window of a `time_bins` parameter.
fn window(p: &ventral_stage::Params) -> Result<Option<(f64, f64)>, BoxError> {
    let Some(v) = p.get("time_bins") else {
        return Ok(None);
    };
    match v
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64()).collect::<Vec<_>>())
    {
        Some(a) if a.len() == 2 && a.iter().all(Option::is_some) => {
            let (lo, hi) = (a[0].unwrap_or_default(), a[1].unwrap_or_default());
            if lo < hi {
                return Ok(Some((lo, hi)));
            }
            Err(format!("param `time_bins`: start {lo} must be before end {hi}").into())
        }
        _ => Err(format!("param `time_bins`: expected [start, end] in ms, got {v}").into()),
    }
}

/// `neural`: PLS predictivity of activations for recordings, with the ceiling.
pub struct NeuralKind;

impl StageKind for NeuralKind {
    fn name(&self) -> &str {
        "neural"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        PARAMS
    }
    fn doc(&self) -> &str {
        "neural predictivity (PLS-25, Pearson, median, mean over splits) and its internal-consistency ceiling; writes scores.parquet and score.json"
    }
    fn check(&self, p: &ventral_stage::Params) -> Result<(), BoxError> {
        window(p)?;
        normalisation(p)?;
        positive(p, "n_components", 1)?;
        positive(p, "splits", 2)?;
        if let Some(c) = p.get("min_consistency").and_then(|v| v.as_f64())
            && !(-1.0..=1.0).contains(&c)
        {
            return Err(format!("param `min_consistency`: {c} (a correlation, -1 to 1)").into());
        }
        Ok(())
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ctx.params;
        let region = p
            .get("region")
            .and_then(|v| v.as_str())
            .unwrap_or("IT")
            .to_string();
        let acts = ctx.one_input("activations")?;
        let recs = ctx.one_input("recordings")?;
        let sel = Selection {
            region: Some(region.clone()),
            window: window(p)?,
            min_consistency: p.get("min_consistency").and_then(|v| v.as_f64()),
        };
        let layer = match p.get("layer").and_then(|v| v.as_str()) {
            Some(l) => l.to_string(),
            None => {
                let start = window_start(recs, &sel)?;
                let start = start.unwrap_or(70.0);
                let steps = std::fs::read_dir(acts)?
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("{region}-t"))
                    })
                    .count();
                let k = commit_timestep(&region, start, Some(steps.max(1)))
                    .ok_or_else(|| format!("no time commitment for area `{region}`"))?;
                format!("{region}-t{k}")
            }
        };
        let features = acts.join(&layer);
        if !features.join("zarr.json").is_file() {
            return Err(format!("{}: no activation store `{layer}`", acts.display()).into());
        }
        let model = match p.get("model").and_then(|v| v.as_str()) {
            Some(m) => m.to_string(),
            None => crate::model_of(&features)?,
        };
        let normalisation = normalisation(p)?;
        let mut opts = NeuralOptions::default();
        if let Some(n) = p.get("n_components").and_then(|v| v.as_u64()) {
            opts.n_components = n as usize;
        }
        if let Some(n) = p.get("splits").and_then(|v| v.as_u64()) {
            opts.n_splits = n as usize;
        }
        let bench = p
            .get("benchmark")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("MajajHong2015.{region}-pls"));
        let (result, rows) = score(&bench, &model, &features, recs, &sel, normalisation, &opts)?;
        write_scores(ctx.out_dir, &rows)?;
        std::fs::write(
            ctx.out_dir.join("score.json"),
            serde_json::to_string_pretty(&result)? + "\n",
        )?;
        (ctx.progress)(&format!(
            "{bench}: raw {:.3}, ceiling {:.3}, ceiled {:.3} ({layer}, {} neuroids)",
            result.raw, result.ceiling, result.ceiled, result.neuroids
        ));
        Ok(())
    }
}

const BEHAVIOUR_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "layer",
        ty: ParamType::Str,
        required: false,
        doc: "the activation store read out (default decoder-t0, the avgpool)",
    },
    ParamSpec {
        name: "benchmark",
        ty: ParamType::Str,
        required: false,
        doc: "the benchmark's name (default Rajalingham2018-i2n)",
    },
    ParamSpec {
        name: "model",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name (default: the activations' `model`)",
    },
    ParamSpec {
        name: "c",
        ty: ParamType::Float,
        required: false,
        doc: "inverse L2 strength of the logistic readout (1e-3)",
    },
    ParamSpec {
        name: "label",
        ty: ParamType::Str,
        required: false,
        doc: "the fitting stimuli's label column (object_name)",
    },
];

/// `behaviour`: I2n of a logistic readout against human trials.
pub struct BehaviourKind;

impl StageKind for BehaviourKind {
    fn name(&self) -> &str {
        "behaviour"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        BEHAVIOUR_PARAMS
    }
    fn doc(&self) -> &str {
        "I2n (Rajalingham2018): logistic readout fitted on `fitting` activations, probabilities on `test` activations, against human `trials`"
    }
    fn check(&self, p: &ventral_stage::Params) -> Result<(), BoxError> {
        if let Some(c) = p.get("c").and_then(|v| v.as_f64())
            && !(c.is_finite() && c > 0.0)
        {
            return Err(format!("param `c`: {c} (a positive number)").into());
        }
        Ok(())
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ctx.params;
        let layer = p
            .get("layer")
            .and_then(|v| v.as_str())
            .unwrap_or("decoder-t0");
        let fitting = ctx.one_input("fitting")?.join(layer);
        let test = ctx.one_input("test")?.join(layer);
        let trials = ctx.one_input("trials")?;
        let model = match p.get("model").and_then(|v| v.as_str()) {
            Some(m) => m.to_string(),
            None => crate::model_of(&test)?,
        };
        let bench = p
            .get("benchmark")
            .and_then(|v| v.as_str())
            .unwrap_or("Rajalingham2018-i2n");
        let c = p.get("c").and_then(|v| v.as_f64()).unwrap_or(1e-3);
        let label = p
            .get("label")
            .and_then(|v| v.as_str())
            .unwrap_or("object_name");
        let (result, rows) =
            crate::behaviour::score(bench, &model, &fitting, &test, trials, label, c)?;
        write_scores(ctx.out_dir, &rows)?;
        std::fs::write(
            ctx.out_dir.join("score.json"),
            serde_json::to_string_pretty(&result)? + "\n",
        )?;
        (ctx.progress)(&format!(
            "{bench}: raw {:.3}, ceiling {:.3}, ceiled {:.3}, readout accuracy {:.3}",
            result.raw, result.ceiling, result.ceiled, result.readout_accuracy
        ));
        Ok(())
    }
}

const OST_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "benchmark",
        ty: ParamType::Str,
        required: false,
        doc: "the benchmark's name (default Kar2019-ost)",
    },
    ParamSpec {
        name: "model",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name (default: the activations' `model`)",
    },
    ParamSpec {
        name: "decoder",
        ty: ParamType::Str,
        required: false,
        doc: "the monkey decoder whose OSTs to use (default: the mean over decoders)",
    },
    ParamSpec {
        name: "readout",
        ty: ParamType::Str,
        required: false,
        doc: "brain-score (default: Brain-Score's TensorFlow readout, step for step) or converged (the same loss minimised to convergence)",
    },
];

/// `ost`: object solution times of the model's IT against the monkey's.
pub struct OstKind;

impl StageKind for OstKind {
    fn name(&self) -> &str {
        "ost"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        OST_PARAMS
    }
    fn doc(&self) -> &str {
        "Kar2019 OST: per-bin softmax readouts of IT (`activations`, committed timesteps) vs the monkey's OST and I1 (`monkey`)"
    }
    fn check(&self, p: &ventral_stage::Params) -> Result<(), BoxError> {
        readout(p).map(drop)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ctx.params;
        let acts = ctx.one_input("activations")?;
        let monkey = ctx.one_input("monkey")?;
        let model = match p.get("model").and_then(|v| v.as_str()) {
            Some(m) => m.to_string(),
            None => crate::model_of(&acts.join("IT-t0"))?,
        };
        let bench = p
            .get("benchmark")
            .and_then(|v| v.as_str())
            .unwrap_or("Kar2019-ost");
        let decoder = p.get("decoder").and_then(|v| v.as_str());
        let readout = readout(p)?;
        let (result, rows) = crate::ost::score(bench, &model, acts, monkey, decoder, readout)?;
        write_scores(ctx.out_dir, &rows)?;
        std::fs::write(
            ctx.out_dir.join("score.json"),
            serde_json::to_string_pretty(&result)? + "\n",
        )?;
        (ctx.progress)(&format!(
            "{bench}: Spearman {:.3}, ceiled {:.3} ({} readout; model/monkey pairs per split {:?})",
            result.raw, result.ceiled, result.readout, result.pairs
        ));
        Ok(())
    }
}

const COMPOSITE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "benchmark",
        ty: ParamType::Str,
        required: false,
        doc: "the composite's name (default Brain-Score)",
    },
    ParamSpec {
        name: "members",
        ty: ParamType::StrList,
        required: false,
        doc: "the benchmarks averaged (default: every input's benchmark)",
    },
];

/// `composite`: the mean of several benchmarks' ceiled scores (the Brain-Score).
pub struct CompositeKind;

impl StageKind for CompositeKind {
    fn name(&self) -> &str {
        "composite"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        COMPOSITE_PARAMS
    }
    fn doc(&self) -> &str {
        "Brain-Score: the mean of the ceiled scores of the input score stores (`scores`), for one model"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ctx.params;
        let bench = p
            .get("benchmark")
            .and_then(|v| v.as_str())
            .unwrap_or("Brain-Score");
        let members: Option<Vec<String>> = p.get("members").and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
        });
        let dirs: Vec<&std::path::Path> =
            ctx.input("scores")?.iter().map(|p| p.as_path()).collect();
        let (result, rows) = crate::composite(bench, &dirs, members.as_deref())?;
        write_scores(ctx.out_dir, &rows)?;
        std::fs::write(
            ctx.out_dir.join("score.json"),
            serde_json::to_string_pretty(&result)? + "\n",
        )?;
        (ctx.progress)(&format!(
            "{bench}: {:.3} = mean of {}",
            result.ceiled,
            result
                .members
                .iter()
                .map(|(b, v)| format!("{b} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }
}

const TRANSFER_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "benchmark",
        ty: ParamType::Str,
        required: false,
        doc: "the benchmark's name (default CIFAR-100-transfer)",
    },
    ParamSpec {
        name: "layer",
        ty: ParamType::Str,
        required: false,
        doc: "the activation store read out (default decoder-t0, the avgpool)",
    },
    ParamSpec {
        name: "label",
        ty: ParamType::Str,
        required: false,
        doc: "the stimuli's label column (default label)",
    },
    ParamSpec {
        name: "c_range",
        ty: ParamType::Array,
        required: false,
        doc: "[low, high, steps] of the log-spaced C grid (default [0.0005, 0.05, 10])",
    },
    ParamSpec {
        name: "seed",
        ty: ParamType::Int,
        required: false,
        doc: "seed of the validation split (default 0)",
    },
    ParamSpec {
        name: "model",
        ty: ParamType::Str,
        required: false,
        doc: "the model's name (default: the activations' `model`)",
    },
];

/// `transfer`: linear transfer of a model's features to another task (CIFAR-100).
pub struct TransferKind;

impl StageKind for TransferKind {
    fn name(&self) -> &str {
        "transfer"
    }
    ventral_stage::code_crate!();
    fn params(&self) -> &[ParamSpec] {
        TRANSFER_PARAMS
    }
    fn doc(&self) -> &str {
        "transfer: logistic readout fitted on `train` activations (C chosen on a validation part), accuracy on `test` activations"
    }
    fn check(&self, p: &ventral_stage::Params) -> Result<(), BoxError> {
        c_grid(p).map(drop)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p = ctx.params;
        let layer = p
            .get("layer")
            .and_then(|v| v.as_str())
            .unwrap_or("decoder-t0");
        let train = ctx.one_input("train")?.join(layer);
        let test = ctx.one_input("test")?.join(layer);
        let model = match p.get("model").and_then(|v| v.as_str()) {
            Some(m) => m.to_string(),
            None => crate::model_of(&test)?,
        };
        let bench = p
            .get("benchmark")
            .and_then(|v| v.as_str())
            .unwrap_or("CIFAR-100-transfer");
        let label = p.get("label").and_then(|v| v.as_str()).unwrap_or("label");
        let grid = c_grid(p)?;
        let seed = p.get("seed").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        let (result, rows) =
            crate::transfer::score(bench, &model, &train, &test, label, &grid, seed)?;
        write_scores(ctx.out_dir, &rows)?;
        std::fs::write(
            ctx.out_dir.join("score.json"),
            serde_json::to_string_pretty(&result)? + "\n",
        )?;
        (ctx.progress)(&format!(
            "{bench}: accuracy {:.3} (chance {:.3}), C = {}",
            result.raw, result.chance, result.c
        ));
        Ok(())
    }
}
