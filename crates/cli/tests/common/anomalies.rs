//! Independent implementations of stage 05's two detectors over gold rows
//! (as read back from `gold_funnel_hourly_brand`), written plainly.

use std::collections::HashMap;

use super::tables::{Row, Value};

/// Gold hourly brand columns in table order.
pub const GOLD_COLUMNS: [&str; 11] = [
    "window_start",
    "window_end",
    "brand",
    "views",
    "carts",
    "purchases",
    "revenue",
    "view_to_cart_rate",
    "cart_to_purchase_rate",
    "conversion_rate",
    "window_date",
];

pub const CLASSIC_EXTRA: [&str; 10] = [
    "hour_of_day",
    "conv_mean_brand",
    "conv_std_brand",
    "conv_mean_brand_hour",
    "conv_std_brand_hour",
    "z_brand",
    "z_brand_hour",
    "is_drop_anomaly",
    "is_spike_anomaly",
    "anomaly_type",
];

pub const V2_EXTRA: [&str; 11] = [
    "hour_of_day",
    "baseline_views",
    "baseline_hour_views",
    "expected_rate",
    "expected_purchases",
    "observed_to_expected",
    "dispersion",
    "score",
    "p_value",
    "q_value",
    "anomaly_type",
];

/// Columns of an anomalies table: gold columns, the detector's, `window_date` last.
pub fn columns(extra: &[&'static str]) -> Vec<&'static str> {
    GOLD_COLUMNS[..10].iter().chain(extra).chain(&["window_date"]).copied().collect()
}

struct Hour<'a> {
    row: &'a Row,
    brand: String,
    hour: i64,
    views: i64,
    purchases: i64,
    rate: Option<f64>,
}

fn hours(gold: &[Row]) -> Vec<Hour<'_>> {
    gold.iter()
        .filter_map(|row| {
            let Value::S(brand) = &row[2] else { return None };
            let Value::S(start) = &row[0] else { panic!("window_start") };
            let int = |v: &Value| if let Value::I(i) = v { *i } else { panic!("integer column") };
            let rate = if let Value::F(f) = row[9] { Some(f) } else { None };
            Some(Hour {
                row,
                brand: brand.clone(),
                hour: start[11..13].parse().unwrap(),
                views: int(&row[3]),
                purchases: int(&row[5]),
                rate,
            })
        })
        .collect()
}

fn f(v: Option<f64>) -> Value {
    v.map(Value::F).unwrap_or(Value::Null)
}

/// Mean and sample standard deviation (None for one value).
fn mean_std(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, None);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.sqrt()))
}

fn with_extra(h: &Hour, extra: Vec<Value>) -> Row {
    let mut row = h.row[..10].to_vec();
    row.extend(extra);
    row.push(h.row[10].clone());
    row
}

/// gold_anomalies_hourly_brand as the semantics describe it.
pub fn classic(gold: &[Row], baseline_min_views: i64, anomaly_min_views: i64, z_threshold: f64) -> Vec<Row> {
    let base: Vec<Hour> = hours(gold).into_iter().filter(|h| h.views >= baseline_min_views).collect();
    let mut by_brand: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut by_brand_hour: HashMap<(&str, i64), Vec<f64>> = HashMap::new();
    for h in &base {
        by_brand.entry(&h.brand).or_default().push(h.rate.unwrap());
        by_brand_hour.entry((&h.brand, h.hour)).or_default().push(h.rate.unwrap());
    }
    let z = |rate: f64, (mean, std): (f64, Option<f64>)| match std {
        Some(s) if s != 0.0 => (rate - mean) / s,
        _ => 0.0,
    };
    let mut out = Vec::new();
    for h in &base {
        let b = mean_std(&by_brand[h.brand.as_str()]);
        let bh = mean_std(&by_brand_hour[&(h.brand.as_str(), h.hour)]);
        let (zb, zbh) = (z(h.rate.unwrap(), b), z(h.rate.unwrap(), bh));
        let enough = h.views >= anomaly_min_views;
        let drop = enough && (zb <= -z_threshold || zbh <= -z_threshold);
        let spike = enough && (zb >= z_threshold || zbh >= z_threshold);
        if !(drop || spike) {
            continue;
        }
        out.push(with_extra(
            h,
            vec![
                Value::S(h.hour.to_string()),
                Value::F(b.0),
                f(b.1),
                Value::F(bh.0),
                f(bh.1),
                Value::F(zb),
                Value::F(zbh),
                Value::B(drop),
                Value::B(spike),
                Value::S(if drop { "drop" } else { "spike" }.into()),
            ],
        ));
    }
    out
}

pub struct V2Options {
    pub min_views: i64,
    pub prior_views: f64,
    pub fdr: f64,
    pub min_change: f64,
}

