//! Aggregates over `activations` computed from per-stimulus partial aggregates.
//!
//! `SELECT s.category_name, a.timestep, avg(a.value) FROM activations a JOIN stimuli s USING
//! (stimulus_id) GROUP BY 1, 2` would make DataFusion join and aggregate one row per
//! activation — 64 M rows for one IT-sized store. When every aggregate is `avg`, `sum`,
//! `count`, `min` or `max` of `value` (or `count(*)`), and nothing groups, joins or filters
//! on `neuroid` or `value`, this optimizer rule replaces the activations scan with
//! [`ActivationSums`]: one row per store and stimulus with the sum, count, min and max of its
//! values, computed as the chunks are decoded. Above it the aggregate is recombined —
//! `sum = Σ value_sum`, `count = Σ value_count`, `avg = Σ value_sum / Σ value_count`,
//! `min = min(value_min)`, `max = max(value_max)` — so the join and the grouping see one row
//! per stimulus instead of one per activation. The answer is the same (the sums are f64 in a
//! fixed order, so they are also reproducible); anything the rule does not recognise is left
//! to DataFusion as it is.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    RecordBatchOptions,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result as DfResult};
use datafusion::datasource::{TableType, provider_as_source, source_as_provider};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
    SubqueryAlias, TableProviderFilterPushDown, cast, col, lit,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use crate::activations::{ActivationsTable, EntryShared, Pruning, round_robin, stimulus_type};
use crate::session::ScanStats;

/// The columns a filter, join key or grouping may use for the rule to apply.
const KEYS: [&str; 5] = ["assembly", "model", "layer", "timestep", "stimulus_id"];

fn sums_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("assembly", DataType::Utf8View, false),
        Field::new("model", DataType::Utf8View, false),
        Field::new("layer", DataType::Utf8View, false),
        Field::new("timestep", DataType::Int64, false),
        Field::new("stimulus_id", stimulus_type(), false),
        Field::new("value_sum", DataType::Float64, false),
        Field::new("value_count", DataType::Int64, false),
        Field::new("value_min", DataType::Float32, true),
        Field::new("value_max", DataType::Float32, true),
    ]))
}

/// The optimizer rule (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct ActivationsAggregatePushdown;

