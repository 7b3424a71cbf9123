//! Finding the raw files of a run and counting their lines for reconciliation.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use serde::{Deserialize, Serialize};

use funnelpulse_core::BAD_INPUT;

use crate::error::RawError;
use crate::parse::ColumnOrder;

/// How a raw file's bytes are compressed, known from its name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    /// Plain text (`.csv`).
    #[default]
    None,
    /// `.csv.gz`, `.csv.gzip`; concatenated members are read too.
    Gzip,
    /// `.csv.zst`, `.csv.zstd`.
    Zstd,
    /// `.csv.bz2`.
    Bzip2,
    /// `.csv.xz`.
    Xz,
}

/// The endings of [`CSV_ENDINGS`] as users read them (a macro: messages are built with `concat!`).
macro_rules! read_endings {
    () => {
        "*.csv, *.csv.gz, *.csv.gzip, *.csv.zst, *.csv.zstd, *.csv.bz2 and *.csv.xz"
    };
}
/// The raw files read, for messages: every ending of [`CSV_ENDINGS`].
pub const READ_ENDINGS: &str = read_endings!();

// Semantics: docs/semantics.md#raw-input
/// The name endings read as raw CSV, compared case-insensitively.
const CSV_ENDINGS: [(&str, Compression); 7] = [
    (".csv", Compression::None),
    (".csv.gz", Compression::Gzip),
    (".csv.gzip", Compression::Gzip),
    (".csv.zst", Compression::Zstd),
    (".csv.zstd", Compression::Zstd),
    (".csv.bz2", Compression::Bzip2),
    (".csv.xz", Compression::Xz),
];

impl Compression {
    /// The compression of a file named `name`, or `None` when the name is not a raw CSV's.
    pub fn of_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        CSV_ENDINGS.iter().find(|(ending, _)| lower.ends_with(ending)).map(|(_, c)| *c)
    }

    /// Guesses from the first bytes, to explain a compressed file named like a plain one.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [0x1f, 0x8b, ..] => Some(Self::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Self::Zstd),
            [b'B', b'Z', b'h', ..] => Some(Self::Bzip2),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Self::Xz),
            _ => None,
        }
    }

    /// The compression's name in messages (`gzip`, …, `uncompressed`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "uncompressed",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
        }
    }

    /// The usual name ending of a CSV file compressed this way.
    pub fn ending(self) -> &'static str {
        CSV_ENDINGS.iter().find(|(_, c)| *c == self).map(|(e, _)| *e).unwrap_or(".csv")
    }
}

/// One raw CSV file, as every process of the cluster will address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawFile {
    /// Full URL (`file:///…`, `gs://bucket/…`).
    pub url: String,
    /// Name shown in `bronze_rejects.source_file`: the path below the raw
    /// folder (files of the same name in two subfolders stay apart), or the
    /// file name when `--raw` is one file.
    pub name: String,
    /// Size in bytes as stored (compressed, for a compressed file).
    pub size: u64,
    /// From the name; the reader decompresses as it streams.
    #[serde(default)]
    pub compression: Compression,
}

impl RawFile {
    /// `scheme://authority` part, the key of the object store registry.
    pub fn store_url(&self) -> datafusion::error::Result<datafusion::execution::object_store::ObjectStoreUrl> {
        let url = url::Url::parse(&self.url).map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        datafusion::execution::object_store::ObjectStoreUrl::parse(&url[..url::Position::BeforePath])
    }

    /// The file's path in its object store.
    pub fn object_path(&self) -> datafusion::error::Result<Path> {
        let url = url::Url::parse(&self.url).map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        Path::from_url_path(url.path()).map_err(|e| datafusion::error::DataFusionError::External(e.into()))
    }
}

/// A file under `--raw` that is not read, and why: nothing is skipped quietly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRead {
    /// Path below the raw folder.
    pub path: String,
    /// Why it is not read: hidden or marker file, not a raw CSV name, or empty.
    pub reason: &'static str,
}

/// What a raw folder holds: the files to read and the ones left out.
#[derive(Debug, Default, Clone)]
pub struct RawListing {
    /// Files to read, sorted by URL.
    pub files: Vec<RawFile>,
    /// Files left out, sorted by path.
    pub not_read: Vec<NotRead>,
}

