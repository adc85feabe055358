//! Object solution times (Kar2019) over our stores: the model's IT per time bin (by the
//! time-bin commitment) against the monkey's per-image OST and I1.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
pub use ventral_metrics::ost::OstReadout;
use ventral_metrics::ost::{Bin, OST_CEILING, ost};
use ventral_store::Assembly;

use crate::neural::{load_features, strings};
use crate::{BenchError, Result, ScoreRow, commit_timestep, data};
use ventral_store::scores::ImageOst;

/// The outcome.
#[derive(Clone, Debug, Serialize)]
pub struct OstResult {
    /// Benchmark name.
    pub benchmark: String,
    /// Model name.
    pub model: String,
    /// Spearman ρ (mean over splits).
    pub raw: f64,
    /// Its standard deviation over splits.
    pub raw_error: f64,
    /// The fixed ceiling.
    pub ceiling: f64,
    /// `raw / ceiling`.
    pub ceiled: f64,
    /// ρ per split.
    pub per_split: Vec<f64>,
    /// The activation store used for each bin start.
    pub bins: Vec<(i64, String)>,
    /// Per image tested and solved, the model's OST (mean over the splits that tested it)
    /// and the monkeys' — the points of the paper's Fig. 5.
    pub per_image: Vec<ImageOst>,
    /// Per split, the test images where both the model and the monkey have an OST.
    pub pairs: Vec<usize>,
    /// The readout (`brain-score` or `converged`).
    pub readout: String,
}

/// Score the activations under `acts` (`IT-t<k>` stores) against the monkey assembly.
pub fn score(
    benchmark: &str,
    model: &str,
    acts: &Path,
    monkey: &Path,
    decoder: Option<&str>,
    readout: OstReadout,
) -> Result<(OstResult, Vec<ScoreRow>)> {
    let a = Assembly::open(monkey)?;
    let m = a.meta();
    let pres = a.coords("presentation")?;
    let ids = strings(&pres, "stimulus_id", monkey)?;
    let labels = strings(&pres, "image_label", monkey)?;
    let i1_col = pres
        .column_by_name("i1")
        .ok_or_else(|| data(monkey, "the presentations have no `i1` coordinate"))?;
    let i1_col = ventral_store::arrow::compute::cast(
        i1_col,
        &ventral_store::arrow::datatypes::DataType::Float64,
    )
    .map_err(|e| data(monkey, e.to_string()))?;
    use ventral_store::arrow::array::AsArray;
    let i1: Vec<f64> = i1_col
        .as_primitive::<ventral_store::arrow::datatypes::Float64Type>()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    // The monkey's OST: the chosen decoder's, or the mean over decoders.
    let values = a.read_f64(&a.full())?;
    let values = values.as_standard_layout();
    let flat = values
        .as_slice()
        .ok_or_else(|| data(monkey, "values not contiguous"))?;
    let cols = if m.dims.len() == 2 {
        m.shape[1] as usize
    } else {
        1
    };
    let pick: Vec<usize> =
        match (decoder, m.dims.get(1)) {
            (Some(d), Some(dim)) => {
                let names = strings(&a.coords(dim)?, dim, monkey)?;
                vec![names.iter().position(|n| n == d).ok_or_else(|| {
                    data(monkey, format!("no decoder `{d}` ({})", names.join(", ")))
                })?]
            }
            _ => (0..cols).collect(),
        };
    let monkey_ost: Vec<f64> = (0..ids.len())
        .map(|i| {
            let v: Vec<f64> = pick
                .iter()
                .map(|&c| flat[i * cols + c])
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        })
        .collect();
    // The model's IT timesteps available, and the features of each, in the monkey's order.
    let steps = std::fs::read_dir(acts)
        .map_err(|e| data(acts, e.to_string()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("IT-t"))
        .count();
    if steps == 0 {
        return Err(data(acts, "no IT-t<k> activation stores"));
    }
    let mut per_layer: HashMap<String, Vec<f64>> = HashMap::new();
    let mut p_of: HashMap<String, usize> = HashMap::new();
    let mut bins_used = Vec::new();
    for start in (70..=240).step_by(10) {
        let k = commit_timestep("IT", start as f64, Some(steps)).unwrap_or(0);
        let layer = format!("IT-t{k}");
        if !per_layer.contains_key(&layer) {
            let (v, p, sids) = load_features(&acts.join(&layer))?;
            let row: HashMap<&str, usize> = sids
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect();
            let mut aligned = Vec::with_capacity(ids.len() * p);
            for id in &ids {
                let r = *row.get(id.as_str()).ok_or_else(|| {
                    data(
                        &acts.join(&layer),
                        format!("no activations for stimulus `{id}`"),
                    )
                })?;
                aligned.extend(v[r * p..(r + 1) * p].iter().map(|&x| x as f64));
            }
            p_of.insert(layer.clone(), p);
            per_layer.insert(layer.clone(), aligned);
        }
        bins_used.push((start as i64, layer));
    }
    let bins: Vec<Bin<'_>> = bins_used
        .iter()
        .map(|(s, l)| Bin {
            start: *s as f64,
            values: &per_layer[l],
            n_features: p_of[l],
        })
        .collect();
    let s =
        ost(&bins, &labels, &monkey_ost, &i1, 10, 1, readout).map_err(|e| BenchError::Metric {
            context: format!("{} vs {}", acts.display(), monkey.display()),
            source: e,
        })?;
    let mut per_image = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mine: Vec<f64> = s
            .model_ost
            .iter()
            .map(|v| v[i])
            .filter(|x| x.is_finite())
            .collect();
        if !mine.is_empty() && monkey_ost[i].is_finite() {
            per_image.push(ImageOst {
                stimulus_id: id.clone(),
                model_ms: mine.iter().sum::<f64>() / mine.len() as f64,
                monkey_ms: monkey_ost[i],
            });
        }
    }
    let row = |q: &str, split: Option<i64>, v: f64| ScoreRow {
        benchmark: benchmark.into(),
        model: model.into(),
        layer: None,
        quantity: q.into(),
        split,
        neuroid_id: None,
        value: v,
    };
    let mut rows = vec![
        row("raw", None, s.score),
        row("raw_error", None, s.error),
        row("ceiling", None, OST_CEILING),
        row("ceiled", None, s.ceiled),
    ];
    for (k, v) in s.per_split.iter().enumerate() {
        rows.push(row("raw", Some(k as i64), *v));
        rows.push(row("pairs", Some(k as i64), s.pairs[k] as f64));
    }
    Ok((
        OstResult {
            benchmark: benchmark.into(),
            model: model.into(),
            raw: s.score,
            raw_error: s.error,
            ceiling: OST_CEILING,
            ceiled: s.ceiled,
            per_split: s.per_split,
            bins: bins_used,
            per_image,
            pairs: s.pairs,
            readout: match readout {
                OstReadout::BrainScore => "brain-score".into(),
                OstReadout::Converged => "converged".into(),
            },
        },
        rows,
    ))
}
