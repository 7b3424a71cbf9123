//! Arguments every stage takes: where the lake is and where plans run.

use crate::session::EngineMode;

#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Ballista scheduler to submit to (df://HOST:PORT); embedded Ballista when absent.
    #[arg(long, env = "FUNNELPULSE_SCHEDULER")]
    pub scheduler: Option<String>,
}

impl CommonArgs {
    pub fn engine_mode(&self) -> anyhow::Result<EngineMode> {
        EngineMode::from_scheduler(self.scheduler.as_deref())
    }
}
