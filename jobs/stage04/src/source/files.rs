//! The file source: which files of the source folder a batch may take.
//!
//! Rules (documented in docs/streaming.md):
//! - only `*.parquet` files count; names or folders starting with `.` or `_`
//!   are ignored (temporary files of writers, like Spark does);
//! - files are taken in **name order** (stage 03 numbers its files in event
//!   time order; live feeds name files by time), each exactly once — a file
//!   once taken or quarantined is never read again, even if it changes;
//! - a file is only taken once it has not been modified for `--file-settle`:
//!   writers should appear by atomic rename (stage 03 and GCS uploads do);
//!   a file written in place must be complete before it settles;
//! - a file whose footer cannot be read or which lacks the event columns is
//!   quarantined with the reason, and the stream goes on;
//! - a folder stamped with a generation (stage 03's `_generation.json`) is
//!   read in one generation only: the checkpoint records it, and a rebuilt
//!   folder stops the stream with the fix (`--reset-stream`) instead of its
//!   files being counted a second time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use funnelpulse_core::schema::event_fields;
use funnelpulse_lake::{FileMeta, Generation, Lake};
use object_store::ObjectStoreExt;

use crate::checkpoint::{Checkpoint, LoggedFile, Metadata, Offsets, Position, Quarantined};
use crate::source::Next;

/// New files of the source, split by readiness.
pub struct Listing {
    /// Settled files not seen before, in name order.
    pub ready: Vec<FileMeta>,
    /// New files still being modified.
    pub settling: usize,
    /// Files the log has seen that are gone from the source.
    pub vanished: usize,
}

// Semantics: docs/semantics.md#quarantined-files
fn is_data_file(rel: &str) -> bool {
    rel.ends_with(".parquet") && !rel.split('/').any(|seg| seg.starts_with('.') || seg.starts_with('_'))
}

/// The data files of `source` not in `seen`, split into settled (unmodified for `settle`) and settling,
/// and the count of seen files now gone.
pub async fn list_new(source: &Lake, seen: &HashSet<String>, settle: Duration) -> funnelpulse_engine::Result<Listing> {
    let now = chrono::Utc::now();
    let settle = chrono::Duration::from_std(settle)?;
    let files: Vec<FileMeta> = source.list_with_meta("").await?.into_iter().filter(|f| is_data_file(&f.rel)).collect();
    let present: HashSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    let vanished = seen.iter().filter(|s| !present.contains(s.as_str())).count();
    let (ready, settling): (Vec<FileMeta>, Vec<FileMeta>) =
        files.into_iter().filter(|f| !seen.contains(&f.rel)).partition(|f| now - f.modified >= settle);
    Ok(Listing { ready, settling: settling.len(), vanished })
}

/// New Parquet files of a folder, a few per batch.
pub struct FileSource {
    /// The source folder, local or `gs://`.
    pub folder: Lake,
    /// Files one batch takes at most (`--max-files-per-trigger`).
    pub max_files_per_trigger: usize,
    /// How long a file must stay unmodified before it is taken (`--file-settle`).
    pub settle: Duration,
    /// Bounded runs: the files present at the start.
    snapshot: Option<HashSet<String>>,
    warned_vanished: bool,
    /// The generation the checkpoint reads (see [`FileSource::bind`]).
    generation: Option<String>,
}

impl FileSource {
    /// A source over `folder`; a stream then calls [`FileSource::bind`] and [`FileSource::start`].
    pub fn new(folder: Lake, max_files_per_trigger: usize, settle: Duration) -> Self {
        Self { folder, max_files_per_trigger, settle, snapshot: None, warned_vanished: false, generation: None }
    }

    /// Binds the stream to the folder's generation: a new checkpoint
    /// (`metadata` not yet written) takes the current one; a checkpoint
    /// bound to another is refused. A checkpoint from before generations
    /// adopts the current one if every file it took is still there, the same
    /// size (the folder was not rebuilt since), and is refused otherwise.
    /// Returns true when `metadata` changed and must be written.
    pub async fn bind(
        &mut self,
        checkpoint: &Checkpoint,
        metadata: &mut Metadata,
        new: bool,
    ) -> funnelpulse_engine::Result<bool> {
        let current = self.folder.generation("").await?;
        let current_id = current.as_ref().map(|g| g.id.clone());
        let mut changed = false;
        if new {
            changed = metadata.source_generation != current_id;
            metadata.source_generation = current_id;
        } else if metadata.source_generation.is_none()
            && let Some(generation) = &current
        {
            let (position, _) = checkpoint.position().await?;
            let altered = self.altered(&position.taken).await?;
            if altered > 0 {
                funnelpulse_engine::bail!(
                    "stream source {} was rebuilt by stage 03 at {} (generation {}): {altered} files checkpoint {} \
                     has read are gone or changed, and the old and new files must not be mixed; run stage 04 with \
                     --reset-stream to start over on the new files",
                    self.folder.url(),
                    generation.written,
                    generation.id,
                    checkpoint.url()
                );
            }
            metadata.source_generation = current_id;
            changed = true;
        } else if metadata.source_generation != current_id {
            return Err(rebuilt(&self.folder, checkpoint, metadata.source_generation.as_deref(), current.as_ref()));
        }
        self.generation = metadata.source_generation.clone();
        Ok(changed)
    }

