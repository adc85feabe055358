//! Activations of every registered layer for a set of stimuli, streamed into one assembly
//! store per area and timestep: `<out>/<area>-t<k>/` (a zoo model's: `<out>/<layer>/`, e.g.
//! `layer4.1/`), dims `(stimulus, neuroid)`, kind `activations`, attributes `model`, `layer`
//! (the area), `timestep` and `brainscore_layer` (`IT.output-t1`, `layer4.1`). Neuroids are numbered as Brain-Score flattens NCHW (`c·H·W + h·W + w`).
//! The stimulus table is the stimulus set's (so SQL can join on its columns). Batches are
//! decoded on a second thread while the model runs the previous one; memory is bounded by a
//! few batches plus one band of chunks per layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::Tensor;
use ventral_store::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ventral_store::arrow::datatypes::{DataType, Field, Schema};
use ventral_store::{AssemblySpec, AssemblyWriter};

use crate::error::{ModelError, Result, io};
use crate::{Model, images};

/// Where the stimuli come from.
#[derive(Clone, Debug)]
pub enum Stimuli {
    /// A stimulus-set store (`ventral ingest brainio` of a StimulusSet).
    Set(PathBuf),
    /// A folder of images (stimulus ids are the file stems, in sorted order).
    Folder(PathBuf),
    /// A `.npy` batch of preprocessed images `(N, 3, H, W)`; ids `0…N-1`.
    Npy(PathBuf),
}

impl Stimuli {
    /// Classify a path.
    pub fn from_path(p: &Path) -> Stimuli {
        if p.extension().is_some_and(|e| e == "npy") {
            Stimuli::Npy(p.to_path_buf())
        } else if p.join("stimulus_set.json").is_file() {
            Stimuli::Set(p.to_path_buf())
        } else {
            Stimuli::Folder(p.to_path_buf())
        }
    }
}

/// Options of [`extract`].
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Images per forward pass.
    pub batch: usize,
    /// The model's identifier in the stores.
    pub model_id: String,
    /// Only these layers (Brain-Score names); all when empty.
    pub layers: Vec<String>,
    /// The producing stage, if any.
    pub producer: Option<String>,
    /// Reduce each layer with more features than this many components by a PCA fitted on
    /// these images, as Brain-Score's `LayerPCA` does (its `n_components`: 1000).
    pub pca: Option<PcaOptions>,
    /// Bytes the PCA'd layers may hold at once (their fitting activations and components):
    /// the layers are taken in groups that fit, each group one more pass over the images
    /// (the stores are the same bytes whatever the grouping). `None`: [`default_memory`].
    pub memory: Option<u64>,
}

/// The memory a PCA'd extraction keeps within when none is given: half of what the
/// machine has available as it starts (Linux's `MemAvailable`), else 4 GiB.
pub fn default_memory() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    available.map_or(4 << 30, |b| b / 2)
}

/// What holding one PCA'd layer costs: its fitting activations (`n` images) and its `k`
/// components, `p` features each, in f32.
fn pca_layer_bytes(p: usize, n: usize, components: usize) -> u64 {
    if p <= components {
        return 0;
    }
    let k = components.min(n.saturating_sub(1));
    ((n + k) * p * 4) as u64
}

/// Consecutive groups of `layers` (forward order, features per image) whose PCA'd layers
/// cost at most `budget` together; a layer that alone costs more is a group of its own, and
/// a layer that is not reduced joins the group before it (it costs no extra pass).
fn plan_groups(
    layers: &[(String, usize)],
    n: usize,
    components: usize,
    budget: u64,
) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut used = 0u64;
    for (name, p) in layers {
        let c = pca_layer_bytes(*p, n, components);
        match groups.last_mut() {
            Some(g) if c == 0 || used + c <= budget => {
                g.push(name.clone());
                used += c;
            }
            _ => {
                groups.push(vec![name.clone()]);
                used = c;
            }
        }
    }
    groups
}

/// Where a layer PCA is fitted.
#[derive(Clone, Debug)]
pub struct PcaOptions {
    /// Components kept (at most images − 1).
    pub components: usize,
    /// The images it is fitted on (Brain-Score: the first ImageNet validation image of each
    /// class).
    pub images: Vec<PathBuf>,
}

