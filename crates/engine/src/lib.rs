//! Building and running Ballista sessions, the same way in every process.
//!
//! - [`session`]: the client's session, embedded (Ballista standalone) or
//!   connected to a remote scheduler;
//! - [`embedded`]: the in-process scheduler and executor of embedded mode;
//! - [`cluster`]: what our scheduler and executor binaries plug into Ballista
//!   (object stores, codecs);
//! - [`tables`]: reading and writing lake tables through the session;
//! - [`attempts`] and [`watchdog`]: stages that survive lost executors and a
//!   restarted scheduler (bounded jobs, cancellation, retries).

pub mod cluster;
pub mod codec;
pub mod embedded;
pub mod files_table;
pub mod memory;
pub mod session;
pub mod staged;
pub mod tables;

pub use session::{Engine, EngineMode};
pub use staged::{StagedRun, check, first_row_i64, one_row_i64};
pub mod args;
pub mod attempts;
pub mod progress;
pub mod user_error;
pub mod watchdog;
pub use args::{AsOfArgs, ClockArgs, ClusterArgs, CommonArgs};
pub use attempts::{InvariantViolation, StageRunner};
pub use progress::StageProgress;
