//! The generator is deterministic per seed and makes data of the real shape.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use funnelpulse_generator::{GeneratorConfig, Truth, generate};

fn config(out: &std::path::Path, rows: u64, seed: u64) -> GeneratorConfig {
    GeneratorConfig {
        out: out.to_path_buf(),
        rows,
        seed,
        start: NaiveDate::from_ymd_opt(2019, 10, 25).unwrap(),
        days: 14,
    }
}

fn read_all(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn same_seed_same_files_other_seed_other_files() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&config(a.path(), 30_000, 7)).unwrap();
    generate(&config(b.path(), 30_000, 7)).unwrap();
    generate(&config(c.path(), 30_000, 8)).unwrap();
    assert_eq!(read_all(a.path()), read_all(b.path()));
    assert_ne!(read_all(a.path()), read_all(c.path()));
    // Monthly Kaggle file names, split at the month boundary.
    let names: Vec<_> = read_all(a.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["2019-Nov.csv", "2019-Oct.csv", "truth.json"]);
}

#[test]
fn data_has_the_shape_of_the_real_log() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&config(dir.path(), 200_000, 42)).unwrap();
    assert_eq!(report.rows, 200_000);
    let mut kinds: HashMap<String, f64> = HashMap::new();
    let (mut no_brand, mut no_code, mut non_positive, mut empty_session, mut rows) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut seen = HashSet::new();
    let mut duplicates = 0.0;
    let mut brands = HashSet::new();
    for (name, text) in read_all(dir.path()).into_iter().filter(|(n, _)| n.ends_with(".csv")) {
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
        );
        let mut last_time = String::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 9, "{name}: {line}");
            assert!(f[0].ends_with(" UTC"), "{line}");
            assert!(f[0] >= last_time.as_str(), "rows are in time order within a file");
            last_time = f[0].to_string();
            rows += 1.0;
            *kinds.entry(f[1].to_string()).or_default() += 1.0;
            no_code += f[4].is_empty() as u8 as f64;
            no_brand += f[5].is_empty() as u8 as f64;
            non_positive += (f[6].parse::<f64>().unwrap() <= 0.0) as u8 as f64;
            empty_session += f[8].is_empty() as u8 as f64;
            if !f[5].is_empty() {
                brands.insert(f[5].to_string());
            }
            if !seen.insert(line.to_string()) {
                duplicates += 1.0;
            }
        }
    }
    let views = kinds["view"];
    assert!((kinds["cart"] / views - 0.59).abs() < 0.05, "{kinds:?}");
    assert!((kinds["purchase"] / views - 0.14).abs() < 0.03, "{kinds:?}");
    assert!(kinds["remove_from_cart"] / views > 0.2, "{kinds:?}");
    assert!((0.25..0.6).contains(&(no_brand / rows)), "no brand: {}", no_brand / rows);
    assert!(no_code / rows > 0.9, "category_code is rare");
    assert!((0.001..0.01).contains(&(non_positive / rows)), "non-positive prices: {}", non_positive / rows);
    assert!((0.005..0.05).contains(&(duplicates / rows)), "duplicates: {}", duplicates / rows);
    assert!(empty_session > 0.0);
    assert!(brands.len() > 150, "{} brands", brands.len());
}

#[test]
fn planted_anomalies_are_recorded_across_brand_sizes() {
    let dir = tempfile::tempdir().unwrap();
    // The default data's density (143k rows a day) over 12 days: about one anomaly a day.
    generate(&GeneratorConfig { days: 12, ..config(dir.path(), 1_720_000, 3) }).unwrap();
    let truth: Truth = serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth.anomalies.len(), 12);
    let brands: HashSet<_> = truth.anomalies.iter().map(|a| a.brand.clone()).collect();
    assert!(brands.len() >= 3, "{brands:?}");
    assert!(truth.anomalies.iter().all(|a| a.expected_views >= 100.0));
    let spiked: HashSet<_> = truth
        .anomalies
        .iter()
        .filter(|a| matches!(a.kind, funnelpulse_generator::truth::AnomalyKind::Spike))
        .map(|a| a.brand.clone())
        .collect();
    assert!(spiked.len() >= 2, "spikes only in {spiked:?}: every size tier gets both kinds");
}
