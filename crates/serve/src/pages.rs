//! The pages, rendered with maud (every value escaped). Each shows its
//! figures as HTML; charts are `<canvas data-series=URL>` that app.js fills
//! from the JSON endpoints.

use axum::http::StatusCode;
use funnelpulse_stage06::format::{rate_pct, thousands};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::data::{Anomaly, Group, Quality, Totals};
use crate::params::{Filters, Grain, MAX_HOURLY_DAYS, PRICE_BANDS, Range};
use crate::views::{Anomalies, Funnel, Overview, Stream};

// The report's look (stage 06), with a navigation bar and forms.
const STYLE: &str = r#"
body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 0; background: #f8fafc; color: #0f172a; }
header { background: #1e3a8a; color: white; padding: 14px 32px; display: flex; gap: 28px; align-items: baseline; }
header h1 { margin: 0; font-size: 22px; }
header nav a { color: #cbd5e1; margin-right: 18px; text-decoration: none; }
header nav a.on { color: white; font-weight: 600; border-bottom: 2px solid white; }
main { max-width: 1100px; margin: 0 auto; padding: 12px 24px 48px; }
section { background: white; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 4px 0 10px; }
form { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; }
form label { display: flex; flex-direction: column; font-size: 13px; color: #475569; }
form select[multiple] { height: 88px; min-width: 160px; }
button { background: #1e3a8a; color: white; border: 0; border-radius: 6px; padding: 7px 16px; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 16px 0; }
.tile { background: white; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 12px 14px; }
.tile b { display: block; font-size: 22px; }
.tile span { color: #475569; font-size: 13px; }
.up { color: #15803d; } .down { color: #b91c1c; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { color: #475569; font-weight: 600; }
tr.pick { cursor: pointer; } tr.pick:hover, tr.picked { background: #eef2ff; }
.bar { background: #1e3a8a; height: 22px; border-radius: 4px; color: white; font-size: 13px; padding: 2px 8px; white-space: nowrap; }
.note { color: #475569; font-size: 13px; }
.error { border-left: 4px solid #b91c1c; }
canvas { max-height: 320px; }
"#;

const PAGES: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/funnel", "Funnel explorer"),
    ("/anomalies", "Anomalies"),
    ("/stream", "Stream"),
    ("/quality", "Data quality"),
];

fn layout(title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · FunnelPulse" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "FunnelPulse" }
                    nav { @for (href, name) in PAGES { a class=[(href == active).then_some("on")] href=(href) { (name) } } }
                }
                main { (body) }
                script src="/assets/chart.min.js" {}
                script src="/assets/app.js" {}
            }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    layout(
        "Error",
        "",
        html! {
            section.error {
                h2 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p #message { (message) }
            }
        },
    )
}

/// Money, as US dollars (the Kaggle shop's currency).
pub fn money(x: f64) -> String {
    let text = funnelpulse_stage06::format::money(x);
    match text.strip_prefix('-') {
        Some(positive) => format!("-${positive}"),
        None => format!("${text}"),
    }
}

/// A URL with its query string built (and encoded) from pairs.
fn url(path: &str, pairs: &[(&str, String)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{path}?{}", query.finish())
}

fn range_pairs(r: Range) -> Vec<(&'static str, String)> {
    vec![("from", r.from.to_string()), ("to", r.to.to_string())]
}

fn filter_pairs(f: &Filters) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&str, String)> = f.brands.iter().map(|b| ("brand", b.clone())).collect();
    pairs.extend(f.category.iter().map(|c| ("category", c.clone())));
    pairs.extend(f.band.iter().map(|b| ("band", b.to_string())));
    pairs
}

/// The change against the previous period: relative for amounts, in
/// percentage points for rates.
fn delta(now: f64, before: f64, is_rate: bool) -> Markup {
    let (text, sign) = if is_rate {
        let pp = 100.0 * (now - before);
        (format!("{pp:+.2} pp"), pp)
    } else if before == 0.0 {
        return html! { span { "– (none before)" } };
    } else {
        let pct = 100.0 * (now - before) / before;
        (format!("{pct:+.1}%"), pct)
    };
    let class = if sign > 0.0 {
        "up"
    } else if sign < 0.0 {
        "down"
    } else {
        ""
    };
    html! { span.(class) data-delta { (text) " vs previous" } }
}

fn tile(kpi: &str, label: &str, value: String, change: Markup) -> Markup {
    html! { div.tile data-kpi=(kpi) { b { (value) } span { (label) } br; (change) } }
}

fn kpi_tiles(now: &Totals, before: &Totals) -> Markup {
    let amount = |n: f64, b: f64| delta(n, b, false);
    let rate = |n: Option<f64>, b: Option<f64>| match (n, b) {
        (Some(n), Some(b)) => delta(n, b, true),
        _ => html! { span { "–" } },
    };
    html! {
        div.tiles {
            (tile("events", "funnel events", thousands(now.events()), amount(now.events() as f64, before.events() as f64)))
            (tile("views", "views", thousands(now.views), amount(now.views as f64, before.views as f64)))
            (tile("carts", "carts", thousands(now.carts), amount(now.carts as f64, before.carts as f64)))
            (tile("purchases", "purchases", thousands(now.purchases), amount(now.purchases as f64, before.purchases as f64)))
            (tile("revenue", "revenue", money(now.revenue), amount(now.revenue, before.revenue)))
            (tile("view_to_cart", "view → cart", rate_pct(now.view_to_cart), rate(now.view_to_cart, before.view_to_cart)))
            (tile("cart_to_purchase", "cart → purchase", rate_pct(now.cart_to_purchase), rate(now.cart_to_purchase, before.cart_to_purchase)))
            (tile("view_to_purchase", "view → purchase", rate_pct(now.view_to_purchase), rate(now.view_to_purchase, before.view_to_purchase)))
        }
    }
}

fn date_inputs(r: Range) -> Markup {
    html! {
        label { "from" input type="date" name="from" value=(r.from); }
        label { "to" input type="date" name="to" value=(r.to); }
    }
}

pub fn overview(v: &Overview) -> Markup {
    let mut pairs = range_pairs(v.range);
    pairs.push(("grain", v.grain.name().to_string()));
    let series = url("/api/series", &pairs);
    layout(
        "Overview",
        "/",
        html! {
            section {
                form method="get" action="/" {
                    (date_inputs(v.range))
                    label { "points" select name="grain" {
                        @for g in [Grain::Day, Grain::Hour] { option value=(g.name()) selected[g == v.grain] { (g.name()) } }
                    } }
                    button { "Show" }
                }
                p.note { (v.range.from) " to " (v.range.to) " (" (v.range.days()) " days, UTC), against "
                    (v.previous.from) " to " (v.previous.to) ". Hourly points: at most " (MAX_HOURLY_DAYS) " days." }
            }
            (kpi_tiles(&v.current_totals, &v.previous_totals))
            section {
                h2 { "Conversion over time (view → purchase)" }
                canvas #overview-chart data-series=(series) {}
                p.note { "Red triangles: anomalies flagged by the v2 rate test or the classic detector at that "
                    (v.grain.name()) " (hover for the brands)." }
            }
        },
    )
}

fn option_list(values: impl Iterator<Item = String>, chosen: &dyn Fn(&str) -> bool) -> Markup {
    html! { @for value in values { option value=(value) selected[chosen(&value)] { (value) } } }
}

fn funnel_form(v: &Funnel) -> Markup {
    let f = &v.filters;
    html! {
        form method="get" action="/funnel" {
            (date_inputs(v.range))
            label { "brands" select name="brand" multiple {
                (option_list(v.known.brands.iter().cloned(), &|b| f.brands.iter().any(|x| x == b)))
            } }
            label { "category root" select name="category" {
                option value="" { "all" }
                (option_list(v.known.categories.iter().cloned(), &|c| f.category.as_deref() == Some(c)))
            } }
            label { "price band" select name="band" {
                option value="" { "all" }
                (option_list(PRICE_BANDS.iter().map(|b| b.to_string()), &|b| f.band == Some(b)))
            } }
            button { "Apply" }
        }
    }
}

fn funnel_bars(t: &Totals) -> Markup {
    let width = |n: u64| 100.0 * n as f64 / t.views.max(t.carts).max(1) as f64;
    html! {
        table #funnel {
            tr { th { "step" } th style="width:60%" {} th { "events" } th { "rate from the step before" } }
            @for (step, n, rate) in [("views", t.views, None), ("carts", t.carts, Some(t.view_to_cart)), ("purchases", t.purchases, Some(t.cart_to_purchase))] {
                tr data-step=(step) {
                    td { (step) }
                    td { div.bar style=(format!("width:{:.1}%", width(n).max(0.5))) {} }
                    td { (thousands(n)) }
                    td { @if let Some(r) = rate { (rate_pct(r)) } }
                }
            }
        }
        p { "View → purchase: " b #view-to-purchase { (rate_pct(t.view_to_purchase)) } " · revenue " b #revenue { (money(t.revenue)) } }
    }
}

/// A brand's drill-down: (the page filtered on it, its series endpoint).
type DrillLinks<'a> = &'a dyn Fn(&str) -> (String, String);

fn groups_table(what: &str, groups: &[Group], drill: Option<DrillLinks<'_>>) -> Markup {
    html! {
        table {
            tr { th { (what) } th { "revenue" } th { "views" } th { "carts" } th { "purchases" } th { "view → purchase" } }
            @for g in groups {
                tr {
                    td { @match (drill, &g.key) {
                        (Some(link), Some(key)) => { @let (href, series) = link(key); a.drill href=(href) data-series=(series) data-name=(key) { (key) } },
                        _ => { (g.key.as_deref().unwrap_or("(none)")) },
                    } }
                    td { (money(g.totals.revenue)) } td { (thousands(g.totals.views)) } td { (thousands(g.totals.carts)) }
                    td { (thousands(g.totals.purchases)) } td { (rate_pct(g.totals.view_to_purchase)) }
                }
            }
        }
    }
}

pub fn funnel(v: &Funnel) -> Markup {
    let grain = if v.range.days() <= MAX_HOURLY_DAYS { Grain::Hour } else { Grain::Day };
    // A brand's link filters the page on it; with scripts on, it draws its series below instead.
    let drill = |brand: &str| {
        let others = Filters { brands: vec![brand.to_string()], ..v.filters.clone() };
        let mut pairs = range_pairs(v.range);
        pairs.extend(filter_pairs(&others));
        let href = url("/funnel", &pairs);
        pairs.push(("grain", grain.name().to_string()));
        (href, url("/api/series", &pairs))
    };
    layout(
        "Funnel explorer",
        "/funnel",
        html! {
            section { (funnel_form(v)) p.note { "Brands: hold Ctrl to pick several. Figures: " (v.range.from) " to " (v.range.to) " UTC." } }
            section { h2 { "Funnel" } (funnel_bars(&v.totals)) }
            section #top-brands { h2 { "Top brands by revenue" } (groups_table("brand", &v.top_brands, Some(&drill)))
                p.note { "Click a brand for its " (grain.name()) "ly series." } }
            section #drill-section { h2 #drill-title { "Brand series" } canvas #drill-chart {} }
            section #top-categories { h2 { "Top category roots by revenue" } (groups_table("category root", &v.top_categories, None)) }
        },
    )
}

fn optional(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

/// A probability: scientific notation when tiny.
fn small(x: Option<f64>) -> String {
    match x {
        Some(v) if v < 1e-3 => format!("{v:.2e}"),
        other => optional(other, 4),
    }
}

fn anomaly_table(rows: &[Anomaly], v2: bool) -> Markup {
    html! {
        table {
            tr { th { "hour (UTC)" } th { "brand" } th { "type" } th { "views" } th { "purchases" }
                @if v2 { th { "expected purchases" } th { "baseline views" } th { "score" } th { "p-value" } th { "q-value" } }
                @else { th { "conversion" } th { "brand mean" } th { "z (brand)" } th { "z (brand-hour)" } }
                th { "alerted" } }
            @for a in rows {
                @let day = chrono::NaiveDate::parse_from_str(&a.window_start[..10], "%Y-%m-%d").ok();
                @let around = day.map(|d| Range { from: d, to: d }.widened(1));
                @let series = around.map(|r| { let mut p = range_pairs(r); p.push(("grain", "hour".into())); p.push(("brand", a.brand.clone())); url("/api/series", &p) });
                tr.pick data-series=[series] data-at=(a.window_start) data-name=(a.brand) {
                    td { (a.window_start.replace('T', " ")) } td { (a.brand) } td { (a.kind) }
                    td { (thousands(a.views)) } td { (thousands(a.purchases)) }
                    @if v2 {
                        td { (optional(a.expected_purchases, 1)) } td { (a.baseline_views.map_or("–".into(), thousands)) }
                        td { (format!("{:.2}", a.score)) } td { (small(a.p_value)) } td { (small(a.q_value)) }
                    } @else {
                        td { (rate_pct(a.conversion_rate)) } td { (rate_pct(a.conv_mean_brand)) }
                        td { (format!("{:.2}", a.score)) } td { (optional(a.z_brand_hour, 2)) }
                    }
                    td { @if a.alerted { "sent" } @else { "–" } }
                }
            }
        }
    }
}

pub fn anomalies(v: &Anomalies) -> Markup {
    let ledger = |written: &Option<String>| {
        written.clone().map_or("no alert sent yet".into(), |w| format!("alert ledger written {w}"))
    };
    layout(
        "Anomalies",
        "/anomalies",
        html! {
            section {
                form method="get" action="/anomalies" {
                    (date_inputs(v.range))
                    label { "brand" input type="text" name="brand" value=[v.brand.as_deref()] placeholder="all brands"; }
                    button { "Show" }
                }
                p.note { "Click a row: that brand's hours around it, the anomaly's hour marked." }
            }
            section #drill-section { h2 #drill-title { "Brand hours" } canvas #drill-chart {} }
            section #v2 {
                h2 { "Rate test (v2): " span data-count { (v.v2_total) } " flagged, by p-value" }
                p.note { "Observed purchases against the purchases expected from the brand's other hours; " (ledger(&v.v2_ledger_written)) "." }
                (anomaly_table(&v.v2, true))
            }
            section #classic {
                h2 { "Classic z-score: " span data-count { (v.classic_total) } " flagged, by |z|" }
                p.note { "Conversion against the brand's mean; " (ledger(&v.classic_ledger_written)) "." }
                (anomaly_table(&v.classic, false))
            }
        },
    )
}

pub fn quality(q: &Quality) -> Markup {
    let count = |n: Option<u64>| n.map_or("no stream yet".to_string(), thousands);
    layout(
        "Data quality",
        "/quality",
        html! {
            div.tiles {
                (tile("rejected", "rejected raw lines (bronze_rejects)", thousands(q.rejected_rows), html! {}))
                (tile("filtered_out", "filtered out (no price, time or type; price ≤ 0)", thousands(q.filtered_out_rows), html! {}))
                (tile("duplicates", "duplicates removed", thousands(q.duplicates_removed), html! {}))
                (tile("silver", "silver events", thousands(q.silver_rows), html! {}))
                (tile("missing_brand", "no brand (silver)", thousands(q.missing_brand), html! {}))
                (tile("missing_category", "no category (silver)", thousands(q.missing_category), html! {}))
                (tile("missing_session", "no session (silver)", thousands(q.missing_session), html! {}))
                (tile("late", "late events (stream)", count(q.late_events), html! {}))
            }
            section #rejects {
                h2 { "Rejected lines by reason" }
                @if q.rejects_by_reason.is_empty() { p { "No raw line had a problem." } }
                @else {
                    table { tr { th { "reason" } th { "lines" } }
                        @for (reason, n) in &q.rejects_by_reason { tr { td { (reason) } td { (thousands(*n)) } } } }
                }
            }
            section {
                h2 { "Stream set-asides and row counts" }
                table {
                    tr { td { "late events (late_events)" } td { (count(q.late_events)) } }
                    tr { td { "events from the future (future_events)" } td { (count(q.future_events)) } }
                    tr { td { "Kafka dead letters (stream_dead_letters)" } td { (q.dead_letters.map_or("no Kafka stream yet".into(), thousands)) } }
                    tr { td { "bronze rows / silver-eligible" } td { (thousands(q.bronze_rows)) " / " (thousands(q.silver_eligible_rows)) } }
                }
            }
        },
    )
}

fn field(name: &str, value: String) -> Markup {
    html! { b data-field=(name) { (value) } }
}

pub fn stream(s: &Stream) -> Markup {
    let rate = s.rows_per_second.map_or("–".into(), |r| format!("{r:.0}"));
    layout(
        "Stream",
        "/stream",
        html! {
            section #stream data-poll="/api/stream" {
                h2 { "Stage 04 streaming funnel" }
                p #stream-message { @if let Some(m) = &s.message { (m) } }
                p.note { "Checkpoint " span data-field="checkpoint" { (s.checkpoint) } " · source " span data-field="source" { (s.source) }
                    " · updates every second." }
            }
            div.tiles {
                div.tile { (field("batches", thousands(s.batches))) span { "batches committed" } }
                div.tile { (field("watermark", s.watermark.clone().unwrap_or("–".into()))) span { "watermark (UTC)" } }
                div.tile { (field("rows_per_second", rate)) span { "input rows/s (newest batch with rows)" } }
                div.tile { (field("input_rows", thousands(s.input_rows))) span { "input rows" } }
                div.tile { (field("late_rows", thousands(s.late_rows))) span { "late rows" } }
                div.tile { (field("dead_letters", thousands(s.dead_letters))) span { "dead letters" } }
                div.tile { (field("quarantined", thousands(s.quarantined.len() as u64))) span { "quarantined files" } }
                div.tile { (field("emitted_windows", thousands(s.emitted_windows))) span { "windows emitted" } }
            }
            section { p { "Waiting: " span data-field="waiting" { (s.waiting) } } @if let Some(r) = &s.rebuilt { p { (r) } } }
            section { h2 { "Latest batches" } table #recent {
                thead { tr { th { "batch" } th { "committed" } th { "input rows" } th { "late" } th { "windows" } th { "rows/s" } th { "watermark" } } }
                tbody { @for b in &s.recent { tr { td { (b.batch_id) } td { (b.committed) } td { (thousands(b.input_rows)) } td { (b.late_rows) }
                    td { (b.emitted_windows) } td { (format!("{:.0}", b.rows_per_second)) } td { (b.watermark.as_deref().unwrap_or("–")) } } } }
            } }
            section { h2 { "Newest windows" } table #windows {
                thead { tr { th { "window" } th { "brand" } th { "views" } th { "carts" } th { "purchases" } th { "revenue" } } }
                tbody { @for w in &s.windows { tr { td { (w.window_start) } td { (w.brand.as_deref().unwrap_or("(none)")) } td { (thousands(w.totals.views)) }
                    td { (thousands(w.totals.carts)) } td { (thousands(w.totals.purchases)) } td { (money(w.totals.revenue)) } } } }
            } }
            section { h2 { "Quarantined files" } table #quarantined { thead { tr { th { "file" } th { "reason" } } }
                tbody { @for (path, reason) in &s.quarantined { tr { td { (path) } td { (reason) } } } } } }
        },
    )
}
