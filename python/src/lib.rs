//! `ventral._ventral`: the Rust half of the `ventral` Python package.
//!
//! Thin bindings over the same library crates the `ventral` binary uses — `ventral-metrics`
//! for the metrics, `ventral-store` for assemblies, `ventral-sql` for SQL, `ventral-dag` and
//! `ventral-kinds` for the engine — so that a score, a key or a query answer is the same
//! from Python as from the CLI. The Python half (`python/ventral/`) turns xarray assemblies
//! into the plain arrays and labels taken here and wraps what comes back.
//!
//! Every function releases the GIL while Rust computes. Errors are Python exceptions with
//! the Rust message: a bad input is a `ValueError`, a file that cannot be read an `OSError`;
//! nothing panics across the boundary.
//!
//! **Architecture invariant:** no code here computes a number, a key or a query answer of
//! its own: each function converts arguments, calls one library function and converts the
//! result.

use std::path::{Path, PathBuf};

use arrow_pyarrow::IntoPyArrow;
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use ventral_metrics::i2n::{Probabilities, Trials};
use ventral_metrics::neural::{Averaged, Features, NeuralOptions, Recordings, Score};
use ventral_metrics::ost::{Bin, OstReadout};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A contiguous view of a numpy array, or a `ValueError` naming the argument.
fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    a: &'a numpy::PyReadonlyArray<'_, T, D>,
    what: &str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        value_error(format!(
            "{what}: a C-contiguous array is needed (np.ascontiguousarray)"
        ))
    })
}

fn score_dict<'py>(py: Python<'py>, s: Score) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("center", s.center)?;
    d.set_item("error", s.error)?;
    d.set_item("per_split", s.per_split.into_pyarray(py))?;
    let rows = s.per_neuroid.len();
    let cols = s.per_neuroid.first().map_or(0, Vec::len);
    let flat: Vec<f64> = s.per_neuroid.into_iter().flatten().collect();
    let raw = numpy::ndarray::Array2::from_shape_vec((rows, cols), flat).map_err(value_error)?;
    d.set_item("raw", raw.into_pyarray(py))?;
    Ok(d)
}

/// Neural predictivity: PLS regression cross-validated over stratified splits, Pearson r per
/// neuroid on the held-out stimuli, median over neuroids, mean over splits.
///
/// With `average`, repetitions are averaged first (rows in ascending `stimulus_id`, as
/// Brain-Score's `average_repetition` leaves them); without, the target's rows are taken in
/// their order (as Brain-Score's metric splits them) and must be one per stimulus.
#[pyfunction]
#[pyo3(signature = (source, source_stimulus_id, target, stimulus_id, object_name, repetition, *, average=true, n_components=25, n_splits=10, train_size=0.9, seed=1))]
#[allow(clippy::too_many_arguments)]
fn neural_predictivity<'py>(
    py: Python<'py>,
    source: PyReadonlyArray2<'py, f32>,
    source_stimulus_id: Vec<String>,
    target: PyReadonlyArray2<'py, f64>,
    stimulus_id: Vec<String>,
    object_name: Vec<String>,
    repetition: Vec<i64>,
    average: bool,
    n_components: usize,
    n_splits: usize,
    train_size: f64,
    seed: u32,
) -> PyResult<Bound<'py, PyDict>> {
    let n_features = source.shape()[1];
    let n_neuroids = target.shape()[1];
    let src = contiguous(&source, "source")?;
    let tgt = contiguous(&target, "target")?;
    let opts = NeuralOptions {
        n_components,
        n_splits,
        train_size,
        seed,
    };
    let score = py
        .detach(|| {
            let rec = Recordings {
                values: tgt.to_vec(),
                n_neuroids,
                stimulus_id,
                object_name,
                repetition,
            };
            let averaged = if average {
                rec.average()?
            } else {
                one_per_stimulus(rec)?
            };
            let features = Features {
                values: src,
                n_features,
                stimulus_id: &source_stimulus_id,
            };
            ventral_metrics::neural::neural_predictivity(&features, &averaged, &opts)
        })
        .map_err(value_error)?;
    score_dict(py, score)
}

