//! The dashboard's queries: DataFusion plans over the last committed version
//! of the lake's tables, built from typed parameters only.
//!
//! A figure comes from the smallest table that has its dimensions (a gold
//! table when the filters allow, silver events otherwise), reading only the
//! partitions (dates) of the range asked for.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::DataFrame;
use funnelpulse_core::TableSpec;
use funnelpulse_core::funnel::{category_root, funnel_measures, hour_window_start, price_band};
use funnelpulse_core::silver::silver_filter;
use funnelpulse_core::tables::*;
use funnelpulse_engine::Context;
use funnelpulse_engine::tables::read_files;
use funnelpulse_lake::{AsOf, TableFiles};
use funnelpulse_stage06::query::{Cell, Kind, rows};
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::Dashboard;
use crate::params::{Filters, Grain, Range};

/// Funnel measures of a group, with its rates (null on a zero denominator).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
    pub revenue: f64,
    pub view_to_cart: Option<f64>,
    pub cart_to_purchase: Option<f64>,
    pub view_to_purchase: Option<f64>,
}

impl Totals {
    fn new(views: u64, carts: u64, purchases: u64, revenue: f64) -> Self {
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        Totals {
            views,
            carts,
            purchases,
            revenue,
            view_to_cart: rate(carts, views),
            cart_to_purchase: rate(purchases, carts),
            view_to_purchase: rate(purchases, views),
        }
    }

    /// Funnel events (views, carts and purchases; remove_from_cart is in no measure).
    pub fn events(&self) -> u64 {
        self.views + self.carts + self.purchases
    }
}

/// One group of a grouped query: a brand, category root, hour or day.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The group's value; None is the null group (no brand, no category).
    pub key: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// What a query groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Total,
    Brand,
    Category,
    Time(Grain),
}

/// A table the funnel figures can come from, and which dimensions it has.
struct Source {
    table: TableSpec,
    brand: bool,
    category: bool,
    band: bool,
    hourly: bool,
    /// Its date column (also its partition column).
    day: &'static str,
    /// Silver events (measures computed from events), not a gold table.
    events: bool,
}

const fn gold(table: TableSpec, brand: bool, category: bool, band: bool, hourly: bool, day: &'static str) -> Source {
    Source { table, brand, category, band, hourly, day, events: false }
}

/// Gold tables, smallest first for the dimensions they share.
static GOLD: [Source; 4] = [
    gold(GOLD_FUNNEL_DAILY_BRAND, true, false, false, false, "date"),
    gold(GOLD_FUNNEL_DAILY_CATEGORY, false, true, false, false, "date"),
    gold(GOLD_FUNNEL_HOURLY_BRAND, true, false, false, true, "window_date"),
    gold(GOLD_FUNNEL_HOURLY_PRICE_BAND, false, false, true, true, "window_date"),
];

/// Every dimension at once, at the cost of reading events.
static SILVER: Source = Source {
    table: SILVER_EVENTS,
    brand: true,
    category: true,
    band: true,
    hourly: true,
    day: "event_date",
    events: true,
};

impl Source {
    fn serves(&self, f: &Filters, dim: Dim) -> bool {
        let dim_ok = match dim {
            Dim::Total | Dim::Time(Grain::Day) => true,
            Dim::Brand => self.brand,
            Dim::Category => self.category,
            Dim::Time(Grain::Hour) => self.hourly,
        };
        dim_ok
            && (f.brands.is_empty() || self.brand)
            && (f.category.is_none() || self.category)
            && (f.band.is_none() || self.band)
    }

    fn choose(f: &Filters, dim: Dim) -> &'static Source {
        GOLD.iter().find(|s| s.serves(f, dim)).unwrap_or(&SILVER)
    }
}

/// Brand and category names that exist, to check filters against.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub brands: BTreeSet<String>,
    pub categories: BTreeSet<String>,
    /// The newest date of the data (gold_funnel_daily_brand's last partition).
    pub last_date: Option<chrono::NaiveDate>,
    /// The table versions these were read from (the cache's key).
    versions: (Option<i64>, Option<i64>),
}

