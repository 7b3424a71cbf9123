//! What each page shows: its parameters checked, its figures gathered. The
//! pages render these as HTML, the `/api/` endpoints as JSON (the same values).

use axum::http::StatusCode;
use std::sync::Arc;

use serde::Serialize;

use crate::Dashboard;
use crate::data::{Anomaly, Detector, Dim, Group, Known, Quality, StreamWindow, Totals};
use crate::error::Failure;
use crate::params::{Filters, Grain, MAX_DAYS, MAX_HOURLY_DAYS, Params, Range, range};

/// Days a page shows when no range is given: the last week of the data.
const DEFAULT_DAYS: i64 = 7;
/// Rows of the top-brands and top-categories tables.
const TOP: usize = 10;
/// Anomalies listed per detector.
const MAX_ANOMALIES: usize = 100;

/// The known names, failing when the lake has no funnel tables yet.
async fn known(d: &Dashboard) -> Result<(Known, chrono::NaiveDate), Failure> {
    let known = d.known().await?;
    let last = known.last_date.ok_or_else(|| {
        Failure::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the lake {} has no funnel data yet (run stages 01 and 02 first)", d.lake.url()),
        )
    })?;
    Ok((known, last))
}

fn hourly_range(grain: Grain, r: Range) -> Result<(), Failure> {
    if grain == Grain::Hour && r.days() > MAX_HOURLY_DAYS {
        return Err(Failure::bad(format!(
            "an hourly series covers at most {MAX_HOURLY_DAYS} days ({} asked); use grain=day",
            r.days()
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub range: Range,
    pub previous: Range,
    pub grain: Grain,
    pub current_totals: Totals,
    pub previous_totals: Totals,
}

pub async fn overview(d: &Dashboard, query: Option<&str>) -> Result<Overview, Failure> {
    let p = Params::parse(query, &["from", "to", "grain"])?;
    let (_, last) = known(d).await?;
    let range = range(&p, last, DEFAULT_DAYS, MAX_DAYS)?;
    let grain = Grain::parse(&p)?;
    hourly_range(grain, range)?;
    let all = Filters::default();
    let (current_totals, previous_totals) = tokio::try_join!(d.totals(range, &all), d.totals(range.previous(), &all))?;
    Ok(Overview { range, previous: range.previous(), grain, current_totals, previous_totals })
}

/// An anomaly marker on a series: the point (hour or day) it belongs to.
#[derive(Debug, Serialize)]
pub struct Marker {
    pub at: String,
    pub brand: String,
    pub kind: String,
    pub detector: Detector,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub range: Range,
    pub grain: Grain,
    pub filters: Filters,
    /// One point per hour or day that has events, in time order (keys:
    /// `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD`).
    pub points: Vec<Group>,
    /// Both detectors' anomalies of the range (of the brands filtered on);
    /// none under a category or price-band filter (the detectors work per brand).
    pub anomalies: Vec<Marker>,
}

pub async fn series(d: &Dashboard, query: Option<&str>) -> Result<Series, Failure> {
    let p = Params::parse(query, &["from", "to", "grain", "brand", "category", "band"])?;
    let (known, last) = known(d).await?;
    let range = range(&p, last, DEFAULT_DAYS, MAX_DAYS)?;
    let grain = Grain::parse(&p)?;
    hourly_range(grain, range)?;
    let filters = Filters::parse(&p, &known)?;
    let mut points = d.grouped(range, &filters, Dim::Time(grain)).await?;
    points.sort_by(|a, b| a.key.cmp(&b.key));
    let mut anomalies = Vec::new();
    if filters.category.is_none() && filters.band.is_none() {
        let (v2, classic) = tokio::try_join!(
            d.anomalies(Detector::V2, range, &filters.brands),
            d.anomalies(Detector::Classic, range, &filters.brands)
        )?;
        for a in v2.into_iter().chain(classic) {
            let at = match grain {
                Grain::Hour => a.window_start.clone(),
                Grain::Day => a.window_start[..10].to_string(),
            };
            anomalies.push(Marker { at, brand: a.brand, kind: a.kind, detector: a.detector });
        }
    }
    Ok(Series { range, grain, filters, points, anomalies })
}

#[derive(Debug, Serialize)]
pub struct Funnel {
    pub range: Range,
    pub filters: Filters,
    pub totals: Totals,
    /// Named brands only, by revenue then name.
    pub top_brands: Vec<Group>,
    /// Category roots (the null root too), by revenue then name.
    pub top_categories: Vec<Group>,
    #[serde(skip)]
    pub known: Known,
}

/// By revenue (largest first), then name.
fn top(mut groups: Vec<Group>, n: usize) -> Vec<Group> {
    groups.sort_by(|a, b| b.totals.revenue.total_cmp(&a.totals.revenue).then_with(|| a.key.cmp(&b.key)));
    groups.truncate(n);
    groups
}

pub async fn funnel(d: &Dashboard, query: Option<&str>) -> Result<Funnel, Failure> {
    let p = Params::parse(query, &["from", "to", "brand", "category", "band"])?;
    let (known, last) = known(d).await?;
    let range = range(&p, last, DEFAULT_DAYS, MAX_DAYS)?;
    let filters = Filters::parse(&p, &known)?;
    let (totals, brands, categories) = tokio::try_join!(
        d.totals(range, &filters),
        d.grouped(range, &filters, Dim::Brand),
        d.grouped(range, &filters, Dim::Category)
    )?;
    let named: Vec<Group> = brands.into_iter().filter(|g| g.key.is_some()).collect();
    Ok(Funnel { range, filters, totals, top_brands: top(named, TOP), top_categories: top(categories, TOP), known })
}

#[derive(Debug, Serialize)]
pub struct Anomalies {
    pub range: Range,
    pub brand: Option<String>,
    /// How many each detector flagged in the range (the lists show the first 100).
    pub v2_total: usize,
    pub classic_total: usize,
    pub v2: Vec<Anomaly>,
    pub classic: Vec<Anomaly>,
    /// When each alert ledger was last written (None: nothing alerted yet).
    pub v2_ledger_written: Option<String>,
    pub classic_ledger_written: Option<String>,
}

pub async fn anomalies(d: &Dashboard, query: Option<&str>) -> Result<Anomalies, Failure> {
    let p = Params::parse(query, &["from", "to", "brand"])?;
    let (known, last) = known(d).await?;
    let range = range(&p, last, DEFAULT_DAYS, MAX_DAYS)?;
    let brand = p.one("brand")?.map(str::to_string);
    if let Some(b) = &brand
        && !known.brands.contains(b)
    {
        return Err(Failure::bad(format!("unknown brand {b:?} (brands are lower case, as in the tables)")));
    }
    let brands: Vec<String> = brand.iter().cloned().collect();
    let (mut v2, mut classic) =
        tokio::try_join!(d.anomalies(Detector::V2, range, &brands), d.anomalies(Detector::Classic, range, &brands))?;
    let (v2_total, classic_total) = (v2.len(), classic.len());
    v2.truncate(MAX_ANOMALIES);
    classic.truncate(MAX_ANOMALIES);
    let (v2_sent, v2_ledger_written) = d.ledger(Detector::V2).await?;
    let (classic_sent, classic_ledger_written) = d.ledger(Detector::Classic).await?;
    Anomaly::mark_alerted(&mut v2, &v2_sent);
    Anomaly::mark_alerted(&mut classic, &classic_sent);
    Ok(Anomalies { range, brand, v2_total, classic_total, v2, classic, v2_ledger_written, classic_ledger_written })
}

pub async fn quality(d: &Dashboard, query: Option<&str>) -> Result<Quality, Failure> {
    Params::parse(query, &[])?;
    Ok(d.quality().await?)
}

/// One committed micro-batch.
#[derive(Debug, Serialize)]
pub struct Batch {
    pub batch_id: u64,
    pub committed: String,
    pub input_rows: u64,
    pub late_rows: u64,
    pub emitted_windows: u64,
    pub rows_per_second: f64,
    pub watermark: Option<String>,
}

/// Stage 04's state, from its checkpoint (as `funnelpulse stream status`).
#[derive(Debug, Default, Serialize)]
pub struct Stream {
    /// Why there is nothing to show (no checkpoint yet), if so.
    pub message: Option<String>,
    pub checkpoint: String,
    pub source: String,
    pub watermark: Option<String>,
    pub batches: u64,
    pub files: u64,
    pub input_rows: u64,
    pub late_rows: u64,
    pub emitted_windows: u64,
    pub dead_letters: u64,
    pub future_rows: u64,
    /// The input rate of the newest batch that read rows.
    pub rows_per_second: Option<f64>,
    /// What waits in the source (files, or the topic's lag).
    pub waiting: String,
    pub rebuilt: Option<String>,
    /// Quarantined files: (path, reason).
    pub quarantined: Vec<(String, String)>,
    /// The latest batches, newest first.
    pub recent: Vec<Batch>,
    /// The newest emitted windows.
    pub windows: Vec<StreamWindow>,
}

/// Stage 04's status, read by its own code. Its future is not `Send` in
/// the way axum needs (a higher-ranked closure inside), so it runs on a
/// blocking thread, driven by the runtime's handle.
async fn stream_status(d: &Arc<Dashboard>) -> funnelpulse_engine::Result<funnelpulse_stage04::progress::Status> {
    let d = d.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let args = funnelpulse_stage04::Stage04Args { kafka: d.kafka.clone(), ..Default::default() };
        handle.block_on(funnelpulse_stage04::status(&d.lake, &args, d.stores.as_ref()))
    })
    .await?
}

pub async fn stream(d: &Arc<Dashboard>, query: Option<&str>) -> Result<Stream, Failure> {
    Params::parse(query, &[])?;
    let status = match stream_status(d).await {
        Ok(status) => status,
        // No checkpoint yet (or one that cannot be read): say so on the page.
        Err(error) => {
            return Ok(Stream {
                message: Some(funnelpulse_engine::user_error::one_line(&error)),
                ..Default::default()
            });
        }
    };
    let t = &status.totals;
    let recent: Vec<Batch> = status
        .recent
        .iter()
        .rev()
        .map(|b| Batch {
            batch_id: b.batch_id,
            committed: b.timestamp.clone(),
            input_rows: b.input_rows,
            late_rows: b.late_rows,
            emitted_windows: b.emitted_windows,
            rows_per_second: b.input_rows_per_second,
            watermark: b.watermark.clone(),
        })
        .collect();
    Ok(Stream {
        message: None,
        checkpoint: status.checkpoint.clone(),
        source: status.source.clone(),
        watermark: recent.iter().find_map(|b| b.watermark.clone()),
        batches: t.batches,
        files: t.files,
        input_rows: t.input_rows,
        late_rows: t.late_rows,
        emitted_windows: t.emitted_windows,
        dead_letters: t.dead_letters,
        future_rows: t.future_rows,
        rows_per_second: recent.iter().find(|b| b.input_rows > 0).map(|b| b.rows_per_second),
        waiting: status.waiting.clone(),
        rebuilt: status.rebuilt.clone(),
        quarantined: status.quarantined.iter().map(|q| (q.path.clone(), q.reason.clone())).collect(),
        recent,
        windows: d.newest_stream_windows(10).await?,
    })
}
