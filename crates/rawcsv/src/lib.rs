//! The raw-events source: Kaggle-format CSV files read line by line, each row
//! typed by the rules in [`parse`] and tagged with its file, line number and
//! problems.
//!
//! DataFusion's own CSV reader cannot report line numbers or keep rows it
//! cannot decode, so FunnelPulse ships this source as a custom
//! [`TableProvider`](datafusion::catalog::TableProvider) and
//! [`ExecutionPlan`](datafusion::physical_plan::ExecutionPlan). Ballista ships
//! plans between processes, so the engine's codec (`funnelpulse-engine`)
//! teaches client, scheduler and executor to serialise both.

pub mod discover;
mod error;
pub mod exec;
pub mod parse;
mod rows;
pub mod table;

pub use discover::{Compression, NotRead, RawFile, RawListing, count_data_lines, list_raw_files};
pub use error::RawError;
pub use exec::RawCsvExec;
pub use table::{RawEventsTable, ScanMode};
