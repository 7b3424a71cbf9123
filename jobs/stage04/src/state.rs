//! The state store: how a stream keeps its open windows between batches.
//!
//! Both stores keep the open windows in the checkpoint
//! (`batches/<id>/state/`, one folder per batch that changed them) and
//! answer the same three questions — what a state folder holds, what the
//! next state and the closed windows are, and whether the batch's events may
//! shrink on the way — so the batch ([`crate::batch`]) is the same for both:
//! - [`SummedWindows`], the classic job: per (window, brand) sums, merged
//!   with each batch's partial aggregates;
//! - [`DedupEvents`] (`--dedup-within-watermark`): the open windows' silver
//!   events themselves, so that a duplicate arriving in a later batch is
//!   recognised (silver's key and choice of row) before its window closes.

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{cast, col, lit};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use funnelpulse_core::event_time::is_future;
use funnelpulse_core::stream::{
    closed_rows, closed_rows_from_events, dedup_open_rows, merge, partials_file_schema, still_open, still_open_rows,
};
use funnelpulse_core::tables::STREAM_PARTIALS;
use funnelpulse_engine::{Result, first_row_i64};
use funnelpulse_lake::Lake;

use crate::source::input_schema;

/// Totals of a folder of window rows (a state, or closed windows).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WindowTotals {
    /// Window rows (one per window and brand).
    pub rows: i64,
    /// Views in those windows.
    pub views: i64,
    /// Carts in those windows.
    pub carts: i64,
    /// Purchases in those windows.
    pub purchases: i64,
    /// The latest window's start (µs since the epoch), none when empty.
    pub max_window_start: Option<i64>,
}

/// What a batch gives the state store.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The batch's input files (URLs); empty on a flush.
    pub input_urls: Vec<String>,
    /// The previous open windows (URL of their folder), none when no window is open.
    pub old_state_url: Option<String>,
    /// The batch's partial aggregates, when they hold on-time silver rows.
    pub partials_url: Option<String>,
    /// The watermark before the batch: rows of windows it closed are late.
    pub watermark_before: Option<i64>,
    /// The watermark after the batch: the windows it closes are emitted.
    pub watermark_after: Option<i64>,
    /// The batch's future cutoff: later events are in no window.
    pub future_cutoff: Option<i64>,
    /// A flush: every open window closes, no state is left.
    pub flush: bool,
}

/// The plans a batch writes: the next state and the windows that close.
pub struct Advance {
    /// The next state (none on a flush).
    pub open: Option<DataFrame>,
    /// The closed windows, as rows of `gold_stream_funnel_hourly_brand`.
    pub closed: DataFrame,
}

/// How a stream keeps its open windows (see the module).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The checkpoint's `aggregation`: a checkpoint of another store is refused.
    fn aggregation(&self) -> &'static str;

    /// Whether closing windows may count fewer events than went in
    /// (de-duplication removes events; sums never do).
    fn removes_events(&self) -> bool;

    /// Totals of the state folder `rel` of `folder`, read in this process.
    async fn totals(&self, local: &SessionContext, folder: &Lake, rel: &str) -> Result<WindowTotals>;

    /// The next state and the closed windows, as plans for the cluster;
    /// none when the batch leaves the state as it is.
    async fn advance(&self, ctx: &SessionContext, step: &Step) -> Result<Option<Advance>>;
}

/// The store `--dedup-within-watermark` asks for.
pub fn store(dedup: bool) -> Box<dyn StateStore> {
    if dedup { Box::new(DedupEvents) } else { Box::new(SummedWindows) }
}

// Semantics: docs/semantics.md#streaming-funnel-stage-04
/// The classic job's state: per (window, brand) sums of views, carts,
/// purchases and exact revenue.
pub struct SummedWindows;

#[async_trait]
impl StateStore for SummedWindows {
    fn aggregation(&self) -> &'static str {
        "hourly_brand: silver filters, no de-duplication, 1 hour windows"
    }

    fn removes_events(&self) -> bool {
        false
    }

    async fn totals(&self, local: &SessionContext, folder: &Lake, rel: &str) -> Result<WindowTotals> {
        match read_folder(local, folder, rel).await? {
            Some(windows) => window_totals(windows).await,
            None => Ok(WindowTotals::default()),
        }
    }

    async fn advance(&self, ctx: &SessionContext, step: &Step) -> Result<Option<Advance>> {
        // Previous open windows and the batch's partials, read as one table.
        let urls: Vec<String> = step.old_state_url.iter().chain(&step.partials_url).cloned().collect();
        if urls.is_empty() || (step.input_urls.is_empty() && !step.flush) {
            return Ok(None);
        }
        let merged = merge(read_windows(ctx, urls).await?, step.watermark_before)?;
        let open = (!step.flush).then(|| still_open(merged.clone(), step.watermark_after)).transpose()?;
        Ok(Some(Advance { open, closed: closed_rows(merged, closing(step))? }))
    }
}

