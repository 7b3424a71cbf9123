//! `funnelpulse evaluate`: scores each anomaly table against the anomalies
//! the generator planted (`truth.json`).
//!
//! A flagged brand-hour is a hit when the same brand and hour was planted
//! with the same type; a planted drop flagged as a spike is both a miss and a
//! false alarm.
//!
//! Semantics: docs/semantics.md#evaluation

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{cast, col};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::{GOLD_ANOMALIES_HOURLY_BRAND, GOLD_ANOMALIES_HOURLY_BRAND_V2, GOLD_FUNNEL_HOURLY_BRAND};
use funnelpulse_engine::Context;
use funnelpulse_engine::Engine;
use funnelpulse_engine::tables::read_files;
use funnelpulse_generator::Truth;
use funnelpulse_generator::truth::AnomalyKind;
use funnelpulse_lake::{AsOf, Lake, TableFiles};
use serde::Serialize;

/// The detectors scored, with the names users know them by.
pub const DETECTORS: [(&str, TableSpec); 2] =
    [("classic", GOLD_ANOMALIES_HOURLY_BRAND), ("v2", GOLD_ANOMALIES_HOURLY_BRAND_V2)];

/// One brand-hour and its type.
type Flag = (String, NaiveDateTime, AnomalyKind);

/// Precision is undefined (None, `null` in JSON, n/a) when nothing was
/// flagged; recall and F1 when nothing was planted.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Score {
    /// Anomalies the generator planted.
    pub planted: u64,
    /// Anomalies the detector flagged.
    pub flagged: u64,
    /// Flags that match a planted anomaly (same brand, hour and type).
    pub hits: u64,
    /// hits / flagged; None when nothing was flagged.
    pub precision: Option<f64>,
    /// hits / planted; None when nothing was planted.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall (0 when nothing was flagged); None when nothing was planted.
    pub f1: Option<f64>,
}

impl Score {
    fn new(planted: u64, flagged: u64, hits: u64) -> Self {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let (precision, recall) = (ratio(hits, flagged), ratio(hits, planted));
        let f1 = recall.map(|r| {
            let p = precision.unwrap_or(0.0);
            if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
        });
        Self { planted, flagged, hits, precision, recall, f1 }
    }
}

/// A score for the table: three decimals, or n/a.
fn shown(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".to_string())
}

/// The scores of one detector, per anomaly type and overall.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorScore {
    /// `classic` or `v2`.
    pub detector: String,
    /// The anomaly table scored.
    pub table: String,
    /// Scores of drops only.
    pub drop: Score,
    /// Scores of spikes only.
    pub spike: Score,
    /// Scores of both types together.
    pub overall: Score,
}

/// Every detector's scores against one truth file (written as `<lake>/reports/evaluation.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Seed the generator used for the truth file.
    pub truth_seed: u64,
    /// Event rows of the generated data the truth file belongs to.
    pub truth_rows: u64,
    /// One entry per detector, in the order of `DETECTORS` (classic, then v2).
    pub detectors: Vec<DetectorScore>,
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "anomaly detection against planted truth (seed {}, {} rows)", self.truth_seed, self.truth_rows)?;
        writeln!(
            f,
            "    {:<8} {:<8} {:>7} {:>7} {:>5} {:>9} {:>7} {:>6}",
            "detector", "type", "planted", "flagged", "hits", "precision", "recall", "F1"
        )?;
        for d in &self.detectors {
            for (kind, s) in [("drop", d.drop), ("spike", d.spike), ("overall", d.overall)] {
                writeln!(
                    f,
                    "    {:<8} {:<8} {:>7} {:>7} {:>5} {:>9} {:>7} {:>6}",
                    d.detector,
                    kind,
                    s.planted,
                    s.flagged,
                    s.hits,
                    shown(s.precision),
                    shown(s.recall),
                    shown(s.f1)
                )?;
            }
        }
        Ok(())
    }
}

/// Scores every detector's committed table against `truth`.
pub async fn evaluate(
    engine: &Engine,
    lake: &Lake,
    truth: &Truth,
    as_of: &AsOf,
) -> funnelpulse_engine::Result<Evaluation> {
    check_truth_fits(engine, lake, truth, as_of).await?;
    let planted: HashSet<Flag> = truth.anomalies.iter().map(|a| (a.brand.clone(), a.window_start, a.kind)).collect();
    let mut detectors = Vec::new();
    for (name, table) in DETECTORS {
        let flagged = read_flags(engine, lake, &table, as_of)
            .await
            .with_context(|| format!("reading {} (run stage 05 first)", table.name))?;
        detectors.push(score(name, table.name, &planted, &flagged));
    }
    Ok(Evaluation { truth_seed: truth.seed, truth_rows: truth.rows, detectors })
}

/// Refuses a truth.json of other data: its days must overlap the lake's,
/// and every brand it plants an anomaly in within the lake's days must be in
/// the lake (a truth of other data would be scored as all misses).
async fn check_truth_fits(engine: &Engine, lake: &Lake, truth: &Truth, as_of: &AsOf) -> funnelpulse_engine::Result<()> {
    let table = GOLD_FUNNEL_HOURLY_BRAND;
    let files = lake.snapshot(&table, as_of).await?;
    let files = files.with_context(|| format!("no {} in {} (run stage 01 first)", table.name, lake.url()))?;
    let days: Vec<NaiveDate> = files.partitions().iter().filter_map(|d| d.parse().ok()).collect();
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        funnelpulse_engine::bail!("{} in {} has no rows: run stage 01 on data first", table.name, lake.url())
    };
    let truth_last = truth.start + chrono::Days::new(u64::from(truth.days.max(1)) - 1);
    funnelpulse_engine::ensure!(
        truth.start <= *last && truth_last >= *first,
        "the truth file is of other data: it covers {} … {truth_last}, the lake's {} holds {first} … {last}; give the \
         truth.json generated with this lake's raw data (--truth)",
        truth.start,
        table.name
    );
    let in_range: Vec<&str> =
        truth.anomalies.iter().filter(|a| days.contains(&a.window_start.date())).map(|a| a.brand.as_str()).collect();
    if in_range.is_empty() {
        return Ok(());
    }
    let brands = lake_brands(engine, &files).await?;
    let missing: Vec<&str> = in_range.iter().copied().filter(|b| !brands.contains(*b)).collect();
    funnelpulse_engine::ensure!(
        missing.is_empty(),
        "the truth file is of other data: {} of its {} planted anomalies are in brands the lake has no events of \
         (e.g. {:?}); give the truth.json generated with this lake's raw data (--truth)",
        missing.len(),
        in_range.len(),
        missing[0]
    );
    Ok(())
}