/// A sum of doubles made in decimal: exact, whatever the order of the rows
/// (as stage 06 sums revenue).
fn exact_sum(x: Expr) -> Expr {
    cast(sum(cast(x, DataType::Decimal128(38, 10))), DataType::Float64)
}

fn gold_sums() -> Vec<Expr> {
    vec![
        sum(col("views")).alias("views"),
        sum(col("carts")).alias("carts"),
        sum(col("purchases")).alias("purchases"),
        exact_sum(col("revenue")).alias("revenue"),
    ]
}

fn u(cell: &Cell) -> u64 {
    cell.int().max(0) as u64
}

fn text(e: Expr) -> Expr {
    cast(e, DataType::Utf8)
}

impl Dashboard {
    /// The last committed version of `table`, None when it was never built.
    pub async fn snapshot(&self, table: &TableSpec) -> funnelpulse_engine::Result<Option<TableFiles>> {
        Ok(self.lake.snapshot(table, &AsOf::Latest).await?)
    }

    /// `table` restricted to the dates of `range` (by its date partitions).
    pub async fn frame(
        &self,
        table: &TableSpec,
        range: Option<Range>,
    ) -> funnelpulse_engine::Result<Option<DataFrame>> {
        let Some(files) = self.snapshot(table).await? else { return Ok(None) };
        let files = match range {
            Some(r) => files.only_partitions(&r.dates()),
            None => files,
        };
        Ok(Some(read_files(&self.ctx, &files)?))
    }

    async fn required(&self, table: &TableSpec, range: Option<Range>) -> funnelpulse_engine::Result<DataFrame> {
        self.frame(table, range).await?.with_context(|| {
            format!(
                "table {} does not exist in {} (run the pipeline's stages 01 and 02 first)",
                table.name,
                self.lake.url()
            )
        })
    }

    /// Brand and category names, re-read only when their tables changed.
    pub async fn known(&self) -> funnelpulse_engine::Result<Known> {
        let brands = self.snapshot(&GOLD_FUNNEL_DAILY_BRAND).await?;
        let categories = self.snapshot(&GOLD_FUNNEL_DAILY_CATEGORY).await?;
        let versions = (brands.as_ref().and_then(|f| f.version), categories.as_ref().and_then(|f| f.version));
        if let Some(cached) = self.known.lock().unwrap().as_ref().filter(|k| k.versions == versions) {
            return Ok(cached.clone());
        }
        let mut known = Known { versions, ..Default::default() };
        if let Some(files) = brands {
            known.last_date = files.partitions().last().and_then(|d| d.parse().ok());
            known.brands = self.distinct(read_files(&self.ctx, &files)?, "brand").await?;
        }
        if let Some(files) = categories {
            known.categories = self.distinct(read_files(&self.ctx, &files)?, "category_root").await?;
        }
        *self.known.lock().unwrap() = Some(known.clone());
        Ok(known)
    }

    async fn distinct(&self, df: DataFrame, column: &str) -> funnelpulse_engine::Result<BTreeSet<String>> {
        let values = df.filter(col(column).is_not_null())?.aggregate(vec![col(column)], vec![])?;
        Ok(rows(values, vec![(col(column), Kind::Text)]).await?.into_iter().filter_map(|r| r[0].text()).collect())
    }

