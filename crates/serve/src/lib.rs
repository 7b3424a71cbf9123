//! `funnelpulse serve`: an interactive dashboard over the lake's tables.
//!
//! Pages are HTML rendered on the server with maud (every value escaped);
//! charts are drawn in the browser by Chart.js (Debian's libjs-chart.js,
//! served by the binary: no network needed) from the `/api/` JSON endpoints,
//! which answer the same figures the pages show. Queries are DataFusion plans
//! built from typed, validated parameters, each over the last committed
//! version of its tables, run in this process ([`Engine::Local`]) or by a
//! Ballista cluster ([`Engine::Cluster`]).

mod data;
mod error;
mod pages;
mod params;
mod views;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::prelude::SessionContext;
use funnelpulse_lake::Lake;
use funnelpulse_stage04::source::KafkaSourceArgs;
use tokio::sync::Semaphore;

use crate::error::{ApiResult, Failure, PageResult};

/// How the server limits its work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Queries running at once; others wait (at most `query_timeout`).
    pub max_queries: usize,
    /// Longest a request may wait and run: then 503 (waiting) or 504 (running).
    pub query_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_queries: 4, query_timeout: Duration::from_secs(30) }
    }
}

/// Where the dashboard's queries run.
pub enum Engine {
    /// DataFusion in this process, over the same object stores and table
    /// reader as the stages. The dashboard's queries read a few partitions
    /// of small tables: a Ballista job per query (even embedded) would add
    /// its scheduling round-trip, about 150 ms, to every chart.
    Local(SessionContext),
    /// A Ballista cluster's session (`--scheduler`), kept with its job watchdog.
    Cluster(funnelpulse_engine::Engine),
}

impl Engine {
    /// In-process DataFusion with `partitions` target partitions.
    pub fn local(partitions: usize) -> funnelpulse_engine::Result<Engine> {
        let config = funnelpulse_engine::cluster::session_config().with_target_partitions(partitions);
        Ok(Engine::Local(SessionContext::new_with_state(funnelpulse_engine::cluster::session_state(config)?)))
    }

    /// The DataFusion session the dashboard's queries run on.
    pub fn ctx(&self) -> &SessionContext {
        match self {
            Engine::Local(ctx) => ctx,
            Engine::Cluster(engine) => &engine.ctx,
        }
    }
}

/// The server's state: one engine session, the lake, and small caches keyed
/// by table versions (so a new commit is seen at the next request).
pub struct Dashboard {
    ctx: SessionContext,
    /// Owns the session (and a cluster's job watchdog).
    _engine: Engine,
    lake: Lake,
    stores: Arc<dyn ObjectStoreRegistry>,
    /// A Kafka stream's brokers and client settings, for the stream page's lag.
    kafka: KafkaSourceArgs,
    permits: Semaphore,
    limits: Limits,
    known: Mutex<Option<data::Known>>,
    #[allow(clippy::type_complexity)]
    quality: Mutex<Option<(Vec<Option<i64>>, data::Quality)>>,
}

impl Dashboard {
    /// `kafka`: a Kafka stream's brokers and client settings (sign-in included), for the
    /// stream page's lag; without brokers the page shows no lag.
    pub fn new(
        engine: Engine,
        lake: Lake,
        stores: Arc<dyn ObjectStoreRegistry>,
        kafka: KafkaSourceArgs,
        limits: Limits,
    ) -> Self {
        Self {
            ctx: engine.ctx().clone(),
            _engine: engine,
            lake,
            stores,
            kafka,
            permits: Semaphore::new(limits.max_queries.max(1)),
            limits,
            known: Mutex::new(None),
            quality: Mutex::new(None),
        }
    }

