//! `funnelpulse-stage06`: the stage on its own (`funnelpulse run 06` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage06::Stage06>()
}
