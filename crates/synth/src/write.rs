//! Writing the world in the real formats.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use ventral_ingest::netcdf::{BrainioLayout, Column, NcType, NcVariable};
use ventral_store::arrow::array::{ArrayRef, RecordBatch};
use ventral_store::arrow::datatypes::{Field, Schema};
use ventral_store::{AssemblySpec, AssemblyWriter};
use zip::write::SimpleFileOptions;

use crate::brain::{self, Brain};
use crate::render::midlevel_features;
use crate::rng::Rng;
use crate::world::{self, Object, Stimulus, WorldConfig};
use crate::{Result, WorldSummary, encode_all, io};

/// One coordinate variable.
pub(crate) struct Coord {
    pub name: &'static str,
    pub dim: &'static str,
    pub col: Column,
}

fn nc_type(c: &Column) -> NcType {
    match c {
        Column::Str(_) => NcType::Str,
        Column::Int(_) => NcType::Int64,
        Column::UInt(_) => NcType::Uint64,
        Column::F32(_) => NcType::Float32,
        Column::F64(_) => NcType::Float64,
    }
}

/// Write a BrainIO netCDF file: `values` in store order (`store_dims`, the first one rows),
/// the file laid out with `file_dims`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_nc(
    path: &Path,
    identifier: &str,
    stimulus_set: Option<&str>,
    store_dims: &[&str],
    shape: &[usize],
    file_dims: &[&str],
    values: &[f32],
    coords: Vec<Coord>,
) -> Result<()> {
    let tmp = path.with_extension("store.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let mut global = BTreeMap::new();
    global.insert(
        "identifier".to_string(),
        json!({"dtype": "str", "value": identifier}),
    );
    if let Some(s) = stimulus_set {
        global.insert(
            "stimulus_set_identifier".to_string(),
            json!({"dtype": "str", "value": s}),
        );
    }
    let layout = BrainioLayout {
        source: String::new(),
        data: NcVariable {
            name: "data".into(),
            dims: file_dims.iter().map(|d| d.to_string()).collect(),
            dtype: NcType::Float32,
            attrs: BTreeMap::new(),
        },
        coords: coords
            .iter()
            .map(|c| NcVariable {
                name: c.name.into(),
                dims: vec![c.dim.into()],
                dtype: nc_type(&c.col),
                attrs: BTreeMap::new(),
            })
            .collect(),
        global_attrs: global,
    };
    let inner: Vec<u64> = shape[1..].iter().map(|&n| n as u64).collect();
    let mut spec = AssemblySpec::new(identifier, "brainio", store_dims, &inner);
    spec.attrs.insert(
        "brainio".into(),
        serde_json::to_value(&layout).map_err(|e| io(path, e))?,
    );
    let mut w = AssemblyWriter::<f32>::create(&tmp, spec)?;
    w.append(values)?;
    let mut tables = Vec::new();
    for d in store_dims {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in coords.iter().filter(|c| c.dim == *d) {
            let a = c.col.to_arrow();
            fields.push(Field::new(c.name, a.data_type().clone(), false));
            arrays.push(a);
        }
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| io(path, e))?;
        tables.push((d.to_string(), batch));
    }
    w.finish(tables)?;
    ventral_ingest::export::export_brainio(&tmp, path)?;
    std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    Ok(())
}

/// Write a StimulusSet: `<stem>.csv` (header + rows) and `<stem>.zip` (the images).
pub(crate) fn write_stimulus_set(
    dir: &Path,
    stem: &str,
    header: &[&str],
    rows: &[Vec<String>],
    images: &[(String, &[u8])],
) -> Result<()> {
    let csv_path = dir.join(format!("{stem}.csv"));
    let mut w = csv::Writer::from_path(&csv_path).map_err(|e| io(&csv_path, e))?;
    w.write_record(header).map_err(|e| io(&csv_path, e))?;
    for r in rows {
        w.write_record(r).map_err(|e| io(&csv_path, e))?;
    }
    w.flush().map_err(|e| io(&csv_path, e))?;
    let zip_path = dir.join(format!("{stem}.zip"));
    let f = std::fs::File::create(&zip_path).map_err(|e| io(&zip_path, e))?;
    let mut z = zip::ZipWriter::new(f);
    // Images are already compressed; a fixed timestamp keeps the archive's bytes stable.
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in images {
        z.start_file(name.as_str(), opts)
            .map_err(|e| io(&zip_path, e))?;
        z.write_all(bytes).map_err(|e| io(&zip_path, e))?;
    }
    z.finish().map_err(|e| io(&zip_path, e))?;
    Ok(())
}

fn f(x: f64) -> String {
    format!("{x:.4}")
}

