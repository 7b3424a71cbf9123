//! Progress of a stage on the terminal: a spinner naming the current step
//! (only on a TTY), and permanent lines for finished steps.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A stage's progress on stderr: a spinner (on a TTY) and lines that stay; cleared when dropped.
pub struct StageProgress {
    bar: ProgressBar,
    started: Instant,
    stage: String,
}

impl StageProgress {
    /// Starts the spinner of stage `stage` (`04`), which also prefixes every line.
    pub fn start(stage: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {prefix} {msg}").expect("valid template"));
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar, started: Instant::now(), stage: stage.to_string() }
    }

    /// Names the step now running.
    pub fn step(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Prints a line that stays (also when stderr is not a terminal).
    pub fn line(&self, message: impl AsRef<str>) {
        let text = format!("[{}] {}", self.stage, message.as_ref());
        if self.bar.is_hidden() {
            log::info!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// Time since [`StageProgress::start`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Clears the spinner; printed lines stay.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for StageProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
