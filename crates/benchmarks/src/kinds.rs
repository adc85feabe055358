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
use ventral_stage::typed::parse;
use ventral_stage::{BoxError, KindParams, ParamError, StageContext, StageKind};

use crate::neural::{Selection, score, window_start};
use crate::{commit_timestep, write_scores};

/// How a raw score is normalised by its ceiling.
#[derive(
    Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum NormalisationParam {
    /// r / c, as the 2019 paper did.
    #[default]
    #[serde(rename = "r/c")]
    ROverC,
    /// (r / c)².
    #[serde(rename = "(r/c)^2")]
    ROverCSquared,
    /// r² / c, as Brain-Score does now.
    #[serde(rename = "r^2/c")]
    RSquaredOverC,
}

impl From<NormalisationParam> for Normalisation {
    fn from(n: NormalisationParam) -> Self {
        match n {
            NormalisationParam::ROverC => Normalisation::ROverC,
            NormalisationParam::ROverCSquared => Normalisation::ROverCSquared,
            NormalisationParam::RSquaredOverC => Normalisation::RSquaredOverC,
        }
    }
}

/// The params of `neural`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeuralParams {
    /// The recorded region (V4, IT) and model area.
    pub region: String,
    /// The benchmark's name in the scores (default MajajHong2015.<region>-pls).
    pub benchmark: Option<String>,
    /// The activation store to use (default: the `commitment` input's layer for the region
    /// if there is one, else by the time-bin commitment).
    pub layer: Option<String>,
    /// How the raw score is normalised by the ceiling.
    #[serde(default)]
    pub normalisation: NormalisationParam,
    /// The model's name in the scores (default: the activations' `model`).
    pub model: Option<String>,
    /// PLS components.
    #[serde(default = "default_components")]
    pub n_components: u32,
    /// Cross-validation splits (at least 2).
    #[serde(default = "default_splits")]
    pub splits: u32,
    /// [start, end] ms: average the recordings' time bins within (default: the store's
    /// single bin).
    pub time_bins: Option<[f64; 2]>,
    /// Keep only neuroids whose internal consistency is at least this (default: all).
    pub min_consistency: Option<f64>,
}

fn default_components() -> u32 {
    NeuralOptions::default().n_components as u32
}

fn default_splits() -> u32 {
    NeuralOptions::default().n_splits as u32
}

impl KindParams for NeuralParams {
    fn check(&self) -> Result<(), String> {
        if let Some([lo, hi]) = self.time_bins
            && (lo.is_nan() || hi.is_nan() || lo >= hi)
        {
            return Err(format!(
                "param `time_bins`: start {lo} must be before end {hi} ([start, end] in ms)"
            ));
        }
        if self.n_components < 1 {
            return Err("param `n_components`: 0 (a whole number ≥ 1)".into());
        }
        if self.splits < 2 {
            return Err(format!(
                "param `splits`: {} (a whole number ≥ 2)",
                self.splits
            ));
        }
        if let Some(c) = self.min_consistency
            && !(-1.0..=1.0).contains(&c)
        {
            return Err(format!(
                "param `min_consistency`: {c} (a correlation, -1 to 1)"
            ));
        }
        if self.region.is_empty() {
            return Err("param `region`: empty (V4, IT, …)".into());
        }
        Ok(())
    }
}

/// The params of `behaviour`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BehaviourParams {
    /// The activation store read out (default: `decoder-t0`, CORnet's avgpool, or the
    /// input's only store — a zoo model's readout layer extracted alone).
    pub layer: Option<String>,
    /// The benchmark's name.
    #[serde(default = "i2n")]
    pub benchmark: String,
    /// The model's name (default: the activations' `model`).
    pub model: Option<String>,
    /// Inverse L2 strength of the logistic readout.
    #[serde(default = "default_c")]
    pub c: f64,
    /// The fitting stimuli's label column.
    #[serde(default = "object_name")]
    pub label: String,
}

fn i2n() -> String {
    "Rajalingham2018-i2n".into()
}
fn default_c() -> f64 {
    1e-3
}
fn object_name() -> String {
    "object_name".into()
}

impl KindParams for BehaviourParams {
    fn check(&self) -> Result<(), String> {
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(format!("param `c`: {} (a positive number)", self.c));
        }
        Ok(())
    }
}