/// The images a layer PCA is fitted on, from an ImageNet index: its `val` split, the first
/// image of each class in class order (Brain-Score's 1,000), then the second of each, and
/// so on, until `max` — so that an index of few classes still gives enough images. A
/// workspace-relative root is read against `workspace`.
pub fn pca_images(index: &Path, workspace: Option<&Path>, max: usize) -> Result<Vec<PathBuf>> {
    let s = crate::train::read_split(index, workspace, "val")?;
    let mut by_class: std::collections::BTreeMap<i64, Vec<&PathBuf>> = Default::default();
    for (p, l) in s.paths.iter().zip(&s.labels) {
        by_class.entry(*l).or_default().push(p);
    }
    for v in by_class.values_mut() {
        v.sort();
    }
    let mut out = Vec::new();
    let deepest = by_class.values().map(Vec::len).max().unwrap_or(0);
    'rounds: for round in 0..deepest {
        for v in by_class.values() {
            if let Some(p) = v.get(round) {
                out.push((*p).clone());
                if out.len() == max {
                    break 'rounds;
                }
            }
        }
    }
    if out.len() < 2 {
        return Err(io(
            index,
            "fewer than 2 validation images to fit a layer PCA on",
        ));
    }
    Ok(out)
}

/// Fitted PCAs by layer: components `(k, p)` and mean `(p)` on the model's device, and `k`.
type Fitted = std::collections::HashMap<String, (Tensor, Tensor, usize)>;

/// Fit one PCA per layer of `layers` with more features than `opts.components`; one pass of
/// the fitting images, each layer's activations held until its PCA is fitted.
fn fit_pcas(
    model: &Model,
    layers: &[String],
    opts: &PcaOptions,
    batch: usize,
    progress: &dyn Fn(usize),
) -> Result<Fitted> {
    let size = model.net.config.resolution as u32;
    let device = model.vs.device();
    let n = opts.images.len();
    let mut acts: Vec<(String, usize, Vec<f32>)> = Vec::new();
    let mut done = 0;
    for chunk in opts.images.chunks(batch.max(1)) {
        let paths: Vec<&Path> = chunk.iter().map(PathBuf::as_path).collect();
        let x = images::upload(&images::batch_from_files(&paths, size)?, device)?;
        let outs = model.net.forward_selected(&x, false, layers);
        for (i, (name, t)) in outs.layers.iter().enumerate() {
            let b = t.size()[0];
            let v = Vec::<f32>::try_from(
                t.reshape([b, -1])
                    .to_device(tch::Device::Cpu)
                    .contiguous()
                    .view([-1]),
            )
            .map_err(|e| crate::error::torch("copy activations", e))?;
            if acts.len() <= i {
                let p = v.len() / b as usize;
                // Only layers that are reduced keep their fitting activations.
                let keep = if p > opts.components { n * p } else { 0 };
                acts.push((name.clone(), p, Vec::with_capacity(keep)));
            }
            if acts[i].1 > opts.components {
                acts[i].2.extend(v);
            }
        }
        done += chunk.len();
        progress(done);
    }
    let mut out = Fitted::new();
    for (name, p, x) in acts {
        if p <= opts.components {
            continue;
        }
        let pca = ventral_metrics::pca::Pca::fit_f32(&x, n, p, opts.components).map_err(|e| {
            ModelError::Config {
                field: "pca".into(),
                message: format!("layer `{name}`: {e}"),
            }
        })?;
        drop(x);
        let c = Tensor::from_slice(&pca.components)
            .view([pca.k as i64, p as i64])
            .to_device(device);
        let m = Tensor::from_slice(&pca.mean).to_device(device);
        out.insert(name, (c, m, pca.k));
    }
    Ok(out)
}

/// Features per image of each of `layers` (all when empty), in forward order, from one image.
fn layer_sizes(model: &Model, layers: &[String], probe: &Path) -> Result<Vec<(String, usize)>> {
    let size = model.net.config.resolution as u32;
    let x = images::upload(
        &images::batch_from_files(&[probe], size)?,
        model.vs.device(),
    )?;
    let outs = model.net.forward_selected(&x, false, layers);
    Ok(outs
        .layers
        .iter()
        .filter(|(name, _)| layers.is_empty() || layers.contains(name))
        .map(|(name, t)| (name.clone(), t.numel()))
        .collect())
}

