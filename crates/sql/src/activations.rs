//! The `activations` table: a tidy view over the Zarr values of every `activations`
//! assembly, streamed chunk by chunk, with projection, limit and filter pushdown.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float32Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    StringViewArray,
};
use datafusion::arrow::array::{DictionaryArray, Int32Array};
use datafusion::arrow::buffer::{Buffer, ScalarBuffer};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use ventral_store::Assembly;

use crate::session::ScanStats;

/// One activations assembly, ready to scan.
pub(crate) struct Entry {
    pub asm: Assembly,
    pub assembly: String,
    pub model: String,
    pub layer: String,
    pub timestep: i64,
    /// Stimulus ids in row order.
    pub stimulus_ids: Vec<String>,
    /// The recorded blake3 of the store's files (by path inside the stage output) and the
    /// store's folder inside that output, when the store is a stage output.
    pub digests: Option<(Arc<BTreeMap<String, ventral_cas::Digest>>, String)>,
}

impl Entry {
    /// Decode chunk `idx` (its rows `rows`, relative to the chunk, or all of it) into
    /// `out`; returns the blocks decoded. A whole-chunk read is first checked against the
    /// digest its store recorded, on the bytes read for decoding (one read of the file); a
    /// read of a few row bands of a shard relies on the catalog's size-and-time check instead
    /// of re-reading the whole file.
    pub(crate) fn read_chunk(
        &self,
        idx: &[u64],
        rows: Option<&[u64]>,
        out: &mut Vec<f32>,
    ) -> DfResult<usize> {
        let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
        let want = match (&self.digests, rows) {
            (Some((files, prefix)), None) => {
                let key = self.asm.chunk_key(idx);
                let rel = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}/{key}")
                };
                // No digest: an empty chunk, never written, read as the fill value.
                files.get(&rel).map(|d| (*d, self.asm.dir().join(&key)))
            }
            _ => None,
        };
        let Some((want, path)) = want else {
            return self
                .asm
                .read_chunk_rows_f32_into(idx, rows, out)
                .map_err(|e| external(Box::new(e)));
        };
        let damaged = |problem: String| crate::SqlError::Damaged {
            path: path.display().to_string(),
            problem,
        };
        let check = |bytes: Option<&[u8]>| -> Result<(), crate::SqlError> {
            let got = match bytes {
                Some(b) => ventral_cas::hash_bytes(b),
                // Bytes not at hand (another codec chain, or the file is gone).
                None => ventral_cas::hash_file(&path).map_err(|e| damaged(e.to_string()))?,
            };
            if got == want {
                Ok(())
            } else {
                Err(damaged(format!(
                    "hashes to {} where the store recorded {}",
                    got.short(12),
                    want.short(12)
                )))
            }
        };
        match self.asm.read_chunk_rows_f32_checked(idx, rows, out, check) {
            Ok(Ok(blocks)) => Ok(blocks),
            Ok(Err(refused)) => Err(external(Box::new(refused))),
            Err(e) => Err(external(Box::new(e))),
        }
    }
}

/// Column indices of the table's schema.
const ASSEMBLY: usize = 0;
const MODEL: usize = 1;
const LAYER: usize = 2;
const TIMESTEP: usize = 3;
const STIMULUS: usize = 4;
const NEUROID: usize = 5;
const VALUE: usize = 6;

/// The type of the `stimulus_id` column: a dictionary whose keys are row indices.
pub(crate) fn stimulus_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("assembly", DataType::Utf8View, false),
        Field::new("model", DataType::Utf8View, false),
        Field::new("layer", DataType::Utf8View, false),
        Field::new("timestep", DataType::Int64, false),
        Field::new(
            "stimulus_id",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("neuroid", DataType::Int64, false),
        Field::new("value", DataType::Float32, true),
    ]))
}

/// A table provider over activation assemblies.
#[derive(Debug)]
pub(crate) struct ActivationsTable {
    pub(crate) entries: Arc<Vec<Arc<EntryShared>>>,
    pub(crate) stats: Arc<ScanStats>,
}