/// Which readout gives OST's per-bin choice probabilities.
#[derive(
    Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReadoutParam {
    /// Brain-Score's TensorFlow readout, step for step.
    #[default]
    BrainScore,
    /// The same loss minimised to convergence.
    Converged,
}

impl From<ReadoutParam> for crate::ost::OstReadout {
    fn from(r: ReadoutParam) -> Self {
        match r {
            ReadoutParam::BrainScore => crate::ost::OstReadout::BrainScore,
            ReadoutParam::Converged => crate::ost::OstReadout::Converged,
        }
    }
}

/// The params of `ost`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OstParams {
    /// The benchmark's name.
    #[serde(default = "kar")]
    pub benchmark: String,
    /// The model's name (default: the activations' `model`).
    pub model: Option<String>,
    /// The monkey decoder whose OSTs to use (default: the mean over decoders).
    pub decoder: Option<String>,
    /// The readout.
    #[serde(default)]
    pub readout: ReadoutParam,
}

fn kar() -> String {
    "Kar2019-ost".into()
}

impl KindParams for OstParams {}

/// The params of `composite`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompositeParams {
    /// The composite's name.
    #[serde(default = "brain_score")]
    pub benchmark: String,
    /// The benchmarks averaged (default: every input's benchmark).
    pub members: Option<Vec<String>>,
    /// Members that count 0 when no input scores them, as the paper's Table 1 gives models
    /// without time 0 for OST (Brain-Score 2.4.2 would report NaN). Each must be a member.
    #[serde(default)]
    pub absent_as_zero: Vec<String>,
}

fn brain_score() -> String {
    "Brain-Score".into()
}

impl KindParams for CompositeParams {
    fn check(&self) -> Result<(), String> {
        if self.members.as_ref().is_some_and(Vec::is_empty) {
            return Err("param `members`: empty (at least one benchmark)".into());
        }
        if let Some(a) = self
            .absent_as_zero
            .iter()
            .find(|a| !self.members.as_ref().is_some_and(|m| m.contains(a)))
        {
            return Err(format!(
                "param `absent_as_zero`: `{a}` is not in `members` (name it there too)"
            ));
        }
        Ok(())
    }
}

/// The params of `transfer`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferParams {
    /// The benchmark's name.
    #[serde(default = "cifar")]
    pub benchmark: String,
    /// The activation store read out (the avgpool).
    /// (default: `decoder-t0`, CORnet's avgpool, or the input's only store)
    pub layer: Option<String>,
    /// The stimuli's label column.
    #[serde(default = "label")]
    pub label: String,
    /// [low, high, steps] of the log-spaced C grid.
    #[serde(default = "c_range")]
    pub c_range: (f64, f64, u32),
    /// Seed of the validation split.
    #[serde(default)]
    pub seed: u32,
    /// The model's name (default: the activations' `model`).
    pub model: Option<String>,
}

fn cifar() -> String {
    "CIFAR-100-transfer".into()
}
fn label() -> String {
    "label".into()
}
fn c_range() -> (f64, f64, u32) {
    (0.0005, 0.05, 10)
}

impl TransferParams {
    /// The grid of inverse regularisation strengths.
    pub fn grid(&self) -> Vec<f64> {
        let (lo, hi, n) = self.c_range;
        crate::transfer::log_grid(lo, hi, n as usize)
    }
}

impl KindParams for TransferParams {
    fn check(&self) -> Result<(), String> {
        let (lo, hi, n) = self.c_range;
        if !(lo > 0.0 && hi >= lo && hi.is_finite() && n > 0) {
            return Err(format!(
                "param `c_range`: [{lo}, {hi}, {n}] is not [low > 0, high ≥ low, steps ≥ 1]"
            ));
        }
        Ok(())
    }
}

/// The activation store `layer` in input `input`; a name that is not there is a bad value
/// of param `param` (checked when the stage starts: the run exits 2), naming the stores
/// there.
fn activation_store(
    ctx: &StageContext<'_>,
    input: &str,
    layer: &str,
    param: &str,
) -> Result<std::path::PathBuf, BoxError> {
    let acts = ctx.one_input(input)?;
    let p = acts.join(layer);
    if p.join("zarr.json").is_file() && !layer.contains('/') && layer != ".." {
        return Ok(p);
    }
    let mut have: Vec<String> = std::fs::read_dir(acts)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("zarr.json").is_file())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    have.sort();
    Err(ParamError::boxed(
        param,
        format!(
            "input `{input}` has no activation store `{layer}` (stores: {})",
            have.join(", ")
        ),
    ))
}

