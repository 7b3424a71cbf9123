//! Alerts: new anomalies posted to a webhook (Slack-compatible), each at most
//! once across runs.
//!
//! The anomalies already delivered are remembered in the lake
//! (`<lake>/alerts/<table>.sent.json`), updated after every delivered message.
//! A message is retried with exponential backoff on connection errors, 429
//! and 5xx answers; other answers fail at once with the endpoint's reply,
//! redirects too (a 301/302 turns the POST into a bodiless GET, whose OK
//! would mark the anomalies sent).
//! (If the process dies between the endpoint's OK and the ledger update,
//! that one message is sent again on the next run.)
//!
//! The webhook's path and query are its secret (Slack's token): the URL is
//! registered with `funnelpulse_core::redact` before anything can print it,
//! and every line here shows only `scheme://host[:port]/…`.

use std::collections::BTreeSet;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::logical_expr::{Expr, cast, col};
use funnelpulse_core::TableSpec;
use funnelpulse_core::redact::{redact_url, register_secret_url, scrub};
use funnelpulse_core::tables::{GOLD_ANOMALIES_HOURLY_BRAND, GOLD_ANOMALIES_HOURLY_BRAND_V2};
use funnelpulse_engine::Engine;
use funnelpulse_engine::tables::read_table;
use funnelpulse_engine::{Context, bail};
use funnelpulse_lake::Lake;
use object_store::ObjectStoreExt;
use serde::Serialize;

/// Which detector's table the alerts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Detector {
    /// The count-aware rate test (gold_anomalies_hourly_brand_v2).
    #[default]
    V2,
    /// The classic z-score detector (gold_anomalies_hourly_brand).
    Classic,
}

impl Detector {
    fn table(self) -> TableSpec {
        match self {
            Detector::V2 => GOLD_ANOMALIES_HOURLY_BRAND_V2,
            Detector::Classic => GOLD_ANOMALIES_HOURLY_BRAND,
        }
    }

    /// (expected/baseline column, score column) of the detector's table.
    fn evidence_columns(self) -> (&'static str, &'static str) {
        match self {
            Detector::V2 => ("expected_purchases", "score"),
            Detector::Classic => ("conv_mean_brand", "z_brand"),
        }
    }
}

/// Options of the alerts: the webhook, the detector whose anomalies are posted, the retries.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AlertArgs {
    /// Post new anomalies to this webhook (e.g. a Slack incoming webhook).
    #[arg(long = "alert-webhook", visible_alias = "webhook", env = "FUNNELPULSE_ALERT_WEBHOOK", value_name = "URL")]
    pub webhook: Option<String>,
    /// Which detector's anomalies to alert on.
    #[arg(long = "alert-detector", visible_alias = "detector", env = "FUNNELPULSE_ALERT_DETECTOR", value_enum,
          default_value_t = Detector::V2)]
    pub detector: Detector,
    /// Retries of a failed message before giving up (exponential backoff from 250 ms).
    #[arg(long = "alert-retries", visible_alias = "retries", env = "FUNNELPULSE_ALERT_RETRIES", default_value_t = 4)]
    pub retries: usize,
    /// Print the messages instead of posting them (`funnelpulse alert --dry-run`).
    #[arg(skip)]
    pub dry_run: bool,
}

/// One anomaly as posted.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// `drop` or `spike` (serialised as `type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Normalised (lower-case) brand of the anomaly.
    pub brand: String,
    /// Start of the anomalous hour (UTC), as text.
    pub window_start: String,
    /// Views in that brand-hour.
    pub views: i64,
    /// Purchases in that brand-hour.
    pub purchases: i64,
    /// v2: expected purchases; classic: the brand's mean conversion.
    pub baseline: f64,
    /// v2: the score (standard deviations); classic: z_brand.
    pub score: f64,
}

impl Alert {
    fn key(&self) -> String {
        format!("{}|{}|{}", self.brand, self.window_start, self.kind)
    }

    fn line(&self, detector: Detector) -> String {
        let baseline = match detector {
            Detector::V2 => format!("{:.1} expected", self.baseline),
            Detector::Classic => format!("brand mean conversion {:.3}", self.baseline),
        };
        format!(
            "• {} *{}* at {} UTC: {} purchases for {} views ({baseline}), score {:.1}",
            self.kind, self.brand, self.window_start, self.purchases, self.views, self.score
        )
    }
}

