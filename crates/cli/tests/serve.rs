//! `funnelpulse serve`: every figure of the dashboard's endpoints equals an
//! independent query of the tables (plain DataFusion SQL), bad input is a 4xx
//! with a message, and each page renders in headless Chromium without a
//! script error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{FUNNELPULSE, free_port, funnelpulse_ok, generate, wait_for_port};
use serde_json::Value;

/// A `funnelpulse serve` process, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, lake: &Path) -> Server {
        Self::start_with(dir, lake, &[])
    }

    /// With further flags (`--scheduler df://…`).
    fn start_with(dir: &Path, lake: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let child = Command::new(FUNNELPULSE)
            .current_dir(dir)
            .args(["serve", "--lake", lake.to_str().unwrap(), "--bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for_port(port);
        Server { child, port }
    }

    /// GET over HTTP/1.0 (no chunked bodies): (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    dir: tempfile::TempDir,
    lake: PathBuf,
}

/// The whole pipeline on a small generated dataset (dense enough for planted
/// anomalies that both detectors flag), shared by the tests.
fn lake() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = generate(dir.path(), 300_000, 8);
        add_html_brand(&raw);
        let lake = dir.path().join("lake");
        let lake_arg = lake.to_str().unwrap();
        // Low classic thresholds so that small data has anomalies to show.
        let args = ["--baseline-min-views", "5", "--anomaly-min-views", "10"];
        funnelpulse_ok(
            dir.path(),
            &[&["run", "all", "--raw", raw.to_str().unwrap(), "--lake", lake_arg], &args[..]].concat(),
        );
        Run { dir, lake }
    })
}

/// A brand whose name is markup (and an ampersand): pages must show it as text.
const HTML_BRAND: &str = "<b>bold</b>&co";

/// Appends a view and a purchase of [`HTML_BRAND`] to the generated data (its last day).
fn add_html_brand(raw: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let mut csv = std::fs::OpenOptions::new().append(true).open(files.last().unwrap()).unwrap();
    for (time, kind) in [("12:00:00", "view"), ("12:01:00", "purchase")] {
        writeln!(csv, "2019-10-08 {time} UTC,{kind},1,2,,{HTML_BRAND},12.5,3,s-html").unwrap();
    }
}

/// The shared lake and a server of this test's own over it (a server in a
/// static would outlive the test process).
struct Served {
    run: &'static Run,
    lake: PathBuf,
    server: Server,
}

fn run() -> Served {
    let run = lake();
    Served { run, lake: run.lake.clone(), server: Server::start(run.dir.path(), &run.lake) }
}

/// `key=value&…`, encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// Plain DataFusion over the lake's tables (not our code path); floats with 2 decimals.
async fn sql(lake: &Path, text: &str) -> Vec<Vec<String>> {
    let tables = [
        ("bronze_events", "event_date"),
        ("bronze_rejects", "event_date"),
        ("silver_events", "event_date"),
        ("gold_funnel_daily_brand", "date"),
        ("gold_anomalies_hourly_brand", "window_date"),
        ("gold_anomalies_hourly_brand_v2", "window_date"),
        ("late_events", "event_date"),
    ];
    common::tables::sql_text(lake, &tables, text).await
}

/// The funnel measures of silver events, SQL-side: views, carts, purchases, revenue.
const MEASURES: &str = "count(case when event_type = 'view' then 1 end) v, count(case when event_type = 'cart' then 1 end) c, \
     count(case when event_type = 'purchase' then 1 end) p, \
     coalesce(sum(case when event_type = 'purchase' then price end), 0.0) r";

const PRICE_BAND: &str = "case when price < 10 then '<10' when price < 30 then '10-30' when price < 60 then '30-60' \
     else '60_plus' end";

fn figures(v: &Value) -> Vec<String> {
    vec![
        v["views"].to_string(),
        v["carts"].to_string(),
        v["purchases"].to_string(),
        format!("{:.2}", v["revenue"].as_f64().unwrap()),
    ]
}