    /// Files of `taken` that are gone from the folder or have another size.
    async fn altered(&self, taken: &[LoggedFile]) -> funnelpulse_engine::Result<usize> {
        let present: std::collections::HashMap<String, u64> =
            self.folder.list_with_meta("").await?.into_iter().map(|f| (f.rel, f.size)).collect();
        let taken: std::collections::BTreeMap<&str, u64> = taken.iter().map(|f| (f.path.as_str(), f.size)).collect();
        Ok(taken.into_iter().filter(|(path, size)| present.get(*path) != Some(size)).count())
    }

    /// Fails when the folder's generation is no longer the one the stream
    /// reads. Called after a listing: the marker changes before any file of
    /// a rebuild appears, so a listing followed by an unchanged marker holds
    /// files of the stream's generation only.
    pub async fn check_generation(&self, checkpoint: &Checkpoint) -> funnelpulse_engine::Result<()> {
        let current = self.folder.generation("").await?;
        self.changed(checkpoint, current.as_ref()).map_or(Ok(()), Err)
    }

    /// After a failed batch: the error to report instead when the folder was
    /// rebuilt meanwhile (a marker that cannot be read says nothing).
    pub async fn rebuilt_error(&self, checkpoint: &Checkpoint) -> Option<funnelpulse_engine::Error> {
        let current = self.folder.generation("").await.ok()?;
        self.changed(checkpoint, current.as_ref())
    }

    fn changed(&self, checkpoint: &Checkpoint, current: Option<&Generation>) -> Option<funnelpulse_engine::Error> {
        (current.map(|g| &g.id) != self.generation.as_ref())
            .then(|| rebuilt(&self.folder, checkpoint, self.generation.as_deref(), current))
    }

    /// Before the first batch: with `bounded` (`--available-now`) only the
    /// files present now will be taken; files modified just now get the
    /// settle time once. Returns a note for the user.
    pub async fn start(&mut self, position: &Position, bounded: bool) -> funnelpulse_engine::Result<Option<String>> {
        let mut note = None;
        if bounded {
            let mut listing = list_new(&self.folder, &position.seen, self.settle).await?;
            if listing.settling > 0 {
                note = Some(format!("waited {:?} for {} new files to settle", self.settle, listing.settling));
                tokio::time::sleep(self.settle).await;
                listing = list_new(&self.folder, &position.seen, self.settle).await?;
            }
            self.snapshot = Some(listing.ready.into_iter().map(|f| f.rel).collect());
        }
        if position.seen.is_empty() && self.folder.list_rel("").await?.is_empty() {
            note = Some(format!("no files in {} yet (run stage 03 first)", self.folder.url()));
        }
        Ok(note)
    }

    /// The next batch's files (checked, the damaged ones quarantined), or why there is none.
    pub async fn next(&mut self, position: &Position, checkpoint: &Checkpoint) -> funnelpulse_engine::Result<Next> {
        let listing = list_new(&self.folder, &position.seen, self.settle).await?;
        self.check_generation(checkpoint).await?;
        let mut warning = None;
        if listing.vanished > 0 && !self.warned_vanished {
            self.warned_vanished = true;
            warning = Some(format!(
                "warning: {} files the checkpoint has read are gone from the source (was it rebuilt? \
                 --reset-stream starts over)",
                listing.vanished
            ));
        }
        let ready: Vec<_> = match &self.snapshot {
            Some(snap) => listing.ready.into_iter().filter(|f| snap.contains(&f.rel)).collect(),
            None => listing.ready,
        };
        if ready.is_empty() {
            return Ok(match self.snapshot {
                Some(_) => Next::Done,
                None => {
                    Next::Idle { waiting: format!("waiting for new files ({} settling)", listing.settling), warning }
                }
            });
        }
        let mut offsets = Offsets::new(position.next_batch, position.watermark);
        for file in ready.into_iter().take(self.max_files_per_trigger) {
            let checked = match check_file(&self.folder, &file).await {
                Ok(checked) => checked,
                // Gone since the listing: not taken, nothing to record.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.context(format!("reading the footer of {}", self.folder.url_of(&file.rel)))),
            };
            match checked {
                Ok(rows) => offsets.files.push(LoggedFile { path: file.rel, size: file.size, rows }),
                Err(reason) => offsets.quarantined.push(Quarantined { path: file.rel, reason }),
            }
        }
        Ok(Next::Batch { offsets, warning })
    }

