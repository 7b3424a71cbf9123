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

use crate::query::{Answers, Cell, Kind, Queries, Query};

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

/// Fills in a section of the summary from the answers to the queries it planned.
type Apply = Box<dyn FnOnce(&mut Summary, &mut Answers) + Send>;

/// Gathers the summary; absent tables leave their parts empty. Every table's
/// snapshot is read and every query planned first; the queries then run at
/// once ([`Queries::run`]) and each section fills itself in, in order.
pub async fn gather(engine: &Engine, lake: &Lake, as_of: &AsOf) -> funnelpulse_engine::Result<Summary> {
    let snapshots = REPORTED_TABLES.iter().map(|table| lake.snapshot(table, as_of));
    let frames: Vec<Option<DataFrame>> = futures::future::try_join_all(snapshots)
        .await?
        .into_iter()
        .map(|files| files.map(|files| read_files(&engine.ctx, &files)).transpose())
        .collect::<funnelpulse_engine::Result<_>>()?;
    funnelpulse_engine::ensure!(
        frames.iter().any(Option::is_some),
        "no tables in {} to report on (run stage 01 first)",
        lake.url()
    );
    let frame = |table: &TableSpec| {
        let i = REPORTED_TABLES.iter().position(|t| t.name == table.name).expect("a reported table");
        frames[i].clone()
    };
    let mut queries = Queries::default();
    let mut sections: Vec<Apply> = vec![table_counts(&mut queries, &frames)?];
    let planned: [(TableSpec, SectionPlan); 9] = [
        (GOLD_FUNNEL_HOURLY_BRAND, window_range),
        (SILVER_EVENTS, events_and_quality),
        (BRONZE_EVENTS, bronze_quality),
        (BRONZE_REJECTS, rejects_by_reason),
        (GOLD_FUNNEL_DAILY_BRAND, brands_and_days),
        (GOLD_FUNNEL_DAILY_CATEGORY, categories),
        (GOLD_FUNNEL_HOURLY_PRICE_BAND, price_bands),
        (GOLD_ANOMALIES_HOURLY_BRAND, classic_anomalies),
        (GOLD_ANOMALIES_HOURLY_BRAND_V2, v2_anomalies),
    ];
    for (table, plan) in planned {
        if let Some(df) = frame(&table) {
            sections.push(plan(&mut queries, df)?);
        }
    }
    let mut answers = queries.run().await?;
    let mut s = Summary {
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        lake: lake.url().to_string(),
        ..Default::default()
    };
    for section in sections {
        section(&mut s, &mut answers);
    }
    Ok(s)
}

/// Plans a section's queries on its table and returns how it fills itself in.
type SectionPlan = fn(&mut Queries, DataFrame) -> funnelpulse_engine::Result<Apply>;

fn table_counts(q: &mut Queries, frames: &[Option<DataFrame>]) -> funnelpulse_engine::Result<Apply> {
    let mut counted = Vec::new();
    for (table, frame) in REPORTED_TABLES.iter().zip(frames) {
        let query = match frame {
            Some(df) => {
                let columns = df.schema().fields().len();
                let n = df.clone().aggregate(vec![], vec![count(lit(1)).alias("n")])?;
                Some((q.add(n, vec![(col("n"), Kind::Int)]), columns))
            }
            None => None,
        };
        counted.push((table.name, query));
    }
    Ok(Box::new(move |s, a| {
        for (table, query) in counted {
            s.tables.push(match query {
                Some((query, columns)) => {
                    let rows = a.take(query).first().map_or(0, |r| u(&r[0]));
                    TableCount { table: table.into(), rows: Some(rows), columns: Some(columns) }
                }
                None => TableCount { table: table.into(), rows: None, columns: None },
            });
        }
    }))
}

fn window_range(q: &mut Queries, gold: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let text = |e: Expr| datafusion::logical_expr::cast(e, datafusion::arrow::datatypes::DataType::Utf8);
    let range = q.add(
        gold.aggregate(
            vec![],
            vec![
                min(col("window_start")).alias("first"),
                max(col("window_start")).alias("last"),
                count_distinct(col("window_start")).alias("windows"),
            ],
        )?,
        vec![(text(col("first")), Kind::Text), (text(col("last")), Kind::Text), (col("windows"), Kind::Int)],
    );
    Ok(Box::new(move |s, a| {
        if let Some(r) = a.take(range).first() {
            s.first_window = r[0].text();
            s.last_window = r[1].text();
            s.hourly_windows = u(&r[2]);
        }
    }))
}

