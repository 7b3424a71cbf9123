//! Replacing tables: staged files are moved into place under a journal.
//!
//! Ballista cannot overwrite a table, and object stores cannot swap folders
//! atomically. So a stage writes every new table under `_staging/<run>/`,
//! checks it, and then commits all of its tables at once:
//!
//! 1. plan the moves (staged file → `tables/<t>/…/part-<run>-…`) and the
//!    deletions (every file of the previous version);
//! 2. write the plan as `_commits/<run>.json` — from here on the commit is
//!    decided and will be completed (rolled forward);
//! 3. move the new files in, delete the old ones, delete the journal.
//!
//! A run killed before step 2 leaves the previous tables untouched; one
//! killed during step 3 is completed by [`Lake::recover`], which every stage
//! calls before it reads or writes. Nothing but current data files ever lies
//! under `tables/<t>/`.

use anyhow::Context;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::NULL_PARTITION;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::location::Lake;

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    run_id: String,
    tables: Vec<TableMoves>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TableMoves {
    table: String,
    /// The folder replaced, relative to the lake root (`tables/<table>/` when absent).
    #[serde(default)]
    folder: Option<String>,
    /// (staged, final) paths relative to the lake root.
    moves: Vec<(String, String)>,
    /// Files of the previous version, relative to the lake root.
    deletes: Vec<String>,
}

/// A file in the lake: path relative to the root, size, last modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub rel: String,
    pub size: u64,
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// What a commit did, for the run's report.
#[derive(Debug, Clone, Default)]
pub struct CommitSummary {
    pub tables: Vec<(String, usize)>,
}

impl Lake {
    /// Files under `rel` (a folder, relative to the lake root), relative to the root, sorted.
    pub async fn list_rel(&self, rel: &str) -> anyhow::Result<Vec<String>> {
        let prefix = self.path_of(rel);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut files: Vec<String> = metas.iter().map(|m| self.rel_of(&m.location)).collect();
        files.sort();
        Ok(files)
    }

    /// Files under `rel` with their size and last modification, sorted by path.
    pub async fn list_with_meta(&self, rel: &str) -> anyhow::Result<Vec<FileMeta>> {
        let prefix = self.path_of(rel);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut files: Vec<FileMeta> = metas
            .iter()
            .map(|m| FileMeta { rel: self.rel_of(&m.location), size: m.size, modified: m.last_modified })
            .collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(files)
    }

