//! The silver and gold rules on hand-written rows, run by plain DataFusion.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::prelude::{DataFrame, SessionContext, col};
use funnelpulse_core::event_time::{micros_to_epoch_days, parse_event_time_micros};
use funnelpulse_core::plans;
use funnelpulse_core::schema::event_fields;

/// (event_time, event_type, product_id, category_id, category_code, brand, price, user_id, user_session)
type Row = (
    Option<&'static str>,
    Option<&'static str>,
    i64,
    i64,
    Option<&'static str>,
    Option<&'static str>,
    Option<f64>,
    i64,
    Option<&'static str>,
);

fn bronze(rows: &[Row]) -> DataFrame {
    let times: Vec<Option<i64>> = rows.iter().map(|r| r.0.and_then(parse_event_time_micros)).collect();
    let mut fields = event_fields();
    fields.push(Field::new("event_date", DataType::Date32, true));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(times.clone())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.6).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.7).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.8).collect::<Vec<_>>())),
        Arc::new(Date32Array::from(times.iter().map(|t| t.map(micros_to_epoch_days)).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    SessionContext::new().read_batch(batch).unwrap()
}

const T: Option<&str> = Some("2019-10-01 10:15:00 UTC");

fn row(event_type: &'static str, brand: Option<&'static str>, price: f64) -> Row {
    (T, Some(event_type), 1, 1487580005134238553, None, brand, Some(price), 7, Some("s1"))
}

async fn collect(df: DataFrame) -> RecordBatch {
    let batches = df.collect().await.unwrap();
    datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = datafusion::arrow::compute::cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    let column = column.as_string::<i32>();
    (0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i).to_string())).collect()
}

fn int(batch: &RecordBatch, name: &str, i: usize) -> i64 {
    batch.column_by_name(name).unwrap().as_primitive::<Int64Type>().value(i)
}

fn float(batch: &RecordBatch, name: &str, i: usize) -> Option<f64> {
    let c = batch.column_by_name(name).unwrap().as_primitive::<Float64Type>();
    c.is_valid(i).then(|| c.value(i))
}

#[tokio::test]
async fn silver_keeps_positive_prices_with_time_and_type() {
    let mut rows = vec![row("view", Some("a"), 0.01), row("view", Some("b"), 0.0), row("view", Some("c"), -1.0)];
    rows.push((T, Some("view"), 1, 1, None, Some("d"), None, 7, Some("s1")));
    rows.push((None, Some("view"), 1, 1, None, Some("e"), Some(1.0), 7, Some("s1")));
    rows.push((T, None, 1, 1, None, Some("f"), Some(1.0), 7, Some("s1")));
    let silver = collect(plans::silver(bronze(&rows)).unwrap()).await;
    assert_eq!(strings(&silver, "brand"), vec![Some("a".to_string())]);
}

#[tokio::test]
async fn silver_normalises_brand_and_category_and_flags_missing_fields() {
    let rows = vec![
        (T, Some("view"), 1, 1, Some("Appliances.Kitchen-Knife Set"), Some("RuNail"), Some(2.0), 7, None),
        (T, Some("cart"), 2, 1, None, None, Some(2.0), 7, Some("s")),
    ];
    let silver =
        collect(plans::silver(bronze(&rows)).unwrap().sort(vec![col("product_id").sort(true, false)]).unwrap()).await;
    assert_eq!(strings(&silver, "brand_norm"), vec![Some("runail".into()), None]);
    assert_eq!(strings(&silver, "category_code_norm"), vec![Some("appliances.kitchen_knife_set".into()), None]);
    assert_eq!(strings(&silver, "dq_missing_session"), vec![Some("true".into()), Some("false".into())]);
    assert_eq!(strings(&silver, "dq_missing_brand"), vec![Some("false".into()), Some("true".into())]);
    assert_eq!(strings(&silver, "dq_missing_category"), vec![Some("false".into()), Some("true".into())]);
    assert_eq!(strings(&silver, "event_date"), vec![Some("2019-10-01".into()), Some("2019-10-01".into())]);
}