/// The HvM-like stimulus set and the V4/IT recordings on it.
pub(crate) fn hvm(
    cfg: &WorldConfig,
    out: &Path,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let dir = out.join("brainio");
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let objects = world::hvm_objects(cfg.seed);
    let stimuli = world::hvm_stimuli(cfg, &objects);
    progress(&format!("rendering {} HvM-like images", stimuli.len()));
    let scenes: Vec<&crate::render::Scene> = stimuli.iter().map(|s| &s.scene).collect();
    let encoded = encode_all(&scenes, cfg.hvm_size, false);
    summary
        .images
        .push(("dicarlo.hvm-public".into(), stimuli.len()));
    let header = [
        "stimulus_id",
        "filename",
        "object_name",
        "category_name",
        "variation",
        "rxy",
        "rxz",
        "ryz",
        "ty",
        "tz",
        "s",
        "background_id",
    ];
    let rows: Vec<Vec<String>> = stimuli
        .iter()
        .map(|s| {
            let o = &objects[s.object];
            vec![
                s.id.clone(),
                format!("{}.png", s.id),
                o.name.clone(),
                o.category.clone(),
                s.variation.to_string(),
                f(s.pose.rxy),
                f(s.pose.rxz),
                f(s.pose.ryz),
                f(s.pose.ty),
                f(s.pose.tz),
                f(s.pose.s),
                s.background_id.clone(),
            ]
        })
        .collect();
    let images: Vec<(String, &[u8])> = stimuli
        .iter()
        .zip(&encoded)
        .map(|(s, (b, _))| (format!("{}.png", s.id), b.as_slice()))
        .collect();
    write_stimulus_set(&dir, "image_dicarlo_hvm-public", &header, &rows, &images)?;

    // The hidden brain.
    let mut feats: Vec<Vec<f64>> = encoded
        .iter()
        .map(|(_, img)| midlevel_features(img))
        .collect();
    brain::standardise(&mut feats);
    let [n_v4, n_it] = cfg.sites;
    let b = Brain::new(cfg.seed, n_v4, n_it, feats[0].len());
    let v4 = b.v4_true(&feats);
    let objs: Vec<&Object> = objects.iter().collect();
    let it = b.it_true(&stimuli, &objs);
    let reps = cfg.repetitions.max(2);
    let s_v4 = brain::noise_for_ceiling(&v4, cfg.ceilings[0], reps, cfg.seed, "v4-noise-level");
    let s_it = brain::noise_for_ceiling(&it, cfg.ceilings[1], reps, cfg.seed, "it-noise-level");
    let t_v4 = brain::trials(&v4, &s_v4, reps, cfg.seed, "v4-noise");
    let t_it = brain::trials(&it, &s_it, reps, cfg.seed, "it-noise");
    let n_img = stimuli.len();
    let n_neu = n_v4 + n_it;
    // Store order (presentation, neuroid, time_bin); presentations = repetition-major.
    let mut values = Vec::with_capacity(reps * n_img * n_neu);
    for rep in 0..reps {
        for i in 0..n_img {
            values.extend(t_v4[rep][i].iter().map(|&x| x as f32));
            values.extend(t_it[rep][i].iter().map(|&x| x as f32));
        }
    }
    let pres = |g: &dyn Fn(&Stimulus) -> String| -> Vec<String> {
        (0..reps).flat_map(|_| stimuli.iter().map(g)).collect()
    };
    let pres_f = |g: &dyn Fn(&Stimulus) -> f64| -> Vec<f64> {
        (0..reps).flat_map(|_| stimuli.iter().map(g)).collect()
    };
    let coords = vec![
        Coord {
            name: "stimulus_id",
            dim: "presentation",
            col: Column::Str(pres(&|s| s.id.clone())),
        },
        Coord {
            name: "repetition",
            dim: "presentation",
            col: Column::Int(
                (0..reps)
                    .flat_map(|r| std::iter::repeat_n(r as i64, n_img))
                    .collect(),
            ),
        },
        Coord {
            name: "object_name",
            dim: "presentation",
            col: Column::Str(pres(&|s| objects[s.object].name.clone())),
        },
        Coord {
            name: "category_name",
            dim: "presentation",
            col: Column::Str(pres(&|s| objects[s.object].category.clone())),
        },
        Coord {
            name: "variation",
            dim: "presentation",
            col: Column::Int(
                (0..reps)
                    .flat_map(|_| stimuli.iter().map(|s| s.variation as i64))
                    .collect(),
            ),
        },
        Coord {
            name: "ty",
            dim: "presentation",
            col: Column::F64(pres_f(&|s| s.pose.ty)),
        },
        Coord {
            name: "tz",
            dim: "presentation",
            col: Column::F64(pres_f(&|s| s.pose.tz)),
        },
        Coord {
            name: "s",
            dim: "presentation",
            col: Column::F64(pres_f(&|s| s.pose.s)),
        },
        Coord {
            name: "neuroid_id",
            dim: "neuroid",
            col: Column::Str(
                (0..n_neu)
                    .map(|j| {
                        if j < n_v4 {
                            format!("Tito_V4_{j:03}")
                        } else {
                            format!("Chabo_IT_{:03}", j - n_v4)
                        }
                    })
                    .collect(),
            ),
        },
        Coord {
            name: "region",
            dim: "neuroid",
            col: Column::Str(
                (0..n_neu)
                    .map(|j| if j < n_v4 { "V4".into() } else { "IT".into() })
                    .collect(),
            ),
        },
        Coord {
            name: "animal",
            dim: "neuroid",
            col: Column::Str(
                (0..n_neu)
                    .map(|j| {
                        if j < n_v4 {
                            "Tito".into()
                        } else {
                            "Chabo".into()
                        }
                    })
                    .collect(),
            ),
        },
        Coord {
            name: "time_bin_start",
            dim: "time_bin",
            col: Column::Int(vec![70]),
        },
        Coord {
            name: "time_bin_end",
            dim: "time_bin",
            col: Column::Int(vec![170]),
        },
    ];
    progress("writing dicarlo.MajajHong2015.public");
    write_nc(
        &dir.join("assy_dicarlo_MajajHong2015_public.nc"),
        "dicarlo.MajajHong2015.public",
        Some("dicarlo.hvm-public"),
        &["presentation", "neuroid", "time_bin"],
        &[reps * n_img, n_neu, 1],
        &["neuroid", "presentation", "time_bin"],
        &values,
        coords,
    )?;
    summary.assemblies.push((
        "dicarlo.MajajHong2015.public".into(),
        vec![n_neu, reps * n_img, 1],
    ));
    new_neurons(cfg, &dir, &stimuli, &objs, summary, progress)?;

    // Ground truth: the generating features of both areas per image (for readout tests).
    let truth = out.join("truth");
    std::fs::create_dir_all(&truth).map_err(|e| io(&truth, e))?;
    let gen_it: Vec<Vec<f64>> = stimuli
        .iter()
        .map(|s| {
            let mut v = objects[s.object].latent.clone();
            let a = (2.0 * s.pose.rxy).to_radians();
            v.extend([
                a.cos(),
                a.sin(),
                s.pose.ty,
                s.pose.tz,
                s.pose.ty * s.pose.ty,
                s.pose.tz * s.pose.tz,
                s.pose.s,
            ]);
            v
        })
        .collect();
    for (name, rows) in [("hvm-features-V4", &feats), ("hvm-features-IT", &gen_it)] {
        let d = rows[0].len();
        let mut spec = AssemblySpec::new(name, "features", &["stimulus", "neuroid"], &[d as u64]);
        spec.attrs.insert(
            "note".into(),
            "generating features of the hidden brain (ground truth)".into(),
        );
        let mut w = AssemblyWriter::<f32>::create(&truth.join(name), spec)?;
        let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
        w.append(&flat)?;
        let st = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "stimulus_id",
                ventral_store::arrow::datatypes::DataType::Utf8,
                false,
            )])),
            vec![Column::Str(stimuli.iter().map(|s| s.id.clone()).collect()).to_arrow()],
        )
        .map_err(|e| io(&truth, e))?;
        let ne = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "neuroid_id",
                ventral_store::arrow::datatypes::DataType::Utf8,
                false,
            )])),
            vec![Column::Str((0..d).map(|k| format!("f{k}")).collect()).to_arrow()],
        )
        .map_err(|e| io(&truth, e))?;
        w.finish(vec![("stimulus".into(), st), ("neuroid".into(), ne)])?;
    }
    Ok(())
}

