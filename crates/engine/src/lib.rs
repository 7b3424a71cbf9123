//! Building and running Ballista sessions, the same way in every process.
//!
//! - [`session`]: the client's session, embedded (Ballista standalone) or
//!   connected to a remote scheduler;
//! - [`embedded`]: the in-process scheduler and executor of embedded mode;
//! - [`cluster`]: what our scheduler and executor binaries plug into Ballista
//!   (object stores, codecs);
//! - [`tables`]: reading and writing lake tables through the session;
//! - [`stage`]: what a stage is, and the runtime every stage runs in;
//! - [`binary`]: every binary's `main` (stages, scheduler, executor);
//! - [`logs`]: where log records go, the same way in every binary;
//! - [`shutdown`]: SIGINT/SIGTERM, handled by the binaries, asked about by stage 04;
//! - [`attempts`] and [`watchdog`]: stages that survive lost executors and a
//!   restarted scheduler (bounded jobs, cancellation, retries).

pub mod args;
pub mod attempts;
pub mod binary;
pub mod cluster;
pub mod codec;
pub mod embedded;
pub mod error;
pub mod files_table;
pub mod logs;
pub mod memory;
pub mod progress;
pub mod session;
pub mod shutdown;
pub mod stage;
pub mod staged;
pub mod tables;
pub mod user_error;
pub mod watchdog;

pub use args::{AsOfArgs, ClockArgs, ClusterArgs, CommonArgs};
pub use attempts::{InvariantViolation, StageRunner};
pub use binary::stage_main;
pub use error::{Context, Error, Result};
pub use progress::StageProgress;
pub use session::{Engine, EngineMode};
pub use stage::{NoArgs, Stage};
pub use staged::{StagedRun, check, first_row_i64, one_row_i64};
