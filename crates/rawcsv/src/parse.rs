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
    /// UTC microseconds since the epoch; null when empty or not a timestamp.
    pub event_time: Option<i64>,
    /// Text as in the file, not checked; null when empty.
    pub event_type: Option<&'a str>,
    /// Null when empty or not an `i64`.
    pub product_id: Option<i64>,
    /// Null when empty or not an `i64`; exact above 2^53.
    pub category_id: Option<i64>,
    /// Text as in the file; null when empty.
    pub category_code: Option<&'a str>,
    /// Text as in the file, not lower-cased; null when empty.
    pub brand: Option<&'a str>,
    /// Null when empty, not a number or not finite; may be 0 or negative.
    pub price: Option<f64>,
    /// Null when empty or not an `i64`.
    pub user_id: Option<i64>,
    /// Text as in the file; null when empty.
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

// Semantics: docs/semantics.md#parsing-a-line
/// Parses the fields of one line, in the file's column order. Problems are
/// appended to `problems` (empty when the row is clean).
pub fn parse_fields<'a>(
    fields: &'a [std::borrow::Cow<'a, str>],
    order: &ColumnOrder,
    problems: &mut Vec<String>,
) -> ParsedRow<'a> {
    if fields.len() != RAW_COLUMNS.len() {
        problems.push(format!("expected {} fields, found {}", RAW_COLUMNS.len(), fields.len()));
    }
    let get = |i: usize| fields.get(order.positions[i]).and_then(|f| non_empty(f.as_ref()));
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

/// Where each Kaggle column (in [`RAW_COLUMNS`] order) sits in a file's
/// lines, read from its header: re-exports sometimes reorder the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnOrder {
    positions: [usize; RAW_COLUMNS.len()],
}

impl ColumnOrder {
    /// The Kaggle order itself.
    pub const KAGGLE: Self = Self { positions: [0, 1, 2, 3, 4, 5, 6, 7, 8] };

    // Semantics: docs/semantics.md#raw-input
    /// Reads the header line (a UTF-8 BOM, spaces around names and letter
    /// case are ignored). Every Kaggle column must appear once and no other:
    /// the error says which are missing, unknown or repeated.
    pub fn from_header(line: &str) -> Result<Self, String> {
        let line = line.trim_start_matches('\u{feff}');
        let mut fields = Vec::new();
        split_fields(line, &mut fields);
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
        let mut positions = [usize::MAX; RAW_COLUMNS.len()];
        let (mut unknown, mut repeated) = (Vec::new(), Vec::new());
        for (at, name) in names.iter().enumerate() {
            match RAW_COLUMNS.iter().position(|c| c == name) {
                Some(i) if positions[i] != usize::MAX => repeated.push(name.as_str()),
                Some(i) => positions[i] = at,
                None => unknown.push(name.as_str()),
            }
        }
        let missing: Vec<&str> =
            RAW_COLUMNS.iter().zip(positions).filter(|(_, at)| *at == usize::MAX).map(|(c, _)| *c).collect();
        if missing.len() == RAW_COLUMNS.len() {
            return Err(format!("line 1 is not a header with the Kaggle columns ({})", RAW_COLUMNS.join(",")));
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("lacks column(s) {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            problems.push(format!("has unknown column(s) {}", unknown.join(", ")));
        }
        if !repeated.is_empty() {
            problems.push(format!("repeats column(s) {}", repeated.join(", ")));
        }
        if problems.is_empty() {
            Ok(Self { positions })
        } else {
            Err(format!("the header {} (the Kaggle columns are {})", problems.join(" and "), RAW_COLUMNS.join(",")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> (ParsedRow<'static>, Vec<String>) {
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        let fields: &'static mut Vec<_> = Box::leak(Box::default());
        split_fields(line, fields);
        let mut problems = Vec::new();
        let row = parse_fields(fields, &ColumnOrder::KAGGLE, &mut problems);
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

    const HEADER: &str = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

    #[test]
    fn kaggle_header_in_order() {
        assert_eq!(ColumnOrder::from_header(HEADER), Ok(ColumnOrder::KAGGLE));
        assert_eq!(ColumnOrder::from_header(&format!("\u{feff}{HEADER}")), Ok(ColumnOrder::KAGGLE));
        assert_eq!(ColumnOrder::from_header(&HEADER.to_uppercase().replace(',', " , ")), Ok(ColumnOrder::KAGGLE));
    }

    #[test]
    fn reordered_header_maps_columns_by_name() {
        let order = ColumnOrder::from_header(
            "user_session,price,brand,event_type,event_time,product_id,category_id,category_code,user_id",
        )
        .unwrap();
        let line = "s1,0.5,grattol,cart,2019-10-01 00:00:03 UTC,7,8,,9";
        let mut fields = Vec::new();
        split_fields(line, &mut fields);
        let mut problems = Vec::new();
        let row = parse_fields(&fields, &order, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (row.user_session, row.price, row.brand, row.event_type),
            (Some("s1"), Some(0.5), Some("grattol"), Some("cart"))
        );
        assert_eq!(
            (row.product_id, row.category_id, row.category_code, row.user_id),
            (Some(7), Some(8), None, Some(9))
        );
        assert!(row.event_time.is_some());
    }

    #[test]
    fn header_errors_name_the_columns() {
        let missing =
            ColumnOrder::from_header("event_time,event_type,product_id,category_id,category_code,brand,price,user_id")
                .unwrap_err();
        assert!(missing.contains("lacks column(s) user_session"), "{missing}");
        let extra = ColumnOrder::from_header(&format!("{HEADER},store_id")).unwrap_err();
        assert!(extra.contains("unknown column(s) store_id"), "{extra}");
        let twice = ColumnOrder::from_header(&format!("{HEADER},brand")).unwrap_err();
        assert!(twice.contains("repeats column(s) brand"), "{twice}");
        let data = ColumnOrder::from_header("2019-10-01 00:00:03 UTC,view,1,2,,b,1.0,3,s").unwrap_err();
        assert!(data.starts_with("line 1 is not a header"), "{data}");
    }
}