/// The data's first and last dates.
async fn dates(lake: &Path) -> (String, String) {
    let r = &sql(lake, "select min(event_date), max(event_date) from silver_events").await[0];
    (r[0].clone(), r[1].clone())
}

fn day_before(date: &str) -> String {
    let d: chrono::NaiveDate = date.parse().unwrap();
    (d - chrono::Duration::days(1)).to_string()
}

#[tokio::test]
async fn overview_kpis_equal_the_tables() {
    let run = run();
    let (first, last) = dates(&run.lake).await;
    let middle = day_before(&last);
    for (from, to) in
        [(first.as_str(), last.as_str()), (middle.as_str(), last.as_str()), (last.as_str(), last.as_str())]
    {
        let v = run.server.json(&format!("/api/overview?{}", query(&[("from", from), ("to", to)])));
        let expected = &sql(
            &run.lake,
            &format!("select {MEASURES} from silver_events where event_date between '{from}' and '{to}'"),
        )
        .await[0];
        assert_eq!(figures(&v["current_totals"]), *expected, "{from}..{to}");
        let (pf, pt) = (v["previous"]["from"].as_str().unwrap(), v["previous"]["to"].as_str().unwrap());
        let before = &sql(
            &run.lake,
            &format!("select {MEASURES} from silver_events where event_date between '{pf}' and '{pt}'"),
        )
        .await[0];
        assert_eq!(figures(&v["previous_totals"]), *before, "previous of {from}..{to}");
        // The page shows the same figures, money as currency.
        let (status, page) = run.server.get(&format!("/?{}", query(&[("from", from), ("to", to)])));
        assert_eq!(status, 200);
        let views: u64 = expected[0].parse().unwrap();
        assert!(page.contains(&format!("<b>{}</b>", funnelpulse_stage06::format::thousands(views))), "views missing");
        let revenue: f64 = expected[3].parse().unwrap();
        assert!(page.contains(&format!("<b>${}</b>", funnelpulse_stage06::format::money(revenue))), "revenue missing");
    }
    // With no range: the last 7 days of the data.
    let v = run.server.json("/api/overview");
    assert_eq!(v["range"]["to"], last.as_str());
}

/// Brands, a category root and a price band to filter on: the biggest of each.
async fn filter_values(lake: &Path) -> (Vec<String>, String) {
    let brands = sql(lake, "select brand_norm, count(*) n from silver_events where brand_norm is not null group by brand_norm order by n desc, brand_norm limit 2").await;
    let category = sql(lake, "select split_part(category_code_norm, '.', 1) c, count(*) n from silver_events where category_code_norm is not null group by c order by n desc, c limit 1").await;
    (brands.into_iter().map(|r| r[0].clone()).collect(), category[0][0].clone())
}

