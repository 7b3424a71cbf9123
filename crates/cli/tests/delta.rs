//! The lake as Delta tables: two writers on one lake, readers during
//! commits, and the Delta log that other tools read.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tables::{Row, batch_tables, read_rows, sorted};
use common::{FUNNELPULSE, funnelpulse_ok, generate};

/// Every batch table of stages 01–02, sorted rows.
async fn batch_rows(lake: &Path) -> Vec<(&'static str, Vec<Row>)> {
    let mut out = Vec::new();
    for (table, partition, columns) in batch_tables() {
        out.push((table, sorted(read_rows(lake, table, partition, &columns).await)));
    }
    out
}

/// `funnelpulse ARGS` started in the background (clean FUNNELPULSE_* environment).
fn spawn(dir: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Child {
    let mut command = Command::new(FUNNELPULSE);
    command.current_dir(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("FUNNELPULSE_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.spawn().expect("funnelpulse starts")
}

/// A small pseudo-random sequence (no dependency; the seed is printed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Two `run 01 02` on one lake whose commits overlap: the first run's commit
/// is slowed down (it waits before its first table's commit), the second
/// starts at a random moment of the first. Exactly one wins; the loser says
/// why and commits nothing; the tables equal a single run's.
#[tokio::test]
async fn two_writers_on_one_lake_one_wins_and_the_tables_equal_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2_000, 2);
    let reference = dir.path().join("reference");
    let started = Instant::now();
    funnelpulse_ok(dir.path(), &["run", "01", "02", "--raw", "raw", "--lake", reference.to_str().unwrap()]);
    let solo = started.elapsed();
    let expected = batch_rows(&reference).await;

    let rounds: u64 = std::env::var("FP_CONCURRENCY_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut random = Lcg(seed);
    eprintln!("seed {seed}, one run alone takes {solo:?}");
    let lake = dir.path().join("lake");
    let args = ["run", "01", "02", "--raw", "raw", "--lake", lake.to_str().unwrap()];
    for round in 0..rounds {
        let slow = vec![("FUNNELPULSE_PAUSE", "before-commit:bronze_rejects:2000".to_string())];
        let first = spawn(dir.path(), &args, &slow);
        let offset = Duration::from_millis(random.below(solo.as_millis() as u64));
        std::thread::sleep(offset);
        let second = spawn(dir.path(), &args, &[]);
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
        let won: Vec<bool> = outputs.iter().map(|o| o.status.success()).collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round} (second run {offset:?} after the first): exactly one run must win\nfirst: {}\nsecond: {}",
            text(&outputs[0]),
            text(&outputs[1])
        );
        let loser = text(&outputs[won.iter().position(|w| !w).unwrap()]);
        assert!(
            loser.contains("was changed by another run") && loser.contains("nothing of this run was committed"),
            "round {round}: the loser must say why: {loser}"
        );
        let errors: Vec<&str> = loser.lines().filter(|l| l.to_lowercase().contains("error")).collect();
        assert_eq!(errors.len(), 1, "round {round}: one line that says why, no log: {loser}");
        let got = batch_rows(&lake).await;
        for ((table, rows), (_, want)) in got.iter().zip(&expected) {
            assert!(
                rows == want,
                "round {round}: {table} differs from a single run's ({} vs {} rows)",
                rows.len(),
                want.len()
            );
        }
    }
}

