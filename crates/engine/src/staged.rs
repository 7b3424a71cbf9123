//! A stage's run against the lake: write tables to staging, check them,
//! commit them together, or throw them away.

use std::time::Instant;

use anyhow::Context;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::{DataFrame, SessionContext};
use funnelpulse_core::TableSpec;
use funnelpulse_lake::{CommitSummary, Lake, new_run_id};

use crate::tables::{as_one_task, read_partitions, read_table, write_partitioned};

pub struct StagedRun {
    lake: Lake,
    pub run_id: String,
    /// Tables staged so far; a mutex so that one run can write several tables at once.
    written: std::sync::Mutex<Vec<TableSpec>>,
}

impl StagedRun {
    /// Completes any interrupted commit, then starts a new run.
    pub async fn begin(lake: &Lake) -> anyhow::Result<Self> {
        for run in lake.recover().await? {
            eprintln!("note: completed the interrupted commit of run {run}");
        }
        Ok(Self { lake: lake.clone(), run_id: new_run_id(), written: Default::default() })
    }

    /// Writes `df` as the new version of `table` (staged, not yet visible),
    /// in one job planned as the engine sees fit.
    pub async fn write(&self, df: DataFrame, table: TableSpec) -> anyhow::Result<std::time::Duration> {
        self.write_jobs(vec![df], table).await
    }

    /// Writes the new version of `table` from disjoint slices, one Ballista
    /// job per slice, all running at once, each job a single task (see
    /// `as_one_task`): the slices spread the work over the cluster, and with
    /// no shuffle in them a lost executor cannot make a job drop or repeat rows.
    pub async fn write_slices(&self, slices: Vec<DataFrame>, table: TableSpec) -> anyhow::Result<std::time::Duration> {
        self.write_jobs(slices.into_iter().map(as_one_task).collect(), table).await
    }

    /// Runs one write job per plan, all at once, then checks that the staged
    /// files hold exactly the rows the jobs reported (an invariant, so a
    /// cluster run is retried): a task that died midway on a lost executor
    /// can leave a partial file beside its retry's.
    async fn write_jobs(&self, jobs: Vec<DataFrame>, table: TableSpec) -> anyhow::Result<std::time::Duration> {
        let started = Instant::now();
        let url = self.lake.staging_url(&self.run_id, &table);
        let writes = jobs.into_iter().map(|df| write_partitioned(df, &table, &url));
        let written = futures::future::try_join_all(writes).await.with_context(|| format!("writing {}", table.name))?;
        let file_schema = written
            .first()
            .map(|w| w.file_schema.clone())
            .with_context(|| format!("no slice to write for {}", table.name))?;
        let rows_written: u64 = written.iter().map(|w| w.rows).sum();
        funnelpulse_lake::fault::stray_file_point(&self.lake, &self.run_id, &table).await?;
        let invariant = format!("{}: staged files hold the rows its jobs wrote", table.name);
        // An unreadable staged file fails the same check (and is retried the same way).
        let rows_staged = self
            .lake
            .staged_rows(&self.run_id, &table)
            .await
            .map_err(|e| crate::InvariantViolation { name: invariant.clone(), detail: format!("{e:#}") })?;
        check(&invariant, rows_staged == rows_written, || {
            format!("{rows_staged} rows in the files, {rows_written} written")
        })?;
        if !self.has_files(table).await? {
            self.lake.stage_empty_table(&self.run_id, &table, file_schema).await?;
        }
        self.written.lock().expect("written tables").push(table);
        funnelpulse_lake::fault::crash_point(&format!("after-staging:{}", table.name));
        Ok(started.elapsed())
    }

    /// Reads the staged version of a table written by this run.
    pub async fn read(&self, ctx: &SessionContext, table: TableSpec) -> anyhow::Result<DataFrame> {
        read_table(ctx, &table, &self.lake.staging_url(&self.run_id, &table)).await
    }

    /// Reads the staged partitions `values` of a table written by this run.
    pub async fn read_partitions(
        &self,
        ctx: &SessionContext,
        table: TableSpec,
        values: &[String],
    ) -> anyhow::Result<DataFrame> {
        read_partitions(ctx, &table, &self.lake.staging_url(&self.run_id, &table), Some(values)).await
    }

    /// Partition values (not null) this run staged for `table`, sorted.
    pub async fn partitions(&self, table: TableSpec) -> anyhow::Result<Vec<String>> {
        self.lake.partition_values(&Lake::staging_rel(&self.run_id, &table), table.partition_col).await
    }

    /// Whether this run staged any file for `table` (an empty result stages none).
    pub async fn has_files(&self, table: TableSpec) -> anyhow::Result<bool> {
        use futures::TryStreamExt;
        let prefix = self.lake.path_of(&Lake::staging_rel(&self.run_id, &table));
        Ok(self.lake.store().list(Some(&prefix)).try_next().await?.is_some())
    }

    /// Makes every written table the current version, all or nothing.
    pub async fn commit(self) -> anyhow::Result<CommitSummary> {
        let written = self.written.lock().expect("written tables").clone();
        self.lake.commit(&self.run_id, &written).await
    }

    /// Commits when the stage's tables were built and checked (`built` is Ok),
    /// otherwise throws the staged files away and returns the stage's error.
    pub async fn commit_or_abandon(self, built: anyhow::Result<()>) -> anyhow::Result<CommitSummary> {
        match built {
            Ok(()) => self.commit().await,
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    /// Deletes the staged files after a failure; the current tables stay as they were.
    pub async fn abandon(self) {
        if let Err(e) = self.lake.discard_staging(&self.run_id).await {
            eprintln!("warning: could not remove staged files of run {}: {e:#}", self.run_id);
        }
    }
}

/// Runs a one-row aggregate and returns its columns as i64 (null → 0).
pub async fn one_row_i64(df: DataFrame, exprs: Vec<Expr>) -> anyhow::Result<Vec<i64>> {
    let n = exprs.len();
    let named: Vec<Expr> = exprs.into_iter().enumerate().map(|(i, e)| e.alias(format!("c{i}"))).collect();
    let casted: Vec<Expr> = (0..n).map(|i| cast(datafusion::prelude::col(format!("c{i}")), DataType::Int64)).collect();
    let batches = df.aggregate(vec![], named)?.select(casted)?.collect().await?;
    let mut values = vec![0i64; n];
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        for (i, v) in values.iter_mut().enumerate() {
            let array = batch.column(i).as_any().downcast_ref::<Int64Array>().context("expected an i64 column")?;
            if array.is_valid(0) {
                *v = array.value(0);
            }
        }
    }
    Ok(values)
}

/// Fails the stage when a reconciliation invariant does not hold.
pub fn check(name: &str, holds: bool, detail: impl FnOnce() -> String) -> anyhow::Result<()> {
    if holds {
        return Ok(());
    }
    Err(crate::InvariantViolation { name: name.to_string(), detail: detail() }.into())
}