#[tokio::test]
async fn funnel_figures_equal_the_tables_under_filters() {
    let run = run();
    let (first, last) = dates(&run.lake).await;
    let (brands, category) = filter_values(&run.lake).await;
    let (b0, b1) = (brands[0].as_str(), brands[1].as_str());
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (vec![], "true".into()),
        (vec![("brand", b0)], format!("brand_norm = '{b0}'")),
        (vec![("brand", b0), ("brand", b1)], format!("brand_norm in ('{b0}', '{b1}')")),
        (vec![("category", &category)], format!("split_part(category_code_norm, '.', 1) = '{category}'")),
        (vec![("band", "10-30")], format!("{PRICE_BAND} = '10-30'")),
        (vec![("brand", b0), ("band", "<10")], format!("brand_norm = '{b0}' and {PRICE_BAND} = '<10'")),
        (
            vec![("brand", b1), ("category", &category), ("band", "30-60")],
            format!(
                "brand_norm = '{b1}' and split_part(category_code_norm, '.', 1) = '{category}' and {PRICE_BAND} = '30-60'"
            ),
        ),
    ];
    for (from, to) in [(first.as_str(), last.as_str()), (last.as_str(), last.as_str())] {
        for (filters, condition) in &cases {
            let mut pairs = vec![("from", from), ("to", to)];
            pairs.extend(filters.iter().copied());
            let what = format!("{pairs:?}");
            let v = run.server.json(&format!("/api/funnel?{}", query(&pairs)));
            let within = format!("event_date between '{from}' and '{to}' and {condition}");
            let expected = &sql(&run.lake, &format!("select {MEASURES} from silver_events where {within}")).await[0];
            assert_eq!(figures(&v["totals"]), *expected, "totals {what}");

            let top = sql(
                &run.lake,
                &format!(
                    "select brand_norm, {MEASURES} from silver_events where {within} and brand_norm is not null \
                 group by brand_norm order by r desc, brand_norm limit 10"
                ),
            )
            .await;
            let shown: Vec<Vec<String>> = v["top_brands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| [vec![g["key"].as_str().unwrap().to_string()], figures(g)].concat())
                .collect();
            assert_eq!(shown, top, "top brands {what}");

            let categories = sql(&run.lake, &format!(
                "select coalesce(k, 'null'), v, c, p, r from (select split_part(category_code_norm, '.', 1) k, {MEASURES} \
                 from silver_events where {within} group by k) order by r desc, k limit 10")).await;
            let shown: Vec<Vec<String>> = v["top_categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| [vec![g["key"].as_str().unwrap_or("null").to_string()], figures(g)].concat())
                .collect();
            let key = |r: &Vec<String>| r.clone();
            let (mut shown, mut categories) = (shown, categories);
            shown.sort_by_key(key);
            categories.sort_by_key(key);
            assert_eq!(shown, categories, "top categories {what}");
        }
    }
}

#[tokio::test]
async fn a_brands_hourly_series_and_its_anomalies_equal_the_tables() {
    let run = run();
    let (first, last) = dates(&run.lake).await;
    let brand = sql(
        &run.lake,
        "select brand, count(*) n from gold_anomalies_hourly_brand_v2 group by brand order by n desc, brand limit 1",
    )
    .await;
    let brand = brand.first().map(|r| r[0].clone()).unwrap_or(filter_values(&run.lake).await.0[0].clone());
    for (grain, key) in [("hour", "cast(date_trunc('hour', event_time) as varchar)"), ("day", "event_date")] {
        let v = run.server.json(&format!(
            "/api/series?{}",
            query(&[("from", &first), ("to", &last), ("grain", grain), ("brand", &brand)])
        ));
        let expected = sql(
            &run.lake,
            &format!(
                "select {key} k, {MEASURES} from silver_events where brand_norm = '{brand}' group by k order by k"
            ),
        )
        .await;
        let shown: Vec<Vec<String>> = v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| [vec![p["key"].as_str().unwrap().replace('T', " ")], figures(p)].concat())
            .collect();
        let expected: Vec<Vec<String>> = expected
            .into_iter()
            .map(|mut r| {
                r[0] = r[0].replace('T', " ");
                r
            })
            .collect();
        assert_eq!(shown, expected, "{grain}");
        let flagged = &sql(
            &run.lake,
            &format!(
                "select (select count(*) from gold_anomalies_hourly_brand_v2 where brand = '{brand}') + \
                    (select count(*) from gold_anomalies_hourly_brand where brand = '{brand}') n"
            ),
        )
        .await[0][0];
        assert_eq!(v["anomalies"].as_array().unwrap().len().to_string(), *flagged, "{grain} markers");
        // Markers sit on points of the series (their hour, or their day).
        for m in v["anomalies"].as_array().unwrap() {
            assert!(v["points"].as_array().unwrap().iter().any(|p| p["key"] == m["at"]), "{m} is on no point");
        }
    }
}

