//! Records → typed events, or dead letters with the reason.
//!
//! A record is an event when its value is a JSON object with the nine
//! columns of the Kaggle files (see [`crate::record`]): every key present
//! (a value may be `null`, as in bronze, except `event_time`), numbers as
//! numbers (or strings of digits: some producers quote 64-bit ids), text as
//! text, and an `event_time` that parses. Anything else — not JSON, not an
//! object, a missing key, a wrong type, a bad or null timestamp — becomes a
//! dead letter that keeps the record's partition, offset, raw key and value.
//! Unknown extra keys are ignored (producers may add fields).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use funnelpulse_core::event_time::parse_event_time_micros;
use funnelpulse_core::schema::{RAW_COLUMNS, event_fields, timestamp_type};
use serde_json::{Map, Value};

use crate::source::RawRecord;

/// One event, typed as in bronze.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// Event time in UTC microseconds since the epoch; never null (a record without one is a dead letter).
    pub event_time: i64,
    /// As in the record (normally `view`, `cart`, `remove_from_cart`, `purchase`); not checked.
    pub event_type: Option<String>,
    /// A JSON integer or a string of digits in the record.
    pub product_id: Option<i64>,
    /// A JSON integer or a string of digits in the record; exact above 2^53.
    pub category_id: Option<i64>,
    /// As in the record; often null.
    pub category_code: Option<String>,
    /// As in the record, not lower-cased; often null.
    pub brand: Option<String>,
    /// A JSON number or a finite numeric string; may be 0 or negative.
    pub price: Option<f64>,
    /// A JSON integer or a string of digits in the record.
    pub user_id: Option<i64>,
    /// As in the record; may be null.
    pub user_session: Option<String>,
}

fn text(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match &object[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(format!("{key} is {other}, expected text")),
    }
}

fn integer(object: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match &object[key] {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64()),
        Value::String(s) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        other => Err(format!("{key} is {other}, expected a 64-bit integer")),
    }
}

fn number(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match &object[key] {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(s.trim().parse().ok()),
        other => Err(format!("{key} is {other}, expected a number")),
    }
}

// Semantics: docs/semantics.md#kafka-records-and-dead-letters
/// The event in a record's value, or why there is none.
pub fn decode_event(value: Option<&[u8]>) -> Result<Event, String> {
    let value = value.ok_or("the record has no value")?;
    let text_value = std::str::from_utf8(value).map_err(|e| format!("the value is not UTF-8 ({e})"))?;
    let parsed: Value = serde_json::from_str(text_value).map_err(|e| format!("the value is not JSON ({e})"))?;
    let Value::Object(object) = parsed else {
        return Err("the value is not a JSON object".into());
    };
    let missing: Vec<&str> = RAW_COLUMNS.iter().copied().filter(|k| !object.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(format!("missing fields: {}", missing.join(", ")));
    }
    let event_time = match text(&object, "event_time")? {
        None => return Err("event_time is null".into()),
        Some(t) => parse_event_time_micros(&t).ok_or_else(|| format!("bad event_time {t:?}"))?,
    };
    Ok(Event {
        event_time,
        event_type: text(&object, "event_type")?,
        product_id: integer(&object, "product_id")?,
        category_id: integer(&object, "category_id")?,
        category_code: text(&object, "category_code")?,
        brand: text(&object, "brand")?,
        price: number(&object, "price")?,
        user_id: integer(&object, "user_id")?,
        user_session: text(&object, "user_session")?,
    })
}

/// A record that is not an event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Partition the record was read from.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's Kafka timestamp (ms since the epoch); `None` when it has none.
    pub timestamp_ms: Option<i64>,
    /// The key's bytes; `None` for a record without a key.
    pub key: Option<Vec<u8>>,
    /// The value's bytes; `None` for a record without a value.
    pub value: Option<Vec<u8>>,
    /// Why the record is not an event (see docs/semantics.md#kafka-records-and-dead-letters).
    pub reason: String,
}