    /// Funnel measures of the events in `range` that pass `f`, per `dim`
    /// (one group for `Dim::Total`), in no particular order.
    pub async fn grouped(&self, range: Range, f: &Filters, dim: Dim) -> funnelpulse_engine::Result<Vec<Group>> {
        let source = Source::choose(f, dim);
        let mut df = self.required(&source.table, Some(range)).await?;
        if source.events {
            // Silver's derived dimensions, as the gold tables define them (docs/semantics.md).
            df = df
                .with_column("brand", col("brand_norm"))?
                .with_column("category_root", category_root())?
                .with_column("price_band", price_band())?
                .with_column("window_start", hour_window_start())?;
        }
        if !f.brands.is_empty() {
            df = df.filter(col("brand").in_list(f.brands.iter().map(|b| lit(b.clone())).collect(), false))?;
        }
        if let Some(c) = &f.category {
            df = df.filter(col("category_root").eq(lit(c.clone())))?;
        }
        if let Some(b) = f.band {
            df = df.filter(col("price_band").eq(lit(b)))?;
        }
        let key = match dim {
            Dim::Total => None,
            Dim::Brand => Some(col("brand")),
            Dim::Category => Some(col("category_root")),
            Dim::Time(Grain::Hour) => Some(col("window_start")),
            Dim::Time(Grain::Day) => Some(col(source.day)),
        };
        let measures = if source.events { funnel_measures() } else { gold_sums() };
        let keys: Vec<Expr> = key.into_iter().map(|k| k.alias("key")).collect();
        let grouped = df.aggregate(keys.clone(), measures)?;
        let mut columns = vec![
            (col("views"), Kind::Int),
            (col("carts"), Kind::Int),
            (col("purchases"), Kind::Int),
            (col("revenue"), Kind::Float),
        ];
        if !keys.is_empty() {
            columns.insert(0, (col("key"), Kind::Text));
        }
        let table = rows(grouped, columns).await?;
        let offset = usize::from(!keys.is_empty());
        Ok(table
            .iter()
            .map(|r| Group {
                key: if offset == 1 { r[0].text() } else { None },
                totals: Totals::new(u(&r[offset]), u(&r[offset + 1]), u(&r[offset + 2]), r[offset + 3].float()),
            })
            .collect())
    }

    /// The measures of everything in `range` that passes `f`.
    pub async fn totals(&self, range: Range, f: &Filters) -> funnelpulse_engine::Result<Totals> {
        Ok(self.grouped(range, f, Dim::Total).await?.pop().map(|g| g.totals).unwrap_or_default())
    }
}

/// Which anomaly table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    V2,
    Classic,
}

impl Detector {
    pub fn table(self) -> TableSpec {
        match self {
            Detector::V2 => GOLD_ANOMALIES_HOURLY_BRAND_V2,
            Detector::Classic => GOLD_ANOMALIES_HOURLY_BRAND,
        }
    }
}

/// One flagged brand-hour with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub detector: Detector,
    /// `YYYY-MM-DDTHH:MM:SS` (UTC), as the series' hourly labels.
    pub window_start: String,
    pub brand: String,
    pub kind: String,
    pub views: u64,
    pub purchases: u64,
    pub conversion_rate: Option<f64>,
    /// v2: the score; classic: z_brand.
    pub score: f64,
    /// v2 only: expected purchases, baseline views, p- and q-value.
    pub expected_purchases: Option<f64>,
    pub baseline_views: Option<u64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    /// Classic only: the brand's mean conversion and the hour-of-day z-score.
    pub conv_mean_brand: Option<f64>,
    pub z_brand_hour: Option<f64>,
    /// In the alert ledger (`<lake>/alerts/<table>.sent.json`); set by [`Anomaly::mark_alerted`].
    pub alerted: bool,
}

impl Anomaly {
    /// Marks the anomalies whose key (`brand|YYYY-MM-DD HH:MM:SS|type`, as
    /// stage 05 writes it) is in the ledger.
    pub fn mark_alerted(found: &mut [Anomaly], sent: &BTreeSet<String>) {
        for a in found {
            a.alerted = sent.contains(&format!("{}|{}|{}", a.brand, a.window_start.replace('T', " "), a.kind));
        }
    }
}

fn float(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Null => None,
        c => Some(c.float()),
    }
}

