use clap::Args;

use super::online::{self, RunRef};
use crate::playbook::engine;

/// Pause a run's copy; the trigger keeps capturing writes. `lockstep resume` continues.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep pause                  # the latest run\n  lockstep pause 16384_20260412_101500_123\n  lockstep resume                 # continue it"
)]
pub struct PauseArgs {
    #[command(flatten)]
    pub target: RunRef,
}

#[inline(never)] // see `cli::main`
pub fn run(args: PauseArgs) -> anyhow::Result<u8> {
    let t = args.target;
    let color = t.color.enabled();
    online::with_client(&t.db, color, |client| async move {
        let r = engine::set_paused(&client, t.run.as_deref(), true).await;
        online::report(color, r, |id| {
            format!("run {id}: copy paused (after the current batch)")
        })
    })
}
