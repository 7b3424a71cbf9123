//! Lake tables as Delta Lake tables: snapshots for readers, one commit per
//! stage-table for writers.
//!
//! The log (`tables/<t>/_delta_log/`) is read and written by delta-rs
//! (`deltalake-core`) on the lake's own object stores. The data files are
//! written by Ballista jobs, each run into a folder of its own inside the
//! table (`tables/<t>/run-<run>/<partition_col>=<value>/*.parquet`): nothing
//! is moved or copied to commit them. Files that no commit names are invisible
//! to every Delta reader, so a killed run leaves only unreferenced files, which
//! `vacuum` removes.
//!
//! **Commit protocol.** A writer notes the table's version when it starts
//! writing it (`read_version`). Its commit is one log entry, version
//! `read_version + 1`, written with put-if-absent (`PutMode::Create`: a local
//! file created exclusively, a GCS object with `ifGenerationMatch=0`): it
//! removes every file of `read_version` and adds the run's files. If another
//! writer committed first, the put fails or the table is already past
//! `read_version`, and the commit is refused with [`TableChanged`] — an
//! overwrite computed from an older state never lands. No lock server: the
//! log is the arbiter.
//!
//! Semantics: docs/semantics.md#storage-and-partitioning

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{LakeContext, LakeError};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, MetadataExt, Remove, StructType, Transaction, new_metadata};
use deltalake_core::logstore::{StorageConfig, default_logstore};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::NULL_PARTITION;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};

use crate::location::Lake;
use crate::stats;

/// A data file of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the table's root, as in the Delta log.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The partition value (`YYYY-MM-DD`), `None` for the null partition.
    pub partition: Option<String>,
}

/// The files a reader reads: one committed version of a table, or the files a
/// run has written and not yet committed.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// The table's name and partition column.
    pub table: TableSpec,
    /// The table's root URL, ending in `/`.
    pub root: String,
    /// The committed version; `None` for a run's uncommitted files.
    pub version: Option<i64>,
    /// The table's columns: the files' columns, then the partition column (a date).
    pub schema: SchemaRef,
    /// The data files: path, size and partition value of each.
    pub files: Vec<DataFile>,
}

impl TableFiles {
    /// The non-null partition values present, sorted.
    pub fn partitions(&self) -> Vec<String> {
        let mut values: Vec<String> = self.files.iter().filter_map(|f| f.partition.clone()).collect();
        values.sort();
        values.dedup();
        values
    }

    /// Only the files of the partitions `values`.
    pub fn only_partitions(&self, values: &[String]) -> TableFiles {
        let keep = |f: &DataFile| f.partition.as_ref().is_some_and(|p| values.contains(p));
        TableFiles { files: self.files.iter().filter(|f| keep(f)).cloned().collect(), ..self.clone() }
    }

    /// URL of one of the files.
    pub fn url_of(&self, file: &DataFile) -> String {
        format!("{}{}", self.root, file.path)
    }
}

/// A commit refused because another writer changed the table first.
#[derive(Debug, Clone)]
pub struct TableChanged {
    /// Name of the table that changed.
    pub table: String,
    /// The table's version when the refused run looked last.
    pub version: i64,
    /// "wrote" (an output table) or "read" (an input of the run).
    pub action: &'static str,
    /// Tables this run had committed before the conflict, with their versions.
    pub committed: Vec<(String, i64)>,
}

impl std::fmt::Display for TableChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was changed by another run (version {}) while this run {} it; ",
            self.table, self.version, self.action
        )?;
        if self.committed.is_empty() {
            write!(f, "nothing of this run was committed")
        } else {
            let done: Vec<String> = self.committed.iter().map(|(t, v)| format!("{t} (version {v})")).collect();
            write!(f, "this run had already committed {}; run the stage again", done.join(", "))
        }
    }
}

impl std::error::Error for TableChanged {}

/// One entry of a table's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// The version this commit made.
    pub version: i64,
    /// When it was committed; `None` when the log does not say.
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// The Delta operation (`WRITE`, …); empty when the log does not say.
    pub operation: String,
    /// Rows added (`numOutputRows`); `None` when the commit does not record it.
    pub rows_added: Option<u64>,
    /// Files added (`numFiles`); `None` when the commit does not record it.
    pub files_added: Option<u64>,
    /// Files removed (`numRemovedFiles`); `None` when the commit does not record it.
    pub files_removed: Option<u64>,
    /// Id of the run that made the commit (`funnelpulse.run` in its commit info); `None` when absent.
    pub run: Option<String>,
}

