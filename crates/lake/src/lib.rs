//! The lake: where tables live, how every process reaches them, and how a
//! stage replaces its tables without ever exposing a half-written one.
//!
//! Layout under a lake root (local folder or `gs://bucket/prefix`):
//! - `tables/<table>/`: a Delta table — `_delta_log/` (the commits) and the
//!   data files, each run's in its own folder
//!   `run-<run>/<partition_col>=<value>/*.parquet` (see [`delta`]);
//! - `stream_input/`: stage 03's files for the streaming stage (a folder,
//!   replaced under `_commits/<run>.json` from `_staging/<run>/`, stamped
//!   with a generation: see [`Generation`]);
//! - `_runs/<run>.json`: the markers of the runs writing now; what a killed
//!   run left is removed by the next run (see [`runs`]);
//! - `reports/`: files for people (evaluation scores, the HTML report).

mod commit;
pub mod delta;
mod error;
pub mod fault;
mod generation;
mod location;
mod registry;
pub mod runs;
mod stats;

pub use commit::FileMeta;
pub use delta::{AsOf, DataFile, HistoryEntry, TableChanged, TableFiles, VacuumReport};
pub use error::{LakeContext, LakeError, Result};
pub use generation::{GENERATION_FILE, Generation};
pub use location::{Lake, new_run_id, to_url};
pub use registry::LakeStores;
pub use runs::{RunMarker, Swept};