impl Dashboard {
    /// A detector's anomalies in `range` (of `brands`, when given), ranked:
    /// v2 by p-value, classic by the larger |z|; then hour and brand.
    pub async fn anomalies(
        &self,
        detector: Detector,
        range: Range,
        brands: &[String],
    ) -> funnelpulse_engine::Result<Vec<Anomaly>> {
        let Some(mut df) = self.frame(&detector.table(), Some(range)).await? else { return Ok(Vec::new()) };
        if !brands.is_empty() {
            df = df.filter(col("brand").in_list(brands.iter().map(|b| lit(b.clone())).collect(), false))?;
        }
        // Four evidence columns per detector (classic has two: its last slots are read and unused).
        let (a, b, c, d) = match detector {
            Detector::V2 => ("expected_purchases", "baseline_views", "p_value", "q_value"),
            Detector::Classic => ("conv_mean_brand", "z_brand_hour", "z_brand", "z_brand"),
        };
        let score = if detector == Detector::V2 { "score" } else { "z_brand" };
        let columns = vec![
            (text(col("window_start")), Kind::Text),
            (col("brand"), Kind::Text),
            (col("anomaly_type"), Kind::Text),
            (col("views"), Kind::Int),
            (col("purchases"), Kind::Int),
            (col("conversion_rate"), Kind::Float),
            (col(score), Kind::Float),
            (col(a), Kind::Float),
            (col(b), Kind::Float),
            (col(c), Kind::Float),
            (col(d), Kind::Float),
        ];
        let mut found: Vec<Anomaly> = rows(df, columns)
            .await?
            .iter()
            .map(|r| {
                let (window_start, brand, kind) =
                    (r[0].text().unwrap_or_default(), r[1].text().unwrap_or_default(), r[2].text().unwrap_or_default());
                let v2 = detector == Detector::V2;
                Anomaly {
                    detector,
                    alerted: false,
                    window_start,
                    brand,
                    kind,
                    views: u(&r[3]),
                    purchases: u(&r[4]),
                    conversion_rate: float(&r[5]),
                    score: r[6].float(),
                    expected_purchases: if v2 { float(&r[7]) } else { None },
                    baseline_views: if v2 { float(&r[8]).map(|x| x as u64) } else { None },
                    p_value: if v2 { float(&r[9]) } else { None },
                    q_value: if v2 { float(&r[10]) } else { None },
                    conv_mean_brand: if v2 { None } else { float(&r[7]) },
                    z_brand_hour: if v2 { None } else { float(&r[8]) },
                }
            })
            .collect();
        found.sort_by(|x, y| {
            let strength = |a: &Anomaly| match a.p_value {
                Some(p) => p,
                None => -a.score.abs().max(a.z_brand_hour.unwrap_or(0.0).abs()),
            };
            strength(x)
                .total_cmp(&strength(y))
                .then_with(|| x.window_start.cmp(&y.window_start))
                .then_with(|| x.brand.cmp(&y.brand))
        });
        Ok(found)
    }