/// The params of `commit`.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitParams {
    /// The regions to commit (values of the recordings' `region` coordinate).
    #[serde(default = "v4_it")]
    pub regions: Vec<String>,
    /// Candidate layers (activation stores), in order: ties go to the earlier (default:
    /// every store, in the order `extract` wrote them).
    #[serde(default)]
    pub layers: Vec<String>,
    /// How a layer's raw score is normalised for the choice (Brain-Score's layer selection:
    /// r^2/c).
    #[serde(default = "r2_over_c")]
    pub normalisation: NormalisationParam,
    /// The model's name in the scores (default: the activations' `model`).
    pub model: Option<String>,
    /// PLS components.
    #[serde(default = "default_components")]
    pub n_components: u32,
    /// Cross-validation splits (at least 2).
    #[serde(default = "default_splits")]
    pub splits: u32,
    /// Commit as Brain-Score's published region→layer map for `arch` does (input `maps`:
    /// `data/brainscore/region_layer_maps.toml`), where it has one whose layers are all
    /// candidates; by layer selection otherwise. Every layer is scored either way.
    #[serde(default)]
    pub published: bool,
    /// The architecture (torchvision's name) whose published map to use.
    pub arch: Option<String>,
}

fn v4_it() -> Vec<String> {
    vec!["V4".into(), "IT".into()]
}

fn r2_over_c() -> NormalisationParam {
    NormalisationParam::RSquaredOverC
}