/// What [`Lake::vacuum`] did to one table.
#[derive(Debug, Clone, Default)]
pub struct VacuumReport {
    /// Table name.
    pub table: String,
    /// Files deleted from the table's folder.
    pub files_deleted: usize,
}

/// Which version of a table to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AsOf {
    /// The newest version.
    #[default]
    Latest,
    /// This version number (0 is the first commit).
    Version(i64),
    /// The version current at this time (none before the table's first commit).
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// A version number, or an RFC 3339 time (`2026-12-03T10:00:00Z`).
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(version) = text.parse::<i64>() {
            return if version >= 0 { Ok(AsOf::Version(version)) } else { Err("a version is ≥ 0".into()) };
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| AsOf::Time(t.with_timezone(&chrono::Utc)))
            .map_err(|_| format!("{text:?} is neither a table version nor an RFC 3339 time (2026-12-03T10:00:00Z)"))
    }
}

/// The application id of a run's commits (in the log's `commitInfo`).
const RUN_KEY: &str = "funnelpulse.run";

impl Lake {
    /// The folder, relative to the table's root, where `run_id` writes its files.
    pub fn run_folder(run_id: &str) -> String {
        format!("run-{run_id}/")
    }

    /// The folder where `run_id` writes its files of `table`, relative to the lake root.
    pub fn run_rel(run_id: &str, table: &TableSpec) -> String {
        format!("{}{}", Lake::table_rel(table), Lake::run_folder(run_id))
    }

    /// URL of the folder where `run_id` writes its files of `table`.
    pub fn run_files_url(&self, run_id: &str, table: &TableSpec) -> String {
        format!("{}{}", self.table_url(table), Lake::run_folder(run_id))
    }

    /// The Delta table (its log not yet loaded) of `table`, on the lake's store.
    fn delta(&self, table: &TableSpec) -> crate::Result<DeltaTable> {
        let root = url::Url::parse(&self.table_url(table))?;
        let prefix = self.path_of(&Lake::table_rel(table));
        let prefixed: Arc<dyn object_store::ObjectStore> = Arc::new(PrefixStore::new(self.store.clone(), prefix));
        let log_store = default_logstore(prefixed, self.store.clone(), &root, &StorageConfig::default());
        Ok(DeltaTable::new(log_store))
    }

    /// The latest committed version of `table`, `None` when it does not exist.
    pub async fn table_version(&self, table: &TableSpec) -> crate::Result<Option<i64>> {
        let delta = self.delta(table)?;
        if !delta.log_store().is_delta_table_location().await? {
            self.refuse_legacy(table).await?;
            return Ok(None);
        }
        let version = delta.get_latest_version().await.with_context(|| format!("reading the log of {}", table.name))?;
        Ok(Some(version as i64))
    }

    /// Whether `table` has a Delta log.
    pub async fn table_exists(&self, table: &TableSpec) -> crate::Result<bool> {
        Ok(self.delta(table)?.log_store().is_delta_table_location().await?)
    }

    /// Loads the log of `table` at `at`; `None` when the table does not exist.
    /// The table's log at `at`; an error names the table and the lake.
    async fn load(&self, table: &TableSpec, at: &AsOf) -> crate::Result<Option<DeltaTable>> {
        let when = if matches!(at, AsOf::Latest) { String::new() } else { format!(" at {at:?}") };
        self.load_log(table, at).await.with_context(|| format!("reading {}{when} in {}", table.name, self.url()))
    }

    async fn load_log(&self, table: &TableSpec, at: &AsOf) -> crate::Result<Option<DeltaTable>> {
        let mut delta = self.delta(table)?;
        if !delta.log_store().is_delta_table_location().await? {
            self.refuse_legacy(table).await?;
            return Ok(None);
        }
        if let AsOf::Version(v) = at {
            let latest = delta.get_latest_version().await? as i64;
            if *v > latest {
                return Err(LakeError::Invalid(format!(
                    "{} has versions 0 to {latest}; there is no version {v}",
                    table.name
                )));
            }
        }
        let loaded = match at {
            AsOf::Latest => delta.load().await,
            AsOf::Version(v) => delta.load_version(*v as u64).await,
            AsOf::Time(t) => delta.load_with_datetime(*t).await,
        };
        loaded?;
        if let AsOf::Time(time) = at {
            // A time before the table's first commit: delta-rs gives version 0, but the table did not exist yet.
            let state = delta.snapshot()?;
            let committed = state.version_timestamp(state.version()).and_then(chrono::DateTime::from_timestamp_millis);
            if committed.is_some_and(|c| c > *time) {
                return Ok(None);
            }
        }
        Ok(Some(delta))
    }