impl OptimizerRule for ActivationsAggregatePushdown {
    fn name(&self) -> &str {
        "ventral_activations_aggregate_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite_aggregate(agg)? {
            Some(p) => Ok(Transformed::yes(p)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The activations provider behind a scan, if it is one.
fn activations_of(plan: &LogicalPlan) -> Option<Arc<dyn TableProvider>> {
    let LogicalPlan::TableScan(scan) = plan else {
        return None;
    };
    let provider = source_as_provider(&scan.source).ok()?;
    provider
        .downcast_ref::<ActivationsTable>()
        .is_some()
        .then_some(provider)
}

fn count_activations(plan: &LogicalPlan) -> usize {
    if activations_of(plan).is_some() {
        return 1;
    }
    plan.inputs().iter().map(|p| count_activations(p)).sum()
}

/// Every column `e` refers to exists in `plan`'s schema.
fn resolves(e: &Expr, plan: &LogicalPlan) -> bool {
    e.column_refs().iter().all(|c| plan.schema().has_column(c))
}

/// `plan` with its one activations scan replaced by an [`ActivationSums`] scan, when every
/// node between is one the rewrite understands; `None` otherwise.
fn rewrite_input(plan: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    if count_activations(plan) == 0 {
        return Ok(Some(plan.clone()));
    }
    Ok(match plan {
        LogicalPlan::TableScan(scan) => {
            let Some(provider) = activations_of(plan) else {
                return Ok(None);
            };
            let Some(table) = provider.downcast_ref::<ActivationsTable>() else {
                return Ok(None);
            };
            let keys_only = scan
                .filters
                .iter()
                .all(|f| f.column_refs().iter().all(|c| KEYS.contains(&c.name())));
            if scan.fetch.is_some() || !keys_only {
                return Ok(None);
            }
            let sums = Arc::new(ActivationSums {
                entries: table.entries.clone(),
                stats: table.stats.clone(),
            });
            Some(
                LogicalPlanBuilder::scan_with_filters(
                    scan.table_name.clone(),
                    provider_as_source(sums),
                    None,
                    scan.filters.clone(),
                )?
                .build()?,
            )
        }
        LogicalPlan::Filter(f) => {
            let Some(child) = rewrite_input(&f.input)? else {
                return Ok(None);
            };
            if !resolves(&f.predicate, &child) {
                return Ok(None);
            }
            Some(LogicalPlan::Filter(Filter::try_new(
                f.predicate.clone(),
                Arc::new(child),
            )?))
        }
        LogicalPlan::SubqueryAlias(a) => {
            let Some(child) = rewrite_input(&a.input)? else {
                return Ok(None);
            };
            Some(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(child),
                a.alias.clone(),
            )?))
        }
        LogicalPlan::Projection(p) => {
            let Some(child) = rewrite_input(&p.input)? else {
                return Ok(None);
            };
            let mut exprs = Vec::new();
            for e in &p.expr {
                let Expr::Column(c) = e else {
                    return Ok(None);
                };
                if child.schema().has_column(c) {
                    exprs.push(e.clone());
                    continue;
                }
                // `value` of the activations: its four partial aggregates instead.
                let parts: Vec<Column> = ["value_sum", "value_count", "value_min", "value_max"]
                    .iter()
                    .map(|n| Column::new(c.relation.clone(), *n))
                    .collect();
                if c.name() != "value" || !parts.iter().all(|x| child.schema().has_column(x)) {
                    return Ok(None);
                }
                exprs.extend(parts.into_iter().map(Expr::Column));
            }
            Some(LogicalPlan::Projection(Projection::try_new(
                exprs,
                Arc::new(child),
            )?))
        }
        LogicalPlan::Join(j) => {
            if j.join_type != JoinType::Inner || j.null_aware {
                return Ok(None);
            }
            let (Some(left), Some(right)) = (rewrite_input(&j.left)?, rewrite_input(&j.right)?)
            else {
                return Ok(None);
            };
            let keys_resolve =
                j.on.iter()
                    .all(|(l, r)| resolves(l, &left) && resolves(r, &right));
            let join = Join::try_new(
                Arc::new(left),
                Arc::new(right),
                j.on.clone(),
                j.filter.clone(),
                j.join_type,
                j.join_constraint,
                j.null_equality,
                j.null_aware,
            )?;
            let filter_resolves = j
                .filter
                .as_ref()
                .is_none_or(|f| f.column_refs().iter().all(|c| join.schema.has_column(c)));
            if !keys_resolve || !filter_resolves {
                return Ok(None);
            }
            Some(LogicalPlan::Join(join))
        }
        _ => None,
    })
}

/// The aggregates the rule recombines.
enum Kind {
    Sum,
    Count,
    Avg,
    Min,
    Max,
}

fn rewrite_aggregate(agg: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    if count_activations(&agg.input) != 1
        || agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    // Each aggregate: its kind and the `value` column (None for count(*)).
    let mut wanted = Vec::new();
    for e in &agg.aggr_expr {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
            return Ok(None);
        };
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.args.len() != 1
        {
            return Ok(None);
        }
        let kind = match func.name() {
            "sum" => Kind::Sum,
            "count" => Kind::Count,
            "avg" => Kind::Avg,
            "min" => Kind::Min,
            "max" => Kind::Max,
            _ => return Ok(None),
        };
        // The planner widens `value` for avg and sum (CAST(value AS Float64)): our partial
        // sums are already f64 sums of the f32 values, so a widening to a float is the same.
        let mut arg = &params.args[0];
        while let Expr::Cast(datafusion::logical_expr::Cast { expr, field })
        | Expr::TryCast(datafusion::logical_expr::TryCast { expr, field }) = arg
        {
            if !matches!(field.data_type(), DataType::Float32 | DataType::Float64) {
                return Ok(None);
            }
            arg = expr.as_ref();
        }
        let arg = match (arg, &kind) {
            (Expr::Column(c), _) if c.name() == "value" => Some(c.clone()),
            (Expr::Literal(..), Kind::Count) => None,
            _ => return Ok(None),
        };
        wanted.push((kind, arg));
    }
    let Some(input) = rewrite_input(&agg.input)? else {
        return Ok(None);
    };
    // The relation the partial aggregates are seen under (the activations side's alias).
    let counts: Vec<Column> = input
        .schema()
        .columns()
        .into_iter()
        .filter(|c| c.name() == "value_count")
        .collect();
    let [count_col] = counts.as_slice() else {
        return Ok(None);
    };
    let part = |c: &Option<Column>, name: &str| -> Option<Expr> {
        let relation = match c {
            Some(c) => c.relation.clone(),
            None => count_col.relation.clone(),
        };
        let x = Column::new(relation, name);
        input.schema().has_column(&x).then_some(Expr::Column(x))
    };
    if !agg.group_expr.iter().all(|g| resolves(g, &input)) {
        return Ok(None);
    }
    let mut partials = Vec::new();
    let mut finals = Vec::new();
    for (k, (kind, arg)) in wanted.iter().enumerate() {
        let name = |s: &str| format!("__ventral_partial_{k}_{s}");
        let (Some(s), Some(n), Some(lo), Some(hi)) = (
            part(arg, "value_sum"),
            part(arg, "value_count"),
            part(arg, "value_min"),
            part(arg, "value_max"),
        ) else {
            return Ok(None);
        };
        let fin = match kind {
            Kind::Sum => {
                partials.push(sum(s).alias(name("sum")));
                col(name("sum"))
            }
            Kind::Count => {
                // A count is never NULL (sum over no rows would be).
                partials.push(sum(n).alias(name("count")));
                coalesce(vec![col(name("count")), lit(0i64)])
            }
            Kind::Avg => {
                partials.push(sum(s).alias(name("sum")));
                partials.push(sum(n).alias(name("count")));
                col(name("sum")) / cast(col(name("count")), DataType::Float64)
            }
            Kind::Min => {
                partials.push(min(lo).alias(name("min")));
                col(name("min"))
            }
            Kind::Max => {
                partials.push(max(hi).alias(name("max")));
                col(name("max"))
            }
        };
        finals.push(fin);
    }
    let grouped = LogicalPlanBuilder::from(input)
        .aggregate(agg.group_expr.clone(), partials)?
        .build()?;
    // Reproduce the original aggregate's output schema exactly: groups, then aggregates
    // under their original (qualified) names.
    let n_groups = agg.group_expr.len();
    let mut out = Vec::new();
    for i in 0..n_groups {
        let (q, f) = grouped.schema().qualified_field(i);
        out.push(Expr::Column(Column::new(q.cloned(), f.name())));
    }
    for (k, fin) in finals.into_iter().enumerate() {
        let (q, f) = agg.schema.qualified_field(n_groups + k);
        let target = f.data_type().clone();
        out.push(cast(fin, target).alias_qualified(q.cloned(), f.name()));
    }
    Ok(Some(
        LogicalPlanBuilder::from(grouped).project(out)?.build()?,
    ))
}