    /// Runs one request's work within the concurrency bound and the timeout.
    async fn run<T>(&self, work: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
        let timeout = self.limits.query_timeout;
        let waited = tokio::time::timeout(timeout, self.permits.acquire()).await;
        let _permit = waited.map_err(|_| {
            Failure::status(StatusCode::SERVICE_UNAVAILABLE, "the dashboard is busy with other queries; try again")
        })?;
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            Failure::status(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the query took longer than {}s (--query-timeout)", timeout.as_secs_f64()),
            )
        })?
    }
}

/// Every page and endpoint.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview_page))
        .route("/funnel", get(funnel_page))
        .route("/anomalies", get(anomalies_page))
        .route("/stream", get(stream_page))
        .route("/quality", get(quality_page))
        .route("/api/overview", get(overview_api))
        .route("/api/series", get(series_api))
        .route("/api/funnel", get(funnel_api))
        .route("/api/anomalies", get(anomalies_api))
        .route("/api/stream", get(stream_api))
        .route("/api/quality", get(quality_api))
        .route("/assets/chart.min.js", get(chart_js))
        .route("/assets/app.js", get(app_js))
        .fallback(not_found)
        .with_state(dashboard)
}

/// Serves until the process is stopped.
pub async fn serve(dashboard: Arc<Dashboard>, listener: tokio::net::TcpListener) -> funnelpulse_engine::Result<()> {
    axum::serve(listener, router(dashboard)).await?;
    Ok(())
}

type Shared = State<Arc<Dashboard>>;

fn json(value: impl serde::Serialize) -> ApiResult {
    serde_json::to_value(value).map(axum::Json).map_err(|e| Failure::from(funnelpulse_engine::Error::from(e)).json())
}

async fn overview_page(State(d): Shared, RawQuery(q): RawQuery) -> PageResult {
    let view = d.run(views::overview(&d, q.as_deref())).await?;
    Ok(Html(pages::overview(&view).into_string()))
}

async fn overview_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::overview(&d, q.as_deref())).await.map_err(Failure::json)?)
}

async fn series_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::series(&d, q.as_deref())).await.map_err(Failure::json)?)
}

async fn funnel_page(State(d): Shared, RawQuery(q): RawQuery) -> PageResult {
    let view = d.run(views::funnel(&d, q.as_deref())).await?;
    Ok(Html(pages::funnel(&view).into_string()))
}

async fn funnel_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::funnel(&d, q.as_deref())).await.map_err(Failure::json)?)
}

async fn anomalies_page(State(d): Shared, RawQuery(q): RawQuery) -> PageResult {
    let view = d.run(views::anomalies(&d, q.as_deref())).await?;
    Ok(Html(pages::anomalies(&view).into_string()))
}

async fn anomalies_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::anomalies(&d, q.as_deref())).await.map_err(Failure::json)?)
}

async fn stream_page(State(d): Shared, RawQuery(q): RawQuery) -> PageResult {
    let view = d.run(views::stream(&d, q.as_deref())).await?;
    Ok(Html(pages::stream(&view).into_string()))
}

async fn stream_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::stream(&d, q.as_deref())).await.map_err(Failure::json)?)
}

async fn quality_page(State(d): Shared, RawQuery(q): RawQuery) -> PageResult {
    let view = d.run(views::quality(&d, q.as_deref())).await?;
    Ok(Html(pages::quality(&view).into_string()))
}

async fn quality_api(State(d): Shared, RawQuery(q): RawQuery) -> ApiResult {
    json(d.run(views::quality(&d, q.as_deref())).await.map_err(Failure::json)?)
}

/// Chart.js 3.9.1 from Debian's libjs-chart.js (MIT; its licence is beside it
/// in crates/serve/assets/), built into the binary.
async fn chart_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=86400")], CHART_JS)
}

async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript")], APP_JS)
}

const CHART_JS: &[u8] = include_bytes!("../assets/chart.min.js");
const APP_JS: &str = include_str!("../assets/app.js");

async fn not_found() -> Failure {
    Failure::status(StatusCode::NOT_FOUND, "no such page (pages: /, /funnel, /anomalies, /stream, /quality)")
}
