//! An independent implementation of the reference semantics on raw CSV
//! text, written plainly (hash maps, no DataFusion) to check the pipeline.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDateTime;

use super::tables::{Row, Value};

#[derive(Debug, Clone)]
pub struct Event {
    pub time: Option<NaiveDateTime>,
    pub kind: Option<String>,
    pub product: Option<i64>,
    pub category_id: Option<i64>,
    pub code: Option<String>,
    pub brand: Option<String>,
    pub price: Option<f64>,
    pub user: Option<i64>,
    pub session: Option<String>,
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim_end_matches(" UTC").trim_end_matches('Z').replace('T', " ");
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").ok()
}

/// Every data line of every `*.csv` in `dir` (well-formed input only).
pub fn read_raw(dir: &Path) -> Vec<Event> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    let mut events = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            let f: Vec<Option<&str>> = line.split(',').map(|s| (!s.is_empty()).then_some(s)).collect();
            assert_eq!(f.len(), 9, "reference reads well-formed rows only: {line}");
            events.push(Event {
                time: f[0].and_then(parse_time),
                kind: f[1].map(str::to_string),
                product: f[2].map(|s| s.parse().unwrap()),
                category_id: f[3].map(|s| s.parse().unwrap()),
                code: f[4].map(str::to_string),
                brand: f[5].map(str::to_string),
                price: f[6].map(|s| s.parse().unwrap()),
                user: f[7].map(|s| s.parse().unwrap()),
                session: f[8].map(str::to_string),
            });
        }
    }
    events
}

fn ts(t: &NaiveDateTime) -> Value {
    Value::S(t.format("%Y-%m-%dT%H:%M:%S").to_string())
}
fn s(v: &Option<String>) -> Value {
    v.as_ref().map(|s| Value::S(s.clone())).unwrap_or(Value::Null)
}
fn i(v: Option<i64>) -> Value {
    v.map(Value::I).unwrap_or(Value::Null)
}
fn f(v: Option<f64>) -> Value {
    v.map(Value::F).unwrap_or(Value::Null)
}

pub const BRONZE_COLUMNS: [&str; 10] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
    "event_date",
];

pub fn bronze_rows(events: &[Event]) -> Vec<Row> {
    events
        .iter()
        .map(|e| {
            vec![
                e.time.as_ref().map(ts).unwrap_or(Value::Null),
                s(&e.kind),
                i(e.product),
                i(e.category_id),
                s(&e.code),
                s(&e.brand),
                f(e.price),
                i(e.user),
                s(&e.session),
                e.time.map(|t| Value::S(t.date().to_string())).unwrap_or(Value::Null),
            ]
        })
        .collect()
}

/// Filter, then keep per key the row with the lowest (price, category_id, brand, category_code), nulls last.
pub fn silver(events: &[Event]) -> Vec<Event> {
    type Key = (Option<NaiveDateTime>, Option<i64>, Option<String>, Option<i64>, Option<String>);
    let rank = |e: &Event| {
        (
            e.price.map(ordered),
            e.category_id.map_or((1, 0), |v| (0, v)),
            e.brand.clone().map_or((1, String::new()), |v| (0, v)),
            e.code.clone().map_or((1, String::new()), |v| (0, v)),
        )
    };
    let mut kept: HashMap<Key, Event> = HashMap::new();
    for e in events.iter().filter(|e| e.price.is_some_and(|p| p > 0.0) && e.time.is_some() && e.kind.is_some()) {
        let key = (e.time, e.user, e.session.clone(), e.product, e.kind.clone());
        match kept.get(&key) {
            Some(old) if rank(old) <= rank(e) => {}
            _ => {
                kept.insert(key, e.clone());
            }
        }
    }
    kept.into_values().collect()
}

fn ordered(p: f64) -> i64 {
    (p * 1e6).round() as i64
}

/// Bronze's event columns, silver's additions, then `event_date`.
pub fn silver_columns() -> Vec<&'static str> {
    let events = &BRONZE_COLUMNS[..9];
    let added = ["brand_norm", "category_code_norm", "dq_missing_session", "dq_missing_brand", "dq_missing_category"];
    events.iter().chain(&added).chain(&["event_date"]).copied().collect()
}

pub fn code_norm(code: &str) -> String {
    code.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' { c } else { '_' })
        .collect()
}