#[tokio::test]
async fn anomalies_are_ranked_with_their_evidence_and_alert_status() {
    let run = run();
    let (first, last) = dates(&run.lake).await;
    let strongest = sql(&run.lake,
        "select brand, cast(window_start as varchar) ws, anomaly_type, expected_purchases, q_value from gold_anomalies_hourly_brand_v2 \
         order by p_value, window_start, brand limit 1").await;
    let strongest = strongest.first().expect("the test data has v2 anomalies");
    // An alert ledger naming that anomaly (the format of stage 05's ledger).
    let ledger = run.lake.join("alerts/gold_anomalies_hourly_brand_v2.sent.json");
    std::fs::create_dir_all(ledger.parent().unwrap()).unwrap();
    let key = format!("{}|{}|{}", strongest[0], strongest[1].replace('T', " "), strongest[2]);
    std::fs::write(&ledger, serde_json::to_vec(&[key]).unwrap()).unwrap();

    let v = run.server.json(&format!("/api/anomalies?{}", query(&[("from", &first), ("to", &last)])));
    let counts = &sql(&run.lake,
        "select (select count(*) from gold_anomalies_hourly_brand_v2) a, (select count(*) from gold_anomalies_hourly_brand) b").await[0];
    assert_eq!((v["v2_total"].to_string(), v["classic_total"].to_string()), (counts[0].clone(), counts[1].clone()));
    let top = &v["v2"][0];
    assert_eq!(top["brand"], strongest[0].as_str());
    assert_eq!(top["window_start"].as_str().unwrap().replace('T', " "), strongest[1].replace('T', " "));
    assert_eq!(format!("{:.2}", top["expected_purchases"].as_f64().unwrap()), strongest[3]);
    assert_eq!(format!("{:.2}", top["q_value"].as_f64().unwrap()), strongest[4]);
    assert_eq!(top["alerted"], true);
    assert_eq!(v["v2"].as_array().unwrap().iter().filter(|a| a["alerted"] == true).count(), 1);
    assert!(v["v2_ledger_written"].is_string());
    // Ranked: p-values never decrease.
    let p: Vec<f64> = v["v2"].as_array().unwrap().iter().map(|a| a["p_value"].as_f64().unwrap()).collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    // The page lists them, the alerted one marked.
    let (status, page) = run.server.get(&format!("/anomalies?{}", query(&[("from", &first), ("to", &last)])));
    assert_eq!(status, 200);
    assert!(page.contains(&format!("<span data-count>{}</span>", counts[0])) && page.contains("<td>sent</td>"));
}

