use clap::Args;

use super::online::{self, Ending, RunRef, TakeoverArg};

/// Undo a run: before the swap, drop everything lockstep created; after the swap (before
/// finalize), bring the original table up to date with the changes since the swap, then swap
/// back to it.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep rollback               # the latest run\n  lockstep rollback 16384_20260412_101500_123"
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: RunRef,
    #[command(flatten)]
    pub takeover: TakeoverArg,
}

#[inline(never)] // see `cli::main`
pub fn run(args: RollbackArgs) -> anyhow::Result<u8> {
    online::end_run(Ending::Rollback, args.target, &args.takeover)
}
