//! Turning one raw CSV line into typed fields, noting every problem.
//!
//! The rules follow Spark's PERMISSIVE CSV mode, which the original used:
//! an empty field is null, a field that cannot be typed becomes null, missing
//! trailing fields are null and extra fields are dropped. Unlike Spark, each
//! such change is reported as a problem so the row also lands in
//! `bronze_rejects`.

use funnelpulse_core::event_time::parse_event_time_micros;
use funnelpulse_core::schema::RAW_COLUMNS;

/// One typed event; `None` is SQL null.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedRow<'a> {
    pub event_time: Option<i64>,
    pub event_type: Option<&'a str>,
    pub product_id: Option<i64>,
    pub category_id: Option<i64>,
    pub category_code: Option<&'a str>,
    pub brand: Option<&'a str>,
    pub price: Option<f64>,
    pub user_id: Option<i64>,
    pub user_session: Option<&'a str>,
}

/// Splits a line into fields. Fields may be double-quoted (`"a,b"`, `""` is a
/// quote); a line without quotes takes the fast path.
pub fn split_fields<'a>(line: &'a str, out: &mut Vec<std::borrow::Cow<'a, str>>) {
    out.clear();
    if !line.contains('"') {
        out.extend(line.split(',').map(std::borrow::Cow::Borrowed));
        return;
    }
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => in_quotes = false,
            ('"', false) => in_quotes = true,
            (',', false) => out.push(std::mem::take(&mut field).into()),
            (c, _) => field.push(c),
        }
    }
    out.push(field.into());
}

fn non_empty(field: &str) -> Option<&str> {
    (!field.is_empty()).then_some(field)
}

/// Parses the fields of one line. Problems are appended to `problems`
/// (empty when the row is clean).
pub fn parse_fields<'a>(fields: &'a [std::borrow::Cow<'a, str>], problems: &mut Vec<String>) -> ParsedRow<'a> {
    if fields.len() != RAW_COLUMNS.len() {
        problems.push(format!("expected {} fields, found {}", RAW_COLUMNS.len(), fields.len()));
    }
    let get = |i: usize| fields.get(i).and_then(|f| non_empty(f.as_ref()));
    let typed_i64 = |i: usize, problems: &mut Vec<String>| {
        get(i).and_then(|text| match text.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                problems.push(format!("{} is not an integer: {text:?}", RAW_COLUMNS[i]));
                None
            }
        })
    };
    let product_id = typed_i64(2, problems);
    let category_id = typed_i64(3, problems);
    let user_id = typed_i64(7, problems);
    let event_time = get(0).and_then(|text| {
        let parsed = parse_event_time_micros(text);
        if parsed.is_none() {
            problems.push(format!("event_time is not a timestamp: {text:?}"));
        }
        parsed
    });
    let price = get(6).and_then(|text| match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            problems.push(format!("price is not a number: {text:?}"));
            None
        }
    });
    ParsedRow {
        event_time,
        event_type: get(1),
        product_id,
        category_id,
        category_code: get(4),
        brand: get(5),
        price,
        user_id,
        user_session: get(8),
    }
}

/// True when `line` is the Kaggle header (column names in order).
pub fn is_expected_header(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}');
    let mut fields = Vec::new();
    split_fields(line, &mut fields);
    fields.len() == RAW_COLUMNS.len() && fields.iter().zip(RAW_COLUMNS).all(|(f, want)| f.trim() == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> (ParsedRow<'static>, Vec<String>) {
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        let fields: &'static mut Vec<_> = Box::leak(Box::default());
        split_fields(line, fields);
        let mut problems = Vec::new();
        let row = parse_fields(fields, &mut problems);
        (row, problems)
    }

    #[test]
    fn clean_kaggle_row() {
        let (row, problems) = parse(
            "2019-10-01 00:00:03 UTC,view,5802432,1487580009286598681,,grattol,0.32,562076640,09fafd6c-6c99-46b1-834f-33527f4de241",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(row.event_type, Some("view"));
        // Above 2^53: must survive exactly.
        assert_eq!(row.category_id, Some(1487580009286598681));
        assert_eq!(row.category_code, None);
        assert_eq!(row.brand, Some("grattol"));
        assert_eq!(row.price, Some(0.32));
        assert_eq!(row.user_id, Some(562076640));
    }

    #[test]
    fn empty_fields_are_null_without_problem() {
        let (row, problems) = parse("2019-10-01 00:00:03 UTC,cart,1,2,,,-1.5,3,");
        assert!(problems.is_empty());
        assert_eq!((row.brand, row.user_session, row.price), (None, None, Some(-1.5)));
    }

    #[test]
    fn untypable_fields_become_null_and_are_reported() {
        let (row, problems) = parse("yesterday,view,abc,2,,b,cheap,3,s");
        assert_eq!((row.event_time, row.product_id, row.price), (None, None, None));
        assert_eq!(row.brand, Some("b"));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("event_time")));
        assert!(problems.iter().any(|p| p.starts_with("product_id")));
        assert!(problems.iter().any(|p| p.starts_with("price")));
    }

    #[test]
    fn short_rows_fill_nulls_long_rows_drop_extras() {
        let (row, problems) = parse("2019-10-01 00:00:03 UTC,view,1");
        assert_eq!(problems, vec!["expected 9 fields, found 3"]);
        assert_eq!((row.product_id, row.brand), (Some(1), None));
        let (row, problems) = parse("2019-10-01 00:00:03 UTC,view,1,2,c,b,1.0,3,s,EXTRA");
        assert_eq!(problems, vec!["expected 9 fields, found 10"]);
        assert_eq!(row.user_session, Some("s"));
    }

    #[test]
    fn quoted_fields_may_hold_commas_and_quotes() {
        let mut out = Vec::new();
        split_fields(r#"a,"b,c","say ""hi""",d"#, &mut out);
        assert_eq!(out, vec!["a", "b,c", r#"say "hi""#, "d"]);
    }

    #[test]
    fn header_detection() {
        assert!(is_expected_header(
            "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
        ));
        assert!(is_expected_header(
            "\u{feff}event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
        ));
        assert!(!is_expected_header("event_time,event_type"));
    }
}
