//! What the report shows, gathered from the lake with Ballista queries.
//!
//! Everything the original summary printed (docs/semantics.md#report-stage-06) plus the series
//! the charts need. Serialised as `summary.json` beside the HTML page.

use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, min, sum};
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::prelude::DataFrame;
use funnelpulse_core::TableSpec;
use funnelpulse_core::funnel::PRICE_BANDS;
use funnelpulse_core::silver::silver_filter;
use funnelpulse_core::tables::*;
use funnelpulse_engine::Engine;
use funnelpulse_engine::tables::read_files;
use funnelpulse_lake::{AsOf, Lake};
use serde::Serialize;

use crate::query::{Cell, Kind, rows};

// Semantics: docs/semantics.md#report-stage-06
/// Every table a full pipeline run makes, in pipeline order.
pub const REPORTED_TABLES: [TableSpec; 13] = [
    BRONZE_EVENTS,
    BRONZE_REJECTS,
    SILVER_EVENTS,
    GOLD_FUNNEL_HOURLY_BRAND,
    GOLD_FUNNEL_DAILY_BRAND,
    GOLD_FUNNEL_DAILY_CATEGORY,
    GOLD_FUNNEL_HOURLY_PRICE_BAND,
    GOLD_STREAM_FUNNEL_HOURLY_BRAND,
    LATE_EVENTS,
    FUTURE_EVENTS,
    STREAM_DEAD_LETTERS,
    GOLD_ANOMALIES_HOURLY_BRAND,
    GOLD_ANOMALIES_HOURLY_BRAND_V2,
];

/// Size of one lake table.
#[derive(Debug, Clone, Serialize)]
pub struct TableCount {
    /// Name of the table, e.g. `bronze_events`.
    pub table: String,
    /// None when the table has not been built.
    pub rows: Option<u64>,
    /// Columns, the partition column included; None when the table has not been built.
    pub columns: Option<usize>,
}

/// Silver events per funnel step and the rates between steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Funnel {
    /// Silver events of type `view`.
    pub views: u64,
    /// Silver events of type `cart`.
    pub carts: u64,
    /// Silver events of type `purchase`.
    pub purchases: u64,
    /// carts / views, in percent; None without views.
    pub view_to_cart_pct: Option<f64>,
    /// purchases / carts, in percent; None without carts.
    pub cart_to_purchase_pct: Option<f64>,
    /// purchases / views, in percent; None without views.
    pub view_to_purchase_pct: Option<f64>,
}

/// Views, purchases and revenue of one group (brand, category root, price band, day).
#[derive(Debug, Clone, Serialize)]
pub struct GroupTotals {
    /// The group's name; None is the null group (no brand, no category).
    pub name: Option<String>,
    /// Views summed over the group's rows.
    pub views: u64,
    /// Purchases summed over the group's rows.
    pub purchases: u64,
    /// Revenue summed exactly (as decimal, then double), in the unit of the data's prices.
    pub revenue: f64,
    /// purchases / views, None without views.
    pub conversion_rate: Option<f64>,
}

/// One day of the daily series: the funnel of all brands and the anomalies flagged that day.
#[derive(Debug, Clone, Serialize)]
pub struct DayPoint {
    /// UTC date, `YYYY-MM-DD`.
    pub date: String,
    /// Views that day, all brands (the null brand included).
    pub views: u64,
    /// Purchases that day, all brands.
    pub purchases: u64,
    /// purchases / views (a fraction, not percent); None without views.
    pub conversion_rate: Option<f64>,
    /// Drops flagged that day in gold_anomalies_hourly_brand.
    pub classic_drops: u64,
    /// Spikes flagged that day in gold_anomalies_hourly_brand.
    pub classic_spikes: u64,
    /// Drops flagged that day in gold_anomalies_hourly_brand_v2.
    pub v2_drops: u64,
    /// Spikes flagged that day in gold_anomalies_hourly_brand_v2.
    pub v2_spikes: u64,
}

/// One flagged brand-hour of an anomaly table.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRow {
    /// Start of the hour (UTC), as text.
    pub window_start: String,
    /// Normalised (lower-case) brand.
    pub brand: String,
    /// Views in that brand-hour.
    pub views: u64,
    /// Purchases in that brand-hour.
    pub purchases: u64,
    /// purchases / views of that brand-hour; None when the table holds null.
    pub conversion_rate: Option<f64>,
    /// Classic: the brand's mean conversion; v2: the expected purchases.
    pub baseline: f64,
    /// Classic: z_brand; v2: the score.
    pub score: f64,
}

