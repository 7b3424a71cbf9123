//! `funnelpulse evaluate`: scores each anomaly table against the anomalies
//! the generator planted (`truth.json`).
//!
//! A flagged brand-hour is a hit when the same brand and hour was planted
//! with the same type; a planted drop flagged as a spike is both a miss and a
//! false alarm.

use std::collections::HashSet;
use std::fmt;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{cast, col};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::{GOLD_ANOMALIES_HOURLY_BRAND, GOLD_ANOMALIES_HOURLY_BRAND_V2};
use funnelpulse_engine::Engine;
use funnelpulse_engine::tables::read_files;
use funnelpulse_generator::Truth;
use funnelpulse_generator::truth::AnomalyKind;
use funnelpulse_lake::{AsOf, Lake};
use serde::Serialize;

/// The detectors scored, with the names users know them by.
pub const DETECTORS: [(&str, TableSpec); 2] =
    [("classic", GOLD_ANOMALIES_HOURLY_BRAND), ("v2", GOLD_ANOMALIES_HOURLY_BRAND_V2)];

/// One brand-hour and its type.
type Flag = (String, NaiveDateTime, AnomalyKind);

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Score {
    pub planted: u64,
    pub flagged: u64,
    pub hits: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Score {
    fn new(planted: u64, flagged: u64, hits: u64) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(hits, flagged), ratio(hits, planted));
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        Self { planted, flagged, hits, precision, recall, f1 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectorScore {
    pub detector: String,
    pub table: String,
    pub drop: Score,
    pub spike: Score,
    pub overall: Score,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub truth_seed: u64,
    pub truth_rows: u64,
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
                    "    {:<8} {:<8} {:>7} {:>7} {:>5} {:>9.3} {:>7.3} {:>6.3}",
                    d.detector, kind, s.planted, s.flagged, s.hits, s.precision, s.recall, s.f1
                )?;
            }
        }
        Ok(())
    }
}

/// Scores every detector's committed table against `truth`.
pub async fn evaluate(engine: &Engine, lake: &Lake, truth: &Truth, as_of: &AsOf) -> anyhow::Result<Evaluation> {
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

pub fn read_truth(path: &std::path::Path) -> anyhow::Result<Truth> {
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
async fn read_flags(engine: &Engine, lake: &Lake, table: &TableSpec, as_of: &AsOf) -> anyhow::Result<HashSet<Flag>> {
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
                other => anyhow::bail!("{}: unknown anomaly_type {other:?}", table.name),
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
        assert_eq!((s.drop.precision, s.drop.recall, s.drop.f1), (0.5, 0.5, 0.5));
        assert_eq!(s.spike, Score::new(1, 1, 0));
        assert_eq!(s.spike.f1, 0.0);
        assert_eq!(s.overall, Score::new(3, 3, 1));
    }
}
