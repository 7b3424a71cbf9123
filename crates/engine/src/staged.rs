//! A stage's run against the lake: write its tables' files, check them,
//! commit them one Delta commit per table, or throw them away.

use std::time::Instant;

use crate::error::Context;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::{DataFrame, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_lake::{AsOf, Lake, LakeError, RunMarker, TableChanged, TableFiles, new_run_id};

use crate::tables::{as_one_task, read_files, write_partitioned};

/// One run of a stage against the lake: its tables' files, written under the run's id, are checked,
/// then committed or thrown away.
pub struct StagedRun {
    lake: Lake,
    /// Sorts by time (`20261125T101500Z-1a2b3c4d`); the run writes its files under `run-<id>/` in each table.
    pub run_id: String,
    /// Says that this run is alive: its files are not a killed run's.
    marker: RunMarker,
    /// Tables written so far, with the version each had when this run began
    /// writing it; a mutex so that one run can write several tables at once.
    written: std::sync::Mutex<Vec<Written>>,
    /// Committed tables this run read, with the version it read.
    read: std::sync::Mutex<Vec<(TableSpec, i64)>>,
}

/// A table this run wrote.
#[derive(Clone)]
struct Written {
    table: TableSpec,
    /// The table's version when this run began writing it (`None`: absent).
    base_version: Option<i64>,
    schema: SchemaRef,
}

impl StagedRun {
    /// Completes an interrupted replacement of the stream input (stage 03's
    /// journal), removes what killed runs left, then starts a new run.
    pub async fn begin(lake: &Lake) -> crate::Result<Self> {
        prepare_lake(lake).await?;
        let run_id = new_run_id();
        let marker = RunMarker::start(lake, &run_id).await?;
        Ok(Self { lake: lake.clone(), run_id, marker, written: Default::default(), read: Default::default() })
    }

    /// Reads the latest committed version of `table` and remembers it: the
    /// commit fails if another run changes the table meanwhile.
    pub async fn read_committed(&self, table: TableSpec) -> crate::Result<Option<TableFiles>> {
        self.read_as_of(table, &AsOf::Latest).await
    }

    /// Reads `table` as of `at`; the latest version is remembered as
    /// [`StagedRun::read_committed`] does, an older one (asked for) is not.
    pub async fn read_as_of(&self, table: TableSpec, at: &AsOf) -> crate::Result<Option<TableFiles>> {
        let files = self.lake.snapshot(&table, at).await?;
        if let (AsOf::Latest, Some(version)) = (at, files.as_ref().and_then(|f| f.version)) {
            self.read.lock().expect("read tables").push((table, version));
        }
        Ok(files)
    }

    /// Writes `df` as the new version of `table` (not yet visible),
    /// in one job planned as the engine sees fit.
    pub async fn write(&self, df: DataFrame, table: TableSpec) -> crate::Result<std::time::Duration> {
        self.write_jobs(vec![df], table).await
    }

    /// Writes the new version of `table` from disjoint slices, one Ballista
    /// job per slice, all running at once, each job a single task (see
    /// `as_one_task`): the slices spread the work over the cluster, and with
    /// no shuffle in them a lost executor cannot make a job drop or repeat rows.
    pub async fn write_slices(&self, slices: Vec<DataFrame>, table: TableSpec) -> crate::Result<std::time::Duration> {
        self.write_jobs(slices.into_iter().map(as_one_task).collect(), table).await
    }

    /// Runs one write job per plan, all at once, then checks that the run's
    /// files hold exactly the rows the jobs reported (an invariant, so a
    /// cluster run is retried): a task that died midway on a lost executor
    /// can leave a partial file beside its retry's.
    async fn write_jobs(&self, jobs: Vec<DataFrame>, table: TableSpec) -> crate::Result<std::time::Duration> {
        let written = self.write_and_check(jobs, table).await;
        // The write's buffers are free now but still resident in malloc's
        // arenas: handed back, the next table's peak is its own, not added to them.
        crate::memory::release_free_memory();
        if written.is_err() {
            // Not in `written` yet, so `abandon` would not find them.
            if let Err(e) = self.lake.discard_run_files(&self.run_id, &table).await {
                let why = funnelpulse_core::error::chain_text(&e);
                log::warn!("could not remove the files of run {} in {}: {why}", self.run_id, table.name);
            }
        }
        written
    }

    async fn write_and_check(&self, jobs: Vec<DataFrame>, table: TableSpec) -> crate::Result<std::time::Duration> {
        let started = Instant::now();
        let base_version = self.lake.table_version(&table).await?;
        let url = self.lake.run_files_url(&self.run_id, &table);
        let writes = jobs.into_iter().map(|df| write_partitioned(df, &table, &url));
        let written = futures::future::try_join_all(writes).await.with_context(|| format!("writing {}", table.name))?;
        let schema = written
            .first()
            .map(|w| w.table_schema.clone())
            .with_context(|| format!("no slice to write for {}", table.name))?;
        let rows_written: u64 = written.iter().map(|w| w.rows).sum();
        funnelpulse_lake::fault::stray_file_point(&self.lake, &self.run_id, &table).await?;
        let invariant = format!("{}: the run's files hold the rows its jobs wrote", table.name);
        // An unreadable file fails the same check (and is retried the same way).
        let rows_staged = self.lake.parquet_rows_under(&Lake::run_rel(&self.run_id, &table)).await.map_err(|e| {
            crate::InvariantViolation { name: invariant.clone(), detail: funnelpulse_core::error::chain_text(&e) }
        })?;
        check(&invariant, rows_staged == rows_written, || {
            format!("{rows_staged} rows in the files, {rows_written} written")
        })?;
        self.written.lock().expect("written tables").push(Written { table, base_version, schema });
        funnelpulse_lake::fault::crash_point(&format!("after-staging:{}", table.name));
        Ok(started.elapsed())
    }

    /// The files this run wrote for `table`.
    async fn files(&self, table: TableSpec) -> crate::Result<TableFiles> {
        let schema = self
            .written
            .lock()
            .expect("written tables")
            .iter()
            .find(|w| w.table == table)
            .map(|w| w.schema.clone())
            .with_context(|| format!("this run has not written {}", table.name))?;
        Ok(self.lake.run_files(&self.run_id, &table, schema).await?)
    }

    /// Reads the version of a table written by this run (not yet committed).
    pub async fn read(&self, ctx: &SessionContext, table: TableSpec) -> crate::Result<DataFrame> {
        read_files(ctx, &self.files(table).await?)
    }

    /// Reads the partitions `values` of a table written by this run.
    pub async fn read_partitions(
        &self,
        ctx: &SessionContext,
        table: TableSpec,
        values: &[String],
    ) -> crate::Result<DataFrame> {
        read_files(ctx, &self.files(table).await?.only_partitions(values))
    }

    /// Partition values (not null) this run wrote for `table`, sorted.
    pub async fn partitions(&self, table: TableSpec) -> crate::Result<Vec<String>> {
        Ok(self.files(table).await?.partitions())
    }

    /// Makes every written table the current version: one Delta commit per
    /// table, in the order they were written. First checks that no table
    /// this run read or wrote has changed since, so that a run that lost a
    /// race commits nothing; then commits each table against the version it
    /// started from (a race in between is still refused, table by table).
    pub async fn commit(self) -> crate::Result<Vec<(String, i64)>> {
        let committed = self.commit_tables().await;
        self.marker.finish().await;
        committed
    }

    async fn commit_tables(&self) -> crate::Result<Vec<(String, i64)>> {
        let written = self.written.lock().expect("written tables").clone();
        let read = self.read.lock().expect("read tables").clone();
        self.check_unchanged(&written, &read).await?;
        let mut committed = Vec::new();
        for table in &written {
            let files = self.lake.run_files(&self.run_id, &table.table, table.schema.clone()).await?;
            let commit = async {
                self.marker.committing(&table.table).await?;
                self.lake.commit_overwrite(&self.run_id, &files, table.base_version).await
            };
            match commit.await {
                Ok(version) => committed.push((table.table.name.to_string(), version)),
                Err(e) => {
                    let e = match e {
                        LakeError::Conflict(changed) => TableChanged { committed: committed.clone(), ..changed }.into(),
                        other => other,
                    };
                    self.discard_uncommitted(&written, committed.len()).await;
                    return Err(e.into());
                }
            }
            funnelpulse_lake::fault::crash_point(&format!("after-commit:{}", table.table.name));
        }
        Ok(committed)
    }

    /// Fails with [`TableChanged`] when a table read or written by this run
    /// has a newer version than the one this run started from.
    async fn check_unchanged(&self, written: &[Written], read: &[(TableSpec, i64)]) -> crate::Result<()> {
        let bases = written.iter().map(|w| (w.table, w.base_version, "wrote"));
        let inputs = read.iter().map(|(table, version)| (*table, Some(*version), "read"));
        for (table, base, action) in bases.chain(inputs) {
            let now = self.lake.table_version(&table).await?;
            if now != base {
                self.discard_uncommitted(written, 0).await;
                let version = now.unwrap_or(-1);
                let changed = TableChanged { table: table.name.to_string(), version, action, committed: vec![] };
                return Err(LakeError::from(changed).into());
            }
        }
        Ok(())
    }

    /// Commits when the stage's tables were built and checked (`built` is Ok),
    /// otherwise throws the run's files away and returns the stage's error.
    pub async fn commit_or_abandon(self, built: crate::Result<()>) -> crate::Result<Vec<(String, i64)>> {
        match built {
            Ok(()) => self.commit().await,
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    /// Deletes the run's files after a failure; the current tables stay as they were.
    pub async fn abandon(self) {
        let written = self.written.lock().expect("written tables").clone();
        self.discard_uncommitted(&written, 0).await;
        self.marker.finish().await;
    }

    /// Deletes the files of the written tables from the `skip`-th on (those
    /// before it were committed).
    async fn discard_uncommitted(&self, written: &[Written], skip: usize) {
        for table in written.iter().skip(skip) {
            if let Err(e) = self.lake.discard_run_files(&self.run_id, &table.table).await {
                log::warn!(
                    "could not remove the files of run {} in {}: {}",
                    self.run_id,
                    table.table.name,
                    funnelpulse_core::error::chain_text(&e)
                );
            }
        }
    }
}

/// Before a run writes: completes an interrupted replacement of the stream
/// input (stage 03's journal), then removes what killed runs left (their
/// staging, their files in tables they never committed).
pub async fn prepare_lake(lake: &Lake) -> crate::Result<()> {
    for run in lake.recover().await? {
        log::warn!("completed the interrupted commit of run {run}");
    }
    for swept in lake.sweep_dead_runs(funnelpulse_lake::runs::DEFAULT_STALE).await? {
        log::info!("note: {swept}");
    }
    Ok(())
}

/// Runs a one-row aggregate and returns its columns as i64 (null → 0).
pub async fn one_row_i64(df: DataFrame, exprs: Vec<Expr>) -> crate::Result<Vec<i64>> {
    let named: Vec<Expr> = exprs.into_iter().enumerate().map(|(i, e)| e.alias(format!("c{i}"))).collect();
    Ok(first_row_i64(df.aggregate(vec![], named)?).await?.into_iter().map(|v| v.unwrap_or(0)).collect())
}

/// The first row of `df` with every column cast to i64 (None: null, or no row).
pub async fn first_row_i64(df: DataFrame) -> crate::Result<Vec<Option<i64>>> {
    let columns: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| cast(datafusion::prelude::col(f.name()), DataType::Int64).alias(f.name()))
        .collect();
    let mut values = vec![None; columns.len()];
    let batches = df.select(columns)?.collect().await?;
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        for (i, v) in values.iter_mut().enumerate() {
            let array = batch.column(i).as_any().downcast_ref::<Int64Array>().context("expected an i64 column")?;
            *v = array.is_valid(0).then(|| array.value(0));
        }
    }
    Ok(values)
}

/// Fails the stage when a reconciliation invariant does not hold.
pub fn check(name: &str, holds: bool, detail: impl FnOnce() -> String) -> crate::Result<()> {
    if holds {
        return Ok(());
    }
    Err(crate::InvariantViolation { name: name.to_string(), detail: detail() }.into())
}