/// Data-quality figures from bronze_events, bronze_rejects and silver_events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quality {
    /// Rows of bronze_events.
    pub bronze_rows: u64,
    /// Rows of bronze_rejects (raw lines with a problem).
    pub rejected_rows: u64,
    /// Rows of bronze_rejects per reason text, most frequent first.
    pub rejects_by_reason: Vec<(String, u64)>,
    /// Bronze rows that pass the silver filters (price > 0, time and type present).
    pub silver_eligible_rows: u64,
    /// Bronze rows that fail the silver filters (bronze rows − silver-eligible rows).
    pub filtered_out_rows: u64,
    /// Silver-eligible rows removed as duplicates (silver-eligible rows − silver rows).
    pub duplicates_removed: u64,
    /// Rows of silver_events.
    pub silver_rows: u64,
    /// Silver rows without a brand (`dq_missing_brand`).
    pub missing_brand: u64,
    /// Silver rows without a category code (`dq_missing_category`).
    pub missing_category: u64,
    /// Silver rows without a user session (`dq_missing_session`).
    pub missing_session: u64,
}

/// Every figure of the report; serialised as `summary.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// When the figures were gathered, `YYYY-MM-DD HH:MM:SS UTC`.
    pub generated_at: String,
    /// URL of the lake reported on.
    pub lake: String,
    /// Rows and columns of each of `REPORTED_TABLES`, in that order.
    pub tables: Vec<TableCount>,
    /// Earliest `window_start` of gold_funnel_hourly_brand, as text; None without table or rows.
    pub first_window: Option<String>,
    /// Latest `window_start` of gold_funnel_hourly_brand, as text; None without table or rows.
    pub last_window: Option<String>,
    /// Distinct hours (`window_start`) in gold_funnel_hourly_brand.
    pub hourly_windows: u64,
    /// Silver events per `event_type`, most frequent first.
    pub events_by_type: Vec<(String, u64)>,
    /// The funnel of all silver events.
    pub funnel: Funnel,
    /// The 10 named brands with the most revenue (gold_funnel_daily_brand), highest first.
    pub top_brands: Vec<GroupTotals>,
    /// Every category root, null included, by revenue (gold_funnel_daily_category), highest first.
    pub categories: Vec<GroupTotals>,
    /// Each price band, in band order (gold_funnel_hourly_price_band).
    pub price_bands: Vec<GroupTotals>,
    /// One point per date of gold_funnel_daily_brand, oldest first.
    pub daily: Vec<DayPoint>,
    /// Classic anomalies per type (`drop`, `spike`).
    pub anomalies_by_type: Vec<(String, u64)>,
    /// v2 anomalies per type (`drop`, `spike`).
    pub v2_anomalies_by_type: Vec<(String, u64)>,
    /// The 10 brands with the most classic anomalies, with their count, most first.
    pub top_anomaly_brands: Vec<(String, u64)>,
    /// The 10 classic drops with the lowest z_brand.
    pub worst_drops: Vec<AnomalyRow>,
    /// The 10 v2 anomalies with the smallest p-value.
    pub strongest_v2: Vec<AnomalyRow>,
    /// Rejected, filtered-out and duplicate rows, and missing fields.
    pub quality: Quality,
}

fn pct(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| 100.0 * n as f64 / d as f64)
}

fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn u(cell: &Cell) -> u64 {
    cell.int().max(0) as u64
}

/// Reads the lake's tables; a table that was never built is None.
struct Tables<'a> {
    engine: &'a Engine,
    lake: &'a Lake,
    as_of: &'a AsOf,
}

impl Tables<'_> {
    async fn read(&self, table: &TableSpec) -> anyhow::Result<Option<DataFrame>> {
        match self.lake.snapshot(table, self.as_of).await? {
            Some(files) => Ok(Some(read_files(&self.engine.ctx, &files)?)),
            None => Ok(None),
        }
    }
}

