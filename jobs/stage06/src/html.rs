//! The report as one self-contained HTML page: inline CSS, inline SVG charts,
//! no network access needed to view it. maud escapes every value.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::charts;
use crate::format::{money, name, pct, rate_pct, thousands};
use crate::summary::{AnomalyRow, GroupTotals, Summary};

const STYLE: &str = r#"
body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 0; background: #f8fafc; color: #0f172a; }
header { background: #1e3a8a; color: white; padding: 20px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 26px; }
header p { margin: 0; opacity: .85; }
main { max-width: 960px; margin: 0 auto; padding: 16px 24px 48px; }
section { background: white; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 16px 20px; margin: 18px 0; }
h2 { font-size: 19px; margin: 4px 0 12px; }
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; }
.tile { background: white; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 12px 14px; }
.tile b { display: block; font-size: 22px; }
.tile span { color: #475569; font-size: 13px; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { color: #475569; font-weight: 600; }
.note { color: #475569; font-size: 13px; }
"#;

/// Counts the charts once the page is laid out; a test reads the mark.
const SCRIPT: &str =
    "document.documentElement.dataset.charts = String(document.querySelectorAll('figure svg').length);";

pub fn render(s: &Summary) -> funnelpulse_engine::Result<String> {
    let charts = Charts::draw(s)?;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "FunnelPulse report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "FunnelPulse report" }
                    p { "Lake " (s.lake) " · generated " (s.generated_at) " · "
                        (s.first_window.as_deref().unwrap_or("–")) " to " (s.last_window.as_deref().unwrap_or("–"))
                        " · " (thousands(s.hourly_windows)) " hourly windows" }
                }
                main {
                    (tiles(s))
                    section id="funnel" { h2 { "Funnel" } figure { (PreEscaped(&charts.funnel)) } }
                    section id="conversion" {
                        h2 { "Conversion over time" }
                        figure { (PreEscaped(&charts.conversion)) }
                        p.note { "Markers: days on which the v2 rate test flagged brand-hours (size: how many)." }
                    }
                    section id="brands" {
                        h2 { "Top brands by revenue" }
                        figure { (PreEscaped(&charts.brands)) }
                        (totals_table("brand", &s.top_brands))
                    }
                    section id="categories" {
                        h2 { "Category roots" }
                        figure { (PreEscaped(&charts.categories)) }
                        (totals_table("category root", &s.categories))
                    }
                    section id="price-bands" {
                        h2 { "Price bands" }
                        figure { (PreEscaped(&charts.price_bands)) }
                        (totals_table("price band", &s.price_bands))
                    }
                    (anomalies(s))
                    section id="quality" {
                        h2 { "Data quality" }
                        figure { (PreEscaped(&charts.quality)) }
                        @if !s.quality.rejects_by_reason.is_empty() {
                            table { tr { th { "rejected because" } th { "rows" } }
                                @for (reason, n) in &s.quality.rejects_by_reason { tr { td { (reason) } td { (thousands(*n)) } } } }
                        }
                    }
                    section id="tables" {
                        h2 { "Tables" }
                        table {
                            tr { th { "table" } th { "rows" } th { "columns" } }
                            @for t in &s.tables {
                                tr { td { (t.table) }
                                     td { (t.rows.map_or("not built".to_string(), thousands)) }
                                     td { (t.columns.map_or(String::new(), |c| c.to_string())) } }
                            }
                        }
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    Ok(page.into_string())
}

struct Charts {
    funnel: String,
    conversion: String,
    brands: String,
    categories: String,
    price_bands: String,
    quality: String,
}

impl Charts {
    fn draw(s: &Summary) -> funnelpulse_engine::Result<Self> {
        let f = &s.funnel;
        let funnel_rows = vec![
            ("views".to_string(), f.views as f64),
            ("carts".to_string(), f.carts as f64),
            ("purchases".to_string(), f.purchases as f64),
        ];
        let views = f.views.max(1) as f64;
        let funnel = charts::horizontal_bars(
            "Views → carts → purchases (silver events)",
            &funnel_rows,
            "events",
            charts::PRIMARY,
            |v| format!("{} ({:.1}% of views)", thousands(v as u64), 100.0 * v / views),
        )?;
        let revenue_rows =
            |groups: &[GroupTotals]| groups.iter().map(|g| (name(&g.name), g.revenue)).collect::<Vec<_>>();
        let brands = charts::horizontal_bars(
            "Revenue of the top 10 brands",
            &revenue_rows(&s.top_brands),
            "revenue",
            charts::TEAL,
            money,
        )?;
        let categories = charts::horizontal_bars(
            "Revenue by category root",
            &revenue_rows(&s.categories),
            "revenue",
            charts::VIOLET,
            money,
        )?;
        let band_rows: Vec<(String, f64)> =
            s.price_bands.iter().map(|g| (name(&g.name), 100.0 * g.conversion_rate.unwrap_or(0.0))).collect();
        let price_bands =
            charts::horizontal_bars("Conversion by price band", &band_rows, "conversion %", charts::AMBER, |v| {
                format!("{v:.2}%")
            })?;
        let q = &s.quality;
        let quality_rows: Vec<(String, f64)> = [
            ("rejected raw rows", q.rejected_rows),
            ("filtered out (price ≤ 0, …)", q.filtered_out_rows),
            ("duplicates removed", q.duplicates_removed),
            ("no brand (silver)", q.missing_brand),
            ("no category (silver)", q.missing_category),
            ("no session (silver)", q.missing_session),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v as f64))
        .collect();
        let quality = charts::horizontal_bars(
            "Rows changed or flagged on the way to silver",
            &quality_rows,
            "rows",
            charts::PRIMARY,
            |v| thousands(v as u64),
        )?;
        Ok(Self {
            funnel,
            conversion: charts::conversion_over_time(&s.daily)?,
            brands,
            categories,
            price_bands,
            quality,
        })
    }
}

fn tiles(s: &Summary) -> Markup {
    let revenue: f64 = s.price_bands.iter().map(|b| b.revenue).sum();
    html! {
        div.tiles {
            div.tile { b { (thousands(s.quality.silver_rows)) } span { "events (silver)" } }
            div.tile { b { (thousands(s.funnel.views)) } span { "views" } }
            div.tile { b { (thousands(s.funnel.purchases)) } span { "purchases" } }
            div.tile { b { (money(revenue)) } span { "revenue" } }
            div.tile { b { (pct(s.funnel.view_to_purchase_pct)) } span { "view → purchase" } }
        }
    }
}

fn totals_table(what: &str, groups: &[GroupTotals]) -> Markup {
    html! {
        table {
            tr { th { (what) } th { "revenue" } th { "views" } th { "purchases" } th { "conversion" } }
            @for g in groups {
                tr { td { (name(&g.name)) } td { (money(g.revenue)) } td { (thousands(g.views)) }
                     td { (thousands(g.purchases)) } td { (rate_pct(g.conversion_rate)) } }
            }
        }
    }
}

fn anomaly_table(rows: &[AnomalyRow], baseline: &str, score: &str) -> Markup {
    html! {
        table {
            tr { th { "hour" } th { "brand" } th { "views" } th { "purchases" } th { "conversion" } th { (baseline) } th { (score) } }
            @for r in rows {
                tr { td { (r.window_start) } td { (r.brand) } td { (thousands(r.views)) } td { (thousands(r.purchases)) }
                     td { (rate_pct(r.conversion_rate)) } td { (format!("{:.3}", r.baseline)) } td { (format!("{:.2}", r.score)) } }
            }
        }
    }
}

fn anomalies(s: &Summary) -> Markup {
    let counts = |by_type: &[(String, u64)]| {
        if by_type.is_empty() {
            return "none".to_string();
        }
        by_type.iter().map(|(k, n)| format!("{} {k}s", thousands(*n))).collect::<Vec<_>>().join(", ")
    };
    html! {
        section id="anomalies" {
            h2 { "Anomalies" }
            p { "Classic z-score detector: " (counts(&s.anomalies_by_type)) ". v2 rate test: " (counts(&s.v2_anomalies_by_type)) "." }
            h3 { "Most severe drops (classic, by z_brand)" }
            (anomaly_table(&s.worst_drops, "brand mean", "z_brand"))
            h3 { "Strongest evidence (v2, by p-value)" }
            (anomaly_table(&s.strongest_v2, "expected purchases", "score"))
            h3 { "Brands with the most anomalies (classic)" }
            table { tr { th { "brand" } th { "anomalies" } }
                @for (brand, n) in &s.top_anomaly_brands { tr { td { (brand) } td { (n) } } } }
        }
    }
}