/// What one alert run did.
#[derive(Debug, Default, Clone)]
pub struct AlertReport {
    /// Rows in the detector's anomaly table.
    pub anomalies: usize,
    /// Of those, anomalies delivered by earlier runs (in the ledger).
    pub already_sent: usize,
    /// Anomalies delivered by this run (0 with `--dry-run`).
    pub sent: usize,
    /// Messages posted by this run, at most 25 anomalies each.
    pub messages: usize,
    /// The webhook as it may be printed (see [`redact_url`]).
    pub endpoint: String,
    /// With `--dry-run`: the text of each message that would be posted.
    pub dry_run: Option<Vec<String>>,
}

impl std::fmt::Display for AlertReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (anomalies, before, endpoint) = (self.anomalies, self.already_sent, &self.endpoint);
        let Some(previews) = &self.dry_run else {
            let (sent, messages) = (self.sent, self.messages);
            return write!(
                f,
                "alerts: {anomalies} anomalies, {before} sent before, {sent} new sent in {messages} message(s) to {endpoint}"
            );
        };
        write!(
            f,
            "alerts (dry run, nothing posted or recorded): {anomalies} anomalies, {before} sent before, \
             {} message(s) would go to {endpoint}",
            previews.len()
        )?;
        previews.iter().try_for_each(|text| write!(f, "\n{text}"))
    }
}

/// Anomalies per message: Slack truncates long messages.
const PER_MESSAGE: usize = 25;

/// Posts the anomalies of the chosen detector that were never delivered.
pub async fn send_new_alerts(
    engine: &Engine,
    lake: &Lake,
    args: &AlertArgs,
) -> funnelpulse_engine::Result<AlertReport> {
    let Some(webhook) = &args.webhook else { bail!("no webhook configured (--alert-webhook URL)") };
    register_secret_url(webhook);
    let url = webhook_url(webhook)?;
    let table = args.detector.table();
    let alerts = read_alerts(engine, lake, args.detector).await.with_context(|| format!("reading {}", table.name))?;
    let ledger = Ledger::path(&table);
    let mut sent = Ledger::load(lake, &ledger).await?;
    let new: Vec<&Alert> = alerts.iter().filter(|a| !sent.contains(&a.key())).collect();
    let mut report = AlertReport {
        anomalies: alerts.len(),
        already_sent: alerts.len() - new.len(),
        endpoint: redact_url(webhook),
        ..Default::default()
    };
    if args.dry_run {
        let previews = new
            .chunks(PER_MESSAGE)
            .map(|chunk| message(table.name, args.detector, chunk)["text"].as_str().unwrap_or_default().to_string());
        report.dry_run = Some(previews.collect());
        return Ok(report);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(TIMEOUT_SECS))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    for chunk in new.chunks(PER_MESSAGE) {
        let message = message(table.name, args.detector, chunk);
        post_with_retries(&client, &url, &message, args.retries).await?;
        sent.extend(chunk.iter().map(|a| a.key()));
        Ledger::save(lake, &ledger, &sent).await?;
        report.sent += chunk.len();
        report.messages += 1;
    }
    Ok(report)
}

/// How long one attempt may take.
const TIMEOUT_SECS: u64 = 15;

