//! Stopping on SIGINT/SIGTERM: the binaries own the signals, libraries only ask.
//!
//! A binary calls [`install`] once at start. Outside a graceful section a
//! signal ends the process at once (exit code 130), as without a handler.
//! Inside one — stage 04's stream, between its batches — the first signal
//! asks the work to stop after the batch in progress ([`requested`]), and a
//! second one ends the process. Without [`install`] (a library used alone,
//! a test) nothing is ever requested and signals keep their default action.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A stop was asked for by a signal.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Graceful sections open now.
static GRACEFUL: AtomicUsize = AtomicUsize::new(0);

/// Installs the signal handler; call once, from the binary, inside its runtime.
pub fn install() {
    tokio::spawn(async {
        let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            if GRACEFUL.load(Ordering::SeqCst) == 0 || REQUESTED.load(Ordering::SeqCst) {
                log::warn!("interrupted");
                std::process::exit(130);
            }
            log::warn!("stopping after the batch in progress (signal again to abort)");
            REQUESTED.store(true, Ordering::SeqCst);
        }
    });
}

/// Whether a signal asked the work in progress to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Sleeps `d`, waking early when a stop is requested.
pub async fn sleep(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !requested() {
        tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
    }
}

/// While it lives, a first signal asks to stop instead of ending the process.
pub struct Graceful(());

/// Opens a graceful section (see the module's documentation).
pub fn graceful() -> Graceful {
    GRACEFUL.fetch_add(1, Ordering::SeqCst);
    Graceful(())
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.fetch_sub(1, Ordering::SeqCst);
    }
}