/// The hours with at least `min_views` views whose brand has no other view at
/// that hour of day: without a prior (`--v2-prior-views 0`) they have no baseline.
pub fn hours_alone_at_their_hour_of_day(gold: &[Row], min_views: i64) -> usize {
    let all = hours(gold);
    let mut views: HashMap<(&str, i64), i64> = HashMap::new();
    for h in &all {
        *views.entry((&h.brand, h.hour)).or_default() += h.views;
    }
    all.iter().filter(|h| h.views >= min_views && views[&(h.brand.as_str(), h.hour)] == h.views).count()
}

/// gold_anomalies_hourly_brand_v2 as documented in docs/semantics.md and docs/anomalies.md.
pub fn v2(gold: &[Row], o: &V2Options) -> Vec<Row> {
    let all = hours(gold);
    let mut brand_totals: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut hour_totals: HashMap<(&str, i64), (i64, i64)> = HashMap::new();
    for h in &all {
        let t = brand_totals.entry(&h.brand).or_default();
        (t.0, t.1) = (t.0 + h.views, t.1 + h.purchases);
        let t = hour_totals.entry((&h.brand, h.hour)).or_default();
        (t.0, t.1) = (t.0 + h.views, t.1 + h.purchases);
    }
    struct Tested<'a> {
        h: &'a Hour<'a>,
        baseline_views: i64,
        baseline_hour_views: i64,
        expected_rate: f64,
        expected: f64,
        raw: f64,
    }
    let mut tested = Vec::new();
    for h in all.iter().filter(|h| h.views >= o.min_views) {
        let (bv, bp) = brand_totals[h.brand.as_str()];
        let (hv, hp) = hour_totals[&(h.brand.as_str(), h.hour)];
        let (bv, bp, hv, hp) = (bv - h.views, bp - h.purchases, hv - h.views, hp - h.purchases);
        if bv == 0 {
            continue;
        }
        if hv as f64 + o.prior_views == 0.0 {
            continue; // no other view at this hour of day and no prior: no baseline
        }
        let brand_rate = bp as f64 / bv as f64;
        let expected_rate = (hp as f64 + o.prior_views * brand_rate) / (hv as f64 + o.prior_views);
        let expected = h.views as f64 * expected_rate;
        if expected <= 0.0 {
            continue;
        }
        // Conditional test: k purchases among the hour's k + n purchases and views.
        let (k, n) = (h.purchases as f64, h.views as f64);
        let total = k + n;
        let share = expected_rate / (1.0 + expected_rate);
        let mean = total * share;
        let xlx = |x: f64, m: f64| if x == 0.0 { 0.0 } else { x * (x / m).ln() };
        let deviance = 2.0 * (xlx(k, mean) + xlx(n, total - mean));
        let raw = if k == mean { 0.0 } else { (k - mean).signum() * deviance.max(0.0).sqrt() };
        tested.push(Tested { h, baseline_views: bv, baseline_hour_views: hv, expected_rate, expected, raw });
    }
    let mut squares: HashMap<&str, Vec<f64>> = HashMap::new();
    for t in tested.iter().filter(|t| t.expected >= 5.0) {
        squares.entry(&t.h.brand).or_default().push(t.raw * t.raw);
    }
    let dispersion = |brand: &str| {
        squares.get(brand).map_or(1.0, |v| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
            (median / 0.454_936_423_119_572_8).max(1.0)
        })
    };
    let scored: Vec<(f64, f64, f64, &Tested)> = tested
        .iter()
        .map(|t| {
            let d = dispersion(&t.h.brand);
            let score = t.raw / d.sqrt();
            (d, score, libm::erfc(score.abs() / std::f64::consts::SQRT_2), t)
        })
        .collect();
    // Benjamini–Hochberg, ties broken by brand then hour.
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| {
        scored[a].2.total_cmp(&scored[b].2).then(scored[a].3.h.brand.cmp(&scored[b].3.h.brand)).then_with(|| {
            let start = |i: usize| scored[i].3.h.row[0].to_string();
            start(a).cmp(&start(b))
        })
    });
    let m = scored.len() as f64;
    let mut q = vec![0.0; scored.len()];
    let mut running = f64::INFINITY;
    for (rank0, &i) in order.iter().enumerate().rev() {
        running = running.min(scored[i].2 * m / (rank0 + 1) as f64);
        q[i] = running.min(1.0);
    }
    let mut out = Vec::new();
    for (i, (d, score, p, t)) in scored.iter().enumerate() {
        let ratio = t.h.purchases as f64 / t.expected;
        let kind = if q[i] > o.fdr {
            continue;
        } else if ratio <= 1.0 - o.min_change {
            "drop"
        } else if ratio >= 1.0 + o.min_change {
            "spike"
        } else {
            continue;
        };
        out.push(with_extra(
            t.h,
            vec![
                Value::S(t.h.hour.to_string()),
                Value::I(t.baseline_views),
                Value::I(t.baseline_hour_views),
                Value::F(t.expected_rate),
                Value::F(t.expected),
                Value::F(ratio),
                Value::F(*d),
                Value::F(*score),
                Value::F(*p),
                Value::F(q[i]),
                Value::S(kind.into()),
            ],
        ));
    }
    out
}