/// Recordings with one row per stimulus, kept in their order.
fn one_per_stimulus(rec: Recordings) -> ventral_metrics::error::Result<Averaged> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = rec.stimulus_id.iter().find(|s| !seen.insert(s.as_str())) {
        return Err(ventral_metrics::error::MetricError::Invalid(format!(
            "target: stimulus `{dup}` has more than one presentation; average the repetitions first (ventral.metrics.average_repetition)"
        )));
    }
    if rec.object_name.len() != rec.stimulus_id.len() {
        return Err(ventral_metrics::error::MetricError::Invalid(format!(
            "target: {} stratification labels for {} presentations",
            rec.object_name.len(),
            rec.stimulus_id.len()
        )));
    }
    if rec.n_neuroids == 0 || rec.values.len() != rec.stimulus_id.len() * rec.n_neuroids {
        return Err(ventral_metrics::error::MetricError::Invalid(format!(
            "target: {} values for {} presentations × {} neuroids",
            rec.values.len(),
            rec.stimulus_id.len(),
            rec.n_neuroids
        )));
    }
    Ok(Averaged {
        values: rec.values,
        n_neuroids: rec.n_neuroids,
        stimulus_id: rec.stimulus_id,
        object_name: rec.object_name,
    })
}

/// The internal-consistency ceiling: split-half consistency over repetitions,
/// Spearman–Brown corrected, median over neuroids, mean over splits.
#[pyfunction]
#[pyo3(signature = (values, stimulus_id, repetition, *, n_splits=10, seed=1))]
fn internal_consistency<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    stimulus_id: Vec<String>,
    repetition: Vec<i64>,
    n_splits: usize,
    seed: u32,
) -> PyResult<Bound<'py, PyDict>> {
    let n_neuroids = values.shape()[1];
    let v = contiguous(&values, "recordings")?;
    let score = py
        .detach(|| {
            let n = stimulus_id.len();
            let rec = Recordings {
                values: v.to_vec(),
                n_neuroids,
                stimulus_id,
                object_name: vec![String::new(); n],
                repetition,
            };
            rec.internal_consistency(n_splits, seed)
        })
        .map_err(value_error)?;
    score_dict(py, score)
}

/// Average repetitions per stimulus (NaN-skipping), rows in ascending `stimulus_id`.
#[pyfunction]
fn average_repetition<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    stimulus_id: Vec<String>,
    object_name: Vec<String>,
    repetition: Vec<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let n_neuroids = values.shape()[1];
    let v = contiguous(&values, "recordings")?;
    let avg = py
        .detach(|| {
            Recordings {
                values: v.to_vec(),
                n_neuroids,
                stimulus_id,
                object_name,
                repetition,
            }
            .average()
        })
        .map_err(value_error)?;
    let rows = avg.stimulus_id.len();
    let d = PyDict::new(py);
    let values = numpy::ndarray::Array2::from_shape_vec((rows, n_neuroids), avg.values)
        .map_err(value_error)?;
    d.set_item("values", values.into_pyarray(py))?;
    d.set_item("stimulus_id", avg.stimulus_id)?;
    d.set_item("object_name", avg.object_name)?;
    Ok(d)
}