    /// The files and columns of a committed version of `table`; `None` when
    /// the table does not exist.
    pub async fn snapshot(&self, table: &TableSpec, at: &AsOf) -> crate::Result<Option<TableFiles>> {
        let Some(delta) = self.load(table, at).await? else { return Ok(None) };
        let state = delta.snapshot()?;
        let schema = table_schema(table, state.snapshot().arrow_schema())?;
        let files = state
            .log_data()
            .iter()
            .map(|file| {
                let partition = file.partition_values_map().get(table.partition_col).cloned().flatten();
                DataFile { path: file.path().to_string(), size: file.size() as u64, partition }
            })
            .collect();
        Ok(Some(TableFiles {
            table: *table,
            root: self.table_url(table),
            version: Some(state.version() as i64),
            schema,
            files,
        }))
    }

    /// Like [`Lake::snapshot`], with a clear error when the table does not exist.
    pub async fn require_snapshot(&self, table: &TableSpec, at: &AsOf) -> crate::Result<TableFiles> {
        self.snapshot(table, at)
            .await?
            .with_context(|| format!("table {} does not exist in {}", table.name, self.url()))
    }

    /// The Parquet files `run_id` wrote for `table` (not yet committed), with
    /// the table's columns `schema` (files' columns, then the partition column).
    pub async fn run_files(&self, run_id: &str, table: &TableSpec, schema: SchemaRef) -> crate::Result<TableFiles> {
        let files = self.run_data_files(run_id, table).await?;
        Ok(TableFiles { table: *table, root: self.table_url(table), version: None, schema, files })
    }

    /// The Parquet files `run_id` wrote for `table`, by path.
    pub async fn run_data_files(&self, run_id: &str, table: &TableSpec) -> crate::Result<Vec<DataFile>> {
        let listed = self.list_with_meta(&Lake::run_rel(run_id, table)).await?;
        let root = Lake::table_rel(table);
        Ok(listed
            .into_iter()
            .filter(|f| f.rel.ends_with(".parquet"))
            .map(|f| {
                let path = f.rel.strip_prefix(&root).unwrap_or(&f.rel).to_string();
                let partition = partition_of(&path, table.partition_col);
                DataFile { path, size: f.size, partition }
            })
            .collect())
    }

    /// Deletes the files `run_id` wrote for `table` (a run that failed).
    pub async fn discard_run_files(&self, run_id: &str, table: &TableSpec) -> crate::Result<()> {
        self.delete_all(&Lake::run_rel(run_id, table)).await
    }