fn flag_count(column: &str) -> Expr {
    count(when(col(column), lit(1)).end().unwrap())
}

fn events_and_quality(q: &mut Queries, silver: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let by_type = q.add(
        silver
            .clone()
            .aggregate(vec![col("event_type")], vec![count(lit(1)).alias("n")])?
            .sort(vec![col("n").sort(false, false), col("event_type").sort(true, false)])?,
        vec![(col("event_type"), Kind::Text), (col("n"), Kind::Int)],
    );
    let flags = q.add(
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
    );
    Ok(Box::new(move |s, a| {
        s.events_by_type = a.take(by_type).iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect();
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
        if let Some(r) = a.take(flags).first() {
            s.quality.silver_rows = u(&r[0]);
            s.quality.missing_brand = u(&r[1]);
            s.quality.missing_category = u(&r[2]);
            s.quality.missing_session = u(&r[3]);
        }
    }))
}

/// Bronze's rows and those silver's filter keeps (after silver's section: it
/// needs silver's row count for the duplicates removed).
fn bronze_quality(q: &mut Queries, bronze: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let counts = q.add(
        bronze.aggregate(
            vec![],
            vec![count(lit(1)).alias("n"), count(when(silver_filter(), lit(1)).end()?).alias("eligible")],
        )?,
        vec![(col("n"), Kind::Int), (col("eligible"), Kind::Int)],
    );
    Ok(Box::new(move |s, a| {
        if let Some(r) = a.take(counts).first() {
            let q = &mut s.quality;
            q.bronze_rows = u(&r[0]);
            q.silver_eligible_rows = u(&r[1]);
            q.filtered_out_rows = q.bronze_rows - q.silver_eligible_rows;
            q.duplicates_removed = q.silver_eligible_rows.saturating_sub(q.silver_rows);
        }
    }))
}

fn rejects_by_reason(q: &mut Queries, rejects: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let by_reason = q.add(
        rejects
            .aggregate(vec![col("reason")], vec![count(lit(1)).alias("n")])?
            .sort(vec![col("n").sort(false, false), col("reason").sort(true, false)])?,
        vec![(col("reason"), Kind::Text), (col("n"), Kind::Int)],
    );
    Ok(Box::new(move |s, a| {
        s.quality.rejects_by_reason =
            a.take(by_reason).iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect();
        s.quality.rejected_rows = s.quality.rejects_by_reason.iter().map(|r| r.1).sum();
    }))
}

fn brands_and_days(q: &mut Queries, daily_brand: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let named = daily_brand.clone().filter(col("brand").is_not_null())?;
    let top_brands = group_totals(q, named, col("brand"), Some(10))?;
    let date = datafusion::logical_expr::cast(col("date"), datafusion::arrow::datatypes::DataType::Utf8);
    let daily = group_totals(q, daily_brand, date, None)?;
    Ok(Box::new(move |s, a| {
        s.top_brands = group_rows(a.take(top_brands));
        s.daily = group_rows(a.take(daily))
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
    }))
}

fn categories(q: &mut Queries, categories: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let totals = group_totals(q, categories, col("category_root"), None)?;
    Ok(Box::new(move |s, a| s.categories = group_rows(a.take(totals))))
}