/// The generalisation test "new neurons, old images": IT sites of another animal (their own
/// random streams) recorded on a subset of the HvM images, 70–170 ms, with repetitions.
fn new_neurons(
    cfg: &WorldConfig,
    dir: &Path,
    stimuli: &[Stimulus],
    objects: &[&Object],
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let [n_it, n_img] = cfg.new_neurons;
    if n_it == 0 || n_img == 0 {
        return Ok(());
    }
    // A pseudo-random subset: the images with the smallest ids, in the set's order.
    let mut pick: Vec<usize> = (0..stimuli.len()).collect();
    pick.sort_by(|&a, &b| stimuli[a].id.cmp(&stimuli[b].id));
    pick.truncate(n_img.min(stimuli.len()));
    pick.sort_unstable();
    let subset: Vec<Stimulus> = pick.iter().map(|&i| stimuli[i].clone()).collect();
    let seed = cfg.seed ^ 0x6e65_772d_6e65_7572; // another animal: other sites
    let b = Brain::new(seed, 0, n_it, 1);
    let it = b.it_true(&subset, objects);
    let reps = cfg.repetitions.max(2);
    let sd = brain::noise_for_ceiling(&it, cfg.ceilings[1], reps, seed, "new-it-noise-level");
    let t = brain::trials(&it, &sd, reps, seed, "new-it-noise");
    let n = subset.len();
    let mut values = Vec::with_capacity(reps * n * n_it);
    for rep in &t {
        for row in rep {
            values.extend(row.iter().map(|&x| x as f32));
        }
    }
    let pres = |g: &dyn Fn(&Stimulus) -> String| -> Vec<String> {
        (0..reps).flat_map(|_| subset.iter().map(g)).collect()
    };
    let id = "dicarlo.Kubilius2019.new_neurons";
    progress(&format!("writing {id}"));
    write_nc(
        &dir.join("assy_dicarlo_Kubilius2019_new_neurons.nc"),
        id,
        Some("dicarlo.hvm-public"),
        &["presentation", "neuroid", "time_bin"],
        &[reps * n, n_it, 1],
        &["neuroid", "presentation", "time_bin"],
        &values,
        vec![
            Coord {
                name: "stimulus_id",
                dim: "presentation",
                col: Column::Str(pres(&|s| s.id.clone())),
            },
            Coord {
                name: "repetition",
                dim: "presentation",
                col: Column::Int(
                    (0..reps)
                        .flat_map(|r| std::iter::repeat_n(r as i64, n))
                        .collect(),
                ),
            },
            Coord {
                name: "object_name",
                dim: "presentation",
                col: Column::Str(pres(&|s| objects[s.object].name.clone())),
            },
            Coord {
                name: "neuroid_id",
                dim: "neuroid",
                col: Column::Str((0..n_it).map(|j| format!("Magneto_IT_{j:03}")).collect()),
            },
            Coord {
                name: "region",
                dim: "neuroid",
                col: Column::Str(vec!["IT".into(); n_it]),
            },
            Coord {
                name: "animal",
                dim: "neuroid",
                col: Column::Str(vec!["Magneto".into(); n_it]),
            },
            Coord {
                name: "time_bin_start",
                dim: "time_bin",
                col: Column::Int(vec![70]),
            },
            Coord {
                name: "time_bin_end",
                dim: "time_bin",
                col: Column::Int(vec![170]),
            },
        ],
    )?;
    summary
        .assemblies
        .push((id.into(), vec![n_it, reps * n, 1]));
    Ok(())
}