    /// Commits `files` (written by `run_id`) as the new content of `table`,
    /// replacing the version `read_version` (`None`: the table did not exist).
    /// Refused with [`TableChanged`] when the table has moved on since.
    pub async fn commit_overwrite(
        &self,
        run_id: &str,
        files: &TableFiles,
        read_version: Option<i64>,
    ) -> crate::Result<i64> {
        let table = &files.table;
        let adds = self.add_actions(files).await?;
        let changed =
            |version| TableChanged { table: table.name.to_string(), version, action: "wrote", committed: Vec::new() };
        let Some(read_version) = read_version else {
            let metadata = run_metadata(run_id, &adds, 0);
            return self.create_with(files, adds.actions, metadata).await.map_err(|e| match e {
                LakeError::Conflict(changed) => LakeError::Conflict(TableChanged { action: "wrote", ..changed }),
                other => other,
            });
        };
        let delta = self.load(table, &AsOf::Version(read_version)).await?.with_context(|| {
            format!("{} disappeared while this run wrote it; nothing of this run was committed", table.name)
        })?;
        let state = delta.snapshot()?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = state
            .log_data()
            .iter()
            .map(|file| {
                Action::Remove(Remove {
                    path: file.path().to_string(),
                    data_change: true,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(file.partition_values_map()),
                    size: Some(file.size()),
                    tags: None,
                    deletion_vector: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                })
            })
            .collect();
        let removed = actions.len();
        // Columns changed (a new release of FunnelPulse): the overwrite carries them.
        let wanted = delta_schema(files)?;
        if state.schema().as_ref() != &wanted {
            let metadata = new_metadata(&wanted, [table.partition_col], Vec::<(String, String)>::new())?
                .with_table_id(state.metadata().id().to_string())?;
            actions.insert(0, Action::Metadata(metadata));
        }
        let metadata = run_metadata(run_id, &adds, removed);
        actions.extend(adds.actions.into_iter().map(Action::Add));
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![table.partition_col.to_string()]),
            predicate: None,
        };
        crate::fault::pause_point(&format!("before-commit:{}", table.name));
        // No retries: an overwrite computed from an older version must not land.
        let commit = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
            .with_app_metadata(metadata)
            .with_actions(actions)
            .build(Some(state), delta.log_store(), operation)
            .await;
        match commit {
            Ok(done) => Ok(done.version() as i64),
            Err(e) if is_conflict(&e) => {
                let latest = self.table_version(table).await?.unwrap_or(read_version);
                Err(changed(latest).into())
            }
            Err(e) => Err(e).context(format!("committing {}", table.name)),
        }
    }

    /// Creates `table` with `files` as its first version (version 0).
    async fn create_with(
        &self,
        files: &TableFiles,
        adds: Vec<Add>,
        metadata: HashMap<String, serde_json::Value>,
    ) -> crate::Result<i64> {
        let table = &files.table;
        let schema = delta_schema(files)?;
        crate::fault::pause_point(&format!("before-commit:{}", table.name));
        let created = self
            .delta(table)?
            .create()
            .with_columns(schema.fields().cloned())
            .with_partition_columns([table.partition_col])
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_actions(adds.into_iter().map(Action::Add))
            .with_commit_properties(CommitProperties::default().with_max_retries(0).with_metadata(metadata))
            .await;
        match created {
            Ok(delta) => Ok(delta.version().unwrap_or(0) as i64),
            Err(e)
                if is_conflict(&e) || matches!(e, DeltaTableError::Generic(_)) && self.table_exists(table).await? =>
            {
                let latest = self.table_version(table).await?.unwrap_or(0);
                Err(TableChanged { table: table.name.to_string(), version: latest, action: "wrote", committed: vec![] }
                    .into())
            }
            Err(e) => Err(e).context(format!("creating {}", table.name)),
        }
    }

    /// Creates `table` empty, with the columns `schema`, unless it exists.
    pub async fn ensure_table(&self, table: &TableSpec, schema: SchemaRef) -> crate::Result<()> {
        if self.table_exists(table).await? {
            return Ok(());
        }
        let files = TableFiles { table: *table, root: self.table_url(table), version: None, schema, files: Vec::new() };
        let metadata = HashMap::from([(RUN_KEY.to_string(), serde_json::json!("create"))]);
        match self.create_with(&files, Vec::new(), metadata).await {
            Ok(_) => Ok(()),
            // Created meanwhile by another process: as good.
            Err(LakeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Appends `files` to `table` as the batch `batch` of the stream `app_id`
    /// (a Delta `txn` action), unless the table already holds that batch:
    /// returns whether this call committed it.
    pub async fn commit_append(
        &self,
        table: &TableSpec,
        files: Vec<DataFile>,
        app_id: &str,
        batch: i64,
    ) -> crate::Result<bool> {
        let delta = self.load(table, &AsOf::Latest).await?.with_context(|| format!("{} does not exist", table.name))?;
        let state = delta.snapshot()?;
        if state.transaction_version(delta.log_store().as_ref(), app_id).await?.is_some_and(|v| v >= batch) {
            return Ok(false);
        }
        let schema = table_schema(table, state.snapshot().arrow_schema())?;
        let files = TableFiles { table: *table, root: self.table_url(table), version: None, schema, files };
        let adds = self.add_actions(&files).await?;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![table.partition_col.to_string()]),
            predicate: None,
        };
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new_with_last_update(
                app_id,
                batch,
                Some(chrono::Utc::now().timestamp_millis()),
            ))
            .with_metadata(run_metadata(app_id, &adds, 0));
        CommitBuilder::from(properties)
            .with_actions(adds.actions.into_iter().map(Action::Add).collect())
            .build(Some(state), delta.log_store(), operation)
            .await
            .with_context(|| format!("appending batch {batch} to {}", table.name))?;
        Ok(true)
    }

    /// Empties `table` (one commit removing every file), keeping its columns.
    pub async fn truncate(&self, table: &TableSpec, run_id: &str) -> crate::Result<()> {
        let Some(files) = self.snapshot(table, &AsOf::Latest).await? else { return Ok(()) };
        let empty = TableFiles { files: Vec::new(), ..files.clone() };
        self.commit_overwrite(run_id, &empty, files.version).await.map(|_| ())
    }

    /// Add actions for `files`, with row counts and column statistics read
    /// from their Parquet footers (no data is read).
    async fn add_actions(&self, files: &TableFiles) -> crate::Result<Adds> {
        let schema = files.schema.clone();
        let adds = files.files.iter().map(|file| {
            let schema = schema.clone();
            async move {
                let rel = format!("{}{}", Lake::table_rel(&files.table), file.path);
                let meta = self.store.head(&self.path_of(&rel)).await.with_context(|| format!("{rel} is gone"))?;
                let footer = self.parquet_footer(&rel, meta.size).await.with_context(|| format!("reading {rel}"))?;
                let (stats, rows) = stats::file_stats(&footer, &schema)?;
                let mut partition_values = HashMap::new();
                partition_values.insert(files.table.partition_col.to_string(), file.partition.clone());
                let add = Add {
                    path: file.path.clone(),
                    partition_values,
                    size: meta.size as i64,
                    modification_time: meta.last_modified.timestamp_millis(),
                    data_change: true,
                    stats: Some(stats),
                    tags: None,
                    deletion_vector: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                    clustering_provider: None,
                };
                Ok::<_, LakeError>((add, rows))
            }
        });
        let adds: Vec<(Add, u64)> = futures::stream::iter(adds).buffered(16).try_collect().await?;
        Ok(Adds {
            rows: adds.iter().map(|(_, rows)| rows).sum(),
            bytes: adds.iter().map(|(add, _)| add.size as u64).sum(),
            actions: adds.into_iter().map(|(add, _)| add).collect(),
        })
    }

    /// Data files of `table` in the layout of FunnelPulse before Delta
    /// (`tables/<t>/<partition_col>=<value>/part-*.parquet`, no log).
    async fn legacy_files(&self, table: &TableSpec) -> crate::Result<Vec<crate::FileMeta>> {
        let root = Lake::table_rel(table);
        let prefix = format!("{root}{}=", table.partition_col);
        let files = self.list_with_meta(&root).await?;
        Ok(files.into_iter().filter(|f| f.rel.starts_with(&prefix) && f.rel.ends_with(".parquet")).collect())
    }

    /// Fails with the fix when `table` is still in the layout before Delta:
    /// reading its folder as an empty table, or writing a Delta table over it,
    /// would misread it.
    async fn refuse_legacy(&self, table: &TableSpec) -> crate::Result<()> {
        if self.legacy_files(table).await?.is_empty() {
            return Ok(());
        }
        Err(LakeError::Invalid(format!(
            "{} in {} is a folder of Parquet files written by an older FunnelPulse, not a Delta table: convert the \
             lake with `funnelpulse lake convert --lake {}`",
            table.name,
            self.url(),
            self.url()
        )))
    }

    /// Converts `table` from the layout before Delta into a Delta table whose
    /// first version holds the same files, in place (nothing is copied).
    /// Zero-row placeholder files are left out. Returns the files committed,
    /// `None` when there was nothing to convert.
    pub async fn convert_legacy(&self, table: &TableSpec) -> crate::Result<Option<usize>> {
        if self.delta(table)?.log_store().is_delta_table_location().await? {
            return Ok(None);
        }
        let legacy = self.legacy_files(table).await?;
        if legacy.is_empty() {
            return Ok(None);
        }
        let root = Lake::table_rel(table);
        let mut files = Vec::new();
        let mut schema = None;
        for file in &legacy {
            let footer =
                self.parquet_footer(&file.rel, file.size).await.with_context(|| format!("reading {}", file.rel))?;
            if schema.is_none() {
                let arrow = datafusion::parquet::arrow::parquet_to_arrow_schema(
                    footer.file_metadata().schema_descr(),
                    footer.file_metadata().key_value_metadata(),
                )?;
                let mut fields: Vec<Field> = arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new(table.partition_col, DataType::Date32, true));
                schema = Some(Arc::new(Schema::new(fields)));
            }
            if footer.file_metadata().num_rows() == 0 {
                continue;
            }
            let path = file.rel.strip_prefix(&root).unwrap_or(&file.rel).to_string();
            let partition = partition_of(&path, table.partition_col);
            files.push(DataFile { path, size: file.size, partition });
        }
        let schema = schema.context("no file to take the columns from")?;
        let count = files.len();
        let files = TableFiles { table: *table, root: self.table_url(table), version: None, schema, files };
        self.commit_overwrite("convert", &files, None).await?;
        Ok(Some(count))
    }

    /// Versions of `table`, newest first.
    pub async fn history(&self, table: &TableSpec, limit: Option<usize>) -> crate::Result<Vec<HistoryEntry>> {
        let delta = self.load(table, &AsOf::Latest).await?.with_context(|| format!("{} does not exist", table.name))?;
        let infos: Vec<_> = delta.history(limit).try_collect().await?;
        let latest = delta.version().unwrap_or(0) as i64;
        let metric = |info: &deltalake_core::kernel::CommitInfo, key: &str| {
            let value = info.info.get("operationMetrics")?.get(key)?;
            value.as_u64().or_else(|| value.as_str()?.parse().ok())
        };
        Ok(infos
            .iter()
            .enumerate()
            .map(|(i, info)| HistoryEntry {
                version: info.read_version.map(|v| v as i64 + 1).unwrap_or(latest - i as i64),
                timestamp: info.timestamp.and_then(chrono::DateTime::from_timestamp_millis),
                operation: info.operation.clone().unwrap_or_default(),
                rows_added: metric(info, "numOutputRows"),
                files_added: metric(info, "numFiles"),
                files_removed: metric(info, "numRemovedFiles"),
                run: info.info.get(RUN_KEY).and_then(|v| v.as_str()).map(str::to_string),
            })
            .collect())
    }

    /// Deletes the files of `table` that no version younger than `retain`
    /// needs (replaced files, and files of killed runs older than `retain`).
    pub async fn vacuum(&self, table: &TableSpec, retain: std::time::Duration) -> crate::Result<VacuumReport> {
        let Some(delta) = self.load(table, &AsOf::Latest).await? else {
            return Ok(VacuumReport { table: table.name.to_string(), files_deleted: 0 });
        };
        let hours = chrono::Duration::from_std(retain)?;
        let (_, metrics) = delta
            .vacuum()
            .with_retention_period(hours)
            .with_enforce_retention_duration(false)
            // Full: also the files no log entry names (those of killed runs), not only removed ones.
            .with_mode(deltalake_core::operations::vacuum::VacuumMode::Full)
            .await
            .with_context(|| format!("vacuuming {}", table.name))?;
        // Local lakes: the emptied run folders too.
        self.remove_empty_dirs(&Lake::table_rel(table));
        Ok(VacuumReport { table: table.name.to_string(), files_deleted: metrics.files_deleted.len() })
    }
}

