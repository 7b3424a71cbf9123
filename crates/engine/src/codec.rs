//! Ballista codecs for FunnelPulse's plan nodes, wrapping Ballista's own:
//! the raw-events source (table and scan, from `funnelpulse-rawcsv`), lake
//! tables ([`FilesTable`]), and our aggregate (`funnelpulse-core`).
//! Client, scheduler and executor all use these.
//!
//! Our nodes are encoded as a magic prefix + JSON. Each prefix starts with
//! 0x46, a protobuf tag of wire type 6, which no valid protobuf message starts
//! with, so a buffer is unambiguously ours or Ballista's.

use std::any::Any;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use funnelpulse_core::keep_first::{KEEP_FIRST, keep_first_udaf};
use serde::{Deserialize, Serialize};

use funnelpulse_rawcsv::{RawCsvExec, RawEventsTable, RawFile, ScanMode};

use crate::files_table::FilesTable;

/// The raw-events table and scan.
const MAGIC: &[u8] = b"FPRAW1";
/// A lake table's files.
const FILES_MAGIC: &[u8] = b"FPFILES1";

fn ours(buf: &[u8]) -> Option<&[u8]> {
    buf.strip_prefix(MAGIC)
}

fn encode_json<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    encode_json_as(MAGIC, value, buf)
}

fn encode_json_as<T: Serialize>(magic: &[u8], value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(magic);
    serde_json::to_writer(buf, value).map_err(|e| DataFusionError::External(e.into()))
}

fn decode_json<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> Result<T> {
    serde_json::from_slice(buf).map_err(|e| DataFusionError::External(e.into()))
}

/// Our aggregate functions travel by name (an empty definition): DataFusion
/// asks the codec for a name its function registry does not know.
fn decode_our_udaf(name: &str) -> Option<Arc<AggregateUDF>> {
    (name == KEEP_FIRST).then(keep_first_udaf)
}

/// Logical codec: our table provider and aggregate, else Ballista's.
#[derive(Debug, Default)]
pub struct FunnelPulseLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for FunnelPulseLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(json) = buf.strip_prefix(FILES_MAGIC) {
            return Ok(Arc::new(decode_json::<FilesTable>(json)?.with_schema(schema)));
        }
        match ours(buf) {
            Some(json) => Ok(Arc::new(decode_json::<RawEventsTable>(json)?)),
            None => self.inner.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let any: &dyn Any = node.as_ref();
        if let Some(table) = any.downcast_ref::<FilesTable>() {
            return encode_json_as(FILES_MAGIC, table, buf);
        }
        match any.downcast_ref::<RawEventsTable>() {
            Some(table) => encode_json(table, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_our_udaf(name).map_or_else(|| self.inner.try_decode_udaf(name, buf), Ok)
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }
    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }
    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

#[derive(Serialize, Deserialize)]
struct RawCsvExecProto {
    files: Vec<RawFile>,
    mode: ScanMode,
    projection: Option<Vec<usize>>,
}

/// Physical codec: our scan node and aggregate, else Ballista's (shuffles etc.).
#[derive(Debug, Default)]
pub struct FunnelPulsePhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for FunnelPulsePhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match ours(buf) {
            Some(json) => {
                let proto: RawCsvExecProto = decode_json(json)?;
                Ok(Arc::new(RawCsvExec::try_new(proto.files, proto.mode, proto.projection)?))
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let any: &dyn Any = node.as_ref();
        match any.downcast_ref::<RawCsvExec>() {
            Some(exec) => encode_json(
                &RawCsvExecProto {
                    files: exec.files().to_vec(),
                    mode: exec.mode(),
                    projection: exec.projection().cloned(),
                },
                buf,
            ),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        decode_our_udaf(name).map_or_else(|| self.inner.try_decode_udaf(name, buf), Ok)
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }
    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }
    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}
