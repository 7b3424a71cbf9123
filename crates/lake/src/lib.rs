//! The lake: where tables live, how every process reaches them, and how a
//! stage replaces its tables without ever exposing a half-written one.
//!
//! Layout under a lake root (local folder or `gs://bucket/prefix`):
//! - `tables/<table>/<partition_col>=<value>/part-<run>-*.parquet`: the current versions;
//! - `_staging/<run>/<table>/…`: a run's output while it is written and checked;
//! - `_commits/<run>.json`: the journal of a commit that is being applied;
//! - `reports/`: files for people (evaluation scores, the HTML report).

mod commit;
pub mod fault;
mod location;
mod registry;

pub use commit::{CommitSummary, FileMeta};
pub use location::{Lake, new_run_id, to_url};
pub use registry::LakeStores;
