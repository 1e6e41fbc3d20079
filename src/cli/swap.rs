use clap::Args;

use super::online::{self, RunRef};
use super::EXIT_OK;
use crate::playbook::engine;

/// Swap a run whose playbook has `[swap] mode = "manual"`: it waits, verified and catching
/// up the change log, until this command (from any terminal, or a hook).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep swap                   # the latest run\n  lockstep swap 16384_20260412_101500_123\n  lockstep status --format json | jq '.runs[0].swap'   # is it ready?"
)]
pub struct SwapArgs {
    #[command(flatten)]
    pub target: RunRef,
}

#[inline(never)] // see `cli::main`
pub fn run(args: SwapArgs) -> anyhow::Result<u8> {
    let t = args.target;
    let color = t.color.enabled();
    online::with_client(&t.db, color, |client| async move {
        match engine::request_swap(&client, t.run.as_deref()).await {
            Ok(r) => {
                let id = &r.id;
                let what = match (r.alive, r.ready) {
                    (true, true) => "its runner swaps now".to_string(),
                    (true, false) => "its runner swaps as soon as the copy is verified".to_string(),
                    (false, _) => format!(
                        "no runner is alive: `lockstep resume {id}` continues the run and swaps when it is ready"
                    ),
                };
                println!("run {id}: swap requested; {what}");
                EXIT_OK
            }
            Err(e) => online::fail(color, &e),
        }
    })
}
