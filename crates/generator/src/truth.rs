//! Planted anomalies and `truth.json`.

use chrono::{NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::day::{HOUR_WEIGHTS, daily_quotas, view_share};

/// Direction of a planted anomaly; `drop` or `spike` in `truth.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    /// Purchase rate collapsed to about a tenth.
    Drop,
    /// Purchase rate multiplied (about ×3).
    Spike,
}

/// One brand-hour whose purchase rate was changed on purpose.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedAnomaly {
    /// `brand_norm` of the affected brand.
    pub brand: String,
    /// Start of the affected hour (UTC), `YYYY-MM-DDTHH:00:00`.
    pub window_start: NaiveDateTime,
    /// Drop or spike; the key `type` in the JSON.
    #[serde(rename = "type")]
    pub kind: AnomalyKind,
    /// Views the brand-hour is expected to have (before any anomaly).
    pub expected_views: f64,
}

/// The contents of `truth.json`: how the data was generated and what was planted in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    /// Random seed of the data.
    pub seed: u64,
    /// Data rows generated.
    pub rows: u64,
    /// First day of data (UTC).
    pub start: NaiveDate,
    /// Number of days generated.
    pub days: u32,
    /// The planted anomalies, sorted by `window_start`, then brand.
    pub anomalies: Vec<PlantedAnomaly>,
}

/// Fewest expected views of a planted brand-hour. Below about 100 views (≈ 14
/// expected purchases) one hour's collapse cannot be told from chance at a
/// useful false-alarm rate: 0 purchases where 5.6 are expected happens by
/// chance in 1 of 270 quiet hours, and there are tens of thousands of them.
const MIN_EXPECTED_VIEWS: f64 = 100.0;

/// Planted anomalies per day of data (60 over the default 61 days): sparse,
/// like real incidents, so that they do not distort the baselines.
const ANOMALIES_PER_DAY: f64 = 60.0 / 61.0;

/// Brand-hours with enough expected views to be judged (≥ 100), spread over
/// the sizes of the brands that have such hours (the biggest, middle and
/// smallest third in equal numbers), never in the first three days (so
/// baselines exist), about 2 drops per spike.
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
    let wanted = ((days.len() as f64 * ANOMALIES_PER_DAY).round() as usize).max(1);
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
        // Tiers take turns; every third round is spikes, so each tier gets both kinds.
        let round = planted.len() / tiers.len();
        let kind = if round % 3 == 2 { AnomalyKind::Spike } else { AnomalyKind::Drop };
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