/// Gathers the summary; absent tables leave their parts empty.
pub async fn gather(engine: &Engine, lake: &Lake, as_of: &AsOf) -> anyhow::Result<Summary> {
    let tables = Tables { engine, lake, as_of };
    let mut s = Summary {
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        lake: lake.url().to_string(),
        ..Default::default()
    };
    for table in REPORTED_TABLES {
        let count = match tables.read(&table).await? {
            Some(df) => {
                let columns = df.schema().fields().len();
                let n = df.count().await? as u64;
                TableCount { table: table.name.into(), rows: Some(n), columns: Some(columns) }
            }
            None => TableCount { table: table.name.into(), rows: None, columns: None },
        };
        s.tables.push(count);
    }
    anyhow::ensure!(
        s.tables.iter().any(|t| t.rows.is_some()),
        "no tables in {} to report on (run stage 01 first)",
        lake.url()
    );
    if let Some(gold) = tables.read(&GOLD_FUNNEL_HOURLY_BRAND).await? {
        window_range(&mut s, gold).await?;
    }
    if let Some(silver) = tables.read(&SILVER_EVENTS).await? {
        events_and_quality(&mut s, silver).await?;
    }
    if let Some(bronze) = tables.read(&BRONZE_EVENTS).await? {
        bronze_quality(&mut s, bronze).await?;
    }
    if let Some(rejects) = tables.read(&BRONZE_REJECTS).await? {
        let by_reason = rows(
            rejects
                .aggregate(vec![col("reason")], vec![count(lit(1)).alias("n")])?
                .sort(vec![col("n").sort(false, false), col("reason").sort(true, false)])?,
            vec![(col("reason"), Kind::Text), (col("n"), Kind::Int)],
        )
        .await?;
        s.quality.rejects_by_reason = by_reason.iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect();
        s.quality.rejected_rows = s.quality.rejects_by_reason.iter().map(|r| r.1).sum();
    }
    if let Some(daily_brand) = tables.read(&GOLD_FUNNEL_DAILY_BRAND).await? {
        let named = daily_brand.clone().filter(col("brand").is_not_null())?;
        s.top_brands = group_totals(named, col("brand"), Some(10)).await?;
        s.daily = group_totals(
            daily_brand,
            datafusion::logical_expr::cast(col("date"), datafusion::arrow::datatypes::DataType::Utf8),
            None,
        )
        .await?
        .into_iter()
        .map(|g| DayPoint {
            date: g.name.unwrap_or_default(),
            views: g.views,
            purchases: g.purchases,
            conversion_rate: g.conversion_rate,
            classic_drops: 0,
            classic_spikes: 0,
            v2_drops: 0,
            v2_spikes: 0,
        })
        .collect();
        s.daily.sort_by(|a, b| a.date.cmp(&b.date));
    }
    if let Some(categories) = tables.read(&GOLD_FUNNEL_DAILY_CATEGORY).await? {
        s.categories = group_totals(categories, col("category_root"), None).await?;
    }
    if let Some(bands) = tables.read(&GOLD_FUNNEL_HOURLY_PRICE_BAND).await? {
        let mut by_band = group_totals(bands, col("price_band"), None).await?;
        by_band.sort_by_key(|g| PRICE_BANDS.iter().position(|b| Some(*b) == g.name.as_deref()));
        s.price_bands = by_band;
    }
    if let Some(classic) = tables.read(&GOLD_ANOMALIES_HOURLY_BRAND).await? {
        classic_anomalies(&mut s, classic).await?;
    }
    if let Some(v2) = tables.read(&GOLD_ANOMALIES_HOURLY_BRAND_V2).await? {
        v2_anomalies(&mut s, v2).await?;
    }
    Ok(s)
}

async fn window_range(s: &mut Summary, gold: DataFrame) -> anyhow::Result<()> {
    let text = |e: Expr| datafusion::logical_expr::cast(e, datafusion::arrow::datatypes::DataType::Utf8);
    let range = rows(
        gold.aggregate(
            vec![],
            vec![
                min(col("window_start")).alias("first"),
                max(col("window_start")).alias("last"),
                count_distinct(col("window_start")).alias("windows"),
            ],
        )?,
        vec![(text(col("first")), Kind::Text), (text(col("last")), Kind::Text), (col("windows"), Kind::Int)],
    )
    .await?;
    if let Some(r) = range.first() {
        s.first_window = r[0].text();
        s.last_window = r[1].text();
        s.hourly_windows = u(&r[2]);
    }
    Ok(())
}

