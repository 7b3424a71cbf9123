//! `funnelpulse-stage05`: the stage on its own (`funnelpulse run 05` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage05::Stage05>()
}