async fn lake_brands(engine: &Engine, files: &TableFiles) -> funnelpulse_engine::Result<HashSet<String>> {
    let batches =
        read_files(&engine.ctx, files)?.select(vec![cast(col("brand"), DataType::Utf8)])?.distinct()?.collect().await?;
    let mut brands = HashSet::new();
    for batch in batches {
        let column = batch.column(0).as_string::<i32>();
        brands.extend(column.iter().flatten().map(str::to_string));
    }
    Ok(brands)
}

/// Reads a `truth.json` written by the generator.
pub fn read_truth(path: &std::path::Path) -> funnelpulse_engine::Result<Truth> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a truth.json written by the generator", path.display()))
}

fn score(name: &str, table: &str, planted: &HashSet<Flag>, flagged: &HashSet<Flag>) -> DetectorScore {
    let of_kind = |set: &HashSet<Flag>, kind: Option<AnomalyKind>| {
        set.iter().filter(|f| kind.is_none_or(|k| f.2 == k)).count() as u64
    };
    let hits = |kind: Option<AnomalyKind>| {
        flagged.iter().filter(|f| kind.is_none_or(|k| f.2 == k) && planted.contains(*f)).count() as u64
    };
    let for_kind = |kind| Score::new(of_kind(planted, kind), of_kind(flagged, kind), hits(kind));
    DetectorScore {
        detector: name.to_string(),
        table: table.to_string(),
        drop: for_kind(Some(AnomalyKind::Drop)),
        spike: for_kind(Some(AnomalyKind::Spike)),
        overall: for_kind(None),
    }
}

/// (brand, window_start, type) of every row of an anomalies table.
async fn read_flags(
    engine: &Engine,
    lake: &Lake,
    table: &TableSpec,
    as_of: &AsOf,
) -> funnelpulse_engine::Result<HashSet<Flag>> {
    let files = lake.snapshot(table, as_of).await?;
    let files = files.with_context(|| format!("table {} does not exist in {}", table.name, lake.url()))?;
    let df = read_files(&engine.ctx, &files)?;
    let batches = df
        .select(vec![col("brand"), cast(col("window_start"), DataType::Int64), col("anomaly_type")])?
        .collect()
        .await?;
    let mut flags = HashSet::new();
    for batch in batches {
        let brands = batch.column(0).as_string::<i32>();
        let starts = batch.column(1).as_primitive::<Int64Type>();
        let kinds = batch.column(2).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let start = DateTime::from_timestamp_micros(starts.value(row)).context("window_start out of range")?;
            let kind = match kinds.value(row) {
                "drop" => AnomalyKind::Drop,
                "spike" => AnomalyKind::Spike,
                other => funnelpulse_engine::bail!("{}: unknown anomaly_type {other:?}", table.name),
            };
            if brands.is_valid(row) {
                flags.insert((brands.value(row).to_string(), start.naive_utc(), kind));
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2019, 10, 5).unwrap().and_hms_opt(hour, 0, 0).unwrap()
    }

    #[test]
    fn scores_count_type_mismatches_as_misses_and_false_alarms() {
        let planted: HashSet<Flag> = [
            ("a".to_string(), at(10), AnomalyKind::Drop),
            ("a".to_string(), at(11), AnomalyKind::Drop),
            ("b".to_string(), at(10), AnomalyKind::Spike),
        ]
        .into();
        let flagged: HashSet<Flag> = [
            ("a".to_string(), at(10), AnomalyKind::Drop),  // hit
            ("a".to_string(), at(11), AnomalyKind::Spike), // wrong type
            ("c".to_string(), at(12), AnomalyKind::Drop),  // false alarm
        ]
        .into();
        let s = score("t", "t", &planted, &flagged);
        assert_eq!(s.drop, Score::new(2, 2, 1));
        assert_eq!((s.drop.precision, s.drop.recall, s.drop.f1), (Some(0.5), Some(0.5), Some(0.5)));
        assert_eq!(s.spike, Score::new(1, 1, 0));
        assert_eq!(s.spike.f1, Some(0.0));
        assert_eq!(s.overall, Score::new(3, 3, 1));
    }

    #[test]
    fn nothing_planted_or_flagged_is_not_a_score_of_zero() {
        let none = Score::new(0, 0, 0);
        assert_eq!((none.precision, none.recall, none.f1), (None, None, None));
        let false_alarms = Score::new(0, 3, 0);
        assert_eq!((false_alarms.precision, false_alarms.recall, false_alarms.f1), (Some(0.0), None, None));
        let missed = Score::new(2, 0, 0);
        assert_eq!((missed.precision, missed.recall, missed.f1), (None, Some(0.0), Some(0.0)));
        assert_eq!((shown(None), shown(Some(0.5))), ("n/a".to_string(), "0.500".to_string()));
    }
}