/// An entry plus precomputed string views.
pub(crate) struct EntryShared {
    pub(crate) entry: Entry,
    /// One buffer holding every string this entry needs; views point into it.
    buffer: Buffer,
    pub(crate) assembly_view: u128,
    pub(crate) model_view: u128,
    pub(crate) layer_view: u128,
    /// The stimulus ids as the values of a dictionary whose keys are row indices.
    pub(crate) stimulus_values: ArrayRef,
}

impl std::fmt::Debug for EntryShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "activations[{}]", self.entry.assembly)
    }
}

fn make_views(strings: &[&str]) -> (Buffer, Vec<u128>) {
    let mut bytes = Vec::new();
    let mut views = Vec::with_capacity(strings.len());
    for s in strings {
        let offset = bytes.len() as u32;
        bytes.extend_from_slice(s.as_bytes());
        views.push(datafusion::arrow::array::builder::make_view(
            s.as_bytes(),
            0,
            offset,
        ));
    }
    (Buffer::from_vec(bytes), views)
}

impl EntryShared {
    pub(crate) fn new(entry: Entry) -> Self {
        let mut all: Vec<&str> = vec![&entry.assembly, &entry.model, &entry.layer];
        all.extend(entry.stimulus_ids.iter().map(String::as_str));
        let (buffer, views) = make_views(&all);
        EntryShared {
            assembly_view: views[0],
            model_view: views[1],
            layer_view: views[2],
            stimulus_values: Arc::new(StringArray::from(entry.stimulus_ids.clone())),
            buffer,
            entry,
        }
    }

    pub(crate) fn const_view(&self, view: u128, n: usize) -> ArrayRef {
        Arc::new(StringViewArray::new(
            ScalarBuffer::from(vec![view; n]),
            vec![self.buffer.clone()],
            None,
        ))
    }
}

impl ActivationsTable {
    pub(crate) fn new(entries: Vec<Entry>, stats: Arc<ScanStats>) -> Self {
        ActivationsTable {
            entries: Arc::new(
                entries
                    .into_iter()
                    .map(|e| Arc::new(EntryShared::new(e)))
                    .collect(),
            ),
            stats,
        }
    }
}

/// What the pushed-down filters allow.
#[derive(Default, Debug)]
pub(crate) struct Pruning {
    assembly: Option<BTreeSet<String>>,
    model: Option<BTreeSet<String>>,
    layer: Option<BTreeSet<String>>,
    timestep: Option<BTreeSet<i64>>,
    pub(crate) stimulus: Option<BTreeSet<String>>,
    neuroid_lo: Option<i64>,
    neuroid_hi: Option<i64>,
}

fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        Expr::Literal(ScalarValue::Dictionary(_, inner), m) => {
            literal_str(&Expr::Literal(inner.as_ref().clone(), m.clone()))
        }
        Expr::Cast(c) => literal_str(&c.expr),
        _ => None,
    }
}

fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int64(Some(i)) => Some(*i),
            ScalarValue::Int32(Some(i)) => Some(*i as i64),
            ScalarValue::Int16(Some(i)) => Some(*i as i64),
            ScalarValue::Int8(Some(i)) => Some(*i as i64),
            ScalarValue::UInt64(Some(i)) => i64::try_from(*i).ok(),
            ScalarValue::UInt32(Some(i)) => Some(*i as i64),
            _ => None,
        },
        Expr::Cast(c) => literal_int(&c.expr),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

