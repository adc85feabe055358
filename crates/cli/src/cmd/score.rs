//! `ventral score neural|i2n|ost`: score activations against recordings directly, outside
//! any pipeline (the same code as the stage kinds), from our stores or BrainIO netCDF files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use ventral_benchmarks::behaviour::BehaviourResult;
use ventral_benchmarks::neural::Selection;
use ventral_benchmarks::ost::OstResult;
use ventral_metrics::neural::{NeuralOptions, Normalisation};

use super::{Global, Output, emit};

/// Where BrainIO netCDF inputs are ingested for one command; removed when dropped.
pub struct Inputs {
    dir: Option<tempfile::TempDir>,
    /// (temporary store, the user's file), so errors can name the user's file.
    names: Vec<(PathBuf, PathBuf)>,
}

impl Inputs {
    /// No input converted yet.
    pub fn new() -> Self {
        Inputs {
            dir: None,
            names: Vec::new(),
        }
    }

    /// `e` with every temporary store replaced by the file the user named.
    pub fn explain(&self, e: impl Into<anyhow::Error>) -> anyhow::Error {
        let mut msg = format!("{:#}", e.into());
        for (tmp, user) in &self.names {
            msg = msg.replace(&tmp.display().to_string(), &user.display().to_string());
        }
        anyhow::Error::msg(msg)
    }

    /// `path` as an assembly store: a store is used as it is; a BrainIO netCDF file (`.nc`)
    /// is ingested into a temporary store first (the same reader as `ventral ingest`).
    pub fn store(&mut self, path: &Path) -> Result<PathBuf> {
        let is_nc = path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("nc"));
        if !is_nc {
            return Ok(path.to_path_buf());
        }
        if self.dir.is_none() {
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix("ventral-score-")
                    .tempdir()
                    .context("creating a temporary folder for the netCDF inputs")?,
            );
        }
        let Some(dir) = self.dir.as_ref() else {
            anyhow::bail!("no temporary folder");
        };
        let n = std::fs::read_dir(dir.path())?.count();
        let out = dir.path().join(format!("input-{n}"));
        ventral_ingest::netcdf::ingest_netcdf(
            path,
            &out,
            &ventral_ingest::netcdf::IngestOptions::default(),
        )
        .with_context(|| format!("reading the BrainIO file {}", path.display()))?;
        self.names.push((out.clone(), path.to_path_buf()));
        Ok(out)
    }
}

/// `ventral score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub benchmark: ScoreCmd,
}

/// The benchmarks `ventral score` runs.
#[derive(Subcommand, Debug)]
pub enum ScoreCmd {
    /// PLS neural predictivity (MajajHong2015 recipe) and the internal-consistency ceiling.
    Neural {
        /// An activations store: dims (stimulus, neuroid), coordinate `stimulus_id`.
        #[arg(long)]
        source: PathBuf,
        /// A recordings store: dims (presentation, neuroid[, time_bin of length 1]),
        /// presentation coordinates `stimulus_id`, `object_name`, `repetition`.
        #[arg(long)]
        target: PathBuf,
        /// How the ceiling normalises: r/c (the 2019 paper), (r/c)^2, r^2/c.
        #[arg(long, default_value = "r/c")]
        normalisation: Normalisation,
        /// Only the target's neuroids of this `region` (V4, IT).
        #[arg(long)]
        region: Option<String>,
        /// Average the target's time bins within START END (ms), e.g. 190 210.
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        time_bins: Option<Vec<f64>>,
        /// Only the target's neuroids with at least this internal consistency.
        #[arg(long)]
        min_consistency: Option<f64>,
    },
    /// I2n (Rajalingham2018): a logistic readout fitted on one activations store, choice
    /// probabilities on another, against human trials.
    I2n {
        /// Activations of the labelled fitting images (stimulus coordinate `object_name`).
        #[arg(long)]
        fitting: PathBuf,
        /// Activations of the test images.
        #[arg(long)]
        test: PathBuf,
        /// A trials store (presentation coordinates stimulus_id, sample_obj, dist_obj,
        /// choice, truth), e.g. an ingested dicarlo.Rajalingham2018.public.
        #[arg(long)]
        trials: PathBuf,
        /// Inverse L2 strength of the readout.
        #[arg(long, default_value_t = 1e-3)]
        c: f64,
    },
    /// Object solution times (Kar2019): IT activations per timestep against the monkey.
    Ost {
        /// A folder of `IT-t<k>` activation stores (`ventral extract`).
        #[arg(long)]
        activations: PathBuf,
        /// The monkey assembly (OST per image and decoder, coordinates i1, image_label).
        #[arg(long)]
        monkey: PathBuf,
        /// Use this decoder's OSTs (default: the mean over decoders).
        #[arg(long)]
        decoder: Option<String>,
        /// brain-score (Brain-Score's TensorFlow readout, step for step) or converged.
        #[arg(long, default_value = "brain-score")]
        readout: ventral_benchmarks::ost::OstReadout,
    },
}

