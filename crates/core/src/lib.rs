//! Shared vocabulary of FunnelPulse: table names and schemas, the raw-event
//! parsing rules, and the silver/gold rules as DataFusion expressions.
//!
//! Everything here is engine-agnostic: it builds `Expr`s and `Schema`s, it
//! never runs a query. Job crates compose these into logical plans.

pub mod anomaly;
pub mod error;
pub mod event_time;
pub mod funnel;
pub mod keep_first;
pub mod plans;
pub mod redact;
pub mod schema;
pub mod silver;
pub mod stream;
pub mod tables;

pub use error::ErrorKind;
pub use tables::TableSpec;

/// Start of every message about bad input (a raw file's header, corrupt
/// compressed data). An error made on an executor reaches the client as
/// text; this prefix tells the stage runner not to retry it.
pub const BAD_INPUT: &str = "bad input: ";