/// Render and write one objectome-like StimulusSet (the fitting or the test images).
#[allow(clippy::too_many_arguments)]
fn objectome_set(
    cfg: &WorldConfig,
    objects: &[Object],
    chosen: &[usize],
    stimuli: &[Stimulus],
    (id, stem): (&str, &str),
    dir: &Path,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    progress(&format!("rendering {} images of {id}", stimuli.len()));
    let scenes: Vec<&crate::render::Scene> = stimuli.iter().map(|s| &s.scene).collect();
    let encoded = encode_all(&scenes, cfg.hvm_size, false);
    summary.images.push((id.into(), stimuli.len()));
    let rows: Vec<Vec<String>> = stimuli
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                format!("{}.png", s.id),
                objects[chosen[s.object]].name.clone(),
                s.variation.to_string(),
            ]
        })
        .collect();
    let images: Vec<(String, &[u8])> = stimuli
        .iter()
        .zip(&encoded)
        .map(|(s, (b, _))| (format!("{}.png", s.id), b.as_slice()))
        .collect();
    write_stimulus_set(
        dir,
        stem,
        &["stimulus_id", "filename", "object_name", "variation"],
        &rows,
        &images,
    )
}

/// One 2-AFC task: its objects, image sets and trials assembly.
pub(crate) struct Task {
    /// HvM object indices.
    pub chosen: Vec<usize>,
    /// Random-stream tag of the test images.
    pub tag: &'static str,
    /// Test images per object, fitting images per object.
    pub per_object: [usize; 2],
    /// (identifier, file stem) of the test set, the fitting set, and the trials assembly.
    pub test: (&'static str, &'static str),
    pub fitting: (&'static str, &'static str),
    pub trials: (&'static str, &'static str),
}

impl Task {
    /// Rajalingham2018's objectome task (24 objects).
    pub fn objectome(cfg: &WorldConfig) -> Task {
        Task {
            chosen: world::objectome_objects(),
            tag: "objectome",
            per_object: [cfg.objectome_per_object, cfg.objectome_fitting_per_object],
            test: ("dicarlo.objectome.public", "image_dicarlo_objectome_public"),
            fitting: (
                "dicarlo.objectome.fitting",
                "image_dicarlo_objectome_fitting",
            ),
            trials: (
                "dicarlo.Rajalingham2018.public",
                "assy_dicarlo_Rajalingham2018_public.nc",
            ),
        }
    }

    /// The paper's "new objects" generalisation test: objects the objectome task lacks.
    pub fn new_objects(cfg: &WorldConfig) -> Task {
        Task {
            chosen: world::new_objects(cfg.new_objects[0]),
            tag: "new-objects",
            per_object: [cfg.new_objects[1], cfg.objectome_fitting_per_object],
            test: (
                "dicarlo.objectome.new_objects",
                "image_dicarlo_objectome_new_objects",
            ),
            fitting: (
                "dicarlo.objectome.new_objects.fitting",
                "image_dicarlo_objectome_new_objects_fitting",
            ),
            trials: (
                "dicarlo.Rajalingham2018.new_objects",
                "assy_dicarlo_Rajalingham2018_new_objects.nc",
            ),
        }
    }
}

