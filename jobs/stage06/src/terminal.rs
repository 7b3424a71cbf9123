//! The summary printed in the terminal, section by section as the original did.

use std::fmt;

use crate::format::{money, name, pct, rate_pct, thousands};
use crate::summary::{AnomalyRow, GroupTotals, Summary};

fn heading(f: &mut fmt::Formatter<'_>, title: &str) -> fmt::Result {
    writeln!(f, "\n{title}\n{}", "─".repeat(title.chars().count()))
}

fn anomaly_lines(f: &mut fmt::Formatter<'_>, rows: &[AnomalyRow], baseline: &str, score: &str) -> fmt::Result {
    writeln!(
        f,
        "  {:<20} {:<18} {:>7} {:>9} {:>10} {:>10} {:>8}",
        "hour", "brand", "views", "purchases", "conversion", baseline, score
    )?;
    for r in rows {
        writeln!(
            f,
            "  {:<20} {:<18} {:>7} {:>9} {:>10} {:>10.3} {:>8.2}",
            r.window_start,
            r.brand,
            thousands(r.views),
            thousands(r.purchases),
            rate_pct(r.conversion_rate),
            r.baseline,
            r.score
        )?;
    }
    Ok(())
}

/// One line per group: name, revenue, views, purchases.
fn revenue_lines(f: &mut fmt::Formatter<'_>, what: &str, groups: &[GroupTotals]) -> fmt::Result {
    writeln!(f, "  {what:<20} {:>14} {:>10} {:>10}", "revenue", "views", "purchases")?;
    for g in groups {
        writeln!(
            f,
            "  {:<20} {:>14} {:>10} {:>10}",
            name(&g.name),
            money(g.revenue),
            thousands(g.views),
            thousands(g.purchases)
        )?;
    }
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "FunnelPulse summary of {} ({})", self.lake, self.generated_at)?;
        heading(f, "Tables")?;
        for t in &self.tables {
            match (t.rows, t.columns) {
                (Some(rows), Some(columns)) => {
                    writeln!(f, "  {:<32} {:>12} rows {:>3} columns", t.table, thousands(rows), columns)?
                }
                _ => writeln!(f, "  {:<32} {:>12}", t.table, "not built")?,
            }
        }
        heading(f, "Time range")?;
        writeln!(
            f,
            "  {} … {}  ({} hourly windows)",
            self.first_window.as_deref().unwrap_or("–"),
            self.last_window.as_deref().unwrap_or("–"),
            thousands(self.hourly_windows)
        )?;
        heading(f, "Events by type (silver)")?;
        for (kind, n) in &self.events_by_type {
            writeln!(f, "  {kind:<18} {:>12}", thousands(*n))?;
        }
        let fun = &self.funnel;
        writeln!(
            f,
            "  funnel: view→cart {}, cart→purchase {}, view→purchase {}",
            pct(fun.view_to_cart_pct),
            pct(fun.cart_to_purchase_pct),
            pct(fun.view_to_purchase_pct)
        )?;
        heading(f, "Top 10 brands by revenue")?;
        revenue_lines(f, "brand", &self.top_brands)?;
        heading(f, "Category roots")?;
        revenue_lines(f, "category root", &self.categories)?;
        heading(f, "Price bands")?;
        writeln!(f, "  {:<10} {:>10} {:>10} {:>14} {:>11}", "band", "views", "purchases", "revenue", "conversion")?;
        for b in &self.price_bands {
            writeln!(
                f,
                "  {:<10} {:>10} {:>10} {:>14} {:>11}",
                name(&b.name),
                thousands(b.views),
                thousands(b.purchases),
                money(b.revenue),
                rate_pct(b.conversion_rate)
            )?;
        }
        heading(f, "Anomalies (classic z-score)")?;
        for (kind, n) in &self.anomalies_by_type {
            writeln!(f, "  {kind:<8} {:>8}", thousands(*n))?;
        }
        writeln!(f, "  brands with the most anomalies:")?;
        for (brand, n) in &self.top_anomaly_brands {
            writeln!(f, "    {brand:<20} {n:>6}")?;
        }
        writeln!(f, "  most severe drops by z_brand:")?;
        anomaly_lines(f, &self.worst_drops, "brand mean", "z_brand")?;
        heading(f, "Anomalies (v2 rate test)")?;
        for (kind, n) in &self.v2_anomalies_by_type {
            writeln!(f, "  {kind:<8} {:>8}", thousands(*n))?;
        }
        writeln!(f, "  strongest evidence:")?;
        anomaly_lines(f, &self.strongest_v2, "expected", "score")?;
        heading(f, "Data quality")?;
        let q = &self.quality;
        for (what, n) in [
            ("bronze rows", q.bronze_rows),
            ("rejected raw rows (bronze_rejects)", q.rejected_rows),
            ("filtered out (price ≤ 0, no time/type)", q.filtered_out_rows),
            ("duplicates removed", q.duplicates_removed),
            ("silver rows", q.silver_rows),
            ("silver rows without brand", q.missing_brand),
            ("silver rows without category", q.missing_category),
            ("silver rows without session", q.missing_session),
        ] {
            writeln!(f, "  {what:<40} {:>12}", thousands(n))?;
        }
        for (reason, n) in &q.rejects_by_reason {
            writeln!(f, "    rejected: {reason:<40} {:>8}", thousands(*n))?;
        }
        Ok(())
    }
}
