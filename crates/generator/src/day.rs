//! One day of events: user sessions with a diurnal cycle, sorted by time.

use std::collections::HashMap;
use std::io::Write;

use chrono::{Datelike, NaiveDate};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catalog::Catalog;
use crate::truth::{AnomalyKind, PlantedAnomaly};

/// Share of a day's events in each UTC hour: quiet at night, peak in the
/// (Russian) evening, as in the real data.
pub const HOUR_WEIGHTS: [f64; 24] = [
    0.012, 0.008, 0.008, 0.012, 0.020, 0.030, 0.038, 0.044, 0.048, 0.050, 0.052, 0.052, 0.052, 0.054, 0.056, 0.060,
    0.064, 0.068, 0.070, 0.068, 0.060, 0.048, 0.032, 0.020,
];

/// Event mix: views : carts : purchases ≈ 1 : 0.59 : 0.14, plus remove_from_cart.
const EVENT_TYPES: [&str; 4] = ["view", "cart", "remove_from_cart", "purchase"];
const EVENT_WEIGHTS: [f64; 4] = [1.0, 0.59, 0.45, 0.14];
const VIEW: u8 = 0;
const PURCHASE: u8 = 3;
/// Share of events written twice (exact duplicate rows).
const DUPLICATE_RATE: f64 = 0.02;
/// Share of sessions with an empty user_session.
const EMPTY_SESSION_RATE: f64 = 0.002;

pub fn view_share() -> f64 {
    EVENT_WEIGHTS[0] / EVENT_WEIGHTS.iter().sum::<f64>()
}

/// Rows per day (a weekly rhythm), summing exactly to `rows`.
pub fn daily_quotas(rows: u64, days: &[NaiveDate]) -> Vec<u64> {
    let weights: Vec<f64> = days
        .iter()
        .map(|d| 1.0 + 0.08 * (2.0 * std::f64::consts::PI * d.weekday().num_days_from_monday() as f64 / 7.0).cos())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut quotas: Vec<u64> = weights.iter().map(|w| (rows as f64 * w / total).floor() as u64).collect();
    // The rounding remainder (fewer rows than days) goes to the first days.
    let missing = rows - quotas.iter().sum::<u64>();
    for q in quotas.iter_mut().take(missing as usize) {
        *q += 1;
    }
    quotas
}

struct Event {
    second: u32,
    kind: u8,
    product: u32,
    user: u32,
    session: Option<[u8; 36]>,
}

fn session_id(rng: &mut StdRng) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 36];
    for (i, c) in id.iter_mut().enumerate() {
        *c = if matches!(i, 8 | 13 | 18 | 23) { b'-' } else { HEX[rng.random_range(0..16)] };
    }
    id[14] = b'4';
    id
}

/// Generates `quota` rows for `date`; returns the CSV text (no header).
pub fn generate_day(
    seed: u64,
    date: NaiveDate,
    quota: u64,
    catalog: &Catalog,
    anomalies: &[PlantedAnomaly],
) -> (Vec<u8>, u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ date.num_days_from_ce() as u64);
    let hours = WeightedIndex::new(HOUR_WEIGHTS).expect("weights");
    let kinds = WeightedIndex::new(EVENT_WEIGHTS).expect("weights");
    let planted: HashMap<(u16, u32), AnomalyKind> = anomalies
        .iter()
        .filter(|a| a.window_start.date() == date)
        .filter_map(|a| {
            Some((
                (catalog.brands.iter().position(|b| *b == a.brand)? as u16, a.window_start.time().hour_of_day()),
                a.kind,
            ))
        })
        .collect();

    let mut events: Vec<Event> = Vec::with_capacity(quota as usize + 64);
    while (events.len() as u64) < quota {
        let user = rng.random_range(0..160_000_000u32);
        let session = (rng.random::<f64>() >= EMPTY_SESSION_RATE).then(|| session_id(&mut rng));
        let mut second = hours.sample(&mut rng) as u32 * 3600 + rng.random_range(0..3600);
        let length = 1 + (rng.random::<f64>().ln() / (0.78f64).ln()) as u32; // geometric, mean ≈ 4.5
        let mut product_index = catalog.sample_product(&mut rng);
        for _ in 0..length {
            if second >= 86_400 {
                break;
            }
            if rng.random::<f64>() < 0.55 {
                product_index = catalog.sample_product(&mut rng);
            }
            let product = &catalog.products[product_index];
            let mut kind = kinds.sample(&mut rng) as u8;
            if let Some(brand) = product.brand {
                match planted.get(&(brand, second / 3600)) {
                    // Collapsed purchase rate: most purchases never happen.
                    Some(AnomalyKind::Drop) if kind == PURCHASE && rng.random::<f64>() < 0.9 => kind = VIEW,
                    // Multiplied purchase rate: some views turn into purchases.
                    Some(AnomalyKind::Spike) if kind == VIEW && rng.random::<f64>() < 0.2 => kind = PURCHASE,
                    _ => {}
                }
            }
            let copies = if rng.random::<f64>() < DUPLICATE_RATE { 2 } else { 1 };
            for _ in 0..copies {
                events.push(Event { second, kind, product: product_index as u32, user, session });
            }
            second += rng.random_range(2..180);
        }
    }
    events.truncate(quota as usize);
    events.sort_by_key(|e| e.second);
    (format_events(&events, date, catalog), events.len() as u64)
}

trait HourOfDay {
    fn hour_of_day(&self) -> u32;
}
impl HourOfDay for chrono::NaiveTime {
    fn hour_of_day(&self) -> u32 {
        chrono::Timelike::hour(self)
    }
}

fn format_events(events: &[Event], date: NaiveDate, catalog: &Catalog) -> Vec<u8> {
    let day = date.format("%Y-%m-%d").to_string();
    let mut out = Vec::with_capacity(events.len() * 130);
    for e in events {
        let p = &catalog.products[e.product as usize];
        let (h, m, s) = (e.second / 3600, e.second / 60 % 60, e.second % 60);
        let _ =
            write!(out, "{day} {h:02}:{m:02}:{s:02} UTC,{},{},{},", EVENT_TYPES[e.kind as usize], p.id, p.category_id);
        out.extend_from_slice(p.category_code.unwrap_or("").as_bytes());
        out.push(b',');
        if let Some(b) = p.brand {
            out.extend_from_slice(catalog.brands[b as usize].as_bytes());
        }
        let _ = write!(out, ",{:.2},{},", p.price, 400_000_000 + e.user);
        if let Some(id) = &e.session {
            out.extend_from_slice(id);
        }
        out.push(b'\n');
    }
    out
}
