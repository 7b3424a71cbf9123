//! Planted anomalies and `truth.json`.

use chrono::{NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::day::{HOUR_WEIGHTS, daily_quotas, view_share};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    /// Purchase rate collapsed to about a tenth.
    Drop,
    /// Purchase rate multiplied (about ×3).
    Spike,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedAnomaly {
    /// `brand_norm` of the affected brand.
    pub brand: String,
    /// Start of the affected hour (UTC), `YYYY-MM-DDTHH:00:00`.
    pub window_start: NaiveDateTime,
    #[serde(rename = "type")]
    pub kind: AnomalyKind,
    /// Views the brand-hour is expected to have (before any anomaly).
    pub expected_views: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub rows: u64,
    pub start: NaiveDate,
    pub days: u32,
    pub anomalies: Vec<PlantedAnomaly>,
}

/// Fewest expected views of a planted brand-hour: the classic detector only
/// judges hours with ≥ 50 views, so smaller brands are near its limit.
const MIN_EXPECTED_VIEWS: f64 = 40.0;

/// Brand-hours with enough expected views to be judged (≥ 40), spread over
/// brand sizes (big, medium and small brands in equal numbers), never in the
/// first three days (so baselines exist), about 2 drops per spike.
pub fn plan_anomalies(seed: u64, catalog: &Catalog, days: &[NaiveDate], rows: u64) -> Vec<PlantedAnomaly> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA0A0_11E5);
    let quotas = daily_quotas(rows, days);
    let hour_total: f64 = HOUR_WEIGHTS.iter().sum();
    let expected = |brand: usize, day: usize, hour: usize| {
        quotas[day] as f64 * HOUR_WEIGHTS[hour] / hour_total * catalog.brand_share[brand] * view_share()
    };
    if days.len() < 5 {
        return Vec::new();
    }
    // Brands that reach enough expected views at the evening peak, biggest first.
    let mut eligible: Vec<usize> =
        (0..catalog.brands.len()).filter(|&b| expected(b, 3, 18) >= MIN_EXPECTED_VIEWS).collect();
    eligible.sort_by(|a, b| catalog.brand_share[*b].total_cmp(&catalog.brand_share[*a]));
    if eligible.is_empty() {
        return Vec::new();
    }
    let tiers: Vec<&[usize]> = eligible.chunks(eligible.len().div_ceil(3)).collect();
    let wanted = 60;
    let mut planted: Vec<PlantedAnomaly> = Vec::new();
    let mut attempts = 0;
    while planted.len() < wanted && attempts < wanted * 50 {
        attempts += 1;
        let tier = tiers[planted.len() % tiers.len()];
        let brand = tier[rng.random_range(0..tier.len())];
        let day = rng.random_range(3..days.len());
        let hour = rng.random_range(8..22);
        let views = expected(brand, day, hour);
        if views < MIN_EXPECTED_VIEWS {
            continue;
        }
        let window_start = days[day].and_hms_opt(hour as u32, 0, 0).expect("valid hour");
        if planted.iter().any(|a| a.brand == catalog.brands[brand] && a.window_start == window_start) {
            continue;
        }
        let kind = if planted.len() % 3 == 2 { AnomalyKind::Spike } else { AnomalyKind::Drop };
        planted.push(PlantedAnomaly {
            brand: catalog.brands[brand].clone(),
            window_start,
            kind,
            expected_views: views.round(),
        });
    }
    planted.sort_by(|a, b| (a.window_start, &a.brand).cmp(&(b.window_start, &b.brand)));
    planted
}