fn price_bands(q: &mut Queries, bands: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let totals = group_totals(q, bands, col("price_band"), None)?;
    Ok(Box::new(move |s, a| {
        let mut by_band = group_rows(a.take(totals));
        by_band.sort_by_key(|g| PRICE_BANDS.iter().position(|b| Some(*b) == g.name.as_deref()));
        s.price_bands = by_band;
    }))
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

/// Plans views, purchases, revenue per `key` (a gold table's dimension), by
/// revenue (then name), at most `limit` groups; read with [`group_rows`].
fn group_totals(
    q: &mut Queries,
    gold: DataFrame,
    key: Expr,
    limit: Option<usize>,
) -> funnelpulse_engine::Result<Query> {
    let grouped = gold
        .aggregate(
            vec![key.alias("name")],
            vec![sum(col("views")).alias("v"), sum(col("purchases")).alias("p"), exact_sum(col("revenue")).alias("r")],
        )?
        .sort(vec![col("r").sort(false, false), col("name").sort(true, false)])?
        .limit(0, limit)?;
    Ok(q.add(
        grouped,
        vec![(col("name"), Kind::Text), (col("v"), Kind::Int), (col("p"), Kind::Int), (col("r"), Kind::Float)],
    ))
}

fn group_rows(table: Vec<Vec<Cell>>) -> Vec<GroupTotals> {
    table
        .iter()
        .map(|r| GroupTotals {
            name: r[0].text(),
            views: u(&r[1]),
            purchases: u(&r[2]),
            revenue: r[3].float(),
            conversion_rate: rate(u(&r[2]), u(&r[1])),
        })
        .collect()
}

fn by_type(q: &mut Queries, anomalies: DataFrame) -> funnelpulse_engine::Result<Query> {
    let counted = anomalies
        .aggregate(vec![col("anomaly_type")], vec![count(lit(1)).alias("n")])?
        .sort(vec![col("anomaly_type").sort(true, false)])?;
    Ok(q.add(counted, vec![(col("anomaly_type"), Kind::Text), (col("n"), Kind::Int)]))
}

fn type_counts(table: Vec<Vec<Cell>>) -> Vec<(String, u64)> {
    table.iter().map(|r| (r[0].text().unwrap_or_default(), u(&r[1]))).collect()
}

/// Plans anomalies per day and type, for [`mark_days`].
fn per_day(q: &mut Queries, anomalies: DataFrame) -> funnelpulse_engine::Result<Query> {
    let per_day = anomalies.aggregate(
        vec![
            datafusion::logical_expr::cast(col("window_date"), datafusion::arrow::datatypes::DataType::Utf8).alias("d"),
            col("anomaly_type"),
        ],
        vec![count(lit(1)).alias("n")],
    )?;
    Ok(q.add(per_day, vec![(col("d"), Kind::Text), (col("anomaly_type"), Kind::Text), (col("n"), Kind::Int)]))
}

/// Adds anomalies per day and type to the daily series (filled in before).
fn mark_days(s: &mut Summary, per_day: Vec<Vec<Cell>>, classic: bool) {
    for r in per_day {
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

fn classic_anomalies(q: &mut Queries, classic: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let types = by_type(q, classic.clone())?;
    let per_brand = classic
        .clone()
        .aggregate(vec![col("brand")], vec![count(lit(1)).alias("n")])?
        .sort(vec![col("n").sort(false, false), col("brand").sort(true, false)])?
        .limit(0, Some(10))?;
    let per_brand = q.add(per_brand, vec![(col("brand"), Kind::Text), (col("n"), Kind::Int)]);
    let drops = classic
        .clone()
        .filter(col("anomaly_type").eq(lit("drop")))?
        .sort(vec![
            col("z_brand").sort(true, false),
            col("window_start").sort(true, false),
            col("brand").sort(true, false),
        ])?
        .limit(0, Some(10))?;
    let drops = q.add(drops, anomaly_columns("conv_mean_brand", "z_brand"));
    let days = per_day(q, classic)?;
    Ok(Box::new(move |s, a| {
        s.anomalies_by_type = type_counts(a.take(types));
        s.top_anomaly_brands = type_counts(a.take(per_brand));
        s.worst_drops = anomaly_rows(a.take(drops));
        mark_days(s, a.take(days), true);
    }))
}

fn v2_anomalies(q: &mut Queries, v2: DataFrame) -> funnelpulse_engine::Result<Apply> {
    let types = by_type(q, v2.clone())?;
    let strongest = v2
        .clone()
        .sort(vec![
            col("p_value").sort(true, false),
            col("window_start").sort(true, false),
            col("brand").sort(true, false),
        ])?
        .limit(0, Some(10))?;
    let strongest = q.add(strongest, anomaly_columns("expected_purchases", "score"));
    let days = per_day(q, v2)?;
    Ok(Box::new(move |s, a| {
        s.v2_anomalies_by_type = type_counts(a.take(types));
        s.strongest_v2 = anomaly_rows(a.take(strongest));
        mark_days(s, a.take(days), false);
    }))
}