/// A commit's new files, with their rows and bytes.
struct Adds {
    actions: Vec<Add>,
    rows: u64,
    bytes: u64,
}

/// The commitInfo entries of a run's commit: the run, and the metrics Spark
/// shows in `DESCRIBE HISTORY` for a write.
fn run_metadata(run_id: &str, adds: &Adds, removed: usize) -> HashMap<String, serde_json::Value> {
    let metrics = serde_json::json!({
        "numFiles": adds.actions.len().to_string(),
        "numOutputRows": adds.rows.to_string(),
        "numOutputBytes": adds.bytes.to_string(),
        "numRemovedFiles": removed.to_string(),
    });
    HashMap::from([(RUN_KEY.to_string(), serde_json::json!(run_id)), ("operationMetrics".to_string(), metrics)])
}

/// Whether a commit failed because another writer committed first.
pub(crate) fn is_conflict(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::VersionAlreadyExists(_)
                | TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
        ),
        DeltaTableError::VersionAlreadyExists(_) | DeltaTableError::CommitValidation { .. } => true,
        other => other.to_string().contains("already exists"),
    }
}

/// The table's columns as Delta sees them.
fn delta_schema(files: &TableFiles) -> crate::Result<StructType> {
    Ok(files.schema.as_ref().try_into_kernel()?)
}