/// The events and dead letters of a batch's records.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records that are events, in the order read.
    pub events: Vec<Event>,
    /// The other records, with their reason, in the order read.
    pub dead_letters: Vec<DeadLetter>,
}

/// Splits a batch's records into events and dead letters.
pub fn decode(records: Vec<RawRecord>) -> Decoded {
    let mut decoded = Decoded::default();
    for record in records {
        match decode_event(record.value.as_deref()) {
            Ok(event) => decoded.events.push(event),
            Err(reason) => decoded.dead_letters.push(DeadLetter {
                partition: record.partition,
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
                key: record.key,
                value: record.value,
                reason,
            }),
        }
    }
    decoded
}

/// Events as bronze-typed columns (the schema a stream batch reads).
pub fn events_batch(events: &[Event]) -> crate::Result<RecordBatch> {
    let n = events.len();
    let mut time = TimestampMicrosecondBuilder::with_capacity(n);
    let (mut event_type, mut category_code, mut brand, mut session) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let (mut product, mut category, mut user) =
        (Int64Builder::with_capacity(n), Int64Builder::with_capacity(n), Int64Builder::with_capacity(n));
    let mut price = Float64Builder::with_capacity(n);
    for e in events {
        time.append_value(e.event_time);
        event_type.append_option(e.event_type.as_deref());
        product.append_option(e.product_id);
        category.append_option(e.category_id);
        category_code.append_option(e.category_code.as_deref());
        brand.append_option(e.brand.as_deref());
        price.append_option(e.price);
        user.append_option(e.user_id);
        session.append_option(e.user_session.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.finish()),
        Arc::new(event_type.finish()),
        Arc::new(product.finish()),
        Arc::new(category.finish()),
        Arc::new(category_code.finish()),
        Arc::new(brand.finish()),
        Arc::new(price.finish()),
        Arc::new(user.finish()),
        Arc::new(session.finish()),
    ];
    Ok(RecordBatch::try_new(Arc::new(Schema::new(event_fields())), columns)?)
}

// Semantics: docs/semantics.md#stream_dead_letters
/// Columns of the dead-letter table, `received_date` (the record's
/// timestamp's day, UTC) last: the partition column.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("record_timestamp", timestamp_type(), true),
        Field::new("raw_key", DataType::Binary, true),
        Field::new("raw_value", DataType::Binary, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("batch_id", DataType::Int64, false),
        Field::new("received_date", DataType::Date32, true),
    ]))
}

