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

/// Fit one PCA per wanted layer with more features than `opts.components`.
fn fit_pcas(
    model: &Model,
    layers: &[String],
    opts: &PcaOptions,
    batch: usize,
) -> Result<std::collections::HashMap<String, (Tensor, Tensor, usize)>> {
    let size = model.net.config.resolution as u32;
    let device = model.vs.device();
    let mut acts: Vec<(String, usize, Vec<f32>)> = Vec::new();
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
                acts.push((name.clone(), v.len() / b as usize, Vec::new()));
            }
            acts[i].2.extend(v);
        }
    }
    let n = opts.images.len();
    let mut out = std::collections::HashMap::new();
    for (name, p, x) in acts {
        if p <= opts.components {
            continue;
        }
        let pca = ventral_metrics::pca::Pca::fit(&x, n, p, opts.components).map_err(|e| {
            ModelError::Config {
                field: "pca".into(),
                message: format!("layer `{name}`: {e}"),
            }
        })?;
        let comps: Vec<f32> = pca.components.iter().map(|v| *v as f32).collect();
        let mean: Vec<f32> = pca.mean.iter().map(|v| *v as f32).collect();
        let c = Tensor::from_slice(&comps)
            .view([pca.k as i64, p as i64])
            .to_device(device);
        let m = Tensor::from_slice(&mean).to_device(device);
        out.insert(name, (c, m, pca.k));
    }
    Ok(out)
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
    let size = model.net.config.resolution as u32;
    let device = model.vs.device();
    let batch = opts.batch.max(1);
    let wanted = |name: &str| opts.layers.is_empty() || opts.layers.iter().any(|l| l == name);
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
    let mut writers: Vec<(String, String, AssemblyWriter<f32>, Vec<i64>)> = Vec::new();
    let mut forward = 0.0f64;
    let _guard = tch::no_grad_guard();
    let wanted_layers: Vec<String> = if opts.layers.is_empty() {
        model.net.config.layers()
    } else {
        opts.layers.clone()
    };
    let pcas = match &opts.pca {
        Some(po) => fit_pcas(model, &wanted_layers, po, batch)?,
        None => Default::default(),
    };
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Tensor>>(1);
        let src = &source;
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
            let outs = model.net.forward_selected(&x, false, &opts.layers);
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
            progress(done, n);
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
    })
}