/// One row per activations store and stimulus: the sum, count, min and max of its values.
#[derive(Debug)]
pub(crate) struct ActivationSums {
    entries: Arc<Vec<Arc<EntryShared>>>,
    stats: Arc<ScanStats>,
}

/// One row chunk of one store (all its column chunks).
#[derive(Clone, Debug)]
struct RowChunk {
    entry: usize,
    row_chunk: u64,
    rows: Vec<u64>,
}

#[async_trait]
impl TableProvider for ActivationSums {
    fn schema(&self) -> SchemaRef {
        sums_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                let keys = f.column_refs().iter().all(|c| KEYS.contains(&c.name()));
                if keys && Pruning::usable(f) {
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
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut pruning = Pruning::default();
        for f in filters {
            if f.column_refs().iter().all(|c| KEYS.contains(&c.name())) {
                pruning.add(f);
            }
        }
        let mut work = Vec::new();
        for (i, shared) in self.entries.iter().enumerate() {
            let e = &shared.entry;
            if !pruning.keeps(e) {
                continue;
            }
            let meta = e.asm.meta();
            let (nrows, cr) = (meta.shape[0], meta.chunk_shape[0]);
            let wanted: Vec<u64> = match &pruning.stimulus {
                Some(set) => e
                    .stimulus_ids
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| set.contains(*s))
                    .map(|(r, _)| r as u64)
                    .collect(),
                None => (0..nrows).collect(),
            };
            let chunks: BTreeSet<u64> = wanted.iter().map(|r| r / cr).collect();
            for rc in chunks {
                work.push(RowChunk {
                    entry: i,
                    row_chunk: rc,
                    rows: wanted.iter().copied().filter(|r| r / cr == rc).collect(),
                });
            }
        }
        let full = sums_schema();
        let proj: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let projected = Arc::new(full.project(&proj)?);
        let parts = round_robin(work, state.config().target_partitions());
        let partitions: Vec<Arc<dyn PartitionStream>> = parts
            .into_iter()
            .map(|w| {
                Arc::new(SumsPart {
                    schema: projected.clone(),
                    proj: proj.clone(),
                    work: Arc::new(w),
                    entries: self.entries.clone(),
                    stats: self.stats.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            projected,
            partitions,
            None,
            [],
            false,
            None,
        )?))
    }
}

#[derive(Debug)]
struct SumsPart {
    schema: SchemaRef,
    proj: Vec<usize>,
    work: Arc<Vec<RowChunk>>,
    entries: Arc<Vec<Arc<EntryShared>>>,
    stats: Arc<ScanStats>,
}

impl PartitionStream for SumsPart {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (schema, proj) = (self.schema.clone(), self.proj.clone());
        let (entries, stats, work) = (self.entries.clone(), self.stats.clone(), self.work.clone());
        let iter = (0..work.len()).map(move |k| {
            let w = &work[k];
            sums_batch(&entries[w.entry], w, &schema, &proj, &stats)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(iter),
        ))
    }
}

