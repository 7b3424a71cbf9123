//! Synthetic Kaggle-format event files with the shape of the real
//! "eCommerce Events History in Cosmetics Shop" data, and planted conversion
//! anomalies with their ground truth (`truth.json`).
//!
//! Deterministic per seed: each day is generated from its own RNG stream
//! (`seed`, day), so days can be made in parallel and the output never
//! depends on the number of threads.

mod catalog;
mod day;
pub mod truth;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};

pub use catalog::Catalog;
pub use truth::{PlantedAnomaly, Truth};

/// Rows of the real Oct+Nov 2019 data.
pub const REAL_ROWS: u64 = 8_738_120;

/// What [`generate`] makes: where, how many rows, which seed and days.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Folder for the monthly CSV files and `truth.json`; created when missing.
    pub out: PathBuf,
    /// Data rows in total (headers not counted), shared out over the days.
    pub rows: u64,
    /// Random seed; the same seed and sizes give the same files.
    pub seed: u64,
    /// First day of data (UTC).
    pub start: NaiveDate,
    /// Number of days, at least 1.
    pub days: u32,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// The monthly CSV files, in date order.
    pub files: Vec<PathBuf>,
    /// Data rows written (headers not counted).
    pub rows: u64,
    /// Bytes written to the CSV files, headers included.
    pub bytes: u64,
    /// Number of anomalies planted (listed in `truth.json`).
    pub anomalies: usize,
    /// Wall-clock time of the whole generation.
    pub elapsed: Duration,
}

/// Kaggle's file name for a month: `2019-Oct.csv`.
pub fn month_file_name(date: NaiveDate) -> String {
    format!("{}.csv", date.format("%Y-%b"))
}

/// True for the names `generate` writes: `truth.json` and `YYYY-Mon.csv`.
pub fn is_generated_name(name: &str) -> bool {
    let month = name.strip_suffix(".csv").map(|stem| format!("{stem}-01"));
    name == "truth.json" || month.is_some_and(|m| NaiveDate::parse_from_str(&m, "%Y-%b-%d").is_ok())
}

/// Why generating failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// An option's value, or the output folder's contents, cannot be used as asked.
    #[error("{0}")]
    Input(String),
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl GenerateError {
    fn io(source: std::io::Error, what: String) -> Self {
        GenerateError::Io { what, source }
    }
}

impl From<std::io::Error> for GenerateError {
    fn from(source: std::io::Error) -> Self {
        GenerateError::Io { what: "writing the generated files".into(), source }
    }
}

impl From<serde_json::Error> for GenerateError {
    fn from(source: serde_json::Error) -> Self {
        GenerateError::Io { what: "writing truth.json".into(), source: source.into() }
    }
}

/// A generator step's result.
pub type Result<T, E = GenerateError> = std::result::Result<T, E>;

/// Fails with an input error made with `format!` unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(GenerateError::Input(format!($($arg)*)));
        }
    };
}

/// Makes `out` ready for a new data set, so that no file of another one is
/// left beside it (stage 01 would read both): a folder holding files of an
/// earlier `generate` is refused unless `replace`, when those files are
/// removed (their names are returned); any other file is refused (it is not
/// ours to delete). Names starting with `.` are ignored.
pub fn prepare_out(out: &Path, replace: bool) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GenerateError::io(e, format!("reading {}", out.display()))),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    let (ours, other): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| is_generated_name(n));
    ensure!(
        other.is_empty(),
        "{} holds files generate did not write ({}): the next run would read them with the new data; choose an \
         empty folder for --out or move them away",
        out.display(),
        other.join(", ")
    );
    if ours.is_empty() {
        return Ok(ours);
    }
    ensure!(
        replace,
        "{} already holds generated data ({}): add --force to replace it, or choose another --out",
        out.display(),
        ours.join(", ")
    );
    for name in &ours {
        let path = out.join(name);
        std::fs::remove_file(&path).map_err(|e| GenerateError::io(e, format!("removing {}", path.display())))?;
    }
    Ok(ours)
}

/// The Kaggle header line, with its newline: the first line of every generated file.
pub const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n";

/// Writes the events as monthly CSV files and the planted anomalies as `truth.json`; call [`prepare_out`] first.
pub fn generate(config: &GeneratorConfig) -> Result<GenerateReport> {
    ensure!(config.days > 0, "--days must be at least 1");
    let started = Instant::now();
    std::fs::create_dir_all(&config.out)
        .map_err(|e| GenerateError::io(e, format!("creating {}", config.out.display())))?;
    let catalog = Catalog::new(config.seed);
    let days: Vec<NaiveDate> = (0..config.days).map(|i| config.start + chrono::Days::new(i as u64)).collect();
    let quotas = day::daily_quotas(config.rows, &days);
    let anomalies = truth::plan_anomalies(config.seed, &catalog, &days, config.rows);

    // Days are generated in parallel, in chunks, and written in order.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
    let mut writer = MonthWriter::new(&config.out);
    let mut rows = 0;
    for chunk in days.iter().zip(&quotas).collect::<Vec<_>>().chunks(threads * 2) {
        let buffers: Vec<(NaiveDate, Vec<u8>, u64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(&date, &quota)| {
                    let (catalog, anomalies) = (&catalog, &anomalies);
                    scope.spawn(move || {
                        let (text, n) = day::generate_day(config.seed, date, quota, catalog, anomalies);
                        (date, text, n)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("generator thread")).collect()
        });
        for (date, text, n) in buffers {
            writer.write(date, &text)?;
            rows += n;
        }
    }
    let (files, bytes) = writer.finish()?;
    let truth = Truth { seed: config.seed, rows, start: config.start, days: config.days, anomalies };
    std::fs::write(config.out.join("truth.json"), serde_json::to_vec_pretty(&truth)?)?;
    Ok(GenerateReport { files, rows, bytes, anomalies: truth.anomalies.len(), elapsed: started.elapsed() })
}

/// Appends day buffers to the right monthly file, each starting with the header.
struct MonthWriter {
    dir: PathBuf,
    current: Option<(u32, PathBuf, std::io::BufWriter<std::fs::File>)>,
    files: Vec<PathBuf>,
    bytes: u64,
}

impl MonthWriter {
    fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), current: None, files: Vec::new(), bytes: 0 }
    }

    fn write(&mut self, date: NaiveDate, text: &[u8]) -> Result<()> {
        let month = date.year() as u32 * 12 + date.month();
        if self.current.as_ref().map(|c| c.0) != Some(month) {
            self.close()?;
            let path = self.dir.join(month_file_name(date));
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .map_err(|e| GenerateError::io(e, format!("creating {}", path.display())))?,
            );
            file.write_all(HEADER.as_bytes())?;
            self.bytes += HEADER.len() as u64;
            self.current = Some((month, path, file));
        }
        let (_, _, file) = self.current.as_mut().expect("opened above");
        file.write_all(text)?;
        self.bytes += text.len() as u64;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((_, path, mut file)) = self.current.take() {
            file.flush()?;
            self.files.push(path);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Vec<PathBuf>, u64)> {
        self.close()?;
        Ok((self.files, self.bytes))
    }
}
