//! Delta per-file statistics (`numRecords`, `minValues`, `maxValues`,
//! `nullCount`) from a Parquet footer, as the Delta protocol defines them.
//!
//! Readers skip files by these bounds, so a bound must never be tighter than
//! the data: a column gets min/max only where every row group has exact
//! statistics; timestamps are widened to whole milliseconds (the format's
//! precision); strings longer than 32 characters get none.

use std::cmp::Ordering;

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::statistics::Statistics;
use serde_json::{Map, Value as Json};

/// Longest string a bound is kept for (Delta's writers truncate at 32).
const MAX_STRING_STAT: usize = 32;

/// A column's bound as read from the footer, before formatting.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Bound {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The stats JSON of one file and its row count. `schema` gives the logical
/// type of each column (by name); columns it does not name get no bounds.
pub fn file_stats(footer: &ParquetMetaData, schema: &Schema) -> crate::Result<(String, u64)> {
    let rows = u64::try_from(footer.file_metadata().num_rows())
        .map_err(|e| crate::LakeError::damaged("a Parquet footer with a negative row count", e))?;
    let (mut mins, mut maxs, mut nulls) = (Map::new(), Map::new(), Map::new());
    let columns = footer.file_metadata().schema_descr().num_columns();
    for c in 0..columns {
        let name = footer.file_metadata().schema_descr().column(c).name().to_string();
        let Ok(field) = schema.field_with_name(&name) else { continue };
        let column = ColumnStats::of(footer, c);
        if let Some(n) = column.nulls {
            nulls.insert(name.clone(), Json::from(n));
        }
        if let (Some(min), Some(max)) = (column.min, column.max)
            && let (Some(min), Some(max)) =
                (format(&min, field.data_type(), false), format(&max, field.data_type(), true))
        {
            mins.insert(name.clone(), min);
            maxs.insert(name, max);
        }
    }
    let stats = serde_json::json!({
        "numRecords": rows,
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    });
    Ok((stats.to_string(), rows))
}

/// A column's statistics over all row groups.
struct ColumnStats {
    min: Option<Bound>,
    max: Option<Bound>,
    nulls: Option<u64>,
}

impl ColumnStats {
    fn of(footer: &ParquetMetaData, column: usize) -> Self {
        let mut out = ColumnStats { min: None, max: None, nulls: Some(0) };
        let mut bounds_known = true;
        for group in footer.row_groups() {
            let chunk = group.column(column);
            let Some(stats) = chunk.statistics() else {
                out.nulls = None;
                bounds_known = false;
                continue;
            };
            let nulls = stats.null_count_opt();
            out.nulls = out.nulls.zip(nulls).map(|(a, b)| a + b);
            let values = (group.num_rows() as u64).saturating_sub(nulls.unwrap_or(0));
            match bounds(stats) {
                Some((min, max)) => {
                    out.min = Some(pick(out.min.take(), min, Ordering::Less));
                    out.max = Some(pick(out.max.take(), max, Ordering::Greater));
                }
                // A row group of nulls only has no bounds, and needs none.
                None if nulls.is_some() && values == 0 => {}
                None => bounds_known = false,
            }
        }
        if !bounds_known {
            out.min = None;
            out.max = None;
        }
        out
    }
}

/// Keeps the smaller (`Less`) or larger (`Greater`) of two bounds.
fn pick(current: Option<Bound>, new: Bound, keep: Ordering) -> Bound {
    match current {
        Some(c) if c.partial_cmp(&new) == Some(keep) || c == new => c,
        _ => new,
    }
}