#[tokio::test]
async fn dedup_keeps_the_lowest_price_row_and_treats_null_sessions_as_equal() {
    let rows = vec![
        // One key, three rows: the kept row is the cheapest, then lowest category_id.
        (T, Some("view"), 1, 9, None, Some("z"), Some(5.0), 7, Some("s")),
        (T, Some("view"), 1, 8, None, Some("y"), Some(3.0), 7, Some("s")),
        (T, Some("view"), 1, 2, None, Some("x"), Some(3.0), 7, Some("s")),
        // Null sessions compare equal: one row survives.
        (T, Some("cart"), 1, 1, None, Some("n"), Some(1.0), 7, None),
        (T, Some("cart"), 1, 1, None, Some("n"), Some(1.0), 7, None),
        // A different event type is a different key.
        (T, Some("purchase"), 1, 1, None, Some("n"), Some(1.0), 7, None),
        // A 64-bit category id survives exactly.
        (T, Some("view"), 2, 1487580005134238553, None, None, Some(1.0), 7, Some("s")),
    ];
    let silver = collect(
        plans::silver(bronze(&rows))
            .unwrap()
            .sort(vec![col("product_id").sort(true, false), col("event_type").sort(true, false)])
            .unwrap(),
    )
    .await;
    assert_eq!(silver.num_rows(), 4);
    assert_eq!(strings(&silver, "event_type"), ["cart", "purchase", "view", "view"].map(|s| Some(s.to_string())));
    assert_eq!((int(&silver, "category_id", 2), strings(&silver, "brand")[2].as_deref()), (2, Some("x")));
    assert_eq!(float(&silver, "price", 2), Some(3.0));
    assert_eq!(int(&silver, "category_id", 3), 1487580005134238553);
}

#[tokio::test]
async fn price_bands_have_inclusive_lower_bounds() {
    let prices = [9.99, 10.0, 29.99, 30.0, 59.99, 60.0];
    let rows: Vec<Row> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| (T, Some("view"), i as i64, 1, None, None, Some(*p), 7, Some("s")))
        .collect();
    let gold = collect(
        plans::gold_hourly_price_band(plans::silver(bronze(&rows)).unwrap())
            .unwrap()
            .sort(vec![col("price_band").sort(true, false)])
            .unwrap(),
    )
    .await;
    let bands: Vec<(String, i64)> = (0..gold.num_rows())
        .map(|i| (strings(&gold, "price_band")[i].clone().unwrap(), int(&gold, "views", i)))
        .collect();
    assert_eq!(bands, vec![("10-30".into(), 2), ("30-60".into(), 2), ("60_plus".into(), 1), ("<10".into(), 1)]);
}