pub fn silver_rows(silver: &[Event]) -> Vec<Row> {
    silver
        .iter()
        .map(|e| {
            let mut row = bronze_rows(std::slice::from_ref(e)).remove(0);
            let date = row.pop().unwrap();
            row.push(s(&e.brand.as_ref().map(|b| b.to_lowercase())));
            row.push(s(&e.code.as_deref().map(code_norm)));
            row.push(Value::B(e.session.is_none()));
            row.push(Value::B(e.brand.is_none()));
            row.push(Value::B(e.code.is_none()));
            row.push(date);
            row
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Measures {
    views: i64,
    carts: i64,
    purchases: i64,
    revenue: f64,
}

fn rate(n: i64, d: i64) -> Value {
    if d > 0 { Value::F(n as f64 / d as f64) } else { Value::Null }
}

/// Groups silver by `key` (a list of leading column values) and appends
/// measures, rates and `partition` (computed from the key).
fn funnel(silver: &[Event], key: impl Fn(&Event) -> Vec<Value>, partition: impl Fn(&[Value]) -> Value) -> Vec<Row> {
    let mut groups: BTreeMap<String, (Vec<Value>, Measures)> = BTreeMap::new();
    for e in silver {
        let k = key(e);
        let m = &mut groups.entry(super::tables::row_key(&k)).or_insert_with(|| (k, Measures::default())).1;
        match e.kind.as_deref() {
            Some("view") => m.views += 1,
            Some("cart") => m.carts += 1,
            Some("purchase") => {
                m.purchases += 1;
                m.revenue += e.price.unwrap();
            }
            _ => {}
        }
    }
    groups
        .into_values()
        .map(|(mut row, m)| {
            let p = partition(&row);
            row.extend([
                Value::I(m.views),
                Value::I(m.carts),
                Value::I(m.purchases),
                Value::F(m.revenue),
                rate(m.carts, m.views),
                rate(m.purchases, m.carts),
                rate(m.purchases, m.views),
                p,
            ]);
            row
        })
        .collect()
}

pub const MEASURES: [&str; 7] =
    ["views", "carts", "purchases", "revenue", "view_to_cart_rate", "cart_to_purchase_rate", "conversion_rate"];

fn hour(e: &Event) -> NaiveDateTime {
    let t = e.time.unwrap();
    t.date().and_hms_opt(chrono::Timelike::hour(&t), 0, 0).unwrap()
}

fn window(e: &Event) -> Vec<Value> {
    let start = hour(e);
    vec![ts(&start), ts(&(start + chrono::Duration::hours(1)))]
}

fn date_of_window(row: &[Value]) -> Value {
    match &row[0] {
        Value::S(t) => Value::S(t[..10].to_string()),
        _ => Value::Null,
    }
}

pub fn hourly_brand(silver: &[Event]) -> Vec<Row> {
    funnel(silver, |e| [window(e), vec![s(&e.brand.as_ref().map(|b| b.to_lowercase()))]].concat(), date_of_window)
}

pub fn daily_brand(silver: &[Event]) -> Vec<Row> {
    funnel(
        silver,
        |e| vec![Value::S(e.time.unwrap().date().to_string()), s(&e.brand.as_ref().map(|b| b.to_lowercase()))],
        |row| row[0].clone(),
    )
    .into_iter()
    .map(|mut row| {
        row.remove(0); // the date is the partition column, last
        row
    })
    .collect()
}

pub fn daily_category(silver: &[Event]) -> Vec<Row> {
    funnel(
        silver,
        |e| {
            let root = e.code.as_deref().map(|c| code_norm(c).split('.').next().unwrap().to_string());
            vec![Value::S(e.time.unwrap().date().to_string()), s(&root)]
        },
        |row| row[0].clone(),
    )
    .into_iter()
    .map(|mut row| {
        row.remove(0);
        row
    })
    .collect()
}

pub fn price_band_of(p: f64) -> &'static str {
    if p < 10.0 {
        "<10"
    } else if p < 30.0 {
        "10-30"
    } else if p < 60.0 {
        "30-60"
    } else {
        "60_plus"
    }
}

pub fn hourly_price_band(silver: &[Event]) -> Vec<Row> {
    funnel(silver, |e| [window(e), vec![Value::S(price_band_of(e.price.unwrap()).into())]].concat(), date_of_window)
}
