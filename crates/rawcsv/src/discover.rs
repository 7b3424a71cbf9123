//! Finding the raw files of a run and counting their lines for reconciliation.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use serde::{Deserialize, Serialize};

/// One raw CSV file, as every process of the cluster will address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawFile {
    /// Full URL (`file:///…`, `gs://bucket/…`).
    pub url: String,
    /// Name shown in `bronze_rejects.source_file` (the file name).
    pub name: String,
    pub size: u64,
}

impl RawFile {
    /// `scheme://authority` part, the key of the object store registry.
    pub fn store_url(&self) -> datafusion::error::Result<datafusion::execution::object_store::ObjectStoreUrl> {
        let url = url::Url::parse(&self.url).map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        datafusion::execution::object_store::ObjectStoreUrl::parse(&url[..url::Position::BeforePath])
    }

    pub fn object_path(&self) -> datafusion::error::Result<Path> {
        let url = url::Url::parse(&self.url).map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        Path::from_url_path(url.path()).map_err(|e| datafusion::error::DataFusionError::External(e.into()))
    }
}

/// Lists the `*.csv` files under `dir` (a URL of a folder, or of one file),
/// sorted by name so that runs are deterministic.
pub async fn list_raw_files(store: &dyn ObjectStore, dir: &url::Url) -> anyhow::Result<Vec<RawFile>> {
    let prefix = Path::from_url_path(dir.path())?;
    let base = &dir[..url::Position::BeforePath];
    if let Ok(meta) = store.head(&prefix).await {
        return Ok(vec![to_raw_file(base, meta)]);
    }
    let mut files: Vec<RawFile> = store
        .list(Some(&prefix))
        .try_filter(|meta| futures::future::ready(meta.location.as_ref().ends_with(".csv")))
        .map_ok(|meta| to_raw_file(base, meta))
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(files)
}

fn to_raw_file(base: &str, meta: object_store::ObjectMeta) -> RawFile {
    RawFile {
        url: format!("{base}/{}", meta.location),
        name: meta.location.filename().unwrap_or_default().to_string(),
        size: meta.size,
    }
}

/// Lines of a raw file as the reader sees them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounts {
    /// Non-blank lines after the header: each must become a bronze row or a reject.
    pub data_lines: u64,
    /// Empty lines, skipped (as Spark does).
    pub blank_lines: u64,
}

/// Bytes per read request.
const READ_CHUNK: u64 = 8 << 20;

/// A file's bytes as large ranges, a few requested at once. A plain `get`
/// streams a local file in 8 KiB chunks, one blocking read each: that took
/// longer than counting the lines it held.
pub fn read_in_ranges(
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    let ranges = (0..size).step_by(READ_CHUNK as usize).map(move |start| start..(start + READ_CHUNK).min(size));
    futures::stream::iter(ranges)
        .map(move |range| {
            let (store, path) = (store.clone(), path.clone());
            async move { store.get_range(&path, range).await }
        })
        .buffered(4)
        .boxed()
}

/// Counts data and blank lines with a byte scan, independently of the parser.
pub async fn count_data_lines(store: Arc<dyn ObjectStore>, file: &RawFile) -> anyhow::Result<LineCounts> {
    let mut stream = read_in_ranges(store, file.object_path()?, file.size);
    let mut counts = LineCounts::default();
    let mut line_len = 0usize; // bytes of the current line seen so far
    let mut last_byte = 0u8; // its last byte, to drop a '\r' before '\n'
    let mut lines_seen = 0u64;
    let mut finish_line = |len: usize, last: u8| {
        lines_seen += 1;
        let len = if last == b'\r' { len - 1 } else { len };
        match (lines_seen, len) {
            (1, _) => {} // header
            (_, 0) => counts.blank_lines += 1,
            _ => counts.data_lines += 1,
        }
    };
    while let Some(chunk) = stream.try_next().await? {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &chunk) {
            if nl > start {
                last_byte = chunk[nl - 1];
            }
            finish_line(line_len + (nl - start), last_byte);
            line_len = 0;
            last_byte = 0;
            start = nl + 1;
        }
        if start < chunk.len() {
            line_len += chunk.len() - start;
            last_byte = chunk[chunk.len() - 1];
        }
    }
    if line_len > 0 {
        finish_line(line_len, last_byte);
    }
    Ok(counts)
}