    // Semantics: docs/semantics.md#alerts-state
    /// The alert ledger of a detector: the keys sent, and when it was last written.
    pub async fn ledger(&self, detector: Detector) -> funnelpulse_engine::Result<(BTreeSet<String>, Option<String>)> {
        let path = self.lake.path_of(&format!("alerts/{}.sent.json", detector.table().name));
        match self.lake.store().get(&path).await {
            Ok(found) => {
                let written = found.meta.last_modified.format("%Y-%m-%d %H:%M:%S UTC").to_string();
                let keys =
                    serde_json::from_slice(&found.bytes().await?).context("the alert ledger is not a JSON list")?;
                Ok((keys, Some(written)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok((BTreeSet::new(), None)),
            Err(e) => Err(e).context("reading the alert ledger"),
        }
    }
}

/// Rows rejected, filtered, de-duplicated or flagged on the way to silver, and the stream's set-asides.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quality {
    pub rejects_by_reason: Vec<(String, u64)>,
    pub rejected_rows: u64,
    pub bronze_rows: u64,
    pub silver_eligible_rows: u64,
    pub filtered_out_rows: u64,
    pub duplicates_removed: u64,
    pub silver_rows: u64,
    pub missing_brand: u64,
    pub missing_category: u64,
    pub missing_session: u64,
    /// Stage 04's tables; None when no stream has run.
    pub late_events: Option<u64>,
    pub future_events: Option<u64>,
    pub dead_letters: Option<u64>,
}

/// A window emitted by stage 04.
#[derive(Debug, Clone, Serialize)]
pub struct StreamWindow {
    pub window_start: String,
    pub brand: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

const QUALITY_TABLES: [TableSpec; 6] =
    [BRONZE_EVENTS, BRONZE_REJECTS, SILVER_EVENTS, LATE_EVENTS, FUTURE_EVENTS, STREAM_DEAD_LETTERS];

fn flag_count(column: &str) -> Expr {
    count(when(col(column), lit(1)).end().unwrap())
}

impl Dashboard {
    /// Data-quality figures of the whole lake, recomputed only when one of
    /// their tables has a new version (they read every event).
    pub async fn quality(&self) -> funnelpulse_engine::Result<Quality> {
        let mut snapshots = Vec::new();
        for table in &QUALITY_TABLES {
            snapshots.push(self.snapshot(table).await?);
        }
        let versions: Vec<Option<i64>> = snapshots.iter().map(|s| s.as_ref().and_then(|f| f.version)).collect();
        if let Some((_, q)) = self.quality.lock().unwrap().as_ref().filter(|(v, _)| *v == versions) {
            return Ok(q.clone());
        }
        let ctx = &self.ctx;
        let read = |i: usize| snapshots[i].as_ref().map(|f| read_files(ctx, f)).transpose();
        let mut q = Quality::default();
        if let Some(rejects) = read(1)? {
            let by_reason = rejects
                .aggregate(vec![col("reason")], vec![count(lit(1)).alias("n")])?
                .sort(vec![col("n").sort(false, false), col("reason").sort(true, false)])?;
            q.rejects_by_reason = rows(by_reason, vec![(col("reason"), Kind::Text), (col("n"), Kind::Int)])
                .await?
                .iter()
                .map(|r| (r[0].text().unwrap_or_default(), u(&r[1])))
                .collect();
            q.rejected_rows = q.rejects_by_reason.iter().map(|r| r.1).sum();
        }
        if let Some(silver) = read(2)? {
            let flags = silver.aggregate(
                vec![],
                vec![
                    count(lit(1)).alias("n"),
                    flag_count("dq_missing_brand").alias("b"),
                    flag_count("dq_missing_category").alias("c"),
                    flag_count("dq_missing_session").alias("s"),
                ],
            )?;
            let columns = ["n", "b", "c", "s"].map(|c| (col(c), Kind::Int)).to_vec();
            if let Some(r) = rows(flags, columns).await?.first() {
                (q.silver_rows, q.missing_brand, q.missing_category, q.missing_session) =
                    (u(&r[0]), u(&r[1]), u(&r[2]), u(&r[3]));
            }
        }
        if let Some(bronze) = read(0)? {
            // Semantics: docs/semantics.md#silver-filter (duplicates removed = eligible − silver)
            let counts = bronze.aggregate(
                vec![],
                vec![count(lit(1)).alias("n"), count(when(silver_filter(), lit(1)).end()?).alias("eligible")],
            )?;
            if let Some(r) = rows(counts, vec![(col("n"), Kind::Int), (col("eligible"), Kind::Int)]).await?.first() {
                q.bronze_rows = u(&r[0]);
                q.silver_eligible_rows = u(&r[1]);
                q.filtered_out_rows = q.bronze_rows - q.silver_eligible_rows;
                q.duplicates_removed = q.silver_eligible_rows.saturating_sub(q.silver_rows);
            }
        }
        for (i, slot) in [(3, &mut q.late_events), (4, &mut q.future_events), (5, &mut q.dead_letters)] {
            if let Some(df) = read(i)? {
                *slot = Some(df.count().await? as u64);
            }
        }
        *self.quality.lock().unwrap() = Some((versions, q.clone()));
        Ok(q)
    }

    /// The newest windows stage 04 emitted (by window start, then brand).
    pub async fn newest_stream_windows(&self, n: usize) -> funnelpulse_engine::Result<Vec<StreamWindow>> {
        let Some(df) = self.frame(&GOLD_STREAM_FUNNEL_HOURLY_BRAND, None).await? else { return Ok(Vec::new()) };
        let newest =
            df.sort(vec![col("window_start").sort(false, false), col("brand").sort(true, false)])?.limit(0, Some(n))?;
        let columns = vec![
            (text(col("window_start")), Kind::Text),
            (col("brand"), Kind::Text),
            (col("views"), Kind::Int),
            (col("carts"), Kind::Int),
            (col("purchases"), Kind::Int),
            (col("revenue"), Kind::Float),
        ];
        Ok(rows(newest, columns)
            .await?
            .iter()
            .map(|r| StreamWindow {
                window_start: r[0].text().unwrap_or_default(),
                brand: r[1].text(),
                totals: Totals::new(u(&r[2]), u(&r[3]), u(&r[4]), r[5].float()),
            })
            .collect())
    }
}
