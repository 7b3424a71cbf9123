//! `RawEventsTable`: the raw files as a DataFusion table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use funnelpulse_core::schema::raw_reader_schema;
use serde::{Deserialize, Serialize};

use crate::discover::RawFile;
use crate::exec::RawCsvExec;

/// Which rows the scan yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanMode {
    /// Every data line (rows with problems too, `problem` says what was wrong).
    AllRows,
    /// Only lines with a problem: cheap to materialise as `bronze_rejects`.
    ProblemsOnly,
}

/// The raw files as a DataFusion table of the raw reader schema; sent to executors as JSON by the engine's codec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawEventsTable {
    /// The files, one scan partition each.
    pub files: Vec<RawFile>,
    /// Which rows the scan yields.
    pub mode: ScanMode,
}

impl RawEventsTable {
    /// A table over `files` yielding the rows `mode` selects.
    pub fn new(files: Vec<RawFile>, mode: ScanMode) -> Self {
        Self { files, mode }
    }
}

#[async_trait]
impl TableProvider for RawEventsTable {
    fn schema(&self) -> SchemaRef {
        raw_reader_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(RawCsvExec::try_new(self.files.clone(), self.mode, projection.cloned())?))
    }
}