#[tokio::test]
async fn hour_windows_split_at_hour_and_day_edges() {
    let rows = vec![
        (Some("2019-10-01 23:59:59 UTC"), Some("view"), 1, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (Some("2019-10-02 00:00:00 UTC"), Some("view"), 1, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (Some("2019-10-02T00:59:59Z"), Some("view"), 2, 1, None, Some("b"), Some(1.0), 7, Some("s")),
    ];
    let gold = collect(
        plans::gold_hourly_brand(plans::silver(bronze(&rows)).unwrap())
            .unwrap()
            .sort(vec![col("window_start").sort(true, false)])
            .unwrap(),
    )
    .await;
    assert_eq!(
        strings(&gold, "window_start"),
        vec![Some("2019-10-01T23:00:00".into()), Some("2019-10-02T00:00:00".into())]
    );
    assert_eq!(
        strings(&gold, "window_end"),
        vec![Some("2019-10-02T00:00:00".into()), Some("2019-10-02T01:00:00".into())]
    );
    assert_eq!(strings(&gold, "window_date"), vec![Some("2019-10-01".into()), Some("2019-10-02".into())]);
    assert_eq!((int(&gold, "views", 0), int(&gold, "views", 1)), (1, 2));
}

#[tokio::test]
async fn rates_are_null_on_zero_denominators_and_may_exceed_one() {
    let rows = vec![
        // brand a: only purchases → no views, no carts.
        (T, Some("purchase"), 1, 1, None, Some("a"), Some(2.5), 7, Some("s")),
        (T, Some("purchase"), 2, 1, None, Some("a"), Some(1.5), 7, Some("s")),
        // brand b: 1 view, 2 carts, 3 purchases (not a strict funnel), a remove_from_cart.
        (T, Some("view"), 1, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("cart"), 1, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("cart"), 2, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("remove_from_cart"), 2, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("purchase"), 3, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("purchase"), 4, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        (T, Some("purchase"), 5, 1, None, Some("b"), Some(1.0), 7, Some("s")),
        // brand c: a view only → revenue 0.0, not null.
        (T, Some("view"), 9, 1, None, Some("c"), Some(1.0), 7, Some("s")),
    ];
    let gold = collect(
        plans::gold_daily_brand(plans::silver(bronze(&rows)).unwrap())
            .unwrap()
            .sort(vec![col("brand").sort(true, false)])
            .unwrap(),
    )
    .await;
    assert_eq!(float(&gold, "revenue", 0), Some(4.0));
    assert_eq!(
        (
            float(&gold, "view_to_cart_rate", 0),
            float(&gold, "cart_to_purchase_rate", 0),
            float(&gold, "conversion_rate", 0)
        ),
        (None, None, None)
    );
    assert_eq!((int(&gold, "views", 1), int(&gold, "carts", 1), int(&gold, "purchases", 1)), (1, 2, 3));
    assert_eq!(float(&gold, "view_to_cart_rate", 1), Some(2.0));
    assert_eq!(float(&gold, "cart_to_purchase_rate", 1), Some(1.5));
    assert_eq!(float(&gold, "conversion_rate", 1), Some(3.0));
    assert_eq!(float(&gold, "revenue", 2), Some(0.0));
    assert_eq!(float(&gold, "cart_to_purchase_rate", 2), None);
}

#[tokio::test]
async fn category_root_is_the_first_segment_and_null_stays_null() {
    let rows = vec![
        (T, Some("view"), 1, 1, Some("furniture.bathroom.bath"), None, Some(1.0), 7, Some("s")),
        (T, Some("view"), 2, 1, Some("Apparel"), None, Some(1.0), 7, Some("s")),
        (T, Some("view"), 3, 1, None, None, Some(1.0), 7, Some("s")),
    ];
    let gold = collect(
        plans::gold_daily_category(plans::silver(bronze(&rows)).unwrap())
            .unwrap()
            .sort(vec![col("category_root").sort(true, false)])
            .unwrap(),
    )
    .await;
    assert_eq!(strings(&gold, "category_root"), vec![Some("apparel".into()), Some("furniture".into()), None]);
}

#[tokio::test]
async fn silver_eligible_rows_less_duplicates_are_the_silver_rows() {
    let mut rows = vec![
        (T, Some("view"), 1, 9, Some("a.b"), Some("Z"), Some(5.0), 7, Some("s")),
        (T, Some("view"), 1, 9, Some("a.b"), Some("Z"), Some(5.5), 7, Some("s")),
        (T, Some("cart"), 1, 1, None, None, Some(1.0), 7, None),
        (T, Some("cart"), 1, 1, None, None, Some(1.0), 7, None),
        (T, Some("view"), 2, 3, None, Some("y"), Some(2.0), 8, Some("t")),
    ];
    // Rows the silver filter drops are not eligible.
    rows.push((T, Some("view"), 4, 3, None, None, Some(0.0), 8, Some("t")));
    rows.push((T, None, 4, 3, None, None, Some(3.0), 8, Some("t")));
    assert_eq!(plans::silver_eligible(bronze(&rows)).unwrap().count().await.unwrap(), 5);
    assert_eq!(plans::silver(bronze(&rows)).unwrap().count().await.unwrap(), 3);
}

/// The same rows in many small batches over 4 partitions, so that the kept
/// row is chosen in partial states and merged; strings optionally as views.
async fn bronze_spread(rows: &[Row], string_views: bool) -> DataFrame {
    let batch = collect(bronze(rows)).await;
    let batches: Vec<RecordBatch> =
        (0..batch.num_rows()).step_by(3).map(|i| batch.slice(i, 3.min(batch.num_rows() - i))).collect();
    let ctx = SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_target_partitions(4));
    let df = ctx
        .read_batches(batches)
        .unwrap()
        .repartition(datafusion::logical_expr::Partitioning::RoundRobinBatch(4))
        .unwrap();
    if !string_views {
        return df;
    }
    let columns = df
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => datafusion::logical_expr::cast(col(f.name()), DataType::Utf8View).alias(f.name()),
            _ => col(f.name()),
        })
        .collect::<Vec<_>>();
    df.select(columns).unwrap()
}

