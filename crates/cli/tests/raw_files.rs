//! Raw folders as exports really come: compressed files, upper-case names,
//! reordered columns, stray files. Every row is read or the run stops with one
//! line naming the file; every file that is not read is listed with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tables::{Value, read_rows, sorted};
use common::{funnelpulse, funnelpulse_ok, generate};

const HEADER: &str = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

/// The data lines of every generated CSV of `raw`, in file order.
fn data_lines(raw: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        lines.extend(text.lines().skip(1).map(str::to_string));
    }
    lines
}

/// Compresses `path` in place with a command-line tool (`gzip`, `zstd`, …), returning the new file.
fn compress(tool: &str, path: &Path) -> PathBuf {
    let status = Command::new(tool).args(["-q", "-f"]).arg(path).status().unwrap();
    assert!(status.success(), "{tool} {path:?}");
    let ending = match tool {
        "gzip" => "gz",
        "zstd" => "zst",
        "bzip2" => "bz2",
        "xz" => "xz",
        other => panic!("{other}"),
    };
    let compressed = PathBuf::from(format!("{}.{ending}", path.display()));
    if tool == "zstd" {
        std::fs::remove_file(path).unwrap(); // zstd keeps its input
    }
    compressed
}

/// Tables whose content depends only on the rows read, not on file names.
async fn content(lake: &Path) -> Vec<Vec<Vec<Value>>> {
    vec![
        sorted(
            read_rows(
                lake,
                "silver_events",
                "event_date",
                &["event_time", "event_type", "product_id", "user_id", "price"],
            )
            .await,
        ),
        sorted(
            read_rows(
                lake,
                "gold_funnel_hourly_brand",
                "window_date",
                &["window_start", "brand", "views", "carts", "purchases"],
            )
            .await,
        ),
    ]
}

#[tokio::test]
async fn compressed_and_upper_case_files_are_read_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let plain = generate(dir.path(), 3_000, 4);
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "plain-lake"]);

    // The same rows spread over five files, four of them compressed, one named in upper case.
    let lines = data_lines(&plain);
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let chunks: Vec<&[String]> = lines.chunks(lines.len().div_ceil(5)).collect();
    for (i, (chunk, tool)) in chunks.iter().zip(["gzip", "zstd", "bzip2", "xz", "upper"]).enumerate() {
        let path = odd.join(format!("part-{i}.csv"));
        std::fs::write(&path, format!("{HEADER}\n{}\n", chunk.join("\n"))).unwrap();
        match tool {
            "upper" => std::fs::rename(&path, odd.join(format!("PART-{i}.CSV"))).unwrap(),
            tool => drop(compress(tool, &path)),
        }
    }
    std::fs::write(odd.join("notes.txt"), "exported by hand\n").unwrap();
    std::fs::write(odd.join(".DS_Store"), "x").unwrap();
    std::fs::write(odd.join("_SUCCESS"), "").unwrap();

    let text = funnelpulse_ok(dir.path(), &["run", "01", "--raw", "odd", "--lake", "odd-lake"]);
    assert!(text.contains(&format!("raw data lines        {:>12}", lines.len())), "{text}");
    assert!(text.contains("(5 raw files"), "{text}");
    for stray in ["notes.txt (not a CSV file", ".DS_Store (hidden", "_SUCCESS (hidden"] {
        assert!(text.contains(&format!("not read: {stray}")), "{stray} not reported:\n{text}");
    }
    assert_eq!(content(&dir.path().join("odd-lake")).await, content(&dir.path().join("plain-lake")).await);
}

#[tokio::test]
async fn line_numbers_in_a_compressed_file_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    // Two gzip members back to back (as `cat a.gz b.gz` or pigz make): both are read.
    let first = format!("{HEADER}\n2019-10-01 10:00:00 UTC,view,1,2,,b,1.00,3,s\n\n2019-10-01 10:00:00 UTC,view,1,2\n");
    let second = "2019-10-01 11:00:00 UTC,cart,1,2,,b,oops,3,s\n2019-10-01 12:00:00 UTC,purchase,1,2,,b,2.50,3,s\n";
    let mut bytes = Vec::new();
    for (i, part) in [first.as_str(), second].iter().enumerate() {
        let path = raw.join(format!("member{i}"));
        std::fs::write(&path, part).unwrap();
        let status = Command::new("gzip").arg("-f").arg(&path).status().unwrap();
        assert!(status.success());
        bytes.extend(std::fs::read(raw.join(format!("member{i}.gz"))).unwrap());
        std::fs::remove_file(raw.join(format!("member{i}.gz"))).unwrap();
    }
    std::fs::write(raw.join("events.csv.gz"), bytes).unwrap();
    let text = funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    assert!(text.contains("raw data lines                   4"), "{text}");
    assert!(text.contains("blank lines skipped              1"), "{text}");
    let lake = dir.path().join("lake");
    let rejects = sorted(read_rows(&lake, "bronze_rejects", "event_date", &["source_file", "source_line"]).await);
    let file = Value::S("events.csv.gz".into());
    assert_eq!(rejects, vec![vec![file.clone(), Value::I(4)], vec![file, Value::I(5)]]);

    // The compressed file given directly is read the same way.
    let text = funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw/events.csv.gz", "--lake", "lake2"]);
    assert!(text.contains("raw data lines                   4"), "{text}");
}