/// Readers running while runs replace the tables see one whole version at a
/// time: the row count of one of the data sets, never a mix.
#[tokio::test]
async fn a_reader_during_commits_sees_one_version_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let small = generate(&dir.path().join("a"), 1_000, 1);
    let large = generate(&dir.path().join("b"), 3_000, 2);
    let lake = dir.path().join("lake");
    let run = |raw: &Path| {
        funnelpulse_ok(dir.path(), &["run", "01", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()])
    };
    run(&large);
    let large_rows = read_rows(&lake, "bronze_events", "event_date", &["event_type"]).await.len();
    run(&small);
    let small_rows = read_rows(&lake, "bronze_events", "event_date", &["event_type"]).await.len();
    assert_ne!(small_rows, large_rows);

    let writer = {
        let (dir, lake, small, large) = (dir.path().to_path_buf(), lake.clone(), small.clone(), large.clone());
        std::thread::spawn(move || {
            for raw in [&large, &small, &large, &small] {
                let args = ["run", "01", "--raw", raw.to_str().unwrap(), "--lake", lake.to_str().unwrap()];
                funnelpulse_ok(&dir, &args);
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let rows = read_rows(&lake, "bronze_events", "event_date", &["event_type"]).await.len();
        assert!(rows == small_rows || rows == large_rows, "a reader saw {rows} rows: a mix of two versions");
        reads += 1;
    }
    writer.join().unwrap();
    assert!(reads > 3, "the reader ran only {reads} times");
}

/// A lake written before the tables were Delta tables (folders of Parquet
/// files) is refused with the fix, converted in place, and then read as it was.
#[tokio::test]
async fn a_lake_of_the_format_before_delta_is_refused_then_converted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3_000, 2);
    let delta_lake = dir.path().join("delta");
    funnelpulse_ok(dir.path(), &["run", "01", "02", "--raw", "raw", "--lake", delta_lake.to_str().unwrap()]);

    // The old layout: tables/silver_events/event_date=<day>/part-<run>-<n>.parquet, no log.
    let legacy = dir.path().join("legacy");
    for (n, (file, day)) in
        common::tables::delta_files(&delta_lake, "silver_events", "event_date").await.iter().enumerate()
    {
        let folder = legacy.join("tables/silver_events").join(format!("event_date={}", day.as_deref().unwrap()));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(file, folder.join(format!("part-20261101T000000Z-0000abcd-{n}.parquet"))).unwrap();
    }
    let legacy_arg = legacy.to_str().unwrap();
    let refused = common::funnelpulse(dir.path(), &["run", "02", "--lake", legacy_arg], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "an old-format lake was read: {stderr}");
    assert!(stderr.contains("not a Delta table") && stderr.contains("funnelpulse lake convert --lake"), "{stderr}");

    let out = funnelpulse_ok(dir.path(), &["lake", "convert", "--lake", legacy_arg]);
    assert!(out.contains("silver_events") && out.contains("converted"), "{out}");
    let again = funnelpulse_ok(dir.path(), &["lake", "convert", "--lake", legacy_arg]);
    assert!(again.contains("nothing to convert"), "{again}");
    funnelpulse_ok(dir.path(), &["run", "02", "--lake", legacy_arg]);
    for (table, partition, columns) in batch_tables() {
        if table == "bronze_events" || table == "gold_funnel_hourly_brand" {
            continue; // not in the old lake
        }
        let converted = sorted(read_rows(&legacy, table, partition, &columns).await);
        let original = sorted(read_rows(&delta_lake, table, partition, &columns).await);
        assert!(!converted.is_empty() && converted == original, "{table} differs after the conversion");
    }
}

/// DuckDB's own Delta reader (the `delta` extension, from PyPI's
/// duckdb-ext-delta in the venv `.ci/run` makes) reads every table of a
/// pipeline run as we do: rows, and a checksum of a value column.
#[tokio::test]
async fn duckdb_reads_every_table_as_we_do() {
    let python = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/duckdb-delta-venv/bin/python");
    assert!(python.exists(), "no {} (.ci/run makes it: DuckDB 1.4 with duckdb-ext-delta)", python.display());
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3_000, 2);
    funnelpulse_ok(dir.path(), &["run", "01", "02", "05", "--raw", "raw", "--lake", "lake"]);
    let lake = dir.path().join("lake");
    let mut tables = batch_tables();
    tables.push(("bronze_rejects", "event_date", vec!["event_date"]));
    for name in ["gold_anomalies_hourly_brand", "gold_anomalies_hourly_brand_v2"] {
        tables.push((name, "window_date", vec!["window_date"]));
    }
    let script = format!(
        "import duckdb, glob, sys\n\
         ext = glob.glob(sys.prefix + '/lib/python*/site-packages/duckdb_ext/extensions/*/*/delta.duckdb_extension')[0]\n\
         con = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})\n\
         con.execute(f\"LOAD '{{ext}}'\")\n\
         for t in {names:?}:\n\
         \x20   print(t, con.sql(f\"select count(*) from delta_scan('{lake}/tables/{{t}}')\").fetchone()[0])\n",
        names = tables.iter().map(|t| t.0).collect::<Vec<_>>(),
        lake = lake.display()
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "DuckDB failed: {}", String::from_utf8_lossy(&out.stderr));
    for (table, partition, columns) in tables {
        let ours = read_rows(&lake, table, partition, &columns).await.len();
        assert!(stdout.contains(&format!("{table} {ours}\n")), "{table}: we read {ours} rows, DuckDB: {stdout}");
    }
}