/// Objectome-like images and human 2-AFC trials of `task`.
pub(crate) fn objectome(
    cfg: &WorldConfig,
    out: &Path,
    task: &Task,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let dir = out.join("brainio");
    let objects = world::hvm_objects(cfg.seed);
    let chosen = &task.chosen;
    // The readout's fitting images (a stimulus set of their own), then the test images.
    let fit_tag = format!("{}-fitting", task.tag);
    let fitting = world::task_stimuli(cfg, &objects, chosen, &fit_tag, task.per_object[1]);
    objectome_set(
        cfg,
        &objects,
        chosen,
        &fitting,
        task.fitting,
        &dir,
        summary,
        progress,
    )?;
    drop(fitting);
    let stimuli = world::task_stimuli(cfg, &objects, chosen, task.tag, task.per_object[0]);
    objectome_set(
        cfg, &objects, chosen, &stimuli, task.test, &dir, summary, progress,
    )?;
    let name = |j: usize| objects[chosen[j]].name.clone();
    // The objectome keeps its historical stream names; other tasks get their own.
    let stream = |s: &str| {
        if task.tag == "objectome" {
            s.to_string()
        } else {
            format!("{}-{s}", task.tag)
        }
    };

    // Human trials: accuracy falls with image difficulty and with the similarity of the
    // distractor to the sample object (latent distance); workers differ in skill.
    let k = chosen.len();
    let lat = |j: usize| &objects[chosen[j]].latent;
    let sim = |a: usize, b: usize| {
        let d2: f64 = lat(a)
            .iter()
            .zip(lat(b))
            .map(|(x, y)| (x - y).powi(2))
            .sum();
        (-d2 / (2.0 * world::LATENT as f64)).exp()
    };
    let workers = 30;
    let skill: Vec<f64> = (0..workers)
        .map(|w| 0.25 * Rng::new(cfg.seed, "worker", w as u64).normal())
        .collect();
    let (mut sid, mut sample, mut dist, mut choice, mut truth, mut worker, mut correct) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, s) in stimuli.iter().enumerate() {
        // Each image is also idiosyncratically easy or hard (beyond its pose).
        let own = Rng::new(cfg.seed, &stream("image-difficulty"), i as u64).normal();
        for t in 0..cfg.trials_per_image {
            // Every distractor equally often (a balanced design, as in the real task).
            let mut r = Rng::new(cfg.seed, &stream("human-trial"), (i * 1_000_000 + t) as u64);
            let mut d = (t + i) % (k - 1);
            if d >= s.object {
                d += 1;
            }
            let w = r.below(workers);
            // Image-specific confusions: this view of the object resembles some distractors.
            let pair = Rng::new(cfg.seed, &stream("image-confusion"), (i * 64 + d) as u64).normal();
            let dp = 2.0 * (1.0 - 0.8 * s.difficulty) + 0.4 + 0.5 * own + 0.9 * pair
                - 1.5 * sim(s.object, d)
                + skill[w];
            let ok = r.f64() < brain::phi(dp / std::f64::consts::SQRT_2);
            sid.push(s.id.clone());
            sample.push(name(s.object));
            dist.push(name(d));
            choice.push(if ok { name(s.object) } else { name(d) });
            truth.push(name(s.object));
            worker.push(format!("worker{w:02}"));
            correct.push(if ok { 1.0f32 } else { 0.0 });
        }
    }
    let n = sid.len();
    progress(&format!("writing {}", task.trials.0));
    write_nc(
        &dir.join(task.trials.1),
        task.trials.0,
        Some(task.test.0),
        &["presentation"],
        &[n],
        &["presentation"],
        &correct,
        vec![
            Coord {
                name: "stimulus_id",
                dim: "presentation",
                col: Column::Str(sid),
            },
            Coord {
                name: "sample_obj",
                dim: "presentation",
                col: Column::Str(sample),
            },
            Coord {
                name: "dist_obj",
                dim: "presentation",
                col: Column::Str(dist),
            },
            Coord {
                name: "choice",
                dim: "presentation",
                col: Column::Str(choice),
            },
            Coord {
                name: "truth",
                dim: "presentation",
                col: Column::Str(truth),
            },
            Coord {
                name: "worker_id",
                dim: "presentation",
                col: Column::Str(worker),
            },
        ],
    )?;
    summary.assemblies.push((task.trials.0.into(), vec![n]));
    Ok(())
}

