//! Stage 06: the summary report.
//!
//! Gathers the figures the original printed (docs/semantics.md#report-stage-06) with Ballista
//! queries over the lake, prints them, and writes one self-contained HTML page
//! with charts (`<lake>/reports/summary.html`) and the same figures as JSON
//! (`<lake>/reports/summary.json`).

mod charts;
pub mod format;
mod html;
pub mod query;
pub mod summary;
mod terminal;

use funnelpulse_engine::{Engine, StageProgress};
use funnelpulse_lake::Lake;

pub use summary::Summary;

/// What stage 06 produced: the figures and where the report files were written.
pub struct Stage06Report {
    /// Every figure of the report.
    pub summary: Summary,
    /// URL of `<lake>/reports/summary.html`.
    pub html_url: String,
    /// URL of `<lake>/reports/summary.json`.
    pub json_url: String,
}

impl std::fmt::Display for Stage06Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary)?;
        writeln!(f, "\nreport written to {} (figures: {})", self.html_url, self.json_url)
    }
}

/// The report of the tables as of `as_of` (the latest versions by default).
pub async fn run(
    engine: &Engine,
    lake: &Lake,
    as_of: &funnelpulse_lake::AsOf,
) -> funnelpulse_engine::Result<Stage06Report> {
    let progress = StageProgress::start("06");
    progress.step("gathering figures");
    let summary = summary::gather(engine, lake, as_of).await?;
    progress.step("drawing the report");
    let page = html::render(&summary)?;
    let html_url = lake.put_report("summary.html", page.into_bytes()).await?;
    let json_url = lake.put_report("summary.json", serde_json::to_vec_pretty(&summary)?).await?;
    progress.finish();
    Ok(Stage06Report { summary, html_url, json_url })
}

/// The summary report of the lake.
pub struct Stage06;

impl funnelpulse_engine::Stage for Stage06 {
    const ID: &'static str = "06";
    const ABOUT: &'static str = "summary report of the lake, printed and written as <lake>/reports/summary.html";
    type Args = funnelpulse_engine::AsOfArgs;
    type Report = Stage06Report;

    async fn run(
        engine: &Engine,
        lake: &Lake,
        args: &funnelpulse_engine::AsOfArgs,
    ) -> funnelpulse_engine::Result<Stage06Report> {
        run(engine, lake, &args.for_several_tables("the report")?).await
    }
}