/// What an extraction wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExtractSummary {
    /// Stimuli.
    pub stimuli: usize,
    /// `(store folder, brainscore layer, neuroids)`.
    pub layers: Vec<(String, String, usize)>,
    /// Seconds in forward passes.
    pub forward_seconds: f64,
    /// Images per second of the whole extraction.
    pub images_per_second: f64,
    /// Passes over the images: 1, or with a layer PCA the groups of layers that fit the
    /// memory.
    pub passes: usize,
}

enum Source {
    Files(Vec<PathBuf>),
    /// Preprocessed pixels and their `(N, 3, H, W)` shape.
    Pixels(Vec<f32>, Vec<i64>),
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(io(dir, "no PNG or JPEG images in this folder"));
    }
    Ok(v)
}

/// The stimulus table and where each stimulus's pixels come from.
fn stimuli_of(s: &Stimuli) -> Result<(RecordBatch, Source)> {
    match s {
        Stimuli::Set(dir) => {
            let (_, table) = ventral_ingest::stimuli::open_stimulus_set(dir)?;
            let col = table
                .column_by_name("path")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| io(dir, "stimuli.parquet has no string column `path`"))?;
            let files = col
                .iter()
                .map(|p| dir.join(p.unwrap_or_default()))
                .collect();
            Ok((table, Source::Files(files)))
        }
        Stimuli::Folder(dir) => {
            let files = image_files(dir)?;
            let ids: Vec<String> = files
                .iter()
                .map(|p| {
                    p.file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default()
                })
                .collect();
            let names: Vec<String> = files
                .iter()
                .map(|p| {
                    p.file_name()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default()
                })
                .collect();
            let table = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("stimulus_id", DataType::Utf8, false),
                    Field::new("filename", DataType::Utf8, false),
                ])),
                vec![
                    Arc::new(StringArray::from_iter_values(ids)) as ArrayRef,
                    Arc::new(StringArray::from_iter_values(names)),
                ],
            )
            .map_err(|e| io(dir, e))?;
            Ok((table, Source::Files(files)))
        }
        Stimuli::Npy(p) => {
            let t = images::read_npy(p)?;
            let shape = t.size();
            let n = shape[0];
            let pixels = Vec::<f32>::try_from(t.view([-1]))
                .map_err(|e| crate::error::torch("read the .npy batch", e))?;
            let table = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "stimulus_id",
                    DataType::Utf8,
                    false,
                )])),
                vec![
                    Arc::new(StringArray::from_iter_values((0..n).map(|i| i.to_string())))
                        as ArrayRef,
                ],
            )
            .map_err(|e| io(p, e))?;
            Ok((table, Source::Pixels(pixels, shape)))
        }
    }
}

fn neuroid_table(layer: &str, shape: &[i64]) -> Result<RecordBatch> {
    let n: i64 = shape.iter().product();
    let (c, h, w) = match shape {
        [c, h, w] => (*c, *h, *w),
        [c] => (*c, 1, 1),
        _ => (n, 1, 1),
    };
    let ids = (0..n).map(|i| format!("{layer}.{i}"));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(ids)),
        Arc::new(Int64Array::from_iter_values(0..n)),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| layer))),
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| i / (h * w)))),
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i / w) % h))),
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % w))),
    ];
    let _ = c;
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("neuroid_id", DataType::Utf8, false),
            Field::new("neuroid_num", DataType::Int64, false),
            Field::new("layer", DataType::Utf8, false),
            Field::new("channel", DataType::Int64, false),
            Field::new("channel_y", DataType::Int64, false),
            Field::new("channel_x", DataType::Int64, false),
        ])),
        cols,
    )
    .map_err(|e| io(layer, e))
}