/// COCO-like scenes (with an instances JSON), the monkey OST/I1 assembly and IT over time.
pub(crate) fn kar(
    cfg: &WorldConfig,
    out: &Path,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let dir = out.join("brainio");
    let objects = world::hvm_objects(cfg.seed);
    let (chosen, stimuli) = world::coco_stimuli(cfg, &objects);
    progress(&format!("rendering {} COCO-like scenes", stimuli.len()));
    let scenes: Vec<&crate::render::Scene> = stimuli.iter().map(|s| &s.scene).collect();
    let encoded = encode_all(&scenes, cfg.coco_size, true);
    summary
        .images
        .push(("dicarlo.Kar2019".into(), stimuli.len()));
    let label = |j: usize| objects[chosen[j]].name.clone();
    // COCO layout.
    let coco = out.join("coco");
    let imdir = coco.join("images");
    std::fs::create_dir_all(&imdir).map_err(|e| io(&imdir, e))?;
    std::fs::create_dir_all(coco.join("annotations")).map_err(|e| io(&coco, e))?;
    let mut images_json = Vec::new();
    let mut anns = Vec::new();
    for (i, (s, (bytes, _))) in stimuli.iter().zip(&encoded).enumerate() {
        let name = format!("{:012}.jpg", i + 1);
        std::fs::write(imdir.join(&name), bytes).map_err(|e| io(imdir.join(&name), e))?;
        images_json.push(json!({"id": i + 1, "file_name": name, "width": cfg.coco_size, "height": cfg.coco_size}));
        let n = cfg.coco_size as f64;
        for (k, p) in s.scene.objects.iter().enumerate() {
            let target = k + 1 == s.scene.objects.len();
            let bbox = p.bbox(n);
            anns.push(json!({
                "id": anns.len() + 1, "image_id": i + 1,
                "category_id": if target { s.object + 1 } else { chosen.len() + 1 },
                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
            }));
        }
    }
    let mut cats: Vec<serde_json::Value> = (0..chosen.len())
        .map(|j| json!({"id": j + 1, "name": label(j), "supercategory": objects[chosen[j]].category}))
        .collect();
    cats.push(json!({"id": chosen.len() + 1, "name": "clutter", "supercategory": "clutter"}));
    let inst = json!({"images": images_json, "annotations": anns, "categories": cats});
    let ip = coco.join("annotations/instances_synth.json");
    std::fs::write(&ip, serde_json::to_string(&inst).map_err(|e| io(&ip, e))?)
        .map_err(|e| io(&ip, e))?;

    // The same images as a BrainIO stimulus set.
    let rows: Vec<Vec<String>> = stimuli
        .iter()
        .enumerate()
        .map(|(i, s)| vec![s.id.clone(), format!("{:012}.jpg", i + 1), label(s.object)])
        .collect();
    let imgs: Vec<(String, &[u8])> = encoded
        .iter()
        .enumerate()
        .map(|(i, (b, _))| (format!("{:012}.jpg", i + 1), b.as_slice()))
        .collect();
    write_stimulus_set(
        &dir,
        "image_dicarlo_Kar2019",
        &["stimulus_id", "filename", "image_label"],
        &rows,
        &imgs,
    )?;

    // Ground truth latencies; the monkey's OST (two decoders) and I1.
    let n = stimuli.len();
    let lat: Vec<f64> = stimuli
        .iter()
        .enumerate()
        .map(|(i, s)| brain::latency(s, cfg.seed, i))
        .collect();
    let mut ost = Vec::with_capacity(2 * n);
    for dec in 0..2 {
        for (i, l) in lat.iter().enumerate() {
            let mut r = Rng::new(cfg.seed, "monkey-ost", (dec * 1_000_000 + i) as u64);
            ost.push((l + 4.0 * r.normal()) as f32);
        }
    }
    let i1: Vec<f64> = stimuli
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (3.5 * (1.0 - s.difficulty) + 0.3 * Rng::new(cfg.seed, "monkey-i1", i as u64).normal())
                .clamp(0.3, 5.0)
        })
        .collect();
    write_nc(
        &dir.join("assy_dicarlo_Kar2019.nc"),
        "dicarlo.Kar2019",
        Some("dicarlo.Kar2019"),
        &["presentation", "decoder"],
        &[n, 2],
        &["decoder", "presentation"],
        &(0..n)
            .flat_map(|i| [ost[i], ost[n + i]])
            .collect::<Vec<_>>(),
        vec![
            Coord {
                name: "decoder",
                dim: "decoder",
                col: Column::Str(vec!["svm".into(), "logistic".into()]),
            },
            Coord {
                name: "stimulus_id",
                dim: "presentation",
                col: Column::Str(stimuli.iter().map(|s| s.id.clone()).collect()),
            },
            Coord {
                name: "image_label",
                dim: "presentation",
                col: Column::Str(stimuli.iter().map(|s| label(s.object)).collect()),
            },
            Coord {
                name: "i1",
                dim: "presentation",
                col: Column::F64(i1),
            },
            Coord {
                name: "true_ost",
                dim: "presentation",
                col: Column::F64(lat.clone()),
            },
        ],
    )?;
    summary
        .assemblies
        .push(("dicarlo.Kar2019".into(), vec![2, n]));

    // IT over time on these images, with repetitions.
    let [_, n_it] = cfg.sites;
    let b = Brain::new(cfg.seed, 0, n_it, 1);
    let objs: Vec<&Object> = chosen.iter().map(|&o| &objects[o]).collect();
    let truth = b.it_true(&stimuli, &objs);
    // The early, feed-forward component: V4-like readouts of the images' mid-level features.
    let mut feats: Vec<Vec<f64>> = encoded
        .iter()
        .map(|(_, img)| midlevel_features(img))
        .collect();
    brain::standardise(&mut feats);
    let early =
        Brain::new(cfg.seed ^ 0x6561_726c_7969_7421, n_it, 0, feats[0].len()).v4_true(&feats);
    let over = brain::it_over_time(&truth, &early, &lat);
    let reps = cfg.ost_repetitions.max(2);
    let sigma =
        brain::noise_for_ceiling(&truth, cfg.ceilings[1], reps, cfg.seed, "kar-noise-level");
    let bins = brain::time_bins();
    let mut values = Vec::with_capacity(reps * n * n_it * bins.len());
    for rep in 0..reps {
        for i in 0..n {
            for (j, sd) in sigma.iter().enumerate() {
                for (t, bin) in over.iter().enumerate() {
                    let mut r = Rng::new(
                        cfg.seed,
                        "kar-noise",
                        (((rep * n + i) * n_it + j) * 64 + t) as u64,
                    );
                    values.push((bin[i][j] + sd * r.normal()) as f32);
                }
            }
        }
    }
    progress("writing dicarlo.Kar2019.IT");
    write_nc(
        &dir.join("assy_dicarlo_Kar2019_IT.nc"),
        "dicarlo.Kar2019.IT",
        Some("dicarlo.Kar2019"),
        &["presentation", "neuroid", "time_bin"],
        &[reps * n, n_it, bins.len()],
        &["neuroid", "presentation", "time_bin"],
        &values,
        vec![
            Coord {
                name: "stimulus_id",
                dim: "presentation",
                col: Column::Str(
                    (0..reps)
                        .flat_map(|_| stimuli.iter().map(|s| s.id.clone()))
                        .collect(),
                ),
            },
            Coord {
                name: "repetition",
                dim: "presentation",
                col: Column::Int(
                    (0..reps)
                        .flat_map(|r| std::iter::repeat_n(r as i64, n))
                        .collect(),
                ),
            },
            Coord {
                name: "object_name",
                dim: "presentation",
                col: Column::Str(
                    (0..reps)
                        .flat_map(|_| stimuli.iter().map(|s| label(s.object)))
                        .collect(),
                ),
            },
            Coord {
                name: "neuroid_id",
                dim: "neuroid",
                col: Column::Str((0..n_it).map(|j| format!("Kar_IT_{j:03}")).collect()),
            },
            Coord {
                name: "region",
                dim: "neuroid",
                col: Column::Str(vec!["IT".into(); n_it]),
            },
            Coord {
                name: "time_bin_start",
                dim: "time_bin",
                col: Column::Int(bins.clone()),
            },
            Coord {
                name: "time_bin_end",
                dim: "time_bin",
                col: Column::Int(bins.iter().map(|b| b + 10).collect()),
            },
        ],
    )?;
    summary.assemblies.push((
        "dicarlo.Kar2019.IT".into(),
        vec![n_it, reps * n, bins.len()],
    ));
    Ok(())
}