/// Sum, count, min and max of one row's values, accumulated chunk by chunk.
#[derive(Clone, Copy, Debug)]
struct Reduced {
    sum: f64,
    count: i64,
    /// The smallest and largest non-NaN values, and whether a NaN was seen.
    lo: f32,
    hi: f32,
    nan: bool,
    /// Whether a value that is not NaN was seen (`lo` stays +inf for a row of +inf too).
    number: bool,
}

impl Default for Reduced {
    fn default() -> Self {
        Reduced {
            sum: 0.0,
            count: 0,
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
            nan: false,
            number: false,
        }
    }
}

impl Reduced {
    /// Add `v` in a fixed order: eight f64 lanes over the slice, then the lanes in order, so
    /// the sum does not depend on threads or on how the rows were batched. One pass: the
    /// smallest and largest values and NaNs are tracked in lanes beside the sums.
    fn add(&mut self, v: &[f32]) {
        let mut lanes = [0f64; 8];
        let mut lo = [f32::INFINITY; 8];
        let mut hi = [f32::NEG_INFINITY; 8];
        let mut nan = [false; 8];
        let exact = v.chunks_exact(8);
        let rest = exact.remainder();
        for c in exact {
            for i in 0..8 {
                let x = c[i];
                lanes[i] += x as f64;
                // NaN compares false, so it changes neither bound.
                lo[i] = if x < lo[i] { x } else { lo[i] };
                hi[i] = if x > hi[i] { x } else { hi[i] };
                nan[i] |= x.is_nan();
            }
        }
        let mut total = 0.0;
        for l in lanes {
            total += l;
        }
        for &x in rest {
            total += x as f64;
        }
        self.sum += total;
        self.count += v.len() as i64;
        for &x in lo.iter().chain(rest) {
            if x < self.lo {
                self.lo = x;
            }
        }
        for &x in hi.iter().chain(rest) {
            if x > self.hi {
                self.hi = x;
            }
        }
        let nans = nan.iter().any(|&b| b) || rest.iter().any(|x| x.is_nan());
        self.nan |= nans;
        // A value that is not NaN: certain when there was no NaN, else looked for (rare).
        self.number |= !v.is_empty() && (!nans || v.iter().any(|x| !x.is_nan()));
    }