#[tokio::test]
async fn data_quality_equals_the_tables() {
    let run = run();
    let v = run.server.json("/api/quality");
    let rejects =
        sql(&run.lake, "select reason, count(*) n from bronze_rejects group by reason order by n desc, reason").await;
    let shown: Vec<Vec<String>> = v["rejects_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| vec![r[0].as_str().unwrap().to_string(), r[1].to_string()])
        .collect();
    assert_eq!(shown, rejects);
    let counts = &sql(
        &run.lake,
        "select e.n - s.n, s.b, s.c, s.s, l.n from \
         (select count(*) n from bronze_events \
          where price is not null and price > 0 and event_time is not null and event_type is not null) e, \
         (select count(*) n, count(case when dq_missing_brand then 1 end) b, count(case when dq_missing_category then 1 end) c, \
          count(case when dq_missing_session then 1 end) s from silver_events) s, \
         (select count(*) n from late_events) l",
    )
    .await[0];
    let shown: Vec<String> =
        ["duplicates_removed", "missing_brand", "missing_category", "missing_session", "late_events"]
            .iter()
            .map(|k| v[k].to_string())
            .collect();
    assert_eq!(shown, *counts);
    let (status, page) = run.server.get("/quality");
    assert_eq!(status, 200);
    assert!(page.contains("duplicates removed"));
}

#[tokio::test]
async fn the_stream_page_shows_stage_04s_checkpoint() {
    let run = run();
    let v = run.server.json("/api/stream");
    let status = funnelpulse_ok(run.run.dir.path(), &["stream", "status", "--lake", run.lake.to_str().unwrap()]);
    assert!(v["message"].is_null(), "{v}");
    assert!(status.contains(&format!("{} batches committed", v["batches"])), "{v}\n{status}");
    assert!(v["batches"].as_u64().unwrap() > 0 && v["watermark"].is_string(), "{v}");
    assert_eq!(v["recent"][0]["batch_id"].as_u64().unwrap() + 1, v["batches"].as_u64().unwrap());
}

#[test]
fn bad_input_answers_4xx_with_a_message() {
    let run = run();
    let script = "<script>alert(1)</script>";
    let bad: Vec<(&str, String)> = vec![
        ("unknown parameter", query(&[("bogus", "1")])),
        ("malformed date", query(&[("from", "2019-13-45")])),
        ("not a date", query(&[("to", "yesterday'; drop table x")])),
        ("huge range", query(&[("from", "1990-01-01"), ("to", "2019-10-31")])),
        ("reversed range", query(&[("from", "2019-10-10"), ("to", "2019-10-01")])),
        ("repeated", query(&[("from", "2019-10-01"), ("from", "2019-10-02")])),
    ];
    let filtered = ["/", "/funnel", "/anomalies", "/api/overview", "/api/series", "/api/funnel", "/api/anomalies"];
    for path in filtered {
        for (what, q) in &bad {
            let (status, body) = run.server.get(&format!("{path}?{q}"));
            assert_eq!(status, 400, "{path} {what}: {body}");
            assert_message(path, &body);
        }
    }
    for path in ["/funnel", "/anomalies", "/api/series", "/api/funnel", "/api/anomalies"] {
        let (status, body) = run.server.get(&format!("{path}?{}", query(&[("brand", script)])));
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("unknown brand"), "{path}: {body}");
        if path.starts_with("/api/") {
            assert_message(path, &body); // JSON: a string value, never markup
        } else {
            assert!(!body.contains(script) && body.contains("&lt;script&gt;"), "{path} does not escape it: {body}");
        }
    }
    for (path, q) in [
        ("/api/series", query(&[("grain", "minute")])),
        ("/api/series", query(&[("grain", "hour"), ("from", "2019-01-01"), ("to", "2019-06-01")])),
        ("/api/funnel", query(&[("band", "cheap")])),
        ("/api/funnel", query(&[("category", "<b>x</b>")])),
        ("/quality", query(&[("x", "1")])),
        ("/api/quality", query(&[("x", "1")])),
        ("/stream", query(&[("x", "1")])),
        ("/api/stream", query(&[("x", "1")])),
    ] {
        let (status, body) = run.server.get(&format!("{path}?{q}"));
        assert_eq!(status, 400, "{path}?{q}: {body}");
        assert_message(path, &body);
    }
    // A brand of the data whose name is markup: shown escaped, as text.
    let escaped = "&lt;b&gt;bold&lt;/b&gt;&amp;co";
    for path in ["/funnel", "/anomalies"] {
        let (status, page) =
            run.server.get(&format!("{path}?{}", query(&[("brand", HTML_BRAND), ("to", "2019-10-08")])));
        assert_eq!(status, 200, "{path}: {page}");
        assert!(page.contains(escaped) && !page.contains(HTML_BRAND), "{path} does not escape the brand");
    }
    let v = run.server.json(&format!("/api/funnel?{}", query(&[("brand", HTML_BRAND), ("to", "2019-10-08")])));
    assert_eq!((v["totals"]["views"].as_u64(), v["totals"]["purchases"].as_u64()), (Some(1), Some(1)));
    let (status, body) = run.server.get("/nothing-here");
    assert_eq!(status, 404, "{body}");
}

/// A JSON error with a message, or an HTML page with one.
fn assert_message(path: &str, body: &str) {
    if path.starts_with("/api/") {
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().is_some_and(|m| m.len() > 10), "{path}: {body}");
    } else {
        assert!(body.contains("<p id=\"message\">"), "{path}: {body}");
    }
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