/// Exact min and max of one row group's chunk, where the footer has them.
fn bounds(stats: &Statistics) -> Option<(Bound, Bound)> {
    if !stats.min_is_exact() || !stats.max_is_exact() {
        return None;
    }
    match stats {
        Statistics::Int32(s) => Some((Bound::Int(i64::from(*s.min_opt()?)), Bound::Int(i64::from(*s.max_opt()?)))),
        Statistics::Int64(s) => Some((Bound::Int(*s.min_opt()?), Bound::Int(*s.max_opt()?))),
        Statistics::Double(s) => finite(*s.min_opt()?, *s.max_opt()?),
        Statistics::Float(s) => finite(f64::from(*s.min_opt()?), f64::from(*s.max_opt()?)),
        Statistics::ByteArray(s) => {
            let text = |b: &datafusion::parquet::data_type::ByteArray| b.as_utf8().ok().map(str::to_string);
            Some((Bound::Text(text(s.min_opt()?)?), Bound::Text(text(s.max_opt()?)?)))
        }
        _ => None,
    }
}

fn finite(min: f64, max: f64) -> Option<(Bound, Bound)> {
    (min.is_finite() && max.is_finite()).then_some((Bound::Float(min), Bound::Float(max)))
}

/// A bound as Delta writes it for the column's type; `None` where it cannot
/// be written without risk. `upper` rounds up where the format loses precision.
fn format(bound: &Bound, data_type: &DataType, upper: bool) -> Option<Json> {
    match (bound, data_type) {
        (Bound::Int(v), DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => Some(Json::from(*v)),
        (Bound::Float(v), DataType::Float32 | DataType::Float64) => serde_json::Number::from_f64(*v).map(Json::Number),
        (Bound::Int(days), DataType::Date32) => {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(i32::try_from(*days).ok()? + 719_163)?;
            Some(Json::from(date.format("%Y-%m-%d").to_string()))
        }
        (Bound::Int(v), DataType::Timestamp(unit, zone)) => {
            let micros = match unit {
                TimeUnit::Second => v.checked_mul(1_000_000)?,
                TimeUnit::Millisecond => v.checked_mul(1_000)?,
                TimeUnit::Microsecond => *v,
                TimeUnit::Nanosecond => v.div_euclid(1_000) + i64::from(upper && v.rem_euclid(1_000) != 0),
            };
            let millis = if upper {
                micros.div_euclid(1_000) + i64::from(micros.rem_euclid(1_000) != 0)
            } else {
                micros.div_euclid(1_000)
            };
            let time = chrono::DateTime::from_timestamp_millis(millis)?;
            let suffix = if zone.is_some() { "Z" } else { "" };
            Some(Json::from(format!("{}{suffix}", time.format("%Y-%m-%dT%H:%M:%S%.3f"))))
        }
        (Bound::Text(s), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            if s.chars().count() <= MAX_STRING_STAT =>
        {
            Some(Json::from(s.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_are_written_as_delta_does() {
        assert_eq!(format(&Bound::Int(18_170), &DataType::Date32, false), Some(Json::from("2019-10-01")));
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        // 2019-10-01T00:00:00.000500: the lower bound rounds down, the upper up.
        let v = 1_569_888_000_000_500;
        assert_eq!(format(&Bound::Int(v), &ts, false), Some(Json::from("2019-10-01T00:00:00.000")));
        assert_eq!(format(&Bound::Int(v), &ts, true), Some(Json::from("2019-10-01T00:00:00.001")));
    }

    #[test]
    fn long_strings_get_no_bounds() {
        assert_eq!(format(&Bound::Text("a".repeat(33)), &DataType::Utf8, false), None);
        assert_eq!(format(&Bound::Text("nivea".into()), &DataType::Utf8, true), Some(Json::from("nivea")));
    }

    #[test]
    fn bounds_widen_over_row_groups() {
        assert_eq!(pick(Some(Bound::Int(3)), Bound::Int(1), Ordering::Less), Bound::Int(1));
        assert_eq!(pick(Some(Bound::Int(3)), Bound::Int(5), Ordering::Less), Bound::Int(3));
        assert_eq!(pick(None, Bound::Int(5), Ordering::Greater), Bound::Int(5));
    }
}