/// The ImageNet-like labelled set as an ILSVRC2012 tree.
pub(crate) fn imagenet(
    cfg: &WorldConfig,
    out: &Path,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let [classes, n_train, n_val] = cfg.imagenet;
    for (split, count) in [("train", n_train), ("val", n_val)] {
        progress(&format!(
            "rendering {} ImageNet-like {split} images",
            classes * count
        ));
        for c in 0..classes {
            let wnid = format!("n{:08}", 1_000_000 + c);
            let d = out.join("ILSVRC2012").join(split).join(&wnid);
            std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
            let scenes: Vec<crate::render::Scene> = (0..count)
                .map(|k| world::imagenet_scene(cfg, c, split, k))
                .collect();
            let refs: Vec<&crate::render::Scene> = scenes.iter().collect();
            for (k, (bytes, _)) in encode_all(&refs, cfg.imagenet_size, true)
                .into_iter()
                .enumerate()
            {
                let p = d.join(format!("{wnid}_{k:05}.JPEG"));
                std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
            }
        }
        summary
            .images
            .push((format!("ILSVRC2012-{split}"), classes * count));
    }
    Ok(())
}

/// The transfer test's CIFAR-100-like set in CIFAR-100's binary layout
/// (`cifar-100-binary/{train,test}.bin` + label names): 32 px colour images of object
/// families (the ImageNet-like renderer with its own streams), 5 classes per superclass.
pub(crate) fn cifar(
    cfg: &WorldConfig,
    out: &Path,
    summary: &mut WorldSummary,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let [classes, n_train, n_test] = cfg.cifar;
    if classes == 0 {
        return Ok(());
    }
    if classes > 255 {
        return Err(io(
            out,
            format!("cifar: {classes} classes (at most 255 fit a byte)"),
        ));
    }
    let dir = out.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let coarse_n = classes.div_ceil(5);
    let render_cfg = WorldConfig {
        imagenet: [classes, n_train, n_test],
        ..cfg.clone()
    };
    for (split, count) in [("train", n_train), ("test", n_test)] {
        progress(&format!(
            "rendering {} CIFAR-like {split} images",
            classes * count
        ));
        // Image-major order (each class in turn), as the real files interleave classes.
        let labels: Vec<usize> = (0..count).flat_map(|_| 0..classes).collect();
        let scenes: Vec<crate::render::Scene> = (0..count)
            .flat_map(|k| {
                let render_cfg = &render_cfg;
                (0..classes).map(move |c| {
                    world::imagenet_scene(render_cfg, c, &format!("cifar-{split}"), k)
                })
            })
            .collect();
        let refs: Vec<&crate::render::Scene> = scenes.iter().collect();
        let mut bytes = Vec::with_capacity(labels.len() * ventral_ingest::cifar::RECORD);
        for ((_, img), &c) in encode_all(&refs, 32, false).iter().zip(&labels) {
            bytes.push((c / 5) as u8);
            bytes.push(c as u8);
            for ch in 0..3 {
                bytes.extend(img.pixels().map(|p| p.0[ch]));
            }
        }
        let p = dir.join(format!("{split}.bin"));
        std::fs::write(&p, &bytes).map_err(|e| io(&p, e))?;
        summary
            .images
            .push((format!("cifar-100-{split}"), labels.len()));
    }
    let fine: String = (0..classes).map(|c| format!("class_{c:03}\n")).collect();
    let coarse: String = (0..coarse_n)
        .map(|c| format!("superclass_{c:02}\n"))
        .collect();
    for (name, text) in [
        ("fine_label_names.txt", fine),
        ("coarse_label_names.txt", coarse),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// `brainio/lookup.csv` over every BrainIO file, with SHA1s.
pub(crate) fn catalog(out: &Path) -> Result<()> {
    use ventral_ingest::catalog::{Catalog, CatalogEntry, sha1_file};
    let dir = out.join("brainio");
    let mut entries = Vec::new();
    let sets = [
        ("dicarlo.hvm-public", "image_dicarlo_hvm-public"),
        ("dicarlo.objectome.public", "image_dicarlo_objectome_public"),
        (
            "dicarlo.objectome.fitting",
            "image_dicarlo_objectome_fitting",
        ),
        ("dicarlo.Kar2019", "image_dicarlo_Kar2019"),
        (
            "dicarlo.objectome.new_objects",
            "image_dicarlo_objectome_new_objects",
        ),
        (
            "dicarlo.objectome.new_objects.fitting",
            "image_dicarlo_objectome_new_objects_fitting",
        ),
    ];
    for (id, stem) in sets {
        // Optional parts of the world (the generalisation tests) may be switched off.
        if !dir.join(format!("{stem}.csv")).is_file() {
            continue;
        }
        for ext in ["csv", "zip"] {
            let p = dir.join(format!("{stem}.{ext}"));
            entries.push(CatalogEntry {
                identifier: id.into(),
                lookup_type: "stimulus_set".into(),
                class: if ext == "csv" {
                    "StimulusSet".into()
                } else {
                    String::new()
                },
                sha1: sha1_file(&p)?,
                path: p,
                stimulus_set_identifier: None,
            });
        }
    }
    let assemblies = [
        (
            "dicarlo.MajajHong2015.public",
            "assy_dicarlo_MajajHong2015_public.nc",
            "NeuronRecordingAssembly",
            "dicarlo.hvm-public",
        ),
        (
            "dicarlo.Rajalingham2018.public",
            "assy_dicarlo_Rajalingham2018_public.nc",
            "BehavioralAssembly",
            "dicarlo.objectome.public",
        ),
        (
            "dicarlo.Kar2019",
            "assy_dicarlo_Kar2019.nc",
            "DataAssembly",
            "dicarlo.Kar2019",
        ),
        (
            "dicarlo.Kar2019.IT",
            "assy_dicarlo_Kar2019_IT.nc",
            "NeuronRecordingAssembly",
            "dicarlo.Kar2019",
        ),
        (
            "dicarlo.Kubilius2019.new_neurons",
            "assy_dicarlo_Kubilius2019_new_neurons.nc",
            "NeuronRecordingAssembly",
            "dicarlo.hvm-public",
        ),
        (
            "dicarlo.Rajalingham2018.new_objects",
            "assy_dicarlo_Rajalingham2018_new_objects.nc",
            "BehavioralAssembly",
            "dicarlo.objectome.new_objects",
        ),
    ];
    for (id, file, class, set) in assemblies {
        let p = dir.join(file);
        if !p.is_file() {
            continue;
        }
        entries.push(CatalogEntry {
            identifier: id.into(),
            lookup_type: "assembly".into(),
            class: class.into(),
            sha1: sha1_file(&p)?,
            path: p,
            stimulus_set_identifier: Some(set.into()),
        });
    }
    Catalog::write(&dir.join("lookup.csv"), &entries)?;
    Ok(())
}