/// Whether every column `e` compares is the column itself, or a string column cast to
/// another string type (how DataFusion compares a dictionary with a literal): a narrowing
/// cast such as `CAST(neuroid AS SMALLINT)` could change which rows match, so a filter
/// with one is never applied by the scan alone.
fn plain_columns(e: &Expr) -> bool {
    fn ok(e: &Expr) -> bool {
        match e {
            Expr::Column(_) | Expr::Literal(..) => true,
            Expr::Cast(c) => match c.expr.as_ref() {
                Expr::Column(col) => {
                    let string_column = matches!(
                        col.name.as_str(),
                        "assembly" | "model" | "layer" | "stimulus_id"
                    );
                    let string_type = match c.field.data_type() {
                        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
                        DataType::Dictionary(_, v) => v.as_ref() == &DataType::Utf8,
                        _ => false,
                    };
                    string_column && string_type
                }
                // A cast literal is judged by `literal_str`/`literal_int`.
                inner => !matches!(inner, Expr::Column(_)) && ok(inner),
            },
            _ => false,
        }
    }
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => plain_columns(left) && plain_columns(right),
            _ => ok(left) && ok(right),
        },
        Expr::InList(il) => ok(&il.expr) && il.list.iter().all(ok),
        Expr::Between(b) => ok(&b.expr) && ok(&b.low) && ok(&b.high),
        _ => false,
    }
}

fn intersect<T: Ord + Clone>(slot: &mut Option<BTreeSet<T>>, values: BTreeSet<T>) {
    *slot = Some(match slot.take() {
        None => values,
        Some(old) => old.intersection(&values).cloned().collect(),
    });
}

impl Pruning {
    /// Whether this filter is one we can use to prune.
    pub(crate) fn usable(e: &Expr) -> bool {
        let mut p = Pruning::default();
        p.add(e)
    }

    /// Whether the scan applies `e` in full: every conjunct is one [`Pruning::add`] records
    /// completely (equality or IN on assembly, model, layer, timestep or stimulus_id with
    /// literals, ORs of those on one column, neuroid ranges).
    pub(crate) fn exact(e: &Expr) -> bool {
        plain_columns(e) && Pruning::exact_parts(e)
    }

