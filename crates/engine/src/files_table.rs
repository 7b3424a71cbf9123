//! `FilesTable`: a lake table as DataFusion reads it — exactly the Parquet
//! files of one Delta version (or of a run's uncommitted output), each with
//! its partition value, never a folder listing.
//!
//! The client resolves the snapshot (delta-rs reads the log); the plan then
//! carries the file list. Ballista ships it as a logical plan to the scheduler
//! (our codec encodes this provider as JSON: files, sizes, partition values),
//! where `scan` turns it into DataFusion's own Parquet scan, which travels to
//! the executors as a standard plan node. So the scheduler and executors need
//! no Delta code, and the scan runs on the executors like any Parquet scan.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use funnelpulse_lake::TableFiles;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

/// One Parquet file of the scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanFile {
    /// Object-store path (within the store of `store_url`).
    pub path: String,
    /// File size in bytes; files are grouped into tasks by it.
    pub size: u64,
    /// The partition value as days since the epoch; `None` is the null partition.
    pub days: Option<i32>,
}

/// The files of a table and its schema: the files' columns, then the
/// partition column (a date), which the files do not hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesTable {
    /// `file://` or `gs://bucket`.
    pub store_url: String,
    /// The Parquet files to scan; empty for a table without files.
    pub files: Vec<ScanFile>,
    /// Columns of the files, then the partition column; not serialized (the plan's scan node carries it).
    #[serde(skip, default = "empty_schema")]
    pub schema: SchemaRef,
}

fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

impl FilesTable {
    /// The table over `files` (a snapshot or a run's files).
    pub fn new(files: &TableFiles) -> crate::Result<Self> {
        let root = url::Url::parse(&files.root)?;
        let store_url = root[..url::Position::BeforePath].to_string();
        let scan_files = files
            .files
            .iter()
            .map(|file| {
                let url = url::Url::parse(&files.url_of(file))?;
                let path = Path::from_url_path(url.path())?.to_string();
                Ok::<_, crate::Error>(ScanFile {
                    path,
                    size: file.size,
                    days: file.partition.as_deref().map(days_of).transpose()?,
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { store_url, files: scan_files, schema: files.schema.clone() })
    }

    /// The same table with the schema it was encoded with (the schema travels
    /// in the plan's scan node, beside our bytes).
    pub fn with_schema(mut self, schema: SchemaRef) -> Self {
        self.schema = schema;
        self
    }

    /// Files spread over `n` groups of about equal bytes (one task reads a group).
    fn file_groups(&self, n: usize) -> Vec<FileGroup> {
        let n = n.clamp(1, self.files.len().max(1));
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); n];
        let mut files: Vec<&ScanFile> = self.files.iter().collect();
        files.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
        for file in files {
            let lightest = groups.iter_mut().min_by_key(|(bytes, _)| *bytes).expect("n ≥ 1");
            lightest.0 += file.size;
            lightest.1.push(
                PartitionedFile::new(file.path.clone(), file.size)
                    .with_partition_values(vec![ScalarValue::Date32(file.days)]),
            );
        }
        groups.into_iter().filter(|(_, files)| !files.is_empty()).map(|(_, files)| FileGroup::new(files)).collect()
    }
}

/// `2019-10-01` → days since 1970-01-01.
fn days_of(date: &str) -> crate::Result<i32> {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| crate::Error::plan(format!("partition value {date:?} is not a date: {e}")))?;
    Ok((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
}

#[async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            // An empty table: a scan of no file groups has no partitioning at all.
            let schema = match projection {
                Some(columns) => Arc::new(self.schema.project(columns)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let n = self.schema.fields().len();
        let (columns, partition) = self.schema.fields().split_at(
            n.checked_sub(1)
                .ok_or_else(|| DataFusionError::Plan("a lake table has at least its partition column".into()))?,
        );
        let table_schema = TableSchema::builder(Arc::new(Schema::new(columns.to_vec())))
            .with_table_partition_cols(partition.to_vec())
            .build();
        // Filters are not claimed here: DataFusion keeps them above the scan
        // and pushes them into the Parquet reader (row-group pruning).
        let source = ParquetSource::new(table_schema).with_table_parquet_options(state.table_options().parquet.clone());
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.store_url)?, Arc::new(source))
            .with_file_groups(self.file_groups(state.config().target_partitions()))
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dates_become_days() {
        assert_eq!(days_of("1970-01-02").unwrap(), 1);
        assert_eq!(days_of("2019-10-01").unwrap(), 18_170);
        assert!(days_of("soon").is_err());
    }

    #[test]
    fn files_are_spread_by_size() {
        let file = |path: &str, size| ScanFile { path: path.into(), size, days: Some(1) };
        let table = FilesTable {
            store_url: "file://".into(),
            files: vec![file("a", 100), file("b", 60), file("c", 50)],
            schema: empty_schema(),
        };
        let groups = table.file_groups(2);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].len(), 1, "the biggest file alone");
        assert_eq!(table.file_groups(8).len(), 3, "no empty groups");
    }
}
