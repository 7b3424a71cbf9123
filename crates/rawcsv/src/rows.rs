//! Accumulates parsed rows into Arrow arrays of the raw reader schema.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use funnelpulse_core::event_time::micros_to_epoch_days;

use crate::parse::ParsedRow;

#[derive(Default)]
pub(crate) struct RowsBuilder {
    event_time: TimestampMicrosecondBuilder,
    event_type: StringBuilder,
    product_id: Int64Builder,
    category_id: Int64Builder,
    category_code: StringBuilder,
    brand: StringBuilder,
    price: Float64Builder,
    user_id: Int64Builder,
    user_session: StringBuilder,
    event_date: Date32Builder,
    source_file: StringBuilder,
    source_line: Int64Builder,
    problem: StringBuilder,
    raw_text: StringBuilder,
    len: usize,
}

impl RowsBuilder {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, row: &ParsedRow<'_>, file: &str, line: i64, problem: Option<&str>, raw: Option<&str>) {
        self.event_time.append_option(row.event_time);
        self.event_type.append_option(row.event_type);
        self.product_id.append_option(row.product_id);
        self.category_id.append_option(row.category_id);
        self.category_code.append_option(row.category_code);
        self.brand.append_option(row.brand);
        self.price.append_option(row.price);
        self.user_id.append_option(row.user_id);
        self.user_session.append_option(row.user_session);
        self.event_date.append_option(row.event_time.map(micros_to_epoch_days));
        self.source_file.append_value(file);
        self.source_line.append_value(line);
        self.problem.append_option(problem);
        self.raw_text.append_option(raw);
        self.len += 1;
    }

    /// Builds the batch (full raw reader schema), projected, and resets the builder.
    pub fn finish(&mut self, projection: Option<&[usize]>, projected: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_time.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.product_id.finish()),
            Arc::new(self.category_id.finish()),
            Arc::new(self.category_code.finish()),
            Arc::new(self.brand.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.user_session.finish()),
            Arc::new(self.event_date.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_line.finish()),
            Arc::new(self.problem.finish()),
            Arc::new(self.raw_text.finish()),
        ];
        let rows = std::mem::take(&mut self.len);
        let columns = match projection {
            Some(indices) => indices.iter().map(|&i| columns[i].clone()).collect(),
            None => columns,
        };
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(projected.clone(), columns, &options)?)
    }
}