/// I2n: image-level, distractor-level normalised d′ of a model's choice probabilities
/// against 2-AFC trials, split-half ceiling over the trials.
#[pyfunction]
#[pyo3(signature = (probabilities, stimulus_id, choices, trial_stimulus_id, sample_obj, dist_obj, trial_choice, truth, *, repetitions=2, seed=0))]
#[allow(clippy::too_many_arguments)]
fn i2n<'py>(
    py: Python<'py>,
    probabilities: PyReadonlyArray2<'py, f64>,
    stimulus_id: Vec<String>,
    choices: Vec<String>,
    trial_stimulus_id: Vec<String>,
    sample_obj: Vec<String>,
    dist_obj: Vec<String>,
    trial_choice: Vec<String>,
    truth: Vec<String>,
    repetitions: usize,
    seed: u32,
) -> PyResult<Bound<'py, PyDict>> {
    let values = contiguous(&probabilities, "probabilities")?;
    if probabilities.shape()[1] != choices.len() {
        return Err(value_error(format!(
            "probabilities: {} columns for {} choices",
            probabilities.shape()[1],
            choices.len()
        )));
    }
    let s = py
        .detach(|| {
            let model = Probabilities {
                values,
                stimulus_id: &stimulus_id,
                choice: &choices,
            };
            let trials = Trials {
                stimulus_id: trial_stimulus_id,
                sample_obj,
                dist_obj,
                choice: trial_choice,
                truth,
            };
            ventral_metrics::i2n::i2n(&model, &trials, repetitions, seed)
        })
        .map_err(value_error)?;
    let d = PyDict::new(py);
    d.set_item("raw", s.raw.into_pyarray(py))?;
    d.set_item("score", s.score)?;
    d.set_item("score_error", s.score_error)?;
    d.set_item("ceiling_raw", s.ceiling_raw.map(|v| v.into_pyarray(py)))?;
    d.set_item("ceiling", s.ceiling)?;
    d.set_item("ceiled", s.ceiled)?;
    d.set_item("ceiling_error", s.ceiling_error)?;
    Ok(d)
}

/// Object solution times: per time bin a softmax readout, each image's OST where its I1
/// reaches the monkey's, Spearman ρ against the monkey's OSTs.
#[pyfunction]
#[pyo3(signature = (features, bin_starts, labels, monkey_ost, monkey_i1, *, n_splits=10, seed=1, readout="brain-score"))]
#[allow(clippy::too_many_arguments)]
fn ost<'py>(
    py: Python<'py>,
    features: PyReadonlyArray3<'py, f64>,
    bin_starts: Vec<f64>,
    labels: Vec<String>,
    monkey_ost: Vec<f64>,
    monkey_i1: Vec<f64>,
    n_splits: usize,
    seed: u32,
    readout: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let readout: OstReadout = readout
        .parse()
        .map_err(|e| value_error(format!("readout: {e}")))?;
    // (time_bin, presentation, neuroid): one contiguous block per bin.
    let shape = features.shape().to_vec();
    let all = contiguous(&features, "features")?;
    if shape[0] != bin_starts.len() {
        return Err(value_error(format!(
            "features: {} time bins for {} bin starts",
            shape[0],
            bin_starts.len()
        )));
    }
    let per = shape[1] * shape[2];
    let s = py
        .detach(|| {
            let bins: Vec<Bin<'_>> = bin_starts
                .iter()
                .enumerate()
                .map(|(b, &start)| Bin {
                    start,
                    values: &all[b * per..(b + 1) * per],
                    n_features: shape[2],
                })
                .collect();
            ventral_metrics::ost::ost(
                &bins,
                &labels,
                &monkey_ost,
                &monkey_i1,
                n_splits,
                seed,
                readout,
            )
        })
        .map_err(value_error)?;
    let d = PyDict::new(py);
    d.set_item("per_split", s.per_split.into_pyarray(py))?;
    d.set_item("score", s.score)?;
    d.set_item("error", s.error)?;
    d.set_item("ceiled", s.ceiled)?;
    d.set_item("ceiling", ventral_metrics::ost::OST_CEILING)?;
    d.set_item("pairs", s.pairs)?;
    d.set_item("model_ost", s.model_ost)?;
    Ok(d)
}

/// An assembly store opened for reading: its metadata, its coordinate tables and blocks of
/// its values.
#[pyclass(module = "ventral._ventral", frozen)]
struct Assembly {
    inner: ventral_store::Assembly,
}