    /// Arrow's minimum of floats: NaN only when every value is NaN.
    fn min(&self) -> Option<f32> {
        match self.count {
            0 => None,
            _ if !self.number => Some(f32::NAN),
            _ => Some(self.lo),
        }
    }

    /// Arrow's maximum of floats: NaN ranks above everything.
    fn max(&self) -> Option<f32> {
        match self.count {
            0 => None,
            _ if self.nan => Some(f32::NAN),
            _ => Some(self.hi),
        }
    }
}

/// Decode every column chunk of one row chunk and reduce each wanted row, in column order.
fn sums_batch(
    shared: &EntryShared,
    w: &RowChunk,
    schema: &SchemaRef,
    proj: &[usize],
    stats: &ScanStats,
) -> DfResult<RecordBatch> {
    let e = &shared.entry;
    let meta = e.asm.meta();
    let (cr, cc) = (meta.chunk_shape[0], meta.chunk_shape[1]);
    let n = w.rows.len();
    let mut acc = vec![Reduced::default(); n];
    // One decode buffer per thread, reused across chunks and batches.
    thread_local! {
        static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // Rows relative to the chunk, when not all of them are wanted (a sharded chunk then
    // decodes only their bands).
    let in_chunk = (meta.shape[0] - w.row_chunk * cr).min(cr) as usize;
    let relative: Option<Vec<u64>> =
        (n < in_chunk).then(|| w.rows.iter().map(|r| r - w.row_chunk * cr).collect());
    BLOCK.with_borrow_mut(|block| -> DfResult<()> {
        for ccix in 0..meta.shape[1].div_ceil(cc) {
            let decoded = e.read_chunk(&[w.row_chunk, ccix], relative.as_deref(), block)?;
            stats.chunks.fetch_add(1, Ordering::Relaxed);
            stats.blocks.fetch_add(decoded as u64, Ordering::Relaxed);
            let width = (meta.shape[1] - ccix * cc).min(cc) as usize;
            for (k, &r) in w.rows.iter().enumerate() {
                let start = (r - w.row_chunk * cr) as usize * cc as usize;
                acc[k].add(&block[start..start + width]);
            }
        }
        Ok(())
    })?;
    let s: Vec<f64> = acc.iter().map(|a| a.sum).collect();
    let c: Vec<i64> = acc.iter().map(|a| a.count).collect();
    let lo: Vec<Option<f32>> = acc.iter().map(Reduced::min).collect();
    let hi: Vec<Option<f32>> = acc.iter().map(Reduced::max).collect();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(proj.len());
    for &p in proj {
        columns.push(match p {
            0 => shared.const_view(shared.assembly_view, n),
            1 => shared.const_view(shared.model_view, n),
            2 => shared.const_view(shared.layer_view, n),
            3 => Arc::new(Int64Array::from(vec![e.timestep; n])),
            4 => Arc::new(DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(w.rows.iter().map(|&r| r as i32).collect::<Vec<_>>()),
                shared.stimulus_values.clone(),
            )?),
            5 => Arc::new(Float64Array::from(s.clone())),
            6 => Arc::new(Int64Array::from(c.clone())),
            7 => Arc::new(Float32Array::from(lo.clone())),
            _ => Arc::new(Float32Array::from(hi.clone())),
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::Reduced;

    #[test]
    fn min_and_max_follow_arrow_with_nan_and_infinities() {
        let r = |v: &[f32]| {
            let mut a = Reduced::default();
            a.add(v);
            (a.min(), a.max())
        };
        let (lo, hi) = r(&[f32::INFINITY, f32::NAN]);
        assert_eq!(lo, Some(f32::INFINITY));
        assert!(hi.is_some_and(f32::is_nan));
        let (lo, _) = r(&[f32::NAN; 11]);
        assert!(lo.is_some_and(f32::is_nan));
        let (lo, hi) = r(&[3.0, -1.0, f32::NAN, 2.0, 7.5, 0.0, 1.0, 1.0, 4.0]);
        assert_eq!(lo, Some(-1.0));
        assert!(hi.is_some_and(f32::is_nan));
        assert_eq!(r(&[2.0, 5.0]), (Some(2.0), Some(5.0)));
    }
}