/// Two exports of the same name in two subfolders: a bad row names the path
/// below `--raw`, so the two files stay apart in bronze_rejects.
#[tokio::test]
async fn rejects_name_the_file_by_its_path_below_the_raw_folder() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, line) in [("2019-10", "2019-10-01 10:00:00 UTC,view,1,2"), ("2019-11", "bad,view,1,2,,b,1.00,3,s")] {
        let sub = dir.path().join("raw").join(folder);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("events.csv"), format!("{HEADER}\n{line}\n")).unwrap();
    }
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"]);
    let rejects = sorted(read_rows(&dir.path().join("lake"), "bronze_rejects", "event_date", &["source_file"]).await);
    assert_eq!(rejects, vec![vec![Value::S("2019-10/events.csv".into())], vec![Value::S("2019-11/events.csv".into())]]);
}

#[tokio::test]
async fn reordered_columns_are_mapped_by_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let plain = generate(dir.path(), 2_000, 3);
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "raw", "--lake", "plain-lake"]);
    // A re-export with the columns in another order (Kaggle's fields hold no quotes).
    let order = [8, 6, 5, 1, 0, 2, 3, 4, 7];
    let reorder = |line: &str| {
        assert!(!line.contains('"'), "{line}");
        let fields: Vec<&str> = line.split(',').collect();
        order.iter().map(|&i| fields[i]).collect::<Vec<_>>().join(",")
    };
    let lines = data_lines(&plain);
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let body: Vec<String> = lines.iter().map(|l| reorder(l)).collect();
    std::fs::write(odd.join("export.csv"), format!("{}\n{}\n", reorder(HEADER), body.join("\n"))).unwrap();
    funnelpulse_ok(dir.path(), &["run", "01", "--raw", "odd", "--lake", "odd-lake"]);
    assert_eq!(content(&dir.path().join("odd-lake")).await, content(&dir.path().join("plain-lake")).await);
}

/// Runs stage 01 on a folder holding one file with `bytes`, expecting one clear error line.
fn refused(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    std::fs::write(dir.path().join("raw").join(name), bytes).unwrap();
    let out = funnelpulse(dir.path(), &["run", "01", "--raw", "raw", "--lake", "lake"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    assert!(stderr.contains(name), "{name} not named: {stderr}");
    assert!(!dir.path().join("lake/tables/bronze_events").exists(), "{name}: a table was written");
    stderr
}

#[test]
fn bad_headers_and_corrupt_files_stop_the_run_with_one_line_naming_the_file() {
    let row = "2019-10-01 10:00:00 UTC,view,1,2,,b,1.00,3,s\n";
    let missing = refused("short.csv", format!("{}\n{row}", HEADER.replace(",user_session", "")).as_bytes());
    assert!(missing.contains("lacks column(s) user_session"), "{missing}");
    let extra = refused("wide.csv", format!("{HEADER},store\n{row}").as_bytes());
    assert!(extra.contains("unknown column(s) store"), "{extra}");

    // gzip data under a plain name, and a truncated gzip file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    std::fs::write(&path, format!("{HEADER}\n{row}").repeat(200)).unwrap();
    let gz = std::fs::read(compress("gzip", &path)).unwrap();
    let disguised = refused("x.csv", &gz);
    assert!(disguised.contains("the file is gzip-compressed: name it *.csv.gz"), "{disguised}");
    let truncated = refused("cut.csv.gz", &gz[..gz.len() / 2]);
    assert!(truncated.contains("cut.csv.gz: not valid gzip data"), "{truncated}");
    for stderr in [missing, extra, disguised, truncated] {
        assert!(stderr.trim().lines().count() <= 3, "more than a few lines:\n{stderr}");
    }
}
