//! `funnelpulse-stage01`: the stage on its own (`funnelpulse run 01` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage01::Stage01>()
}
