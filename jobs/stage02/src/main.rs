//! `funnelpulse-stage02`: the stage on its own (`funnelpulse run 02` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage02::Stage02>()
}
