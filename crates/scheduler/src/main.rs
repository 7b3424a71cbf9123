//! `funnelpulse-scheduler`: see the library of this package.

fn main() -> std::process::ExitCode {
    funnelpulse_engine::binary::service_main(funnelpulse_scheduler::serve)
}
