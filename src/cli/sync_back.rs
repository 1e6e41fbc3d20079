use clap::Args;

use super::online::{self, Ending, RunRef, TakeoverArg};

/// After the swap of a shadow rebuild kept with `[swap] reverse = "logical"` or
/// `"deferred"`: apply the changes made since the swap to the old table now, outside any
/// lock, as a rollback does first. The rollback then has less to do, and the reverse slot
/// lets go of the WAL it held back. Nothing is swapped; run it as often as you like (from
/// cron, say) until `lockstep finalize`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep sync-back               # the latest run\n  lockstep sync-back 16384_20260412_101500_123\n  lockstep status                  # the reverse slot's retained WAL, before and after"
)]
pub struct SyncBackArgs {
    #[command(flatten)]
    pub target: RunRef,
    #[command(flatten)]
    pub takeover: TakeoverArg,
}

#[inline(never)] // see `cli::main`
pub fn run(args: SyncBackArgs) -> anyhow::Result<u8> {
    online::end_run(Ending::SyncBack, args.target, &args.takeover)
}
