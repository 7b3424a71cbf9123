//! Files of the lake, and replacing a folder that is not a table.
//!
//! Tables are Delta tables ([`crate::delta`]). The stream input files of
//! stage 03 are a plain folder that stage 04 lists, so they are replaced under
//! a journal instead:
//!
//! 1. the new files are written under `_staging/<run>/` and checked;
//! 2. the plan (staged file → final name, and every file to delete) is
//!    written as `_commits/<run>.json` — from here on the replacement is
//!    decided and will be completed (rolled forward);
//! 3. the new files are moved in, the old ones deleted, the journal removed.
//!
//! A run killed before step 2 leaves the folder untouched; one killed during
//! step 3 is completed by [`Lake::recover`], which stages call first.

use crate::error::LakeContext;
use datafusion::parquet::file::metadata::ParquetMetaData;
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
    /// Path relative to the lake root.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, as the object store reports it.
    pub modified: chrono::DateTime<chrono::Utc>,
}

impl Lake {
    /// Files under `rel` (a folder, relative to the lake root), relative to the root, sorted.
    pub async fn list_rel(&self, rel: &str) -> crate::Result<Vec<String>> {
        let prefix = self.path_of(rel);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut files: Vec<String> = metas.iter().map(|m| self.rel_of(&m.location)).collect();
        files.sort();
        Ok(files)
    }

    /// Files under `rel` with their size and last modification, sorted by path.
    pub async fn list_with_meta(&self, rel: &str) -> crate::Result<Vec<FileMeta>> {
        let prefix = self.path_of(rel);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut files: Vec<FileMeta> = metas
            .iter()
            .map(|m| FileMeta { rel: self.rel_of(&m.location), size: m.size, modified: m.last_modified })
            .collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(files)
    }

    /// Rows in the Parquet files under `rel` (a folder), summed from the
    /// files' footers (no data is read).
    pub async fn parquet_rows_under(&self, rel: &str) -> crate::Result<u64> {
        let files = self.list_with_meta(rel).await?;
        let footers = files.into_iter().filter(|f| f.rel.ends_with(".parquet")).map(|file| async move {
            let footer = self.parquet_footer(&file.rel, file.size).await;
            footer
                .map(|f| f.file_metadata().num_rows() as u64)
                .with_context(|| format!("reading the footer of {}", file.rel))
        });
        let rows: Vec<u64> = futures::stream::iter(footers).buffer_unordered(16).try_collect().await?;
        Ok(rows.iter().sum())
    }

    /// The footer of the Parquet file `rel` of `size` bytes, which must be usable.
    pub async fn parquet_footer(&self, rel: &str, size: u64) -> crate::Result<ParquetMetaData> {
        self.try_parquet_footer(rel, size).await?.map_err(|problem| crate::LakeError::Damaged {
            what: format!("{}: {problem}", self.url_of(rel)),
            source: None,
        })
    }

    /// The footer of the Parquet file `rel` of `size` bytes, in two ranged
    /// reads (the 8-byte tail gives the metadata's length, then the metadata).
    /// The outer error is a store that failed (try again later), the inner
    /// one a file that is not usable Parquet, with why.
    pub async fn try_parquet_footer(&self, rel: &str, size: u64) -> crate::Result<Result<ParquetMetaData, String>> {
        use datafusion::parquet::file::metadata::ParquetMetaDataReader;
        let path = self.path_of(rel);
        if size < 12 {
            return Ok(Err(format!("{size} bytes is too short for Parquet")));
        }
        let tail = self.store.get_range(&path, size - 8..size).await?;
        if &tail[4..] != b"PAR1" {
            return Ok(Err("no Parquet footer: truncated, or still being written".into()));
        }
        let length = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
        if length + 12 > size {
            return Ok(Err(format!("footer of {length} bytes in a file of {size}")));
        }
        let footer = self.store.get_range(&path, size - 8 - length..size - 8).await?;
        Ok(ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| e.to_string()))
    }

    /// Deletes every file under the folder `rel` (missing files are fine).
    pub async fn delete_all(&self, rel: &str) -> crate::Result<()> {
        for file in self.list_rel(rel).await? {
            self.delete_if_present(&file).await?;
        }
        self.remove_empty_dirs(rel);
        Ok(())
    }

    /// Replaces every file under the folder `target` (relative to the lake
    /// root) by the staged files `moves` (staged, final), all or nothing —
    /// the same journal as table commits. For data sets that are not tables
    /// (`stream_input/`).
    /// Moves are applied in order; a file whose name a move reuses (the
    /// generation marker) is replaced, not deleted.
    pub async fn commit_folder(&self, run_id: &str, target: &str, moves: Vec<(String, String)>) -> crate::Result<()> {
        let mut deletes = self.list_rel(target).await?;
        deletes.retain(|old| !moves.iter().any(|(_, to)| to == old));
        let name = target.trim_end_matches('/').to_string();
        let moves = TableMoves { table: name, folder: Some(target.to_string()), moves, deletes };
        self.apply_journal(&Journal { run_id: run_id.to_string(), tables: vec![moves] }).await
    }

    /// Writes the journal (the commit is decided), applies it, removes it and the run's staging.
    async fn apply_journal(&self, journal: &Journal) -> crate::Result<()> {
        let run_id = &journal.run_id;
        let journal_path = self.path_of(&format!("_commits/{run_id}.json"));
        self.store.put(&journal_path, PutPayload::from(serde_json::to_vec_pretty(journal)?)).await?;
        self.apply(journal).await?;
        self.store.delete(&journal_path).await?;
        self.discard_staging(run_id).await?;
        Ok(())
    }

    async fn apply(&self, journal: &Journal) -> crate::Result<()> {
        for table in &journal.tables {
            self.move_files(&table.moves).await.with_context(|| format!("commit {}", journal.run_id))?;
            for old in &table.deletes {
                self.delete_if_present(old).await.with_context(|| format!("commit {}", journal.run_id))?;
            }
            let folder = table.folder.clone().unwrap_or_else(|| Lake::table_rel_by_name(&table.table));
            self.remove_empty_dirs(&folder);
        }
        Ok(())
    }

    /// Moves files (relative paths, from → to) within the lake. Idempotent:
    /// a move already done by an earlier, interrupted attempt is skipped.
    pub async fn move_files(&self, moves: &[(String, String)]) -> crate::Result<()> {
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
    pub async fn recover(&self) -> crate::Result<Vec<String>> {
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
    pub async fn discard_staging(&self, run_id: &str) -> crate::Result<()> {
        self.delete_all(&format!("_staging/{run_id}/")).await
    }

    /// Local lakes only: object stores have no folders, the file system does.
    pub fn remove_empty_dirs(&self, rel: &str) {
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
        if prune(&dir) && (rel.starts_with("_staging/") || rel.contains("/run-")) {
            let _ = std::fs::remove_dir(&dir);
        }
    }

    pub(crate) fn table_rel_by_name(name: &str) -> String {
        format!("tables/{name}/")
    }
}