/// Lists the raw CSV files at `url`: one file (read whatever its name, its
/// compression taken from the name), or every `*.csv[.gz|.zst|.bz2|.xz]`
/// under a folder, sorted by name so that runs are deterministic. Every
/// other file of the folder is listed in [`RawListing::not_read`].
pub async fn list_raw_files(store: &dyn ObjectStore, url: &url::Url) -> Result<RawListing, RawError> {
    let base = &url[..url::Position::BeforePath];
    let file = Path::from_url_path(url.path().trim_end_matches('/'))?;
    if let Ok(meta) = store.head(&file).await {
        let compression = meta.location.filename().and_then(Compression::of_name).unwrap_or_default();
        let name = meta.location.filename().unwrap_or_default().to_string();
        return Ok(RawListing { files: vec![to_raw_file(base, meta, compression, name)], not_read: vec![] });
    }
    let prefix = Path::from_url_path(url.path())?;
    let mut listing = RawListing::default();
    let mut entries = store.list(Some(&prefix));
    while let Some(meta) = entries.try_next().await? {
        let rel = meta.location.as_ref().strip_prefix(prefix.as_ref()).unwrap_or(meta.location.as_ref());
        let rel = rel.trim_start_matches('/').to_string();
        match classify(&meta) {
            Ok(compression) => listing.files.push(to_raw_file(base, meta, compression, rel)),
            Err(reason) => listing.not_read.push(NotRead { path: rel, reason }),
        }
    }
    listing.files.sort_by(|a, b| a.url.cmp(&b.url));
    listing.not_read.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// Whether a file of a raw folder is read, and how it is compressed.
fn classify(meta: &object_store::ObjectMeta) -> Result<Compression, &'static str> {
    let name = meta.location.filename().unwrap_or_default();
    if name.starts_with('.') || name.starts_with('_') {
        return Err("hidden or marker file (name starts with '.' or '_')");
    }
    let Some(compression) = Compression::of_name(name) else {
        return Err(concat!("not a CSV file: only ", read_endings!(), " are read"));
    };
    if meta.size == 0 {
        return Err("empty file (0 bytes): not even a header");
    }
    Ok(compression)
}

fn to_raw_file(base: &str, meta: object_store::ObjectMeta, compression: Compression, name: String) -> RawFile {
    RawFile { url: format!("{base}/{}", meta.location), name, size: meta.size, compression }
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

/// A raw file's content: its bytes read in large ranges and, when it is
/// compressed, decompressed as they stream (never whole in memory).
/// A corrupt compressed file fails with an `InvalidData` error naming it.
pub fn read_content(
    store: Arc<dyn ObjectStore>,
    file: &RawFile,
) -> datafusion::error::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    let raw = read_in_ranges(store, file.object_path()?, file.size).map_err(std::io::Error::other);
    if file.compression == Compression::None {
        return Ok(raw.boxed());
    }
    let reader = tokio_util::io::StreamReader::new(raw);
    let decoder: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match file.compression {
        Compression::None => unreachable!("returned above"),
        Compression::Gzip => {
            let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(reader);
            decoder.multiple_members(true); // `cat a.gz b.gz` and pigz output are valid gzip
            Box::new(decoder)
        }
        Compression::Zstd => {
            let mut decoder = async_compression::tokio::bufread::ZstdDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
        Compression::Bzip2 => {
            let mut decoder = async_compression::tokio::bufread::BzDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
        Compression::Xz => {
            let mut decoder = async_compression::tokio::bufread::XzDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    };
    let (name, compression) = (file.name.clone(), file.compression);
    Ok(tokio_util::io::ReaderStream::with_capacity(decoder, DECODED_CHUNK)
        .map_err(move |e| corrupt(&name, compression, e))
        .boxed())
}

/// Bytes handed on per read of a decompressor.
const DECODED_CHUNK: usize = 1 << 20;

/// A decompression error as one line: which file, what is wrong, what to do.
/// Read errors of the store pass through unchanged (they are not the file's fault).
fn corrupt(name: &str, compression: Compression, error: std::io::Error) -> std::io::Error {
    if error.kind() != std::io::ErrorKind::InvalidData && error.kind() != std::io::ErrorKind::UnexpectedEof {
        return error;
    }
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{BAD_INPUT}{name}: not valid {} data ({error}); re-export or re-compress the file, or move it out of the raw folder",
            compression.name()
        ),
    )
}

/// The column order of a file's header line (without its line end), or one
/// line saying what is wrong with it; a compressed file named like a plain
/// one is recognised.
pub fn header_order(file: &RawFile, line: &[u8]) -> Result<ColumnOrder, String> {
    let text = String::from_utf8_lossy(line);
    ColumnOrder::from_header(&text).map_err(|problem| {
        let hint = match Compression::sniff(line) {
            Some(c) if c != file.compression => format!("the file is {}-compressed: name it *{}", c.name(), c.ending()),
            _ => format!("found `{}`", text.chars().take(120).collect::<String>()),
        };
        format!("{BAD_INPUT}{}: {problem}; {hint}", file.url)
    })
}

/// Longest header line looked at before giving up on it.
const HEADER_LIMIT: usize = 64 << 10;

// Semantics: docs/semantics.md#reconciliation-checks
/// Counts data and blank lines with a byte scan, independently of the parser,
/// and checks the header first: a bad header fails here, on the client, with
/// one line, before any job is planned.
pub async fn count_data_lines(store: Arc<dyn ObjectStore>, file: &RawFile) -> Result<LineCounts, RawError> {
    let mut stream = read_content(store, file)?;
    let (mut header, mut header_open) = (Vec::new(), true);
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
        if header_open {
            header.extend_from_slice(&chunk[..chunk.len().min(HEADER_LIMIT - header.len())]);
            header_open = header.len() < HEADER_LIMIT && memchr::memchr(b'\n', &header).is_none();
        }
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
    if lines_seen == 0 {
        return Err(RawError::BadInput(format!(
            "{BAD_INPUT}{}: the file holds no line, not even a header; remove it from the raw folder",
            file.url
        )));
    }
    let first_line = header.split(|b| *b == b'\n').next().unwrap_or_default();
    header_order(file, first_line.strip_suffix(b"\r").unwrap_or(first_line)).map_err(RawError::BadInput)?;
    Ok(counts)
}
