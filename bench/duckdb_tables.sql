-- The same six tables as FunnelPulse stages 01+02, in plain DuckDB SQL, as the
-- benchmark's yardstick. Run by bench/batch.py with RAW and OUT substituted.
SET preserve_insertion_order = false;

CREATE TEMP TABLE bronze AS
SELECT
    strptime(replace(event_time, ' UTC', ''), '%Y-%m-%d %H:%M:%S') AS event_time,
    event_type, product_id, category_id, category_code, brand, price, user_id, user_session,
    CAST(strptime(replace(event_time, ' UTC', ''), '%Y-%m-%d %H:%M:%S') AS DATE) AS event_date
FROM read_csv('@RAW@/*.csv', header = true, columns = {
    'event_time': 'VARCHAR', 'event_type': 'VARCHAR', 'product_id': 'BIGINT', 'category_id': 'BIGINT',
    'category_code': 'VARCHAR', 'brand': 'VARCHAR', 'price': 'DOUBLE', 'user_id': 'BIGINT', 'user_session': 'VARCHAR'});
COPY bronze TO '@OUT@/bronze_events' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE);

CREATE TEMP TABLE silver AS
SELECT *, lower(brand) AS brand_norm,
       regexp_replace(lower(category_code), '[^a-z0-9.]', '_', 'g') AS category_code_norm,
       user_session IS NULL AS dq_missing_session, brand IS NULL AS dq_missing_brand,
       category_code IS NULL AS dq_missing_category
FROM (
    SELECT event_time, user_id, user_session, product_id, event_type,
           arg_min(category_id, (price, category_id, brand, category_code)) AS category_id,
           arg_min(category_code, (price, category_id, brand, category_code)) AS category_code,
           arg_min(brand, (price, category_id, brand, category_code)) AS brand,
           min(price) AS price, any_value(event_date) AS event_date
    FROM bronze
    WHERE price IS NOT NULL AND price > 0 AND event_time IS NOT NULL AND event_type IS NOT NULL
    GROUP BY ALL
);
COPY silver TO '@OUT@/silver_events' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE);

COPY (
    SELECT date_trunc('hour', event_time) AS window_start, date_trunc('hour', event_time) + INTERVAL 1 HOUR AS window_end,
           brand_norm AS brand,
           count(*) FILTER (event_type = 'view') AS views, count(*) FILTER (event_type = 'cart') AS carts,
           count(*) FILTER (event_type = 'purchase') AS purchases,
           coalesce(sum(price) FILTER (event_type = 'purchase'), 0) AS revenue,
           CAST(date_trunc('hour', event_time) AS DATE) AS window_date
    FROM silver GROUP BY ALL
) TO '@OUT@/gold_funnel_hourly_brand' (FORMAT parquet, PARTITION_BY (window_date), OVERWRITE_OR_IGNORE);
COPY (
    SELECT event_date AS date, brand_norm AS brand,
           count(*) FILTER (event_type = 'view') AS views, count(*) FILTER (event_type = 'cart') AS carts,
           count(*) FILTER (event_type = 'purchase') AS purchases,
           coalesce(sum(price) FILTER (event_type = 'purchase'), 0) AS revenue
    FROM silver GROUP BY ALL
) TO '@OUT@/gold_funnel_daily_brand' (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE);
COPY (
    SELECT event_date AS date, split_part(category_code_norm, '.', 1) AS category_root,
           count(*) FILTER (event_type = 'view') AS views, count(*) FILTER (event_type = 'cart') AS carts,
           count(*) FILTER (event_type = 'purchase') AS purchases,
           coalesce(sum(price) FILTER (event_type = 'purchase'), 0) AS revenue
    FROM silver GROUP BY ALL
) TO '@OUT@/gold_funnel_daily_category' (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE);
COPY (
    SELECT date_trunc('hour', event_time) AS window_start, date_trunc('hour', event_time) + INTERVAL 1 HOUR AS window_end,
           CASE WHEN price < 10 THEN '<10' WHEN price < 30 THEN '10-30' WHEN price < 60 THEN '30-60' ELSE '60_plus' END AS price_band,
           count(*) FILTER (event_type = 'view') AS views, count(*) FILTER (event_type = 'cart') AS carts,
           count(*) FILTER (event_type = 'purchase') AS purchases,
           coalesce(sum(price) FILTER (event_type = 'purchase'), 0) AS revenue,
           CAST(date_trunc('hour', event_time) AS DATE) AS window_date
    FROM silver GROUP BY ALL
) TO '@OUT@/gold_funnel_hourly_price_band' (FORMAT parquet, PARTITION_BY (window_date), OVERWRITE_OR_IGNORE);
