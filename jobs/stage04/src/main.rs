//! `funnelpulse-stage04`: the stage on its own (`funnelpulse run 04` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage04::Stage04>()
}