/// Dead letters as rows of [`dead_letter_schema`], read from `topic` by the micro-batch `batch_id`.
pub fn dead_letters_batch(topic: &str, batch_id: u64, letters: &[DeadLetter]) -> crate::Result<RecordBatch> {
    let n = letters.len();
    let (mut topics, mut reasons) = (StringBuilder::new(), StringBuilder::new());
    let (mut partitions, mut offsets, mut batches) =
        (Int32Builder::with_capacity(n), Int64Builder::with_capacity(n), Int64Builder::with_capacity(n));
    let mut timestamps = TimestampMicrosecondBuilder::with_capacity(n);
    let (mut keys, mut values) = (BinaryBuilder::new(), BinaryBuilder::new());
    let mut dates = Date32Builder::with_capacity(n);
    for letter in letters {
        topics.append_value(topic);
        partitions.append_value(letter.partition);
        offsets.append_value(letter.offset);
        timestamps.append_option(letter.timestamp_ms.map(|ms| ms * 1000));
        keys.append_option(letter.key.as_deref());
        values.append_option(letter.value.as_deref());
        reasons.append_value(&letter.reason);
        batches.append_value(batch_id as i64);
        dates.append_option(letter.timestamp_ms.map(|ms| ms.div_euclid(86_400_000) as i32));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(topics.finish()),
        Arc::new(partitions.finish()),
        Arc::new(offsets.finish()),
        Arc::new(timestamps.finish()),
        Arc::new(keys.finish()),
        Arc::new(values.finish()),
        Arc::new(reasons.finish()),
        Arc::new(batches.finish()),
        Arc::new(dates.finish()),
    ];
    Ok(RecordBatch::try_new(dead_letter_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EventRecord;

    fn full() -> EventRecord {
        EventRecord {
            event_time: Some("2019-10-01 00:00:03 UTC".into()),
            event_type: Some("view".into()),
            product_id: Some(5_802_432),
            category_id: Some(2_053_013_552_326_770_905),
            category_code: None,
            brand: Some("runail".into()),
            price: Some(0.32),
            user_id: Some(562_076_640),
            user_session: Some("09fafd6c-6c99-46b1-834f-33527f4de241".into()),
        }
    }

    fn reason_of(json: &str) -> String {
        decode_event(Some(json.as_bytes())).unwrap_err()
    }

    #[test]
    fn what_the_replay_producer_writes_decodes() {
        let event = decode_event(Some(full().to_json().as_bytes())).unwrap();
        assert_eq!(event.event_time, 1_569_888_003_000_000);
        assert_eq!(event.category_id, Some(2_053_013_552_326_770_905));
        assert_eq!(event.brand.as_deref(), Some("runail"));
        assert_eq!(event.category_code, None);
    }

    #[test]
    fn quoted_numbers_and_extra_keys_are_accepted() {
        let json = r#"{"event_time":"2019-10-01T00:00:03Z","event_type":"cart","product_id":"7",
            "category_id":"2053013552326770905","category_code":null,"brand":null,"price":"1.5",
            "user_id":1,"user_session":null,"source":"web"}"#;
        let event = decode_event(Some(json.as_bytes())).unwrap();
        assert_eq!(event.product_id, Some(7));
        assert_eq!(event.category_id, Some(2_053_013_552_326_770_905));
        assert_eq!(event.price, Some(1.5));
    }

    #[test]
    fn bad_records_say_why() {
        assert_eq!(decode_event(None).unwrap_err(), "the record has no value");
        assert!(decode_event(Some(&[0xff, 0xfe])).unwrap_err().contains("not UTF-8"));
        assert!(reason_of("{not json").contains("not JSON"));
        assert_eq!(reason_of("[1,2]"), "the value is not a JSON object");
        assert_eq!(reason_of(r#"{"event_time":"2019-10-01 00:00:03 UTC"}"#).split(':').next(), Some("missing fields"));
        let mut record = full();
        record.event_time = Some("yesterday".into());
        assert_eq!(reason_of(&record.to_json()), "bad event_time \"yesterday\"");
        record.event_time = None;
        assert_eq!(reason_of(&record.to_json()), "event_time is null");
        let wrong_type = full().to_json().replace("0.32", "\"cheap\"");
        assert!(reason_of(&wrong_type).contains("price is \"cheap\", expected a number"));
        let fraction = full().to_json().replace("562076640", "1.5");
        assert!(reason_of(&fraction).contains("user_id is 1.5"));
    }

    #[test]
    fn dead_letters_keep_the_raw_record() {
        let records = vec![
            RawRecord {
                partition: 2,
                offset: 9,
                timestamp_ms: Some(86_400_000),
                key: None,
                value: Some(b"x".to_vec()),
            },
            RawRecord {
                partition: 0,
                offset: 1,
                timestamp_ms: None,
                key: Some(b"42".to_vec()),
                value: Some(full().to_json().into_bytes()),
            },
        ];
        let decoded = decode(records);
        assert_eq!(decoded.events.len(), 1);
        let batch = dead_letters_batch("t", 3, &decoded.dead_letters).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(decoded.dead_letters[0].offset, 9);
        assert_eq!(events_batch(&decoded.events).unwrap().num_rows(), 1);
    }
}