// Semantics: docs/semantics.md#de-duplication-within-the-watermark
/// The state with de-duplication: the open windows' silver events, one per
/// de-duplication key.
pub struct DedupEvents;

#[async_trait]
impl StateStore for DedupEvents {
    fn aggregation(&self) -> &'static str {
        "hourly_brand: silver filters, de-duplicated within open windows, 1 hour windows"
    }

    fn removes_events(&self) -> bool {
        true
    }

    async fn totals(&self, local: &SessionContext, folder: &Lake, rel: &str) -> Result<WindowTotals> {
        let Some(events) = read_folder(local, folder, rel).await? else {
            return Ok(WindowTotals::default());
        };
        let window = funnelpulse_core::funnel::hour_window_start().alias("window_start");
        let brand = funnelpulse_core::silver::brand_norm(col("brand")).alias("brand");
        window_totals(events.aggregate(vec![window, brand], funnelpulse_core::funnel::funnel_counts())?).await
    }

    async fn advance(&self, ctx: &SessionContext, step: &Step) -> Result<Option<Advance>> {
        // The batch's files and the previous state's events, read as one table.
        let urls: Vec<String> = step.input_urls.iter().chain(&step.old_state_url).cloned().collect();
        // New events, or a flush of the events kept.
        let writes = !step.input_urls.is_empty() || (step.flush && !urls.is_empty());
        if !writes {
            return Ok(None);
        }
        // The state's events passed an earlier cutoff, never a later one than this batch's.
        let events = read_events(ctx, urls).await?.filter(!is_future(step.future_cutoff))?;
        let rows = dedup_open_rows(events, step.watermark_before)?;
        let open = (!step.flush).then(|| still_open_rows(rows.clone(), step.watermark_after)).transpose()?;
        Ok(Some(Advance { open, closed: closed_rows_from_events(rows, closing(step))? }))
    }
}

/// The watermark that closes windows: none on a flush, which closes them all.
fn closing(step: &Step) -> Option<i64> {
    if step.flush { None } else { step.watermark_after }
}

/// A batch's events (its files, or a de-duplicating state), as the raw columns.
pub async fn read_events(ctx: &SessionContext, urls: Vec<String>) -> Result<DataFrame> {
    let schema = input_schema();
    let df = ctx.read_parquet(urls, ParquetReadOptions::default().schema(&schema)).await?;
    Ok(df.select_columns(&funnelpulse_core::schema::RAW_COLUMNS)?)
}

/// Previous open windows and a batch's partials, read as one table (a
/// UNION of the two hangs Ballista 55: a task's metrics do not match its stage).
async fn read_windows(ctx: &SessionContext, urls: Vec<String>) -> Result<DataFrame> {
    let schema = partials_file_schema();
    let options = ParquetReadOptions::default()
        .schema(&schema)
        .table_partition_cols(vec![(STREAM_PARTIALS.partition_col.to_string(), DataType::Utf8)]);
    Ok(ctx.read_parquet(urls, options).await?)
}

/// The Parquet files under `rel` of `folder` as one table; none when there are none.
pub async fn read_folder(local: &SessionContext, folder: &Lake, rel: &str) -> Result<Option<DataFrame>> {
    if !has_parquet(folder, rel).await? {
        return Ok(None);
    }
    Ok(Some(local.read_parquet(folder.url_of(rel), ParquetReadOptions::default()).await?))
}

/// Whether `rel` of `folder` holds a Parquet file.
pub async fn has_parquet(folder: &Lake, rel: &str) -> Result<bool> {
    Ok(folder.list_rel(rel).await?.iter().any(|f| f.ends_with(".parquet")))
}

/// Totals of window rows (`window_start`, `views`, `carts`, `purchases`).
pub async fn window_totals(windows: DataFrame) -> Result<WindowTotals> {
    let v = first_row_i64(windows.aggregate(
        vec![],
        vec![
            count(lit(1i64)).alias("rows"),
            sum(col("views")).alias("views"),
            sum(col("carts")).alias("carts"),
            sum(col("purchases")).alias("purchases"),
            max(cast(col("window_start"), DataType::Int64)).alias("max_window_start"),
        ],
    )?)
    .await?;
    let n = |i: usize| v[i].unwrap_or(0);
    Ok(WindowTotals { rows: n(0), views: n(1), carts: n(2), purchases: n(3), max_window_start: v[4] })
}