    /// Moves for committing the files `run_id` staged for `table` into the
    /// table's folder (names tagged with the run), without touching other files.
    pub async fn staged_moves(&self, run_id: &str, table: &TableSpec) -> anyhow::Result<Vec<(String, String)>> {
        let staging = Lake::staging_rel(run_id, table);
        let target = Lake::table_rel(table);
        let staged = self.list_rel(&staging).await?;
        Ok(staged
            .iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|from| (from.clone(), final_name(&staging, &target, from, run_id)))
            .collect())
    }

    /// Rows in the Parquet files `run_id` staged for `table`, summed from the
    /// files' footers (no data is read).
    pub async fn staged_rows(&self, run_id: &str, table: &TableSpec) -> anyhow::Result<u64> {
        let files = self.list_with_meta(&Lake::staging_rel(run_id, table)).await?;
        let footers = files.into_iter().filter(|f| f.rel.ends_with(".parquet")).map(|file| async move {
            self.parquet_rows(&file).await.with_context(|| format!("reading the footer of {}", file.rel))
        });
        let rows: Vec<u64> = futures::stream::iter(footers).buffer_unordered(16).try_collect().await?;
        Ok(rows.iter().sum())
    }

    /// Rows of one Parquet file, from its footer: the 8-byte tail gives the
    /// metadata's length, the metadata the row count.
    async fn parquet_rows(&self, file: &FileMeta) -> anyhow::Result<u64> {
        use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
        let path = self.path_of(&file.rel);
        anyhow::ensure!(file.size >= 8, "{} bytes is too short for Parquet", file.size);
        let tail = self.store.get_range(&path, file.size - 8..file.size).await?;
        let tail = FooterTail::try_new(tail.as_ref().try_into()?)?;
        let end = file.size - 8;
        let start = end.checked_sub(tail.metadata_length() as u64).context("metadata longer than the file")?;
        let metadata = ParquetMetaDataReader::decode_metadata(&self.store.get_range(&path, start..end).await?)?;
        Ok(metadata.file_metadata().num_rows() as u64)
    }

    /// Values of `partition_col` (except the null marker) present under `rel`, sorted.
    pub async fn partition_values(&self, rel: &str, partition_col: &str) -> anyhow::Result<Vec<String>> {
        let prefix = format!("{partition_col}=");
        let mut values: Vec<String> = self
            .list_rel(rel)
            .await?
            .iter()
            .filter_map(|f| f.split('/').find_map(|seg| seg.strip_prefix(&prefix)).map(str::to_string))
            .filter(|v| v != NULL_PARTITION)
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// Stages a zero-row Parquet file (in the null partition) when `run_id`
    /// wrote no file for `table`, so that an empty result is still a readable
    /// table with the right columns.
    pub async fn stage_empty_table(
        &self,
        run_id: &str,
        table: &TableSpec,
        file_schema: SchemaRef,
    ) -> anyhow::Result<()> {
        let rel = format!("{}{}={NULL_PARTITION}/empty.parquet", Lake::staging_rel(run_id, table), table.partition_col);
        let mut buffer = Vec::new();
        ArrowWriter::try_new(&mut buffer, file_schema, None)?.close()?;
        self.store.put(&self.path_of(&rel), PutPayload::from(buffer)).await?;
        Ok(())
    }

    /// Commits the staged versions of `tables` written by `run_id`.
    pub async fn commit(&self, run_id: &str, tables: &[TableSpec]) -> anyhow::Result<CommitSummary> {
        let mut journal = Journal { run_id: run_id.to_string(), tables: Vec::new() };
        let mut summary = CommitSummary::default();
        for table in tables {
            let staging = Lake::staging_rel(run_id, table);
            let staged: Vec<String> =
                self.list_rel(&staging).await?.into_iter().filter(|f| f.ends_with(".parquet")).collect();
            anyhow::ensure!(!staged.is_empty(), "run {run_id} staged no file for {}", table.name);
            let target = Lake::table_rel(table);
            let moves = staged
                .iter()
                .map(|from| (from.clone(), final_name(&staging, &target, from, run_id)))
                .collect::<Vec<_>>();
            let deletes = self.list_rel(&target).await?;
            summary.tables.push((table.name.to_string(), moves.len()));
            journal.tables.push(TableMoves { table: table.name.to_string(), folder: None, moves, deletes });
        }
        self.apply_journal(&journal).await?;
        Ok(summary)
    }

    /// Replaces every file under the folder `target` (relative to the lake
    /// root) by the staged files `moves` (staged, final), all or nothing —
    /// the same journal as table commits. For data sets that are not tables
    /// (`stream_input/`).
    pub async fn commit_folder(&self, run_id: &str, target: &str, moves: Vec<(String, String)>) -> anyhow::Result<()> {
        let deletes = self.list_rel(target).await?;
        let name = target.trim_end_matches('/').to_string();
        let moves = TableMoves { table: name, folder: Some(target.to_string()), moves, deletes };
        self.apply_journal(&Journal { run_id: run_id.to_string(), tables: vec![moves] }).await
    }

    /// Writes the journal (the commit is decided), applies it, removes it and the run's staging.
    async fn apply_journal(&self, journal: &Journal) -> anyhow::Result<()> {
        let run_id = &journal.run_id;
        let journal_path = self.path_of(&format!("_commits/{run_id}.json"));
        self.store.put(&journal_path, PutPayload::from(serde_json::to_vec_pretty(journal)?)).await?;
        self.apply(journal).await?;
        self.store.delete(&journal_path).await?;
        self.discard_staging(run_id).await?;
        Ok(())
    }

    async fn apply(&self, journal: &Journal) -> anyhow::Result<()> {
        for table in &journal.tables {
            self.move_files(&table.moves).await.with_context(|| format!("commit {}", journal.run_id))?;
            for old in &table.deletes {
                match self.store.delete(&self.path_of(old)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e).with_context(|| format!("commit {}: deleting {old}", journal.run_id)),
                }
            }
            let folder = table.folder.clone().unwrap_or_else(|| Lake::table_rel_by_name(&table.table));
            self.remove_empty_dirs(&folder);
        }
        Ok(())
    }

    /// Moves files (relative paths, from → to) within the lake. Idempotent:
    /// a move already done by an earlier, interrupted attempt is skipped.
    pub async fn move_files(&self, moves: &[(String, String)]) -> anyhow::Result<()> {
        for (from, to) in moves {
            let (from, to) = (self.path_of(from), self.path_of(to));
            match self.store.rename(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) if self.exists(&to).await => {}
                Err(e) => return Err(e).with_context(|| format!("moving {from}")),
            }
            crate::fault::crash_point("during-commit");
        }
        Ok(())
    }

    async fn exists(&self, path: &Path) -> bool {
        self.store.head(path).await.is_ok()
    }

    /// Completes commits that a killed run left half-applied. Call before
    /// reading or writing tables.
    pub async fn recover(&self) -> anyhow::Result<Vec<String>> {
        let mut recovered = Vec::new();
        for rel in self.list_rel("_commits/").await? {
            let path = self.path_of(&rel);
            let bytes = self.store.get(&path).await?.bytes().await?;
            let journal: Journal =
                serde_json::from_slice(&bytes).with_context(|| format!("unreadable commit journal {rel}"))?;
            log::warn!("completing interrupted commit of run {}", journal.run_id);
            self.apply(&journal).await?;
            self.store.delete(&path).await?;
            self.discard_staging(&journal.run_id).await?;
            recovered.push(journal.run_id);
        }
        Ok(recovered)
    }

    /// Deletes what a run staged (after its commit, or when it failed).
    pub async fn discard_staging(&self, run_id: &str) -> anyhow::Result<()> {
        let rel = format!("_staging/{run_id}/");
        for file in self.list_rel(&rel).await? {
            match self.store.delete(&self.path_of(&file)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.remove_empty_dirs(&rel);
        Ok(())
    }

    /// Local lakes only: object stores have no folders, the file system does.
    fn remove_empty_dirs(&self, rel: &str) {
        let Ok(root) = self.base.to_file_path() else { return };
        fn prune(dir: &std::path::Path) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else { return false };
            let mut empty = true;
            for entry in entries.flatten() {
                let path = entry.path();
                if !(path.is_dir() && prune(&path) && std::fs::remove_dir(&path).is_ok()) {
                    empty = false;
                }
            }
            empty
        }
        let dir = root.join(rel);
        if prune(&dir) && rel.starts_with("_staging/") {
            let _ = std::fs::remove_dir(&dir);
        }
    }

    pub(crate) fn table_rel_by_name(name: &str) -> String {
        format!("tables/{name}/")
    }
}

/// `_staging/<run>/<t>/event_date=X/abc.parquet` → `tables/<t>/event_date=X/part-<run>-abc.parquet`.
fn final_name(staging: &str, target: &str, staged: &str, run_id: &str) -> String {
    let inner = staged.strip_prefix(staging).unwrap_or(staged);
    let (dir, file) = inner.rsplit_once('/').map(|(d, f)| (format!("{d}/"), f)).unwrap_or_default();
    let file = if file.is_empty() { inner } else { file };
    format!("{target}{dir}part-{run_id}-{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_names_keep_partition_folders_and_tag_the_run() {
        assert_eq!(
            final_name("_staging/r1/t/", "tables/t/", "_staging/r1/t/event_date=2019-10-01/x_0.parquet", "r1"),
            "tables/t/event_date=2019-10-01/part-r1-x_0.parquet"
        );
        assert_eq!(
            final_name("_staging/r1/t/", "tables/t/", "_staging/r1/t/y.parquet", "r1"),
            "tables/t/part-r1-y.parquet"
        );
    }
}
