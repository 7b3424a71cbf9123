//! `funnelpulse-stage03`: the stage on its own (`funnelpulse run 03` runs the same).

fn main() -> std::process::ExitCode {
    funnelpulse_engine::stage_main::<funnelpulse_stage03::Stage03>()
}