impl KindParams for CommitParams {
    fn check(&self) -> Result<(), String> {
        if self.regions.is_empty() || self.regions.iter().any(String::is_empty) {
            return Err("param `regions`: needs at least one non-empty region (V4, IT, …)".into());
        }
        if self.n_components < 1 {
            return Err("param `n_components`: 0 (a whole number ≥ 1)".into());
        }
        if self.splits < 2 {
            return Err(format!(
                "param `splits`: {} (a whole number ≥ 2)",
                self.splits
            ));
        }
        if self.published && self.arch.as_deref().is_none_or(str::is_empty) {
            return Err(
                "param `published`: true needs param `arch` (the architecture whose published map to use)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `commit`: Brain-Score's layer commitment — per region, the candidate layer that predicts
/// the region's recordings best.
pub struct CommitKind;

impl StageKind for CommitKind {
    fn name(&self) -> &str {
        "commit"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(CommitParams);
    fn doc(&self) -> &str {
        "layer commitment: per region, the candidate layer (activation store) with the best ceiled neural predictivity on the region's recordings; writes region_layer_map.json and every layer's scores"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: CommitParams = parse(ctx.params)?;
        let acts = ctx.one_input("activations")?;
        let recs = ctx.one_input("recordings")?;
        let layers = if p.layers.is_empty() {
            crate::commit::candidate_stores(acts)?
        } else {
            for l in &p.layers {
                activation_store(ctx, "activations", l, "layers")?;
            }
            p.layers.clone()
        };
        let first = layers
            .first()
            .ok_or_else(|| format!("{}: no activation stores", acts.display()))?;
        let model = match &p.model {
            Some(m) => m.clone(),
            None => crate::model_of(&acts.join(first))?,
        };
        let opts = NeuralOptions {
            n_components: p.n_components as usize,
            n_splits: p.splits as usize,
            ..NeuralOptions::default()
        };
        let (choices, rows) = crate::commit::commit(
            &model,
            acts,
            &layers,
            recs,
            &p.regions,
            &|r| format!("MajajHong2015.{r}-pls"),
            p.normalisation.into(),
            &opts,
            &|m| (ctx.progress)(m),
        )?;
        let mut choices = choices;
        let mut source = crate::commit::CommitmentSource {
            how: "selected".into(),
            published: None,
            note: None,
        };
        if p.published {
            let arch = p.arch.as_deref().unwrap_or_default();
            let maps = ctx.one_input("maps")?;
            match crate::commit::published_map(maps, arch)? {
                None => {
                    source.note = Some(format!(
                        "Brain-Score publishes no region→layer map for {arch} (of a plugin that wraps torchvision's model)"
                    ));
                }
                Some((map, origin)) => {
                    source.published = Some(map.origin(&origin));
                    match crate::commit::usable(&map, &p.regions, &layers) {
                        Ok(published) => {
                            for (c, l) in choices.iter_mut().zip(published) {
                                c.layer = l;
                            }
                            source.how = "published".into();
                        }
                        Err(why) => {
                            source.note = Some(format!("Brain-Score's map is not used: {why}"));
                        }
                    }
                }
            }
            if let Some(n) = &source.note {
                (ctx.progress)(&format!("{n}; layer selection instead"));
            }
        }
        ventral_store::scores::write_rows(ctx.out_dir, &rows)?;
        crate::commit::write_map(ctx.out_dir, &choices)?;
        crate::commit::write_source(ctx.out_dir, &source)?;
        for c in &choices {
            (ctx.progress)(&format!("{} → {} ({})", c.region, c.layer, source.how));
        }
        Ok(())
    }
}

/// The readout's activation store in `input`: `layer` when given; else `decoder-t0`
/// (CORnet's avgpool) if there, else the input's only store.
fn readout_store(
    ctx: &StageContext<'_>,
    input: &str,
    layer: Option<&str>,
) -> Result<std::path::PathBuf, BoxError> {
    if let Some(l) = layer {
        return activation_store(ctx, input, l, "layer");
    }
    let acts = ctx.one_input(input)?;
    if acts.join("decoder-t0").join("zarr.json").is_file() {
        return Ok(acts.join("decoder-t0"));
    }
    let stores = crate::commit::candidate_stores(acts)?;
    match stores.as_slice() {
        [only] => Ok(acts.join(only)),
        _ => Err(ParamError::boxed(
            "layer",
            format!(
                "input `{input}` has no `decoder-t0` and {} activation stores ({}): name the readout layer",
                stores.len(),
                stores.join(", ")
            ),
        )),
    }
}

/// `neural`: PLS predictivity of activations for recordings, with the ceiling.
pub struct NeuralKind;

impl StageKind for NeuralKind {
    fn name(&self) -> &str {
        "neural"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(NeuralParams);
    fn doc(&self) -> &str {
        "neural predictivity (PLS-25, Pearson, median, mean over splits) and its internal-consistency ceiling; writes scores.parquet and score.json"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: NeuralParams = parse(ctx.params)?;
        let region = p.region.clone();
        let acts = ctx.one_input("activations")?;
        let recs = ctx.one_input("recordings")?;
        let sel = Selection {
            region: Some(region.clone()),
            window: p.time_bins.map(|[a, b]| (a, b)),
            min_consistency: p.min_consistency,
        };
        let commitment = ctx.input("commitment").ok().and_then(|v| v.first());
        let layer = match (&p.layer, commitment) {
            (Some(l), _) => l.clone(),
            (None, Some(c)) => crate::commit::committed_layer(c, &region)?,
            (None, None) => {
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
        if p.layer.is_some() {
            activation_store(ctx, "activations", &layer, "layer")?;
        } else if commitment.is_some() && !features.join("zarr.json").is_file() {
            return Err(format!(
                "{}: no activation store `{layer}`, which the commitment maps {region} to",
                acts.display()
            )
            .into());
        } else if !features.join("zarr.json").is_file() {
            return Err(format!("{}: no activation store `{layer}`", acts.display()).into());
        }
        let model = match &p.model {
            Some(m) => m.clone(),
            None => crate::model_of(&features)?,
        };
        let opts = NeuralOptions {
            n_components: p.n_components as usize,
            n_splits: p.splits as usize,
            ..NeuralOptions::default()
        };
        let bench = p
            .benchmark
            .clone()
            .unwrap_or_else(|| format!("MajajHong2015.{region}-pls"));
        let (result, rows) = score(
            &bench,
            &model,
            &features,
            recs,
            &sel,
            p.normalisation.into(),
            &opts,
        )?;
        write_scores(ctx.out_dir, &result, &rows)?;
        (ctx.progress)(&format!(
            "{bench}: raw {:.3}, ceiling {:.3}, ceiled {:.3} ({layer}, {} neuroids)",
            result.raw, result.ceiling, result.ceiled, result.neuroids
        ));
        Ok(())
    }
}

/// `behaviour`: I2n of a logistic readout against human trials.
pub struct BehaviourKind;

impl StageKind for BehaviourKind {
    fn name(&self) -> &str {
        "behaviour"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(BehaviourParams);
    fn doc(&self) -> &str {
        "I2n (Rajalingham2018): logistic readout fitted on `fitting` activations, probabilities on `test` activations, against human `trials`"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: BehaviourParams = parse(ctx.params)?;
        let fitting = readout_store(ctx, "fitting", p.layer.as_deref())?;
        let test = readout_store(ctx, "test", p.layer.as_deref())?;
        let trials = ctx.one_input("trials")?;
        let model = match &p.model {
            Some(m) => m.clone(),
            None => crate::model_of(&test)?,
        };
        let bench = &p.benchmark;
        let (result, rows) =
            crate::behaviour::score(bench, &model, &fitting, &test, trials, &p.label, p.c)?;
        write_scores(ctx.out_dir, &result, &rows)?;
        (ctx.progress)(&format!(
            "{bench}: raw {:.3}, ceiling {:.3}, ceiled {:.3}, readout accuracy {:.3}",
            result.raw, result.ceiling, result.ceiled, result.readout_accuracy
        ));
        Ok(())
    }
}

/// `ost`: object solution times of the model's IT against the monkey's.
pub struct OstKind;

impl StageKind for OstKind {
    fn name(&self) -> &str {
        "ost"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(OstParams);
    fn doc(&self) -> &str {
        "Kar2019 OST: per-bin softmax readouts of IT (`activations`, committed timesteps) vs the monkey's OST and I1 (`monkey`)"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: OstParams = parse(ctx.params)?;
        let acts = ctx.one_input("activations")?;
        let monkey = ctx.one_input("monkey")?;
        let model = match &p.model {
            Some(m) => m.clone(),
            None => crate::model_of(&acts.join("IT-t0"))?,
        };
        let bench = &p.benchmark;
        let (result, rows) = crate::ost::score(
            bench,
            &model,
            acts,
            monkey,
            p.decoder.as_deref(),
            p.readout.into(),
        )?;
        write_scores(ctx.out_dir, &result, &rows)?;
        (ctx.progress)(&format!(
            "{bench}: Spearman {:.3}, ceiled {:.3} ({} readout; model/monkey pairs per split {:?})",
            result.raw, result.ceiled, result.readout, result.pairs
        ));
        Ok(())
    }
}

/// `composite`: the mean of several benchmarks' ceiled scores (the Brain-Score).
pub struct CompositeKind;

impl StageKind for CompositeKind {
    fn name(&self) -> &str {
        "composite"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(CompositeParams);
    fn doc(&self) -> &str {
        "Brain-Score: the mean of the ceiled scores of the input score stores (`scores`), for one model"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: CompositeParams = parse(ctx.params)?;
        let bench = &p.benchmark;
        let dirs: Vec<&std::path::Path> =
            ctx.input("scores")?.iter().map(|p| p.as_path()).collect();
        let (result, rows) =
            crate::composite(bench, &dirs, p.members.as_deref(), &p.absent_as_zero)?;
        write_scores(ctx.out_dir, &result, &rows)?;
        (ctx.progress)(&format!(
            "{bench}: {:.3} = mean of {}",
            result.ceiled,
            result
                .members
                .iter()
                .map(|m| format!("{} {:.3}", m.benchmark, m.ceiled))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }
}

/// `transfer`: linear transfer of a model's features to another task (CIFAR-100).
pub struct TransferKind;

impl StageKind for TransferKind {
    fn name(&self) -> &str {
        "transfer"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(TransferParams);
    fn doc(&self) -> &str {
        "transfer: logistic readout fitted on `train` activations (C chosen on a validation part), accuracy on `test` activations"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: TransferParams = parse(ctx.params)?;
        let train = readout_store(ctx, "train", p.layer.as_deref())?;
        let test = readout_store(ctx, "test", p.layer.as_deref())?;
        let model = match &p.model {
            Some(m) => m.clone(),
            None => crate::model_of(&test)?,
        };
        let bench = &p.benchmark;
        let (result, rows) =
            crate::transfer::score(bench, &model, &train, &test, &p.label, &p.grid(), p.seed)?;
        write_scores(ctx.out_dir, &result, &rows)?;
        (ctx.progress)(&format!(
            "{bench}: accuracy {:.3} (chance {:.3}), C = {}",
            result.raw, result.chance, result.c
        ));
        Ok(())
    }
}
