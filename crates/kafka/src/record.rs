//! One event per Kafka record.
//!
//! **Value**: a JSON object with the nine columns of the Kaggle files, typed
//! as in bronze (`event_time` as the files write it, `YYYY-MM-DD HH:MM:SS
//! UTC`; numbers as numbers, ids as exact 64-bit integers; missing values as
//! `null`). JSON because any consumer can read it (kcat, a Python script,
//! Kafka Connect) without a schema registry, and the events are flat.
//!
//! **Key**: the `user_id` in decimal (no key when it is null). Kafka keeps the
//! records of one key in one partition, in order, so a user's session arrives
//! in the order it happened.
//!
//! Semantics: docs/semantics.md#kafka-records-and-dead-letters

use chrono::DateTime;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};

/// A record's value: a bronze row's nine Kaggle columns as JSON, `null` for missing values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// As the Kaggle files write it (`2019-10-15 08:00:01 UTC`); null when bronze has none.
    pub event_time: Option<String>,
    /// As in bronze (normally `view`, `cart`, `remove_from_cart`, `purchase`).
    pub event_type: Option<String>,
    /// 64-bit product id.
    pub product_id: Option<i64>,
    /// 64-bit category id, exact above 2^53.
    pub category_id: Option<i64>,
    /// Often null.
    pub category_code: Option<String>,
    /// As in bronze, not lower-cased; often null.
    pub brand: Option<String>,
    /// May be 0 or negative.
    pub price: Option<f64>,
    /// 64-bit user id; also the record's key.
    pub user_id: Option<i64>,
    /// May be null.
    pub user_session: Option<String>,
}

impl EventRecord {
    /// The record's key: `user_id` in decimal; `None` when it is null (a record without a key).
    pub fn key(&self) -> Option<String> {
        self.user_id.map(|id| id.to_string())
    }

    /// The record's value: the event as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }
}

/// Event time as the Kaggle files write it (fractions of a second only when present).
pub fn format_event_time(micros: i64) -> String {
    let time = DateTime::from_timestamp_micros(micros).expect("bronze timestamps are in range").naive_utc();
    if micros % 1_000_000 == 0 {
        format!("{} UTC", time.format("%Y-%m-%d %H:%M:%S"))
    } else {
        format!("{} UTC", time.format("%Y-%m-%d %H:%M:%S%.6f"))
    }
}

/// The events of a batch of bronze rows (columns by name), with their event
/// time in microseconds (for pacing a replay).
pub fn records_of(batch: &RecordBatch) -> crate::Result<Vec<(EventRecord, Option<i64>)>> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| crate::KafkaError::Missing(format!("bronze rows without column {name}")))
    };
    let time = column("event_time")?.as_primitive::<TimestampMicrosecondType>();
    let text = |name: &str| -> crate::Result<Vec<Option<String>>> {
        let array = datafusion::arrow::compute::cast(column(name)?, &datafusion::arrow::datatypes::DataType::Utf8)?;
        Ok(array.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
    };
    let int = |name: &str| -> crate::Result<Vec<Option<i64>>> {
        Ok(column(name)?.as_primitive::<Int64Type>().iter().collect())
    };
    let (event_type, category_code, brand, user_session) =
        (text("event_type")?, text("category_code")?, text("brand")?, text("user_session")?);
    let (product_id, category_id, user_id) = (int("product_id")?, int("category_id")?, int("user_id")?);
    let price: Vec<Option<f64>> = column("price")?.as_primitive::<Float64Type>().iter().collect();
    Ok((0..batch.num_rows())
        .map(|i| {
            let micros = time.is_valid(i).then(|| time.value(i));
            let record = EventRecord {
                event_time: micros.map(format_event_time),
                event_type: event_type[i].clone(),
                product_id: product_id[i],
                category_id: category_id[i],
                category_code: category_code[i].clone(),
                brand: brand[i].clone(),
                price: price[i],
                user_id: user_id[i],
                user_session: user_session[i].clone(),
            };
            (record, micros)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_is_written_as_in_the_kaggle_files() {
        assert_eq!(format_event_time(1_569_888_000_000_000), "2019-10-01 00:00:00 UTC");
        assert_eq!(format_event_time(1_569_888_000_000_250), "2019-10-01 00:00:00.000250 UTC");
    }

    #[test]
    fn ids_above_2_pow_53_survive_the_json() {
        let record = EventRecord {
            event_time: Some("2019-10-01 00:00:00 UTC".into()),
            event_type: Some("view".into()),
            product_id: Some(1),
            category_id: Some(2_053_013_552_326_770_905),
            category_code: None,
            brand: None,
            price: Some(2.5),
            user_id: Some(42),
            user_session: None,
        };
        let back: EventRecord = serde_json::from_str(&record.to_json()).unwrap();
        assert_eq!(back, record);
        assert_eq!(record.key().as_deref(), Some("42"));
    }
}