/// A neural predictivity score, with what it was computed on.
#[derive(serde::Serialize)]
pub struct NeuralScore {
    benchmark: &'static str,
    source: PathBuf,
    target: PathBuf,
    region: Option<String>,
    time_bins: Option<[f64; 2]>,
    min_consistency: Option<f64>,
    neuroids: usize,
    score: f64,
    score_error: f64,
    ceiling: f64,
    ceiled: f64,
    normalisation: String,
    per_split: Vec<f64>,
    ceiling_per_split: Vec<f64>,
}

impl Output for NeuralScore {
    fn text(&self) -> String {
        format!(
            "neural: score {:.6} ± {:.6}, ceiling {:.6}, ceiled ({}) {:.6}\nper split: {:?}",
            self.score,
            self.score_error,
            self.ceiling,
            self.normalisation,
            self.ceiled,
            self.per_split
        )
    }
}

/// The text of a benchmark result with a raw score, its error over splits and a ceiling.
fn scored_text(
    benchmark: &str,
    raw: f64,
    raw_error: f64,
    ceiling: f64,
    ceiled: f64,
    per_split: &[f64],
) -> String {
    format!(
        "{benchmark}: score {raw:.6} ± {raw_error:.6}, ceiling {ceiling:.6}, ceiled {ceiled:.6}\nper split: {per_split:?}"
    )
}

/// `Output` for benchmark results with a raw score, its error, a ceiling and splits.
macro_rules! scored_output {
    ($($t:ty),*) => {$(
        impl Output for $t {
            fn text(&self) -> String {
                scored_text(
                    &self.benchmark,
                    self.raw,
                    self.raw_error,
                    self.ceiling,
                    self.ceiled,
                    &self.per_split,
                )
            }
        }
    )*};
}

scored_output!(BehaviourResult, OstResult);

/// Run `ventral score`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    match &a.benchmark {
        ScoreCmd::Neural {
            source,
            target,
            normalisation,
            region,
            time_bins,
            min_consistency,
        } => {
            let sel = Selection {
                region: region.clone(),
                window: time_bins.as_ref().map(|t| (t[0], t[1])),
                min_consistency: *min_consistency,
            };
            emit(g, &neural(source, target, *normalisation, &sel)?)?;
        }
        ScoreCmd::I2n {
            fitting,
            test,
            trials,
            c,
        } => {
            let mut inputs = Inputs::new();
            let (fitting, test, trials) = (
                inputs.store(fitting)?,
                inputs.store(test)?,
                inputs.store(trials)?,
            );
            let model = ventral_benchmarks::model_of(&test).map_err(|e| inputs.explain(e))?;
            let (r, _) = ventral_benchmarks::behaviour::score(
                "i2n",
                &model,
                &fitting,
                &test,
                &trials,
                "object_name",
                *c,
            )
            .map_err(|e| inputs.explain(e))?;
            emit(g, &r)?;
        }
        ScoreCmd::Ost {
            activations,
            monkey,
            decoder,
            readout,
        } => {
            let mut inputs = Inputs::new();
            let monkey = inputs.store(monkey)?;
            let (r, _) = ventral_benchmarks::ost::score(
                "ost",
                "model",
                activations,
                &monkey,
                decoder.as_deref(),
                *readout,
            )
            .map_err(|e| inputs.explain(e))?;
            emit(g, &r)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Score `source` against `target`.
pub fn neural(
    source: &Path,
    target: &Path,
    normalisation: Normalisation,
    sel: &Selection,
) -> Result<NeuralScore> {
    let mut inputs = Inputs::new();
    let (source_store, target_store) = (inputs.store(source)?, inputs.store(target)?);
    let model = ventral_benchmarks::model_of(&source_store).map_err(|e| inputs.explain(e))?;
    let (r, _) = ventral_benchmarks::neural::score(
        "neural",
        &model,
        &source_store,
        &target_store,
        sel,
        normalisation,
        &NeuralOptions::default(),
    )
    .map_err(|e| inputs.explain(e))?;
    Ok(NeuralScore {
        benchmark: "neural",
        source: source.to_path_buf(),
        target: target.to_path_buf(),
        region: sel.region.clone(),
        time_bins: sel.window.map(|(a, b)| [a, b]),
        min_consistency: sel.min_consistency,
        neuroids: r.neuroids,
        score: r.raw,
        score_error: r.raw_error,
        ceiling: r.ceiling,
        ceiled: r.ceiled,
        normalisation: r.normalisation,
        per_split: r.per_split,
        ceiling_per_split: r.ceiling_per_split,
    })
}