/// The reader's schema: the log's columns, with the partition column moved
/// last and read as a date (as our plans expect).
fn table_schema(table: &TableSpec, arrow: SchemaRef) -> crate::Result<SchemaRef> {
    let mut fields: Vec<Field> =
        arrow.fields().iter().filter(|f| f.name() != table.partition_col).map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(table.partition_col, DataType::Date32, true));
    Ok(Arc::new(Schema::new(fields)))
}

/// `run-x/event_date=2019-10-01/a.parquet` → `Some("2019-10-01")`; Hive's null marker → `None`.
pub fn partition_of(path: &str, partition_col: &str) -> Option<String> {
    let prefix = format!("{partition_col}=");
    let value = path.split('/').find_map(|seg| seg.strip_prefix(&prefix))?;
    (value != NULL_PARTITION).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_come_from_the_folder_names() {
        assert_eq!(partition_of("run-x/event_date=2019-10-01/a.parquet", "event_date").as_deref(), Some("2019-10-01"));
        assert_eq!(partition_of(&format!("run-x/event_date={NULL_PARTITION}/a.parquet"), "event_date"), None);
        assert_eq!(partition_of("run-x/date=2019-10-01/a.parquet", "event_date"), None);
    }

    #[test]
    fn as_of_takes_versions_and_times() {
        assert_eq!("3".parse::<AsOf>().unwrap(), AsOf::Version(3));
        assert!(matches!("2026-12-03T10:00:00Z".parse::<AsOf>().unwrap(), AsOf::Time(_)));
        assert!("yesterday".parse::<AsOf>().unwrap_err().contains("RFC 3339"));
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use funnelpulse_core::tables::LATE_EVENTS;

    fn lake() -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), crate::LakeStores::new().as_ref()).unwrap();
        (dir, lake)
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("batch_id", DataType::Int64, true),
            Field::new(LATE_EVENTS.partition_col, DataType::Date32, true),
        ]))
    }

    /// Delta checkpoints every 100 commits, as Delta does; a stream's batches
    /// are appended once each (the txn action), whatever is retried.
    #[tokio::test]
    async fn a_long_stream_of_appends_is_checkpointed_and_each_batch_lands_once() {
        let (dir, lake) = lake();
        lake.ensure_table(&LATE_EVENTS, schema()).await.unwrap();
        for batch in 0..100 {
            assert!(lake.commit_append(&LATE_EVENTS, Vec::new(), "stream-x", batch).await.unwrap());
        }
        assert!(!lake.commit_append(&LATE_EVENTS, Vec::new(), "stream-x", 99).await.unwrap(), "batch 99 again");
        assert!(!lake.commit_append(&LATE_EVENTS, Vec::new(), "stream-x", 42).await.unwrap(), "an older batch");
        let log = dir.path().join("tables/late_events/_delta_log");
        // delta-rs writes it after the 100th commit (version 99).
        let checkpoints: Vec<String> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| name.ends_with(".checkpoint.parquet"))
            .collect();
        assert_eq!(checkpoints, ["00000000000000000099.checkpoint.parquet"], "one checkpoint in 101 commits");
        assert_eq!(lake.table_version(&LATE_EVENTS).await.unwrap(), Some(100));
        let history = lake.history(&LATE_EVENTS, Some(3)).await.unwrap();
        assert_eq!(history[0].version, 100);
        assert_eq!(history[0].run.as_deref(), Some("stream-x"));
    }

    /// An overwrite computed from an older version is refused, and says so.
    #[tokio::test]
    async fn an_overwrite_from_an_older_version_is_refused() {
        let (_dir, lake) = lake();
        lake.ensure_table(&LATE_EVENTS, schema()).await.unwrap();
        let empty = TableFiles {
            table: LATE_EVENTS,
            root: lake.table_url(&LATE_EVENTS),
            version: None,
            schema: schema(),
            files: Vec::new(),
        };
        assert_eq!(lake.commit_overwrite("r1", &empty, Some(0)).await.unwrap(), 1);
        let refused = lake.commit_overwrite("r2", &empty, Some(0)).await.unwrap_err();
        let changed = refused.as_conflict().expect("a TableChanged");
        assert_eq!(changed.version, 1);
        assert!(refused.to_string().contains("late_events was changed by another run (version 1)"), "{refused}");
        let refused = lake.commit_overwrite("r3", &empty, None).await.unwrap_err();
        assert!(refused.as_conflict().is_some(), "creating an existing table: {refused}");
    }
}
