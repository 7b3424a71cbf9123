//! `RawCsvExec`: one partition per raw file, read as a stream of lines.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use funnelpulse_core::schema::raw_reader_schema;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::discover::RawFile;
use crate::parse::{ColumnOrder, parse_fields, split_fields};
use crate::rows::RowsBuilder;
use crate::table::ScanMode;

/// Rows per output batch.
const BATCH_ROWS: usize = 16 * 1024;

/// Scan of the raw CSV files, one partition per file, yielding rows of [`raw_reader_schema`] as [`ScanMode`] says.
#[derive(Debug, Clone)]
pub struct RawCsvExec {
    files: Vec<RawFile>,
    mode: ScanMode,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RawCsvExec {
    /// A scan of `files`; `projection` picks columns of [`raw_reader_schema`] by index (`None`: all).
    pub fn try_new(files: Vec<RawFile>, mode: ScanMode, projection: Option<Vec<usize>>) -> Result<Self> {
        let full = raw_reader_schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(files.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self { files, mode, projection, schema, properties })
    }

    /// The files scanned, one per output partition.
    pub fn files(&self) -> &[RawFile] {
        &self.files
    }
    /// Which rows the scan yields.
    pub fn mode(&self) -> ScanMode {
        self.mode
    }
    /// Indices of the columns produced in [`raw_reader_schema`]; `None` for all.
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }
}

impl DisplayAs for RawCsvExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RawCsvExec: files={}, mode={:?}", self.files.len(), self.mode)
    }
}

impl ExecutionPlan for RawCsvExec {
    fn name(&self) -> &str {
        "RawCsvExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema.clone();
        let Some(file) = self.files.get(partition).cloned() else {
            // No files at all: one empty partition.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::empty())));
        };
        let store = context.runtime_env().object_store(file.store_url()?)?;
        let content = crate::discover::read_content(store, &file)?;
        let reader = FileReader::new(file, self.mode, self.projection.clone(), schema.clone());
        let batches = futures::stream::once(async move {
            let bytes = content.map_err(content_error).boxed();
            Ok::<_, DataFusionError>(reader.batches(bytes))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// A corrupt compressed file is the input's fault (its message names the
/// file); anything else is a read error of the store.
fn content_error(error: std::io::Error) -> DataFusionError {
    if error.kind() == std::io::ErrorKind::InvalidData {
        DataFusionError::Execution(error.to_string())
    } else {
        DataFusionError::IoError(error)
    }
}

/// Splits a byte stream into lines and lines into typed rows.
struct FileReader {
    file: RawFile,
    mode: ScanMode,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    rows: RowsBuilder,
    /// Bytes of a line that continues into the next chunk.
    carry: Vec<u8>,
    /// 1-based number of the last line handled.
    line_no: i64,
    /// Column positions, from the header.
    order: ColumnOrder,
    problems: Vec<String>,
}

impl FileReader {
    fn new(file: RawFile, mode: ScanMode, projection: Option<Vec<usize>>, schema: SchemaRef) -> Self {
        Self {
            file,
            mode,
            projection,
            schema,
            rows: RowsBuilder::default(),
            carry: Vec::new(),
            line_no: 0,
            order: ColumnOrder::KAGGLE,
            problems: Vec::new(),
        }
    }

    fn batches(self, bytes: BoxStream<'static, Result<bytes::Bytes>>) -> BoxStream<'static, Result<RecordBatch>> {
        futures::stream::try_unfold((self, bytes, false), |(mut reader, mut bytes, done)| async move {
            if done {
                return Ok(None);
            }
            while let Some(chunk) = bytes.try_next().await? {
                reader.consume_chunk(&chunk)?;
                if reader.rows.len() >= BATCH_ROWS {
                    let batch = reader.finish_batch()?;
                    return Ok(Some((batch, (reader, bytes, false))));
                }
            }
            // End of file: a last line without '\n', then the final batch.
            if !reader.carry.is_empty() {
                let last = std::mem::take(&mut reader.carry);
                reader.consume_line(&last)?;
            }
            let batch = reader.finish_batch()?;
            Ok(Some((batch, (reader, bytes, true))))
        })
        .boxed()
    }

    fn finish_batch(&mut self) -> Result<RecordBatch> {
        self.rows.finish(self.projection.as_deref(), &self.schema)
    }

    fn consume_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if self.carry.is_empty() {
                self.consume_line(&chunk[start..nl])?;
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(&chunk[start..nl]);
                self.consume_line(&line)?;
            }
            start = nl + 1;
        }
        self.carry.extend_from_slice(&chunk[start..]);
        Ok(())
    }

    // Semantics: docs/semantics.md#raw-input
    fn consume_line(&mut self, line: &[u8]) -> Result<()> {
        self.line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (text, utf8_problem) = match std::str::from_utf8(line) {
            Ok(text) => (Cow::Borrowed(text), None),
            Err(e) => (String::from_utf8_lossy(line), Some(format!("invalid UTF-8 at byte {}", e.valid_up_to()))),
        };
        if self.line_no == 1 {
            self.order = self.read_header(line)?;
            return Ok(());
        }
        if text.is_empty() {
            return Ok(()); // blank line: skipped, counted by the reconciliation
        }
        self.problems.clear();
        self.problems.extend(utf8_problem);
        let mut fields = Vec::with_capacity(funnelpulse_core::schema::RAW_COLUMNS.len());
        split_fields(&text, &mut fields);
        let row = parse_fields(&fields, &self.order, &mut self.problems);
        let has_problem = !self.problems.is_empty();
        if has_problem || self.mode == ScanMode::AllRows {
            let problem = has_problem.then(|| self.problems.join("; "));
            let raw = has_problem.then_some(text.as_ref());
            self.rows.push(&row, &self.file.name, self.line_no, problem.as_deref(), raw);
        }
        Ok(())
    }

    fn read_header(&self, line: &[u8]) -> Result<ColumnOrder> {
        crate::discover::header_order(&self.file, line).map_err(DataFusionError::Execution)
    }
}