#[pymethods]
impl Assembly {
    #[new]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| ventral_store::Assembly::open(&path))
            .map_err(store_error)?;
        Ok(Assembly { inner })
    }

    /// `attributes["ventral"]` of the store's `zarr.json`, as JSON text.
    fn meta_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.meta()).map_err(value_error)
    }

    /// The coordinate table of dimension `dim` (a `pyarrow.RecordBatch`, no copy).
    fn coords<'py>(&self, py: Python<'py>, dim: &str) -> PyResult<Bound<'py, PyAny>> {
        let batch = py.detach(|| self.inner.coords(dim)).map_err(store_error)?;
        batch.into_pyarrow(py)
    }

    /// The coordinate table of dimension `dim` as `[(name, values)]`: strings as lists of
    /// `str` (`None` where null), numbers and booleans as numpy arrays (integers with nulls
    /// as float64 with NaN). No pyarrow needed.
    fn coord_columns<'py>(
        &self,
        py: Python<'py>,
        dim: &str,
    ) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        let batch = py.detach(|| self.inner.coords(dim)).map_err(store_error)?;
        let mut out = Vec::new();
        for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
            out.push((field.name().clone(), column_to_py(py, col, field.name())?));
        }
        Ok(out)
    }

    /// The values in `ranges` (one `(start, stop)` per dimension) as a numpy array of the
    /// stored dtype.
    fn read<'py>(&self, py: Python<'py>, ranges: Vec<(u64, u64)>) -> PyResult<Bound<'py, PyAny>> {
        let ranges: Vec<std::ops::Range<u64>> = ranges.into_iter().map(|(a, b)| a..b).collect();
        match self.inner.meta().dtype {
            ventral_store::DType::Float32 => {
                let a = py
                    .detach(|| self.inner.read_f32(&ranges))
                    .map_err(store_error)?;
                Ok(PyArrayDyn::from_owned_array(py, a).into_any())
            }
            ventral_store::DType::Float64 => {
                let a = py
                    .detach(|| self.inner.read_f64(&ranges))
                    .map_err(store_error)?;
                Ok(PyArrayDyn::from_owned_array(py, a).into_any())
            }
        }
    }
}