/// Duplicate groups of 1–4 rows differing in every carried column, nulls
/// included, in a scrambled order.
fn differing_duplicates() -> Vec<Row> {
    const BRANDS: [Option<&str>; 3] = [None, Some("a"), Some("b")];
    const CODES: [Option<&str>; 3] = [None, Some("x.y"), Some("x.z")];
    let mut rows = Vec::new();
    let mut seed = 17u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for key in 0..300i64 {
        for _ in 0..1 + key % 4 {
            let price = [Some(1.0), Some(2.0)][next() % 2];
            rows.push((
                T,
                Some("view"),
                key,
                1 + (next() % 2) as i64,
                CODES[next() % 3],
                BRANDS[next() % 3],
                price,
                7,
                Some("s"),
            ));
        }
    }
    for i in (1..rows.len()).rev() {
        rows.swap(i, next() % (i + 1));
    }
    rows
}

/// An independent statement of the rule: DataFusion's `first_value` ordered by
/// price, category_id, brand, category_code (nulls last).
fn first_in_dedup_order(bronze: DataFrame) -> DataFrame {
    use datafusion::functions_aggregate::expr_fn::first_value;
    let order: Vec<_> =
        ["price", "category_id", "brand", "category_code"].iter().map(|c| col(*c).sort(true, false)).collect();
    let kept = ["price", "category_id", "brand", "category_code"].map(|c| first_value(col(c), order.clone()).alias(c));
    bronze.aggregate(vec![col("product_id")], kept.to_vec()).unwrap()
}

#[tokio::test]
async fn dedup_keeps_the_first_row_in_dedup_order_however_the_rows_are_spread() {
    let rows = differing_duplicates();
    let by_product = || vec![col("product_id").sort(true, false)];
    let carried = || ["product_id", "price", "category_id", "brand", "category_code"].map(col).to_vec();
    let expected =
        collect(first_in_dedup_order(bronze(&rows)).select(carried()).unwrap().sort(by_product()).unwrap()).await;
    assert_eq!(expected.num_rows(), 300);
    for string_views in [false, true] {
        let silver = plans::silver(bronze_spread(&rows, string_views).await).unwrap();
        let kept = collect(silver.select(carried()).unwrap().sort(by_product()).unwrap()).await;
        for column in ["brand", "category_code"] {
            assert_eq!(strings(&kept, column), strings(&expected, column), "{column}, string views: {string_views}");
        }
        for i in 0..300 {
            assert_eq!(int(&kept, "category_id", i), int(&expected, "category_id", i), "row {i}");
            assert_eq!(float(&kept, "price", i), float(&expected, "price", i), "row {i}");
        }
    }
}