/// Time travel with our own commands: stage 05 on an older version of its
/// input equals stage 05 run when that version was the latest; the report
/// and the evaluation, which read several tables, take a time, not a version.
#[tokio::test]
async fn reading_commands_travel_back_to_an_older_version() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let first = generate(&dir.path().join("a"), 4_000, 2);
    let second = generate(&dir.path().join("b"), 2_000, 1);
    let (lake, reference) = (dir.path().join("lake"), dir.path().join("reference"));
    let run = |args: &[&str]| funnelpulse_ok(dir.path(), args);
    let reference_05 = {
        run(&["run", "01", "--raw", first.to_str().unwrap(), "--lake", reference.to_str().unwrap()]);
        run(&["run", "05", "--lake", reference.to_str().unwrap()])
    };
    run(&["run", "01", "--raw", first.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1100));
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::thread::sleep(Duration::from_millis(1100));
    run(&["run", "01", "--raw", second.to_str().unwrap(), "--lake", lake.to_str().unwrap()]);

    let out = run(&["run", "05", "--lake", lake.to_str().unwrap(), "--as-of", "0"]);
    // "stage 05 done in 0.4s (123 brand-hours examined)": version 0's gold rows.
    let examined = |text: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.contains("brand-hours examined"))?;
        line.rsplit_once('(')?.1.split(' ').next()?.parse().ok()
    };
    assert!(examined(&out).is_some() && examined(&out) == examined(&reference_05), "{out}\n{reference_05}");
    for table in ["gold_anomalies_hourly_brand", "gold_anomalies_hourly_brand_v2"] {
        let columns = ["brand", "window_start", "anomaly_type", "window_date"];
        let (ours, theirs) = (
            read_rows(&lake, table, "window_date", &columns).await,
            read_rows(&reference, table, "window_date", &columns).await,
        );
        assert_eq!(sorted(ours), sorted(theirs), "{table} from version 0 differs");
    }

    let missing =
        common::funnelpulse(dir.path(), &["run", "05", "--lake", lake.to_str().unwrap(), "--as-of", "9"], &[]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("gold_funnel_hourly_brand has versions 0 to 1; there is no version 9"), "{stderr}");
    let refused =
        common::funnelpulse(dir.path(), &["run", "06", "--lake", lake.to_str().unwrap(), "--as-of", "0"], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("give a time instead"), "{stderr}");
    run(&["run", "06", "--lake", lake.to_str().unwrap(), "--as-of", &between]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("reports/summary.json")).unwrap()).unwrap();
    let bronze = summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == "bronze_events").unwrap().clone();
    assert_eq!(bronze["rows"], 4000, "the report as of the first run counts its bronze rows: {bronze}");
    let anomalies = summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == "gold_anomalies_hourly_brand");
    assert!(anomalies.is_none_or(|t| t["rows"].is_null()), "stage 05 ran after that time: {summary}");
}

/// Every table's columns and types as one reader sees them, one line per
/// table: `table name:type,…`, types normalised across readers.
const NORMALISE_TYPES: &str = "\
def canon(t):\n\
\x20   t = str(t).lower()\n\
\x20   for key, name in [('large_string', 'string'), ('string_view', 'string'), ('varchar', 'string'), ('string', 'string'), ('utf8', 'string'),\n\
\x20                     ('timestamp', 'timestamp'), ('datetime', 'timestamp'), ('date', 'date'),\n\
\x20                     ('bigint', 'int64'), ('int64', 'int64'), ('integer', 'int32'), ('int32', 'int32'),\n\
\x20                     ('double', 'float64'), ('float64', 'float64'), ('bool', 'boolean')]:\n\
\x20       if key in t:\n\
\x20           return name\n\
\x20   return t\n\
def show(table, columns):\n\
\x20   print(table, ','.join(n + ':' + canon(t) for n, t in columns), flush=True)\n";

/// Ends a reader script once everything is printed: DuckDB's delta extension
/// was seen aborting in the interpreter's teardown ("terminate called without
/// an active exception") after a complete, correct run.
const EXIT_NOW: &str = "import os\nos._exit(0)\n";

