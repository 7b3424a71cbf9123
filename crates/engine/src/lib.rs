//! Building and running Ballista sessions, the same way in every process.
//!
//! - [`session`]: the client's session, embedded (Ballista standalone) or
//!   connected to a remote scheduler;
//! - [`cluster`]: what our scheduler and executor binaries plug into Ballista
//!   (object stores, codecs);
//! - [`tables`]: reading and writing lake tables through the session.

pub mod cluster;
pub mod session;
pub mod staged;
pub mod tables;

pub use session::{Engine, EngineMode};
pub use staged::{StagedRun, check, one_row_i64};
pub mod args;
pub mod progress;
pub use args::CommonArgs;
pub use progress::StageProgress;