/// Extract `model`'s activations for `stimuli` into stores under `out` (one per layer).
/// `progress(done, total)` counts images through the model: with a layer PCA, the fitting
/// images too, once per group of layers ([`ExtractOptions::memory`]).
pub fn extract(
    model: &Model,
    stimuli: &Stimuli,
    out: &Path,
    opts: &ExtractOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ExtractSummary> {
    let start = std::time::Instant::now();
    let (table, source) = stimuli_of(stimuli)?;
    let n = table.num_rows();
    for l in &opts.layers {
        if !model.net.config.layers().contains(l) {
            return Err(ModelError::Config {
                field: "layers".into(),
                message: format!(
                    "`{l}` is not a layer of this model ({})",
                    model.net.config.layers().join(", ")
                ),
            });
        }
    }
    let _guard = tch::no_grad_guard();
    let groups: Vec<Vec<String>> = match &opts.pca {
        None => vec![opts.layers.clone()],
        Some(po) => {
            let probe = po.images.first().ok_or_else(|| ModelError::Config {
                field: "pca".into(),
                message: "no images to fit the layer PCA on".into(),
            })?;
            let sizes = layer_sizes(model, &opts.layers, probe)?;
            let budget = opts.memory.unwrap_or_else(default_memory);
            plan_groups(&sizes, po.images.len(), po.components, budget)
        }
    };
    let fit_n = opts.pca.as_ref().map_or(0, |p| p.images.len());
    let total = groups.len() * (fit_n + n);
    let mut layers = Vec::new();
    let mut forward = 0.0f64;
    for (g, group) in groups.iter().enumerate() {
        let base = g * (fit_n + n);
        let pcas = match &opts.pca {
            Some(po) => fit_pcas(model, group, po, opts.batch, &|d| progress(base + d, total))?,
            None => Fitted::new(),
        };
        let (written, secs) =
            extract_pass(model, (&table, &source), out, opts, (group, &pcas), &|d| {
                progress(base + fit_n + d, total)
            })?;
        layers.extend(written);
        forward += secs;
    }
    // The stores in forward order (layer commitment's candidate order).
    let listed: Vec<serde_json::Value> = layers
        .iter()
        .map(|(dir, name, n)| serde_json::json!({"layer": name, "store": dir, "neuroids": n}))
        .collect();
    let text = serde_json::to_string_pretty(&listed).map_err(|e| io(out, e))?;
    std::fs::write(out.join("layers.json"), text + "\n").map_err(|e| io(out, e))?;
    let secs = start.elapsed().as_secs_f64();
    Ok(ExtractSummary {
        stimuli: n,
        layers,
        forward_seconds: forward,
        images_per_second: n as f64 / secs.max(1e-9),
        passes: groups.len(),
    })
}

/// A store an extraction wrote: `(store folder, layer, neuroids)`.
type Written = (String, String, usize);

/// One pass of the stimuli through the model, writing the stores of `group`'s layers (all
/// registered layers when empty), each reduced by its PCA in `pcas` if it has one. Returns
/// `(store folder, layer, neuroids)` in forward order and the seconds in forward passes.
fn extract_pass(
    model: &Model,
    (table, source): (&RecordBatch, &Source),
    out: &Path,
    opts: &ExtractOptions,
    (group, pcas): (&[String], &Fitted),
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(Vec<Written>, f64)> {
    let n = table.num_rows();
    let size = model.net.config.resolution as u32;
    let device = model.vs.device();
    let batch = opts.batch.max(1);
    let wanted = |name: &str| group.is_empty() || group.iter().any(|l| l == name);
    let mut writers: Vec<(String, String, AssemblyWriter<f32>, Vec<i64>)> = Vec::new();
    let mut forward = 0.0f64;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Tensor>>(1);
        let src = source;
        scope.spawn(move || {
            for b0 in (0..n).step_by(batch) {
                let b1 = (b0 + batch).min(n);
                let t = match src {
                    Source::Files(files) => {
                        let paths: Vec<&Path> =
                            files[b0..b1].iter().map(PathBuf::as_path).collect();
                        images::batch_from_files(&paths, size)
                    }
                    Source::Pixels(px, shape) => {
                        let per: usize = shape[1..].iter().product::<i64>() as usize;
                        let mut dims = shape.clone();
                        dims[0] = (b1 - b0) as i64;
                        Ok(Tensor::from_slice(&px[b0 * per..b1 * per]).view(dims.as_slice()))
                    }
                };
                let t = t.map(|x| images::pin_for(x, device));
                let failed = t.is_err();
                if tx.send(t).is_err() || failed {
                    break;
                }
            }
        });
        let mut done = 0;
        for x in rx {
            let x = crate::images::upload(&x?, device)?;
            let t0 = std::time::Instant::now();
            let outs = model.net.forward_selected(&x, false, group);
            let b = x.size()[0];
            let mut flat = Vec::new();
            for (name, t) in &outs.layers {
                if wanted(name) {
                    let t = t.reshape([b, -1]);
                    let (shape, t) = match pcas.get(name) {
                        Some((c, m, k)) => (vec![*k as i64], (t - m).matmul(&c.tr())),
                        None => (t.size()[1..].to_vec(), t),
                    };
                    flat.push((name.clone(), shape, images::download(&t)?));
                }
            }
            images::downloads_done(device);
            forward += t0.elapsed().as_secs_f64();
            if writers.is_empty() {
                for (name, shape, t) in &flat {
                    let (dir_name, area, timestep) = ventral_model_spec::config::store_of(name);
                    let cols = t.size()[1] as u64;
                    let mut spec = AssemblySpec::new(
                        &format!("{}.{name}", opts.model_id),
                        "activations",
                        &["stimulus", "neuroid"],
                        &[cols],
                    );
                    spec.producer = opts.producer.clone();
                    spec.attrs
                        .insert("model".into(), opts.model_id.clone().into());
                    spec.attrs.insert("layer".into(), area.clone().into());
                    spec.attrs.insert("timestep".into(), timestep.into());
                    spec.attrs
                        .insert("brainscore_layer".into(), name.clone().into());
                    if let (Some(po), Some((_, _, k))) = (&opts.pca, pcas.get(name)) {
                        spec.attrs
                            .insert("pca_components".into(), (*k as i64).into());
                        spec.attrs
                            .insert("pca_images".into(), (po.images.len() as i64).into());
                    }
                    let w = AssemblyWriter::<f32>::create(&out.join(&dir_name), spec)?;
                    writers.push((dir_name, name.clone(), w, shape.clone()));
                }
            }
            for ((_, _, w, _), (_, _, t)) in writers.iter_mut().zip(&flat) {
                let v: Vec<f32> = Vec::<f32>::try_from(t.contiguous().view([-1]))
                    .map_err(|e| crate::error::torch("copy activations", e))?;
                w.append(&v)?;
            }
            done += b as usize;
            progress(done);
        }
        Ok(())
    })?;
    let mut layers = Vec::new();
    for (dir, name, w, shape) in writers {
        let neuroids = neuroid_table(&name, &shape)?;
        let count = neuroids.num_rows();
        w.finish(vec![
            ("stimulus".into(), table.clone()),
            ("neuroid".into(), neuroids),
        ])?;
        layers.push((dir, name, count));
    }
    Ok((layers, forward))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_grouped_in_forward_order_within_the_memory() {
        let layers: Vec<(String, usize)> = [("a", 5000), ("b", 3000), ("small", 10), ("c", 4000)]
            .iter()
            .map(|(n, p)| (n.to_string(), *p))
            .collect();
        // 100 images, 50 components: (100 + 50) × p × 4 bytes per reduced layer.
        let cost = |p: usize| pca_layer_bytes(p, 100, 50);
        assert_eq!(cost(10), 0, "a layer that is not reduced holds nothing");
        assert_eq!(cost(5000), 150 * 5000 * 4);
        let names =
            |g: Vec<Vec<String>>| -> Vec<String> { g.iter().map(|v| v.join(" ")).collect() };
        let all = cost(5000) + cost(3000) + cost(4000);
        assert_eq!(names(plan_groups(&layers, 100, 50, all)), ["a b small c"]);
        assert_eq!(
            names(plan_groups(&layers, 100, 50, cost(5000) + cost(3000))),
            ["a b small", "c"]
        );
        // Too little for any layer: one layer per group, none dropped.
        assert_eq!(
            names(plan_groups(&layers, 100, 50, 1)),
            ["a", "b small", "c"]
        );
        // With few images, at most n − 1 components.
        assert_eq!(pca_layer_bytes(5000, 10, 50), (10 + 9) * 5000 * 4);
    }
}