/// Schemas as pyarrow (deltalake), Polars and DuckDB's delta extension read them.
fn reader_schemas(lake: &Path, tables: &[String]) -> [Vec<String>; 3] {
    let lake = lake.display();
    let pyarrow = format!(
        "import deltalake\n{NORMALISE_TYPES}for t in {tables:?}:\n\
         \x20   a = deltalake.DeltaTable('{lake}/tables/' + t).to_pyarrow_table()\n\
         \x20   show(t, [(f.name, f.type) for f in a.schema])\n{EXIT_NOW}"
    );
    let polars = format!(
        "import polars\n{NORMALISE_TYPES}for t in {tables:?}:\n\
         \x20   s = polars.read_delta('{lake}/tables/' + t).schema\n\
         \x20   show(t, list(s.items()))\n{EXIT_NOW}"
    );
    let duckdb = format!(
        "import duckdb, glob, sys\n{NORMALISE_TYPES}\
         ext = glob.glob(sys.prefix + '/lib/python*/site-packages/duckdb_ext/extensions/*/*/delta.duckdb_extension')[0]\n\
         con = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})\n\
         con.execute(f\"LOAD '{{ext}}'\")\n\
         for t in {tables:?}:\n\
         \x20   r = con.sql(f\"select * from delta_scan('{lake}/tables/{{t}}')\")\n\
         \x20   show(t, list(zip(r.columns, r.types)))\n{EXIT_NOW}"
    );
    let venv = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/duckdb-delta-venv/bin/python");
    let run = |python: &Path, script: &str| {
        let out = Command::new(python).args(["-c", script]).output().unwrap();
        let reader = script.lines().next().unwrap_or_default();
        assert!(
            out.status.success(),
            "reader `{reader}` failed: {}\nafter printing:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let python3 = Path::new("python3");
    [run(python3, &pyarrow), run(python3, &polars), run(&venv, &duckdb)]
}

/// An empty table reads with the columns and types of a full one, in every
/// reader: the partition column stays a DATE, no placeholder partition.
#[tokio::test]
async fn every_table_reads_with_one_schema_in_every_reader_empty_or_not() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3_000, 2);
    funnelpulse_ok(dir.path(), &["run", "all", "--raw", "raw", "--lake", "clean"]);
    // The same data with one bad row: bronze_rejects is not empty there.
    let mut text = std::fs::read_dir(dir.path().join("raw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    text.push_str("2019-10-01 10:00:00 UTC,view,abc,2,,b,1.00,3,s\n");
    std::fs::create_dir_all(dir.path().join("bad")).unwrap();
    std::fs::write(dir.path().join("bad/events.csv"), text).unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "bad", "--lake", "bad-lake"]);

    let clean = dir.path().join("clean");
    let mut tables: Vec<String> = std::fs::read_dir(clean.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    tables.sort();
    assert!(tables.len() >= 12, "{tables:?}");
    let schemas = reader_schemas(&clean, &tables);
    let empty = read_rows(&clean, "bronze_rejects", "event_date", &["event_date"]).await;
    assert!(empty.is_empty(), "clean data has rejects");
    for (reader, lines) in ["deltalake (pyarrow)", "polars"].iter().zip(&schemas[1..]) {
        assert_eq!(lines, &schemas[2], "{reader} and DuckDB read different schemas");
    }
    assert_eq!(schemas[0], schemas[2], "pyarrow and DuckDB read different schemas");
    for line in &schemas[0] {
        let (table, columns) = line.split_once(' ').unwrap();
        let partition = funnelpulse_core::tables::lake_table(table).map(|t| t.partition_col);
        if let Some(partition) = partition {
            assert!(columns.contains(&format!("{partition}:date")), "{table}: partition column is not a date: {line}");
        }
        assert!(!columns.contains("__HIVE_DEFAULT_PARTITION__"), "{line}");
    }
    // The empty bronze_rejects has the schema of a full one, in each reader.
    let full = reader_schemas(&dir.path().join("bad-lake"), &["bronze_rejects".to_string()]);
    for (clean_lines, full_lines) in schemas.iter().zip(&full) {
        let clean_line = clean_lines.iter().find(|l| l.starts_with("bronze_rejects ")).unwrap();
        assert_eq!(clean_line, &full_lines[0], "empty and full bronze_rejects differ");
    }
}