fn flag_count(column: &str) -> Expr {
    count(when(col(column), lit(1)).end().unwrap())
}

async fn events_and_quality(s: &mut Summary, silver: DataFrame) -> anyhow::Result<()> {
    let by_type = rows(
        silver
            .clone()
            .aggregate(vec![col("event_type")], vec![count(lit(1)).alias("n")])?
            .sort(vec![col("n").sort(false, false), col("event_type").sort(true, false)])?,
        vec![(col("event_type"), Kind::Text), (col("n"), Kind::Int)],
    )
    .await?;
    s.events_by_type = by_type.iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect();
    let of = |kind: &str| s.events_by_type.iter().find(|e| e.0 == kind).map_or(0, |e| e.1);
    let (views, carts, purchases) = (of("view"), of("cart"), of("purchase"));
    s.funnel = Funnel {
        views,
        carts,
        purchases,
        view_to_cart_pct: pct(carts, views),
        cart_to_purchase_pct: pct(purchases, carts),
        view_to_purchase_pct: pct(purchases, views),
    };
    let flags = rows(
        silver.aggregate(
            vec![],
            vec![
                count(lit(1)).alias("n"),
                flag_count("dq_missing_brand").alias("b"),
                flag_count("dq_missing_category").alias("c"),
                flag_count("dq_missing_session").alias("s"),
            ],
        )?,
        vec![(col("n"), Kind::Int), (col("b"), Kind::Int), (col("c"), Kind::Int), (col("s"), Kind::Int)],
    )
    .await?;
    if let Some(r) = flags.first() {
        s.quality.silver_rows = u(&r[0]);
        s.quality.missing_brand = u(&r[1]);
        s.quality.missing_category = u(&r[2]);
        s.quality.missing_session = u(&r[3]);
    }
    Ok(())
}

async fn bronze_quality(s: &mut Summary, bronze: DataFrame) -> anyhow::Result<()> {
    let counts = rows(
        bronze.aggregate(
            vec![],
            vec![count(lit(1)).alias("n"), count(when(silver_filter(), lit(1)).end()?).alias("eligible")],
        )?,
        vec![(col("n"), Kind::Int), (col("eligible"), Kind::Int)],
    )
    .await?;
    if let Some(r) = counts.first() {
        let q = &mut s.quality;
        q.bronze_rows = u(&r[0]);
        q.silver_eligible_rows = u(&r[1]);
        q.filtered_out_rows = q.bronze_rows - q.silver_eligible_rows;
        q.duplicates_removed = q.silver_eligible_rows.saturating_sub(q.silver_rows);
    }
    Ok(())
}

/// A sum of doubles made in decimal: exact, so the same on every engine
/// whatever the order of the rows (as the gold tables' revenue is).
fn exact_sum(x: Expr) -> Expr {
    use datafusion::arrow::datatypes::DataType;
    datafusion::logical_expr::cast(
        sum(datafusion::logical_expr::cast(x, DataType::Decimal128(38, 10))),
        DataType::Float64,
    )
}

/// Views, purchases, revenue per `key` (a gold table's dimension), by revenue
/// (then name), at most `limit` groups.
async fn group_totals(gold: DataFrame, key: Expr, limit: Option<usize>) -> anyhow::Result<Vec<GroupTotals>> {
    let grouped = gold
        .aggregate(
            vec![key.alias("name")],
            vec![sum(col("views")).alias("v"), sum(col("purchases")).alias("p"), exact_sum(col("revenue")).alias("r")],
        )?
        .sort(vec![col("r").sort(false, false), col("name").sort(true, false)])?
        .limit(0, limit)?;
    let table = rows(
        grouped,
        vec![(col("name"), Kind::Text), (col("v"), Kind::Int), (col("p"), Kind::Int), (col("r"), Kind::Float)],
    )
    .await?;
    Ok(table
        .iter()
        .map(|r| GroupTotals {
            name: r[0].text(),
            views: u(&r[1]),
            purchases: u(&r[2]),
            revenue: r[3].float(),
            conversion_rate: rate(u(&r[2]), u(&r[1])),
        })
        .collect())
}