/// The webhook as a URL: http(s), with a host. Errors show it redacted.
fn webhook_url(webhook: &str) -> funnelpulse_engine::Result<reqwest::Url> {
    let fix = "give the whole https://… address (--webhook, --alert-webhook or FUNNELPULSE_ALERT_WEBHOOK)";
    let shown = redact_url(webhook);
    let url = reqwest::Url::parse(webhook)
        .map_err(|e| funnelpulse_engine::plan_error!("the alert webhook {shown} is not a URL ({e}): {fix}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("the alert webhook {shown} is not an http(s) URL: {fix}");
    }
    Ok(url)
}

fn message(table: &str, detector: Detector, alerts: &[&Alert]) -> serde_json::Value {
    let mut text = format!(
        "FunnelPulse: {} new conversion anomal{} ({table})",
        alerts.len(),
        if alerts.len() == 1 { "y" } else { "ies" }
    );
    for a in alerts {
        text.push('\n');
        text.push_str(&a.line(detector));
    }
    serde_json::json!({ "text": text, "source": "funnelpulse", "table": table, "anomalies": alerts })
}

async fn post_with_retries(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: &serde_json::Value,
    retries: usize,
) -> funnelpulse_engine::Result<()> {
    let endpoint = redact_url(url.as_str());
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let attempt = || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = client.post(url.clone()).json(body).send().await.map_err(|e| Delivery::Retry(unreachable(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The reply may echo the request ("Cannot POST /services/…"): scrubbed, and on one line.
        let reply = response.text().await.unwrap_or_default();
        let reply = reply.split_whitespace().collect::<Vec<_>>().join(" ");
        let failure = scrub(&format!("HTTP {status}: {}", reply.chars().take(200).collect::<String>()));
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Delivery::Retry(failure))
        } else {
            Err(Delivery::Refused(failure))
        }
    };
    let backoff = ExponentialBuilder::default().with_min_delay(Duration::from_millis(250)).with_max_times(retries);
    let outcome = attempt
        .retry(backoff)
        .when(|e| matches!(e, Delivery::Retry(_)))
        .notify(|e, wait| log::warn!("alert webhook {endpoint} failed ({e}); retrying in {wait:?}"))
        .await;
    match outcome {
        Ok(()) => Ok(()),
        Err(Delivery::Refused(e)) => {
            Err(funnelpulse_engine::plan_error!("alert webhook {endpoint} refused the message: {e}: check the URL"))
        }
        Err(Delivery::Retry(e)) => Err(funnelpulse_engine::plan_error!(
            "alert webhook {endpoint} failed after {} attempt(s): {e}; the anomalies not delivered are sent by the next run",
            attempts.into_inner()
        )),
    }
}

/// Why a request got no answer, without the URL reqwest puts in its text:
/// the innermost cause says it (refused, DNS, TLS); reqwest's own text does not.
fn unreachable(e: reqwest::Error) -> String {
    let e = e.without_url();
    let what = if e.is_timeout() {
        format!("no answer within {TIMEOUT_SECS} s")
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let cause = std::iter::successors(std::error::Error::source(&e), |s| s.source()).last();
    scrub(&match cause {
        Some(cause) => format!("{what}: {cause}"),
        None => what,
    })
}

/// A failed attempt, as text fit to print.
#[derive(Debug)]
enum Delivery {
    /// No answer, 429 or 5xx: worth another attempt.
    Retry(String),
    Refused(String),
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Retry(s) | Delivery::Refused(s) => write!(f, "{s}"),
        }
    }
}

// Semantics: docs/semantics.md#alerts-state
/// The delivered anomalies of one table, as a JSON list of keys in the lake.
struct Ledger;

impl Ledger {
    fn path(table: &TableSpec) -> String {
        format!("alerts/{}.sent.json", table.name)
    }

    async fn load(lake: &Lake, rel: &str) -> funnelpulse_engine::Result<BTreeSet<String>> {
        let Some(bytes) = lake.read_if_present(rel).await? else { return Ok(BTreeSet::new()) };
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not an alert ledger", lake.url_of(rel)))
    }

    async fn save(lake: &Lake, rel: &str, sent: &BTreeSet<String>) -> funnelpulse_engine::Result<()> {
        let bytes = serde_json::to_vec_pretty(sent)?;
        lake.store()
            .put(&lake.path_of(rel), bytes.into())
            .await
            .with_context(|| format!("writing {}", lake.url_of(rel)))?;
        Ok(())
    }
}

async fn read_alerts(engine: &Engine, lake: &Lake, detector: Detector) -> funnelpulse_engine::Result<Vec<Alert>> {
    let table = detector.table();
    let (baseline, score) = detector.evidence_columns();
    let columns: Vec<Expr> = vec![
        col("anomaly_type"),
        col("brand"),
        cast(col("window_start"), DataType::Utf8),
        col("views"),
        col("purchases"),
        cast(col(baseline), DataType::Float64),
        cast(col(score), DataType::Float64),
    ];
    let df = read_table(&engine.ctx, lake, &table, "run stage 05 first").await?;
    let named: Vec<Expr> = columns.into_iter().enumerate().map(|(i, e)| e.alias(format!("c{i}"))).collect();
    // Oldest first (ISO text sorts like the time), then by brand.
    let batches =
        df.select(named)?.sort(vec![col("c2").sort(true, false), col("c1").sort(true, false)])?.collect().await?;
    let mut alerts = Vec::new();
    for b in batches {
        let text = |i: usize| b.column(i).as_string::<i32>().clone();
        let (kinds, brands, starts) = (text(0), text(1), text(2));
        let (views, purchases) = (b.column(3).as_primitive::<Int64Type>(), b.column(4).as_primitive::<Int64Type>());
        let (baselines, scores) =
            (b.column(5).as_primitive::<Float64Type>(), b.column(6).as_primitive::<Float64Type>());
        for r in 0..b.num_rows() {
            alerts.push(Alert {
                kind: kinds.value(r).to_string(),
                brand: brands.value(r).to_string(),
                window_start: starts.value(r).replace('T', " "),
                views: views.value(r),
                purchases: purchases.value(r),
                baseline: if baselines.is_valid(r) { baselines.value(r) } else { f64::NAN },
                score: scores.value(r),
            });
        }
    }
    Ok(alerts)
}