/// Loads `url` in headless Chromium, lets its scripts run, and returns the DOM and the log.
fn headless(url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg("--virtual-time-budget=15000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

/// Not blank: many colours and a good share of non-white pixels.
fn assert_not_blank(shot: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let total = (info.width * info.height) as usize;
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    for px in pixels[..total * channels].chunks(channels) {
        colours.insert(px[..3].to_vec());
        inked += usize::from(px[..3].iter().any(|&c| c < 235));
    }
    assert!(colours.len() > 50, "{} looks blank ({} colours)", shot.display(), colours.len());
    assert!(inked * 20 > total, "{} is almost empty", shot.display());
}

#[test]
fn pages_render_in_headless_chromium() {
    let run = run();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first, last) = rt.block_on(dates(&run.lake));
    let (brands, _) = rt.block_on(filter_values(&run.lake));
    let range = query(&[("from", &first), ("to", &last)]);
    let overview = run.server.json(&format!("/api/overview?{range}&grain=hour"));
    let views = funnelpulse_stage06::format::thousands(overview["current_totals"]["views"].as_u64().unwrap());
    let funnel = run.server.json(&format!("/api/funnel?{range}"));
    let brand_views = funnelpulse_stage06::format::thousands(funnel["totals"]["views"].as_u64().unwrap());
    let listed = run.server.json(&format!("/api/anomalies?{range}"));
    let top_v2 = listed["v2"][0]["brand"].as_str().expect("the test data has v2 anomalies").to_string();
    // (page, what must be on it, charts drawn)
    let pages: Vec<(String, Vec<String>, &str)> = vec![
        (format!("/?{range}&grain=hour"), vec![format!("<b>{views}</b>")], "1"),
        // A drill-down link: the brand's hourly series is drawn.
        (
            format!("/funnel?{range}#drill={}", brands[0]),
            vec![brand_views, format!("data-drilled=\"{}\"", brands[0])],
            "0",
        ),
        (format!("/anomalies?{range}#drill={top_v2}"), vec![format!("data-drilled=\"{top_v2}\"")], "0"),
        // A brand whose name is markup: its drill-down title is text.
        (
            format!(
                "/funnel?{}#drill={}",
                query(&[("brand", HTML_BRAND), ("to", &last)]),
                url::form_urlencoded::byte_serialize(HTML_BRAND.as_bytes()).collect::<String>()
            ),
            vec!["id=\"drill-title\">&lt;b&gt;bold&lt;/b&gt;&amp;co: hourly series<".into()],
            "0",
        ),
        ("/stream".to_string(), vec!["data-batches=\"".into()], "0"),
        ("/quality".to_string(), vec!["duplicates removed".into()], "0"),
    ];
    for (i, (path, expected, charts)) in pages.iter().enumerate() {
        let (dom, log) = headless(&run.server.url(path), &["--dump-dom"]);
        assert!(
            dom.contains("data-ready=\"1\""),
            "{path}: scripts did not finish:\n{log}\n{}",
            &dom[..dom.len().min(600)]
        );
        assert!(dom.contains(&format!("data-charts=\"{charts}\"")), "{path}: charts not drawn:\n{log}");
        assert!(!dom.contains("data-error") && !log.contains("Uncaught"), "{path}: script error:\n{log}");
        for text in expected {
            assert!(dom.contains(text.as_str()), "{path}: {text} not on the page");
        }
        let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{i}.png"));
        let _ = std::fs::remove_file(&shot);
        headless(&run.server.url(path), &[&format!("--screenshot={}", shot.display()), "--window-size=1200,1400"]);
        assert!(shot.exists(), "{path}: no screenshot");
        assert_not_blank(&shot);
    }
}

/// While a stage-04 stream runs, a committed batch shows on the stream
/// endpoint the page polls every second, within 2 s of its commit.
#[test]
fn the_stream_page_follows_a_running_stream() {
    let run = lake();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    common::copy_dir(&run.lake, &lake);
    let server = Server::start(dir.path(), &lake);
    let lake_arg = lake.to_str().unwrap();
    let started = std::time::SystemTime::now();
    let mut stream = common::stream::command(
        dir.path(),
        &[
            "run",
            "04",
            "--lake",
            lake_arg,
            "--reset-stream",
            "--max-files-per-trigger",
            "1",
            "--file-settle",
            "0s",
            "--trigger-interval",
            "200ms",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let commits = lake.join("checkpoints/stream_hourly_brand/commits");
    let batches = || server.json("/api/stream")["batches"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut delays = Vec::new();
    let mut measured = std::collections::BTreeSet::new();
    while delays.len() < 3 && Instant::now() < deadline {
        // A batch committed by this run (its commit file is the commit point), not yet measured.
        if let Some((id, written)) = newest_commit(&commits, started)
            && measured.insert(id)
        {
            while batches() < id + 1 && written.elapsed().unwrap() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            delays.push(written.elapsed().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The page itself, in a real browser: when its DOM is taken, it shows at
    // least every batch committed 2 s before.
    let (dom, log) = headless(&server.url("/stream"), &["--dump-dom"]);
    let taken = std::time::SystemTime::now();
    let _ = stream.kill();
    let _ = stream.wait();
    let shown: u64 = dom
        .split("data-batches=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the stream page never updated itself:\n{log}"));
    let committed_before = committed_since(&commits, started, taken - Duration::from_secs(2));
    assert!(shown >= committed_before, "the page shows {shown} batches; {committed_before} were committed 2 s earlier");
    eprintln!(
        "commit → stream endpoint delays: {delays:?}; page showed {shown}, {committed_before} committed 2 s before"
    );
    assert!(!delays.is_empty(), "no batch was committed while the test watched");
    // The page polls every second: a commit shows within the poll plus this delay.
    assert!(delays.iter().all(|d| *d + Duration::from_secs(1) <= Duration::from_secs(2)), "{delays:?}");
}

/// Batches committed between `since` and `until` (by their commit files).
fn committed_since(commits: &Path, since: std::time::SystemTime, until: std::time::SystemTime) -> u64 {
    let written = |e: &std::fs::DirEntry| e.metadata().ok().and_then(|m| m.modified().ok());
    std::fs::read_dir(commits)
        .unwrap()
        .flatten()
        .filter(|e| written(e).is_some_and(|w| w >= since && w <= until))
        .count() as u64
}

/// The newest commit file written since `since`: (batch id, when).
fn newest_commit(commits: &Path, since: std::time::SystemTime) -> Option<(u64, std::time::SystemTime)> {
    std::fs::read_dir(commits)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.strip_suffix(".json")?.parse().ok()?;
            let written = e.metadata().ok()?.modified().ok()?;
            (written >= since).then_some((id, written))
        })
        .max()
}

/// A W3C WebDriver session on Debian's chromedriver (headless Chromium),
/// spoken over plain HTTP: what a user does (pick filters, press Apply, click
/// a brand, click an anomaly), not a page loaded with its answer in the URL.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs: `apt-get install chromium-driver` (.ci/run does)");
        wait_for_port(port);
        let mut browser = Browser { driver, port, session: String::new() };
        let capabilities = serde_json::json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "binary": which(chromium()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1400"],
        } } } });
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().expect("a WebDriver session").to_string();
        browser
    }

    /// One WebDriver command: its `value`, or a panic naming the command and the driver's answer.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // chromedriver keeps the connection open: read the head, then Content-Length bytes.
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
            if line.trim().is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert!(head.contains(" 200 "), "WebDriver {method} {path}: {head}\n{answer}");
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), Some(serde_json::json!({ "url": url })));
        self.wait_for("the page's scripts", "return document.documentElement.dataset.ready === '1'");
    }

    /// Runs `script` in the page until it returns true (10 s at most), failing on a script error.
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let error = self.script("return document.documentElement.dataset.error || null");
            assert!(error.is_null(), "script error while waiting for {what}: {error}");
            if self.script(script) == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// Clicks the first element `css` selects.
    fn click(&self, css: &str) {
        let found = self.call(
            "POST",
            &self.session_path("/element"),
            Some(serde_json::json!({ "using": "css selector", "value": css })),
        );
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element id");
        self.call("POST", &self.session_path(&format!("/element/{id}/click")), Some(serde_json::json!({})));
    }

    fn text(&self, css: &str) -> String {
        let script = format!("return document.querySelector({}).textContent.trim()", serde_json::json!(css));
        self.script(&script).as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = self.session_path("");
            let _ = std::panic::catch_unwind(|| self.call("DELETE", &path, None));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The full path of a command on PATH (chromedriver wants the browser's path).
fn which(command: &str) -> String {
    let out = Command::new("sh").args(["-c", &format!("command -v {command}")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_user_filters_and_clicks_through_the_dashboard_in_chromium() {
    let run = run();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first, last) = rt.block_on(dates(&run.lake));
    let (brands, _) = rt.block_on(filter_values(&run.lake));
    let browser = Browser::start();

    // Funnel explorer: pick a brand and a price band in the form, press Apply.
    browser.open(&run.server.url(&format!("/funnel?{}", query(&[("from", &first), ("to", &last)]))));
    browser.click(&format!("select[name=brand] option[value={}]", serde_json::json!(brands[0])));
    browser.click("select[name=band] option[value='10-30']");
    browser.click("form[action='/funnel'] button");
    browser.wait_for("the filtered page", "return location.search.includes('band=10-30')");
    browser.wait_for("the page's scripts", "return document.documentElement.dataset.ready === '1'");
    let filters = query(&[("from", &first), ("to", &last), ("brand", &brands[0]), ("band", "10-30")]);
    let expected = run.server.json(&format!("/api/funnel?{filters}"));
    let views = funnelpulse_stage06::format::thousands(expected["totals"]["views"].as_u64().unwrap());
    assert_eq!(browser.text("tr[data-step=views] td:nth-child(3)"), views, "the filtered funnel's views");

    // A click on a brand draws its series below.
    browser.click("#top-brands a.drill");
    browser.wait_for(
        "the brand's series",
        &format!("return document.documentElement.dataset.drilled === {}", serde_json::json!(brands[0])),
    );
    assert!(browser.text("#drill-title").starts_with(&brands[0]), "{}", browser.text("#drill-title"));

    // Anomalies: a click on the first flagged hour draws that brand's hours around it.
    browser.open(&run.server.url(&format!("/anomalies?{}", query(&[("from", &first), ("to", &last)]))));
    let name = browser.script("return document.querySelector('tr.pick').dataset.name");
    let name = name.as_str().expect("the test data has anomalies").to_string();
    browser.click("tr.pick");
    browser.wait_for(
        "the anomaly's series",
        &format!("return document.documentElement.dataset.drilled === {}", serde_json::json!(name)),
    );
    assert!(browser.text("#drill-title").contains(" around "), "{}", browser.text("#drill-title"));
}

/// With `--scheduler`, every query is a Ballista job on a local cluster
/// (scheduler and executors as processes): each endpoint answers as in-process.
#[test]
fn on_a_local_cluster_every_endpoint_answers_as_in_process() {
    let run = run();
    let cluster = common::LocalCluster::start(2);
    let on_cluster = Server::start_with(run.run.dir.path(), &run.lake, &["--scheduler", &cluster.url()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first, last) = rt.block_on(dates(&run.lake));
    let (brands, category) = rt.block_on(filter_values(&run.lake));
    let range = query(&[("from", &first), ("to", &last)]);
    for path in [
        format!("/api/overview?{range}&grain=hour"),
        format!("/api/funnel?{range}&{}", query(&[("brand", &brands[0]), ("category", &category)])),
        format!("/api/series?{range}&grain=hour&{}", query(&[("brand", &brands[1])])),
        format!("/api/anomalies?{range}"),
        "/api/quality".to_string(),
    ] {
        assert_eq!(on_cluster.json(&path), run.server.json(&path), "{path}");
    }
}