async fn by_type(anomalies: DataFrame) -> anyhow::Result<Vec<(String, u64)>> {
    let counted = anomalies
        .aggregate(vec![col("anomaly_type")], vec![count(lit(1)).alias("n")])?
        .sort(vec![col("anomaly_type").sort(true, false)])?;
    let table = rows(counted, vec![(col("anomaly_type"), Kind::Text), (col("n"), Kind::Int)]).await?;
    Ok(table.iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect())
}

/// Anomalies per day and type, added to the daily series.
async fn mark_days(s: &mut Summary, anomalies: DataFrame, classic: bool) -> anyhow::Result<()> {
    let per_day = anomalies.aggregate(
        vec![
            datafusion::logical_expr::cast(col("window_date"), datafusion::arrow::datatypes::DataType::Utf8).alias("d"),
            col("anomaly_type"),
        ],
        vec![count(lit(1)).alias("n")],
    )?;
    for r in
        rows(per_day, vec![(col("d"), Kind::Text), (col("anomaly_type"), Kind::Text), (col("n"), Kind::Int)]).await?
    {
        let (Some(date), Some(kind)) = (r[0].text(), r[1].text()) else { continue };
        if let Some(day) = s.daily.iter_mut().find(|d| d.date == date) {
            let slot = match (classic, kind.as_str()) {
                (true, "drop") => &mut day.classic_drops,
                (true, _) => &mut day.classic_spikes,
                (false, "drop") => &mut day.v2_drops,
                (false, _) => &mut day.v2_spikes,
            };
            *slot += u(&r[2]);
        }
    }
    Ok(())
}

fn anomaly_rows(table: Vec<Vec<Cell>>) -> Vec<AnomalyRow> {
    table
        .iter()
        .map(|r| AnomalyRow {
            window_start: r[0].text().unwrap_or_default(),
            brand: r[1].text().unwrap_or_default(),
            views: u(&r[2]),
            purchases: u(&r[3]),
            conversion_rate: match r[4] {
                Cell::Float(v) => Some(v),
                _ => None,
            },
            baseline: r[5].float(),
            score: r[6].float(),
        })
        .collect()
}

fn anomaly_columns(baseline: &str, score: &str) -> Vec<(Expr, Kind)> {
    vec![
        (col("window_start"), Kind::Text),
        (col("brand"), Kind::Text),
        (col("views"), Kind::Int),
        (col("purchases"), Kind::Int),
        (col("conversion_rate"), Kind::Float),
        (col(baseline), Kind::Float),
        (col(score), Kind::Float),
    ]
}

async fn classic_anomalies(s: &mut Summary, classic: DataFrame) -> anyhow::Result<()> {
    s.anomalies_by_type = by_type(classic.clone()).await?;
    let per_brand = classic
        .clone()
        .aggregate(vec![col("brand")], vec![count(lit(1)).alias("n")])?
        .sort(vec![col("n").sort(false, false), col("brand").sort(true, false)])?
        .limit(0, Some(10))?;
    s.top_anomaly_brands = rows(per_brand, vec![(col("brand"), Kind::Text), (col("n"), Kind::Int)])
        .await?
        .iter()
        .map(|r| (r[0].text().unwrap_or_default(), u(&r[1])))
        .collect();
    let drops = classic
        .clone()
        .filter(col("anomaly_type").eq(lit("drop")))?
        .sort(vec![
            col("z_brand").sort(true, false),
            col("window_start").sort(true, false),
            col("brand").sort(true, false),
        ])?
        .limit(0, Some(10))?;
    s.worst_drops = anomaly_rows(rows(drops, anomaly_columns("conv_mean_brand", "z_brand")).await?);
    mark_days(s, classic, true).await
}

async fn v2_anomalies(s: &mut Summary, v2: DataFrame) -> anyhow::Result<()> {
    s.v2_anomalies_by_type = by_type(v2.clone()).await?;
    let strongest = v2
        .clone()
        .sort(vec![
            col("p_value").sort(true, false),
            col("window_start").sort(true, false),
            col("brand").sort(true, false),
        ])?
        .limit(0, Some(10))?;
    s.strongest_v2 = anomaly_rows(rows(strongest, anomaly_columns("expected_purchases", "score")).await?);
    mark_days(s, v2, false).await
}