    fn exact_parts(e: &Expr) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => Pruning::exact_parts(left) && Pruning::exact_parts(right),
            // An OR is recorded as the union of its sides' sets, which is all of it only
            // when each side is itself recorded in full.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => Pruning::exact_parts(left) && Pruning::exact_parts(right) && Pruning::usable(e),
            _ => Pruning::usable(e),
        }
    }

    /// Record what `e` implies; false when it implies nothing we can use.
    pub(crate) fn add(&mut self, e: &Expr) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    let a = self.add(left);
                    let b = self.add(right);
                    return a || b;
                }
                if *op == Operator::Or {
                    // `x = 'a' OR x = 'b'` (how small IN lists arrive): the union of both
                    // sides, when each side constrains only the same one set-valued column.
                    let (mut l, mut r) = (Pruning::default(), Pruning::default());
                    if !(l.add(left) && r.add(right)) {
                        return false;
                    }
                    return self.merge_or(l, r);
                }
                let (col, lit, op) = match (column_name(left), column_name(right)) {
                    (Some(c), None) => (c, right.as_ref(), *op),
                    (None, Some(c)) => (c, left.as_ref(), op.swap().unwrap_or(*op)),
                    _ => return false,
                };
                self.add_cmp(col, op, lit)
            }
            Expr::InList(il) if !il.negated => {
                let Some(col) = column_name(&il.expr) else {
                    return false;
                };
                match col {
                    "assembly" | "model" | "layer" | "stimulus_id" => {
                        let vals: Option<BTreeSet<String>> =
                            il.list.iter().map(literal_str).collect();
                        let Some(vals) = vals else { return false };
                        let slot = match col {
                            "assembly" => &mut self.assembly,
                            "model" => &mut self.model,
                            "layer" => &mut self.layer,
                            _ => &mut self.stimulus,
                        };
                        intersect(slot, vals);
                        true
                    }
                    "timestep" => {
                        let vals: Option<BTreeSet<i64>> = il.list.iter().map(literal_int).collect();
                        let Some(vals) = vals else { return false };
                        intersect(&mut self.timestep, vals);
                        true
                    }
                    _ => false,
                }
            }
            Expr::Between(b) if !b.negated => {
                let (Some("neuroid" | "timestep"), Some(lo), Some(hi)) = (
                    column_name(&b.expr),
                    literal_int(&b.low),
                    literal_int(&b.high),
                ) else {
                    return false;
                };
                let col = column_name(&b.expr).unwrap_or_default();
                self.add_cmp(
                    col,
                    Operator::GtEq,
                    &Expr::Literal(ScalarValue::Int64(Some(lo)), None),
                ) && self.add_cmp(
                    col,
                    Operator::LtEq,
                    &Expr::Literal(ScalarValue::Int64(Some(hi)), None),
                )
            }
            _ => false,
        }
    }

    /// The set-valued columns a pruning constrains.
    fn sets(&mut self) -> [(&'static str, Option<BTreeSet<String>>); 4] {
        [
            ("assembly", self.assembly.take()),
            ("model", self.model.take()),
            ("layer", self.layer.take()),
            ("stimulus_id", self.stimulus.take()),
        ]
    }

    fn merge_or(&mut self, mut l: Pruning, mut r: Pruning) -> bool {
        let ranges = |p: &Pruning| p.neuroid_lo.is_some() || p.neuroid_hi.is_some();
        if ranges(&l) || ranges(&r) {
            return false;
        }
        if let (Some(a), Some(b)) = (l.timestep.take(), r.timestep.take()) {
            let only_t = |p: &mut Pruning| p.sets().iter().all(|(_, s)| s.is_none());
            if only_t(&mut l) && only_t(&mut r) {
                intersect(&mut self.timestep, a.union(&b).copied().collect());
                return true;
            }
            return false;
        }
        if l.timestep.is_some() || r.timestep.is_some() {
            return false;
        }
        let (ls, rs) = (l.sets(), r.sets());
        let lset: Vec<usize> = (0..4).filter(|&i| ls[i].1.is_some()).collect();
        let rset: Vec<usize> = (0..4).filter(|&i| rs[i].1.is_some()).collect();
        if lset.len() != 1 || lset != rset {
            return false;
        }
        let i = lset[0];
        let union: BTreeSet<String> = ls[i]
            .1
            .iter()
            .chain(rs[i].1.iter())
            .flatten()
            .cloned()
            .collect();
        let slot = match ls[i].0 {
            "assembly" => &mut self.assembly,
            "model" => &mut self.model,
            "layer" => &mut self.layer,
            _ => &mut self.stimulus,
        };
        intersect(slot, union);
        true
    }

    fn add_cmp(&mut self, col: &str, op: Operator, lit: &Expr) -> bool {
        match (col, op) {
            ("assembly" | "model" | "layer" | "stimulus_id", Operator::Eq) => {
                let Some(v) = literal_str(lit) else {
                    return false;
                };
                let slot = match col {
                    "assembly" => &mut self.assembly,
                    "model" => &mut self.model,
                    "layer" => &mut self.layer,
                    _ => &mut self.stimulus,
                };
                intersect(slot, BTreeSet::from([v]));
                true
            }
            ("timestep", Operator::Eq) => {
                let Some(v) = literal_int(lit) else {
                    return false;
                };
                intersect(&mut self.timestep, BTreeSet::from([v]));
                true
            }
            ("neuroid", _) => {
                let Some(v) = literal_int(lit) else {
                    return false;
                };
                // `> i64::MAX` and `< i64::MIN` hold for no neuroid: an empty range.
                let (lo, hi) = match op {
                    Operator::Eq => (Some(v), Some(v)),
                    Operator::Gt => match v.checked_add(1) {
                        Some(l) => (Some(l), None),
                        None => (Some(i64::MAX), Some(i64::MIN)),
                    },
                    Operator::GtEq => (Some(v), None),
                    Operator::Lt => match v.checked_sub(1) {
                        Some(h) => (None, Some(h)),
                        None => (Some(i64::MAX), Some(i64::MIN)),
                    },
                    Operator::LtEq => (None, Some(v)),
                    _ => return false,
                };
                if let Some(lo) = lo {
                    self.neuroid_lo = Some(self.neuroid_lo.map_or(lo, |o| o.max(lo)));
                }
                if let Some(hi) = hi {
                    self.neuroid_hi = Some(self.neuroid_hi.map_or(hi, |o| o.min(hi)));
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn keeps(&self, e: &Entry) -> bool {
        let has =
            |s: &Option<BTreeSet<String>>, v: &str| s.as_ref().is_none_or(|set| set.contains(v));
        has(&self.assembly, &e.assembly)
            && has(&self.model, &e.model)
            && has(&self.layer, &e.layer)
            && self
                .timestep
                .as_ref()
                .is_none_or(|s| s.contains(&e.timestep))
    }
}

/// `work` dealt round-robin into at most `target` partitions (at least one).
pub(crate) fn round_robin<W>(work: Vec<W>, target: usize) -> Vec<Vec<W>> {
    let n = target.max(1).min(work.len().max(1));
    let mut parts: Vec<Vec<W>> = (0..n).map(|_| Vec::new()).collect();
    for (k, w) in work.into_iter().enumerate() {
        parts[k % n].push(w);
    }
    parts
}

/// A unit of scan work: one chunk of one assembly, with the rows and columns to emit.
#[derive(Clone, Debug)]
struct Work {
    entry: usize,
    chunk: Vec<u64>,
    rows: Range<u64>,
    cols: Range<u64>,
    /// Rows to keep within `rows` when stimuli were filtered (absolute row indices).
    row_filter: Option<Arc<Vec<u64>>>,
}

#[async_trait]
impl TableProvider for ActivationsTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // What the scan applies in full (stores chosen by assembly/model/layer/timestep,
        // rows by stimulus, columns by neuroid range) DataFusion need not apply again; a
        // filter we only partly understand prunes chunks and is re-applied above the scan.
        Ok(filters
            .iter()
            .map(|f| {
                if Pruning::exact(f) {
                    TableProviderFilterPushDown::Exact
                } else if Pruning::usable(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut pruning = Pruning::default();
        for f in filters {
            pruning.add(f);
        }
        let mut work = Vec::new();
        for (i, shared) in self.entries.iter().enumerate() {
            let e = &shared.entry;
            if !pruning.keeps(e) {
                continue;
            }
            let meta = e.asm.meta();
            let (nrows, ncols) = (meta.shape[0], meta.shape[1]);
            let rows_wanted: Option<Arc<Vec<u64>>> = pruning.stimulus.as_ref().map(|set| {
                Arc::new(
                    e.stimulus_ids
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| set.contains(*s))
                        .map(|(r, _)| r as u64)
                        .collect(),
                )
            });
            let lo = pruning.neuroid_lo.unwrap_or(0).max(0) as u64;
            let hi = pruning
                .neuroid_hi
                .map_or(ncols, |h| (h.saturating_add(1).max(0) as u64).min(ncols));
            if lo >= hi {
                continue;
            }
            let (cr, cc) = (meta.chunk_shape[0], meta.chunk_shape[1]);
            let row_chunks: Vec<u64> = match &rows_wanted {
                Some(rows) => rows
                    .iter()
                    .map(|r| r / cr)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                None => (0..nrows.div_ceil(cr)).collect(),
            };
            for rc in row_chunks {
                for ccix in lo / cc..=(hi - 1) / cc {
                    let rows = rc * cr..((rc + 1) * cr).min(nrows);
                    let cols = (ccix * cc).max(lo)..((ccix + 1) * cc).min(hi);
                    work.push(Work {
                        entry: i,
                        chunk: vec![rc, ccix],
                        rows,
                        cols,
                        row_filter: rows_wanted.clone(),
                    });
                }
            }
        }
        let full = schema();
        let proj: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let projected = Arc::new(full.project(&proj)?);
        let parts = round_robin(work, state.config().target_partitions());
        let partitions: Vec<Arc<dyn PartitionStream>> = parts
            .into_iter()
            .map(|w| {
                Arc::new(Part {
                    schema: projected.clone(),
                    proj: proj.clone(),
                    work: Arc::new(w),
                    entries: self.entries.clone(),
                    stats: self.stats.clone(),
                    limit,
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            projected,
            partitions,
            None,
            [],
            false,
            limit,
        )?))
    }
}

#[derive(Debug)]
struct Part {
    schema: SchemaRef,
    proj: Vec<usize>,
    work: Arc<Vec<Work>>,
    entries: Arc<Vec<Arc<EntryShared>>>,
    stats: Arc<ScanStats>,
    limit: Option<usize>,
}

impl PartitionStream for Part {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let proj = self.proj.clone();
        let entries = self.entries.clone();
        let stats = self.stats.clone();
        let work = self.work.clone();
        let mut remaining = self.limit.unwrap_or(usize::MAX);
        let iter = (0..work.len()).map_while(move |k| {
            if remaining == 0 {
                return None;
            }
            let w = &work[k];
            let batch = chunk_batch(&entries[w.entry], w, &schema, &proj, &stats, remaining);
            if let Ok(b) = &batch {
                remaining = remaining.saturating_sub(b.num_rows());
            }
            Some(batch)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(iter),
        ))
    }
}

/// Decode one chunk and lay it out as tidy rows (row-major: stimulus, then neuroid).
fn chunk_batch(
    shared: &EntryShared,
    w: &Work,
    schema: &SchemaRef,
    proj: &[usize],
    stats: &ScanStats,
    max_rows: usize,
) -> DfResult<RecordBatch> {
    let e = &shared.entry;
    let meta = e.asm.meta();
    let chunk_cols = meta.chunk_shape[1] as usize;
    let (c0r, c0c) = (
        w.chunk[0] * meta.chunk_shape[0],
        w.chunk[1] * meta.chunk_shape[1],
    );
    let rows: Vec<u64> = match &w.row_filter {
        Some(keep) => keep
            .iter()
            .copied()
            .filter(|r| w.rows.contains(r))
            .collect(),
        None => w.rows.clone().collect(),
    };
    // Only the rows wanted are decoded (in a sharded chunk, only their bands).
    let relative: Option<Vec<u64>> = w
        .row_filter
        .as_ref()
        .map(|_| rows.iter().map(|r| r - c0r).collect());
    let mut block = BLOCK.with_borrow_mut(std::mem::take);
    let decoded = match e.read_chunk(&w.chunk, relative.as_deref(), &mut block) {
        Ok(d) => d,
        Err(err) => {
            BLOCK.with_borrow_mut(|b| *b = block);
            return Err(err);
        }
    };
    stats.chunks.fetch_add(1, Ordering::Relaxed);
    stats.blocks.fetch_add(decoded as u64, Ordering::Relaxed);
    let ncols = (w.cols.end - w.cols.start) as usize;
    let n = (rows.len() * ncols).min(max_rows);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(proj.len());
    for &c in proj {
        let col: ArrayRef = match c {
            ASSEMBLY => shared.const_view(shared.assembly_view, n),
            MODEL => shared.const_view(shared.model_view, n),
            LAYER => shared.const_view(shared.layer_view, n),
            TIMESTEP => Arc::new(Int64Array::from(vec![e.timestep; n])),
            STIMULUS => {
                let mut keys = Vec::with_capacity(n);
                for &r in &rows {
                    keys.extend(std::iter::repeat_n(r as i32, ncols));
                }
                keys.truncate(n);
                Arc::new(DictionaryArray::<Int32Type>::try_new(
                    Int32Array::from(keys),
                    shared.stimulus_values.clone(),
                )?)
            }
            NEUROID => {
                let mut v = Vec::with_capacity(n);
                for _ in &rows {
                    v.extend((w.cols.start as i64)..(w.cols.end as i64));
                }
                v.truncate(n);
                Arc::new(Int64Array::from(v))
            }
            VALUE => {
                let mut v = Vec::with_capacity(n);
                let lc = (w.cols.start - c0c) as usize..(w.cols.end - c0c) as usize;
                for &r in &rows {
                    let start = (r - c0r) as usize * chunk_cols;
                    v.extend_from_slice(&block[start + lc.start..start + lc.end]);
                }
                v.truncate(n);
                Arc::new(Float32Array::from(v))
            }
            _ => Arc::new(StringArray::from(Vec::<&str>::new())),
        };
        columns.push(col);
    }
    BLOCK.with_borrow_mut(|b| *b = block);
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

thread_local! {
    /// One decode buffer per thread, reused across chunks.
    static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}