fn column_to_py<'py>(
    py: Python<'py>,
    col: &ventral_store::arrow::array::ArrayRef,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    use ventral_store::arrow::array::{Array, AsArray};
    use ventral_store::arrow::compute::cast;
    use ventral_store::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
    let conv = |e: ventral_store::arrow::error::ArrowError| {
        value_error(format!("coordinate `{name}`: {e}"))
    };
    let floats = |c: &ventral_store::arrow::array::ArrayRef| -> PyResult<Bound<'py, PyAny>> {
        let c = cast(c, &DataType::Float64).map_err(conv)?;
        let a = c.as_primitive::<Float64Type>();
        let v: Vec<f64> = (0..a.len())
            .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) })
            .collect();
        Ok(v.into_pyarray(py).into_any())
    };
    match col.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            let c = cast(col, &DataType::Utf8).map_err(conv)?;
            let a = c.as_string::<i32>();
            let v: Vec<Option<&str>> = (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect();
            Ok(v.into_pyobject(py)?.into_any())
        }
        DataType::Boolean if col.null_count() == 0 => {
            let a = col.as_boolean();
            let v: Vec<bool> = (0..a.len()).map(|i| a.value(i)).collect();
            Ok(v.into_pyarray(py).into_any())
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
            if col.null_count() == 0 =>
        {
            let c = cast(col, &DataType::Int64).map_err(conv)?;
            Ok(c.as_primitive::<Int64Type>()
                .values()
                .to_vec()
                .into_pyarray(py)
                .into_any())
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
            if col.null_count() == 0 =>
        {
            let c = cast(col, &DataType::UInt64).map_err(conv)?;
            Ok(c.as_primitive::<UInt64Type>()
                .values()
                .to_vec()
                .into_pyarray(py)
                .into_any())
        }
        DataType::Float32 if col.null_count() == 0 => {
            let a = col.as_primitive::<ventral_store::arrow::datatypes::Float32Type>();
            Ok(a.values().to_vec().into_pyarray(py).into_any())
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => floats(col),
        DataType::Boolean => {
            // Booleans with nulls: objects (None where null), as pandas keeps them.
            let a = col.as_boolean();
            let v: Vec<Option<bool>> = (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect();
            Ok(v.into_pyobject(py)?.into_any())
        }
        other => Err(value_error(format!(
            "coordinate `{name}`: type {other} is not one ventral writes"
        ))),
    }
}

fn store_error(e: ventral_store::StoreError) -> PyErr {
    match &e {
        ventral_store::StoreError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => value_error(e),
    }
}

/// Every assembly store under `root`, sorted.
#[pyfunction]
fn find_assemblies(root: PathBuf) -> Vec<PathBuf> {
    ventral_store::find_assemblies(&root)
}

fn dag_error(e: ventral_dag::DagError) -> PyErr {
    value_error(e)
}

/// Open a workspace, its pipeline and the engine, and call `f`.
fn with_engine<T>(
    workspace: &Path,
    store: Option<&Path>,
    pipeline: &Path,
    profile: Option<&str>,
    f: impl FnOnce(
        &ventral_dag::Workspace,
        &ventral_stage::Registry,
        &ventral_dag::Engine<'_>,
    ) -> PyResult<T>,
) -> PyResult<T> {
    let ws = ventral_dag::Workspace::open(workspace, store).map_err(dag_error)?;
    let registry = ventral_kinds::registry().map_err(value_error)?;
    let path = if pipeline.is_absolute() {
        pipeline.to_path_buf()
    } else {
        ws.root.join(pipeline)
    };
    if !path.is_file() {
        return Err(PyOSError::new_err(format!(
            "{}: no such pipeline file",
            path.display()
        )));
    }
    let mut p = ventral_dag::Pipeline::load(&path, profile).map_err(dag_error)?;
    p.file = pipeline.to_path_buf();
    let engine = ventral_dag::Engine::new(&ws, &registry, &p).map_err(dag_error)?;
    f(&ws, &registry, &engine)
}

/// Every stage's status (JSON text: the objects `ventral status --json` prints).
#[pyfunction]
#[pyo3(signature = (workspace, pipeline, stages=Vec::new(), *, store=None, profile=None))]
fn status(
    py: Python<'_>,
    workspace: PathBuf,
    pipeline: PathBuf,
    stages: Vec<String>,
    store: Option<PathBuf>,
    profile: Option<String>,
) -> PyResult<String> {
    py.detach(|| {
        with_engine(
            &workspace,
            store.as_deref(),
            &pipeline,
            profile.as_deref(),
            |_, _, engine| {
                let set = if stages.is_empty() {
                    None
                } else {
                    let targets = engine.select(&stages).map_err(dag_error)?;
                    Some(engine.graph().upstream_closure(&targets))
                };
                let st = engine.status(set.as_ref()).map_err(dag_error)?;
                serde_json::to_string(&st).map_err(value_error)
            },
        )
    })
}

/// Bring stages up to date in this process (JSON text: the report `ventral run --json`
/// prints). Model stages run in the `ventral-torch` worker, found as the CLI finds it.
#[pyfunction]
#[pyo3(signature = (workspace, pipeline, stages=Vec::new(), *, store=None, profile=None, jobs=None, force=false, lock_timeout_s=60.0))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    workspace: PathBuf,
    pipeline: PathBuf,
    stages: Vec<String>,
    store: Option<PathBuf>,
    profile: Option<String>,
    jobs: Option<usize>,
    force: bool,
    lock_timeout_s: f64,
) -> PyResult<String> {
    py.detach(|| {
        with_engine(
            &workspace,
            store.as_deref(),
            &pipeline,
            profile.as_deref(),
            |ws, registry, engine| {
                let mut opts = ventral_dag::RunOptions {
                    targets: stages,
                    force,
                    lock_timeout: std::time::Duration::from_secs_f64(lock_timeout_s.max(0.0)),
                    ..Default::default()
                };
                if let Some(j) = jobs {
                    opts.jobs = j.max(1);
                }
                let local = ventral_dag::LocalExecutor {
                    store: &ws.store,
                    registry,
                };
                let report = engine
                    .run(&opts, &local, &ventral_dag::NoProgress)
                    .map_err(dag_error)?;
                serde_json::to_string(&report).map_err(value_error)
            },
        )
    })
}

/// A read-only SQL query over the workspace's stores; the answer as a `pyarrow.Table`. With
/// `remote`, the outputs missing locally are read where they lie in that remote of the
/// workspace's `ventral.toml` (as `ventral sql --remote`).
#[pyfunction]
#[pyo3(signature = (query, workspace, *, store=None, paths=Vec::new(), remote=None))]
fn sql<'py>(
    py: Python<'py>,
    query: &str,
    workspace: PathBuf,
    store: Option<PathBuf>,
    paths: Vec<PathBuf>,
    remote: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let batches = py.detach(|| -> PyResult<_> {
        let ws = ventral_dag::Workspace::open(&workspace, store.as_deref()).map_err(dag_error)?;
        let remote = match remote {
            Some(name) => {
                let cfg = ventral_cluster::WorkspaceConfig::load(&ws.root).map_err(value_error)?;
                let (name, r) = cfg
                    .remote(Some(&name))
                    .map_err(value_error)?
                    .ok_or_else(|| value_error(format!("no remote `{name}` in ventral.toml")))?;
                let r =
                    ventral_remote::Remote::open(&name, &r.url, &r.options).map_err(value_error)?;
                Some(std::sync::Arc::new(r))
            }
            None => None,
        };
        let counters = std::sync::Arc::new(ventral_remote::ReadCounters::default());
        let catalog = ventral_sql::Catalog::of_workspace_with(
            &ws,
            &paths,
            remote.as_ref().map(|r| (r, counters.clone())),
        )
        .map_err(value_error)?;
        let session = ventral_sql::SqlSession::new(&catalog).map_err(value_error)?;
        session.query(query).map_err(value_error)
    })?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => std::sync::Arc::new(arrow_pyarrow_schema_empty()),
    };
    let table = arrow_pyarrow::Table::try_new(batches, schema).map_err(value_error)?;
    table.into_pyarrow(py)
}