    /// Files waiting in the folder (ready or settling), for `stream status`.
    pub async fn waiting(&self, position: &Position) -> funnelpulse_engine::Result<String> {
        let listing = list_new(&self.folder, &position.seen, Duration::ZERO).await?;
        Ok(format!("{} new files waiting in the source", listing.ready.len() + listing.settling))
    }
}

/// The one-line error for a source whose generation is not the checkpoint's.
fn rebuilt(
    folder: &Lake,
    checkpoint: &Checkpoint,
    read: Option<&str>,
    current: Option<&Generation>,
) -> funnelpulse_engine::Error {
    let now = match current {
        Some(g) => format!("was rebuilt by stage 03 at {} (generation {})", g.written, g.id),
        None => "lost its generation marker (_generation.json)".to_string(),
    };
    let read = read.map_or("files without a generation".to_string(), |id| format!("generation {id}"));
    funnelpulse_engine::plan_error!(
        "stream source {} {now}, but checkpoint {} has read {read}: the two must not be mixed (the same events would \
         count twice); run stage 04 with --reset-stream to start over on the new files",
        folder.url(),
        checkpoint.url()
    )
}

/// The columns a batch reads, with the types of bronze; the rest of a file is ignored.
pub fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(event_fields()))
}

/// Columns a file must have for its events to be counted.
const REQUIRED: [&str; 4] = ["event_time", "event_type", "price", "brand"];

fn acceptable(found: &DataType, wanted: &Field) -> bool {
    use DataType::*;
    match wanted.data_type() {
        Timestamp(..) => matches!(found, Timestamp(..)),
        Utf8 => {
            matches!(found, Utf8 | LargeUtf8 | Utf8View) || matches!(found, Dictionary(_, v) if v.as_ref() == &Utf8)
        }
        Float64 => found.is_numeric(),
        Int64 => found.is_integer(),
        _ => found == wanted.data_type(),
    }
}

/// The Arrow schema and row count in a Parquet file's footer (two ranged
/// reads: the footer's length, then the footer). The outer error is a
/// failure to read (the stream stops, the file is tried again later), the
/// inner one a file that is not usable Parquet (it is quarantined).
async fn footer_schema(source: &Lake, file: &FileMeta) -> funnelpulse_engine::Result<Result<(Schema, u64), String>> {
    let metadata = match source.try_parquet_footer(&file.rel, file.size).await? {
        Ok(metadata) => metadata,
        Err(e) => return Ok(Err(format!("not a readable Parquet file ({e})"))),
    };
    let file_metadata = metadata.file_metadata();
    Ok(parquet_to_arrow_schema(file_metadata.schema_descr(), file_metadata.key_value_metadata())
        .map(|schema| (schema, file_metadata.num_rows().max(0) as u64))
        .map_err(|e| format!("not a readable Parquet file ({e})")))
}

// Semantics: docs/semantics.md#quarantined-files
/// Reads a file's footer and checks its columns; returns its row count, or
/// (inner `Err`) the reason to quarantine it.
pub async fn check_file(source: &Lake, file: &FileMeta) -> funnelpulse_engine::Result<Result<u64, String>> {
    let (schema, rows) = match footer_schema(source, file).await? {
        Ok(found) => found,
        Err(reason) => return Ok(Err(reason)),
    };
    for wanted in event_fields() {
        match schema.field_with_name(wanted.name()) {
            Ok(found) if acceptable(found.data_type(), &wanted) => {}
            Ok(found) => {
                return Ok(Err(format!(
                    "column {} is {}, expected {}",
                    wanted.name(),
                    found.data_type(),
                    wanted.data_type()
                )));
            }
            Err(_) if REQUIRED.contains(&wanted.name().as_str()) => {
                return Ok(Err(format!("column {} is missing", wanted.name())));
            }
            Err(_) => {}
        }
    }
    Ok(Ok(rows))
}

/// Decodes a whole file in this process: used only after a batch failed, to
/// tell a damaged file (quarantined) from a failure elsewhere (the stream stops).
pub async fn decode_fully(source: &Lake, file: &LoggedFile) -> Result<u64, String> {
    let bytes = match source.store().get(&source.path_of(&file.path)).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    // Not being able to fetch the file says nothing about its content.
    let Ok(bytes) = bytes else { return Ok(0) };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| format!("not a readable Parquet file ({e})"))?
        .build()
        .map_err(|e| format!("cannot read ({e})"))?;
    let mut rows = 0;
    for batch in reader {
        rows += batch.map_err(|e| format!("damaged data ({e})"))?.num_rows() as u64;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_foreign_files_are_not_data() {
        assert!(is_data_file("part-00001.parquet"));
        assert!(is_data_file("day=1/part-00001.parquet"));
        assert!(!is_data_file(".part-00001.parquet.tmp"));
        assert!(!is_data_file("_temporary/part.parquet"));
        assert!(!is_data_file("notes.txt"));
    }
}
