//! The DataFusion session over a catalog.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use ventral_store::{Assembly, find_assemblies_in};

use crate::activations::{ActivationsTable, Entry};
use crate::catalog::{Catalog, StoreRoot};
use crate::error::{Result, SqlError};

/// Counters of what scans read (for tests and `EXPLAIN ANALYZE`-style checks).
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Zarr chunks (files) read by `activations` scans.
    pub chunks: AtomicU64,
    /// Compressed blocks decoded: whole chunks, or the row bands of sharded ones.
    pub blocks: AtomicU64,
}

/// A read-only SQL session over a workspace's stores.
pub struct SqlSession {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    stats: Arc<ScanStats>,
    tables: Vec<String>,
}

struct Found {
    root: StoreRoot,
    subpath: String,
    asm: Assembly,
    name: String,
}

fn mem_table(batch: RecordBatch) -> Result<Arc<MemTable>> {
    let schema = batch.schema();
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// Union tables with different columns: every column of any table, in first-seen order;
/// a column whose types disagree becomes a string; missing values are null. Each row gets
/// the `(name, value)` columns of `prefix` first.
fn union(parts: Vec<(Vec<(String, String)>, RecordBatch)>, prefix: &[&str]) -> Result<RecordBatch> {
    let mut cols: Vec<(String, DataType)> = Vec::new();
    for (_, b) in &parts {
        for f in b.schema().fields() {
            match cols.iter_mut().find(|(n, _)| n == f.name()) {
                None => cols.push((f.name().clone(), f.data_type().clone())),
                Some((_, t)) if t != f.data_type() => *t = DataType::Utf8,
                Some(_) => {}
            }
        }
    }
    cols.retain(|(n, _)| !prefix.contains(&n.as_str()));
    let mut fields: Vec<Field> = prefix
        .iter()
        .map(|p| Field::new(*p, DataType::Utf8, true))
        .collect();
    fields.extend(cols.iter().map(|(n, t)| Field::new(n, t.clone(), true)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut batches = Vec::new();
    for (tags, b) in &parts {
        let n = b.num_rows();
        let mut arrays: Vec<ArrayRef> = prefix
            .iter()
            .map(|p| {
                let v = tags.iter().find(|(k, _)| k == p).map(|(_, v)| v.as_str());
                Arc::new(StringArray::from(vec![v; n])) as ArrayRef
            })
            .collect();
        for (name, ty) in &cols {
            let a: ArrayRef = match b.column_by_name(name) {
                Some(a) if a.data_type() == ty => a.clone(),
                Some(a) => cast(a, ty)?,
                None => new_null_array(ty, n),
            };
            arrays.push(a);
        }
        batches.push(RecordBatch::try_new(schema.clone(), arrays)?);
    }
    Ok(datafusion::arrow::compute::concat_batches(
        &schema, &batches,
    )?)
}

/// `batch` with column `name` cast to `Dictionary(Int32, Utf8)`.
fn dictionary_column(batch: RecordBatch, name: &str) -> Result<RecordBatch> {
    let Some(idx) = batch.schema().index_of(name).ok() else {
        return Ok(batch);
    };
    let ty = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[idx] = Field::new(name, ty.clone(), fields[idx].is_nullable());
    let mut cols = batch.columns().to_vec();
    cols[idx] = cast(&cols[idx], &ty)?;
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

fn opt_str(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn strs(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

impl SqlSession {
    /// Open every store the catalog names and register the tables.
    pub fn new(catalog: &Catalog) -> Result<SqlSession> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )
            .enable_all()
            .build()
            .map_err(|e| SqlError::Query(format!("cannot start the query runtime: {e}")))?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("ventral", "public");
        let ctx = SessionContext::new_with_config(config);
        // Aggregates of `value` computed from per-stimulus partial aggregates.
        ctx.add_optimizer_rule(Arc::new(crate::pushdown::ActivationsAggregatePushdown));
        let stats = Arc::new(ScanStats::default());

        // Find and open every assembly; names are identifiers, made unique if needed.
        let mut found: Vec<Found> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for root in &catalog.roots {
            let source = root.source();
            for folder in find_assemblies_in(source.as_ref(), "") {
                let asm = Assembly::open_in(source.clone(), &folder)?;
                let id = asm.meta().identifier.clone();
                let k = seen.entry(id.clone()).or_insert(0);
                *k += 1;
                let name = if *k == 1 { id } else { format!("{id}#{k}") };
                found.push(Found {
                    root: root.clone(),
                    subpath: folder,
                    asm,
                    name,
                });
            }
        }

        // assemblies
        let attr = |f: &Found, k: &str| {
            f.asm.meta().attrs.get(k).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
        };
        let asm_batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("assembly", DataType::Utf8, false),
                Field::new("identifier", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("dims", DataType::Utf8, false),
                Field::new("shape", DataType::Utf8, false),
                Field::new("n_values", DataType::Int64, false),
                Field::new("dtype", DataType::Utf8, false),
                Field::new("model", DataType::Utf8, true),
                Field::new("layer", DataType::Utf8, true),
                Field::new("timestep", DataType::Int64, true),
                Field::new("pipeline", DataType::Utf8, true),
                Field::new("stage", DataType::Utf8, true),
                Field::new("stage_key", DataType::Utf8, true),
                Field::new("output", DataType::Utf8, true),
                Field::new("subpath", DataType::Utf8, false),
                Field::new("path", DataType::Utf8, false),
            ])),
            vec![
                strs(found.iter().map(|f| f.name.clone()).collect()),
                strs(
                    found
                        .iter()
                        .map(|f| f.asm.meta().identifier.clone())
                        .collect(),
                ),
                strs(found.iter().map(|f| f.asm.meta().kind.clone()).collect()),
                strs(found.iter().map(|f| f.asm.meta().dims.join(",")).collect()),
                strs(
                    found
                        .iter()
                        .map(|f| {
                            f.asm
                                .meta()
                                .shape
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join("x")
                        })
                        .collect(),
                ),
                Arc::new(Int64Array::from(
                    found
                        .iter()
                        .map(|f| f.asm.meta().shape.iter().product::<u64>() as i64)
                        .collect::<Vec<_>>(),
                )),
                strs(
                    found
                        .iter()
                        .map(|f| f.asm.meta().dtype.name().to_string())
                        .collect(),
                ),
                opt_str(found.iter().map(|f| attr(f, "model")).collect()),
                opt_str(found.iter().map(|f| attr(f, "layer")).collect()),
                Arc::new(Int64Array::from(
                    found
                        .iter()
                        .map(|f| f.asm.meta().attrs.get("timestep").and_then(|v| v.as_i64()))
                        .collect::<Vec<_>>(),
                )),
                opt_str(found.iter().map(|f| f.root.pipeline.clone()).collect()),
                opt_str(found.iter().map(|f| f.root.stage.clone()).collect()),
                opt_str(
                    found
                        .iter()
                        .map(|f| f.asm.meta().producer.clone().or_else(|| f.root.key.clone()))
                        .collect(),
                ),
                opt_str(found.iter().map(|f| f.root.digest.clone()).collect()),
                strs(found.iter().map(|f| f.subpath.clone()).collect()),
                strs(
                    found
                        .iter()
                        .map(|f| f.asm.dir().to_string_lossy().to_string())
                        .collect(),
                ),
            ],
        )?;
        ctx.register_table("assemblies", mem_table(asm_batch)?)?;

        // stimuli and neuroids: every coordinate table, tagged with its assembly.
        let mut stim_parts = Vec::new();
        let mut neur_parts = Vec::new();
        for f in &found {
            let dims = &f.asm.meta().dims;
            let tags = vec![("assembly".to_string(), f.name.clone())];
            if let Some(d) = dims
                .iter()
                .find(|d| *d == "presentation" || *d == "stimulus")
            {
                stim_parts.push((tags.clone(), f.asm.coords(d)?));
            }
            if dims.iter().any(|d| d == "neuroid") {
                neur_parts.push((tags, f.asm.coords("neuroid")?));
            }
        }
        let empty_ids = |col: &str| {
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(col, DataType::Utf8, true)])),
                vec![Arc::new(StringArray::from(Vec::<Option<&str>>::new())) as ArrayRef],
            )
        };
        if stim_parts.is_empty() {
            stim_parts.push((vec![], empty_ids("stimulus_id")?));
        }
        if neur_parts.is_empty() {
            neur_parts.push((vec![], empty_ids("neuroid_id")?));
        }
        // `stimulus_id` as a dictionary, like the activations table's: joins on it then hash
        // each distinct id once instead of once per activation.
        let stimuli = union(stim_parts, &["assembly"])?;
        let stimuli = dictionary_column(stimuli, "stimulus_id")?;
        ctx.register_table("stimuli", mem_table(stimuli)?)?;
        ctx.register_table("neuroids", mem_table(union(neur_parts, &["assembly"])?)?)?;

        // activations
        let mut entries = Vec::new();
        for f in found {
            let m = f.asm.meta();
            if m.kind != "activations" || m.dims.len() != 2 {
                continue;
            }
            let coords = f.asm.coords(&m.dims[0])?;
            let ids = coords
                .column_by_name("stimulus_id")
                .map(|c| cast(c, &DataType::Utf8))
                .transpose()?
                .ok_or_else(|| {
                    SqlError::Query(format!("{}: no stimulus_id", f.asm.dir().display()))
                })?;
            let ids = ids
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| (0..a.len()).map(|i| a.value(i).to_string()).collect())
                .unwrap_or_default();
            entries.push(Entry {
                model: m.attr_str("model").unwrap_or_default().to_string(),
                layer: m.attr_str("layer").unwrap_or_default().to_string(),
                timestep: m
                    .attrs
                    .get("timestep")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                assembly: f.name.clone(),
                stimulus_ids: ids,
                digests: f.root.files.clone().map(|files| (files, f.subpath.clone())),
                asm: f.asm,
            });
        }
        ctx.register_table(
            "activations",
            Arc::new(ActivationsTable::new(entries, stats.clone())),
        )?;

        // scores: every scores.parquet at the top of a store root.
        let mut score_parts = Vec::new();
        for root in &catalog.roots {
            let source = root.source();
            let bytes =
                source
                    .read("scores.parquet")
                    .map_err(|e| ventral_store::StoreError::Io {
                        path: source.locate("scores.parquet"),
                        message: e.to_string(),
                    })?;
            if let Some(bytes) = bytes {
                let tags = vec![
                    (
                        "pipeline".to_string(),
                        root.pipeline.clone().unwrap_or_default(),
                    ),
                    ("stage".to_string(), root.stage.clone().unwrap_or_default()),
                    (
                        "stage_key".to_string(),
                        root.key.clone().unwrap_or_default(),
                    ),
                ];
                let rows =
                    ventral_store::scores::read_rows_from(bytes, &source.locate("scores.parquet"))?;
                score_parts.push((tags, rows));
            }
        }
        if score_parts.is_empty() {
            score_parts.push((vec![], empty_scores()?));
        }
        ctx.register_table(
            "scores",
            mem_table(union(score_parts, &["pipeline", "stage", "stage_key"])?)?,
        )?;

        // runs
        let r = &catalog.runs;
        let runs = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("pipeline", DataType::Utf8, false),
                Field::new("profile", DataType::Utf8, false),
                Field::new("stage", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("key", DataType::Utf8, false),
                Field::new("output", DataType::Utf8, false),
                Field::new("code", DataType::Utf8, false),
                Field::new("runtime", DataType::Utf8, true),
                Field::new("params", DataType::Utf8, false),
                Field::new("seconds", DataType::Float64, true),
                Field::new("finished_unix", DataType::Int64, true),
                Field::new("host", DataType::Utf8, true),
            ])),
            vec![
                strs(r.iter().map(|x| x.pipeline.clone()).collect()),
                strs(r.iter().map(|x| x.profile.clone()).collect()),
                strs(r.iter().map(|x| x.stage.clone()).collect()),
                strs(r.iter().map(|x| x.kind.clone()).collect()),
                strs(r.iter().map(|x| x.key.clone()).collect()),
                strs(r.iter().map(|x| x.output.clone()).collect()),
                strs(r.iter().map(|x| x.code.clone()).collect()),
                opt_str(r.iter().map(|x| x.runtime.clone()).collect()),
                strs(r.iter().map(|x| x.params.clone()).collect()),
                Arc::new(Float64Array::from(
                    r.iter().map(|x| x.seconds).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    r.iter().map(|x| x.finished_unix).collect::<Vec<_>>(),
                )),
                opt_str(r.iter().map(|x| x.host.clone()).collect()),
            ],
        )?;
        ctx.register_table("runs", mem_table(runs)?)?;

        Ok(SqlSession {
            ctx,
            runtime,
            stats,
            tables: [
                "assemblies",
                "stimuli",
                "neuroids",
                "activations",
                "scores",
                "runs",
            ]
            .map(String::from)
            .to_vec(),
        })
    }

    /// The tables this session offers.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Scan counters.
    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// Run one read-only query and collect its result. DDL, DML, `COPY` and other
    /// statements are refused before anything runs.
    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.runtime.block_on(async {
            let df = self.accept(sql).await?;
            Ok(df.collect().await?)
        })
    }

    /// The statement filter: `sql` parsed and planned, or refused if it would do anything
    /// but read (DDL, DML, `COPY`, `SET` and other statements). Nothing has run yet.
    pub(crate) async fn accept(&self, sql: &str) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx.sql_with_options(sql, options).await.map_err(|e| {
            let msg = e.to_string();
            if ["DDL not supported", "DML not supported", "Statement not supported"]
                .iter()
                .any(|p| msg.contains(p))
            {
                SqlError::ReadOnly(format!(
                    "{} (queries may only read: CREATE, INSERT, UPDATE, DELETE, COPY and SET are refused)",
                    msg.trim_start_matches("Error during planning: ")
                ))
            } else {
                SqlError::from(e)
            }
        })
    }

    /// The query runtime (for the fuzz target, which plans without executing).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Turn the aggregate push-down (`crate::pushdown`) off, e.g. to compare answers.
    pub fn without_aggregate_pushdown(&self) {
        self.ctx
            .remove_optimizer_rule("ventral_activations_aggregate_pushdown");
    }

    /// Reset the scan counters.
    pub fn reset_stats(&self) {
        self.stats.chunks.store(0, Ordering::Relaxed);
        self.stats.blocks.store(0, Ordering::Relaxed);
    }
}

fn empty_scores() -> Result<RecordBatch> {
    Ok(RecordBatch::new_empty(ventral_store::scores::schema()))
}

/// Whether `p` is inside `root` (for callers that check user paths).
pub fn within(p: &Path, root: &Path) -> bool {
    p.canonicalize()
        .ok()
        .zip(root.canonicalize().ok())
        .is_some_and(|(p, r)| p.starts_with(r))
}