fn arrow_pyarrow_schema_empty() -> ventral_store::arrow::datatypes::Schema {
    ventral_store::arrow::datatypes::Schema::empty()
}

/// The code identity of each registered kind (JSON text: kind → identity), as the CLI's
/// registry has them.
#[pyfunction]
fn kind_identities() -> PyResult<String> {
    let r = ventral_kinds::registry().map_err(value_error)?;
    let map: serde_json::Map<String, serde_json::Value> = r
        .iter()
        .map(|(k, id)| {
            (
                k.name().to_string(),
                serde_json::Value::String(id.to_string()),
            )
        })
        .collect();
    serde_json::to_string(&map).map_err(value_error)
}

/// The module.
#[pymodule]
fn _ventral(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("TOOLCHAIN", ventral_kinds::TOOLCHAIN)?;
    m.add_function(wrap_pyfunction!(neural_predictivity, m)?)?;
    m.add_function(wrap_pyfunction!(internal_consistency, m)?)?;
    m.add_function(wrap_pyfunction!(average_repetition, m)?)?;
    m.add_function(wrap_pyfunction!(i2n, m)?)?;
    m.add_function(wrap_pyfunction!(ost, m)?)?;
    m.add_function(wrap_pyfunction!(find_assemblies, m)?)?;
    m.add_function(wrap_pyfunction!(status, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(sql, m)?)?;
    m.add_function(wrap_pyfunction!(kind_identities, m)?)?;
    m.add_class::<Assembly>()?;
    Ok(())
}
