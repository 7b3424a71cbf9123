//! Stage 06: the report's figures equal the tables, and the HTML page renders
//! in a real headless browser.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{funnelpulse_ok, generate};

struct Run {
    _dir: tempfile::TempDir,
    lake: PathBuf,
    printed: String,
}

/// The whole batch pipeline, then the report, on a small generated dataset.
fn report_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = generate(dir.path(), 40_000, 6);
        let lake = dir.path().join("lake");
        let printed = funnelpulse_ok(
            dir.path(),
            &[
                "run",
                "all",
                "--raw",
                raw.to_str().unwrap(),
                "--lake",
                lake.to_str().unwrap(),
                // Small data: low classic thresholds so that the report has anomalies to show.
                "--baseline-min-views",
                "5",
                "--anomaly-min-views",
                "10",
            ],
        );
        Run { _dir: dir, lake, printed }
    })
}

/// Plain DataFusion over the lake's tables (not our code path).
async fn sql(lake: &Path, query: &str) -> Vec<Vec<String>> {
    let tables = [
        ("silver_events", "event_date"),
        ("gold_funnel_daily_brand", "date"),
        ("gold_funnel_hourly_price_band", "window_date"),
        ("gold_anomalies_hourly_brand", "window_date"),
        ("gold_anomalies_hourly_brand_v2", "window_date"),
    ];
    common::tables::sql_text(lake, &tables, query).await
}

fn summary(lake: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(lake.join("reports/summary.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn report_figures_equal_the_tables() {
    let run = report_run();
    let s = summary(&run.lake);
    let html = std::fs::read_to_string(run.lake.join("reports/summary.html")).unwrap();

    let funnel = &sql(
        &run.lake,
        "select sum(case when event_type='view' then 1 else 0 end), sum(case when event_type='cart' then 1 else 0 end), \
         sum(case when event_type='purchase' then 1 else 0 end) from silver_events",
    )
    .await[0];
    assert_eq!(s["funnel"]["views"].to_string(), funnel[0]);
    assert_eq!(s["funnel"]["carts"].to_string(), funnel[1]);
    assert_eq!(s["funnel"]["purchases"].to_string(), funnel[2]);

    let brands = sql(
        &run.lake,
        "select brand, sum(revenue) r, sum(views), sum(purchases) from gold_funnel_daily_brand where brand is not null \
         group by brand order by r desc, brand limit 10",
    )
    .await;
    let reported = s["top_brands"].as_array().unwrap();
    assert_eq!(reported.len(), brands.len());
    for (r, b) in reported.iter().zip(&brands) {
        assert_eq!(r["name"].as_str().unwrap(), b[0]);
        assert_eq!(format!("{:.2}", r["revenue"].as_f64().unwrap()), b[1]);
        assert_eq!(r["views"].to_string(), b[2]);
        assert_eq!(r["purchases"].to_string(), b[3]);
        assert!(html.contains(&format!("<td>{}</td>", b[0])), "brand {} missing from the page", b[0]);
    }

    let bands = sql(
        &run.lake,
        "select price_band, sum(views), sum(purchases) from gold_funnel_hourly_price_band group by price_band",
    )
    .await;
    for b in &bands {
        let r = s["price_bands"].as_array().unwrap().iter().find(|r| r["name"] == b[0].as_str()).unwrap();
        assert_eq!((r["views"].to_string(), r["purchases"].to_string()), (b[1].clone(), b[2].clone()));
    }

    for (table, key) in [
        ("gold_anomalies_hourly_brand", "anomalies_by_type"),
        ("gold_anomalies_hourly_brand_v2", "v2_anomalies_by_type"),
    ] {
        let counts = sql(
            &run.lake,
            &format!("select anomaly_type, count(*) from {table} group by anomaly_type order by anomaly_type"),
        )
        .await;
        let reported: Vec<Vec<String>> = s[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| vec![p[0].as_str().unwrap().to_string(), p[1].to_string()])
            .collect();
        assert_eq!(reported, counts, "{key}");
    }
    let classic_total: u64 = s["anomalies_by_type"].as_array().unwrap().iter().map(|p| p[1].as_u64().unwrap()).sum();
    assert!(classic_total > 0, "the report test needs some anomalies to show");
    let worst = &s["worst_drops"][0];
    let z = sql(&run.lake, "select brand, min(z_brand) from gold_anomalies_hourly_brand where anomaly_type = 'drop' group by brand order by 2 limit 1").await;
    if let Some(z) = z.first() {
        assert_eq!(
            (worst["brand"].as_str().unwrap(), format!("{:.2}", worst["score"].as_f64().unwrap())),
            (z[0].as_str(), z[1].clone())
        );
    }

    // The terminal gets the same sections.
    for section in
        ["Tables", "Events by type", "Top 10 brands by revenue", "Price bands", "Anomalies (classic", "Data quality"]
    {
        assert!(run.printed.contains(section), "{section} not printed:\n{}", run.printed);
    }
    assert!(html.contains(&format!(
        "<b>{}</b>",
        funnelpulse_stage06::format::thousands(s["funnel"]["views"].as_u64().unwrap())
    )));
}

/// Debian's chromium (installed by .ci/run).
fn chromium() -> &'static str {
    for candidate in ["chromium", "chromium-headless-shell", "google-chrome"] {
        if Command::new(candidate).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return candidate;
        }
    }
    panic!("no chromium on PATH: `apt-get install chromium` (.ci/run does)");
}

fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs")
}

#[tokio::test]
async fn report_renders_in_a_headless_browser() {
    let run = report_run();
    let page = run.lake.join("reports/summary.html");

    // The page's script ran (no error stopped it) and found every chart.
    let dom = headless(&page, &["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(
        dom_text.contains("data-charts=\"6\""),
        "charts not all rendered:\n{}\n{log}",
        &dom_text[..dom_text.len().min(400)]
    );
    assert!(!log.contains("Uncaught"), "script error: {log}");

    // A screenshot that is not blank: many colours, a good share of non-white pixels.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let out = headless(&page, &[&format!("--screenshot={}", shot.display()), "--window-size=1000,3200"]);
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    let total = (info.width * info.height) as usize;
    for px in pixels[..total * channels].chunks(channels) {
        colours.insert(px[..3].to_vec());
        if px[..3].iter().any(|&c| c < 235) {
            inked += 1;
        }
    }
    eprintln!(
        "screenshot {} : {} colours, {:.1}% inked",
        shot.display(),
        colours.len(),
        100.0 * inked as f64 / total as f64
    );
    assert!(colours.len() > 50, "the screenshot looks blank ({} colours)", colours.len());
    assert!(inked * 20 > total, "the screenshot is almost empty");
}
