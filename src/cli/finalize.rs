use clap::Args;

use super::online::{self, Ending, RunRef, TakeoverArg};

/// After the swap: drop the reverse slot or trigger and the old table (no way back afterwards). After
/// a backfill, or after its rollback (which keeps it): drop the undo data.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep finalize               # the latest run, once the application is happy\n  lockstep finalize 16384_20260412_101500_123"
)]
pub struct FinalizeArgs {
    #[command(flatten)]
    pub target: RunRef,
    #[command(flatten)]
    pub takeover: TakeoverArg,
}

#[inline(never)] // see `cli::main`
pub fn run(args: FinalizeArgs) -> anyhow::Result<u8> {
    online::end_run(Ending::Finalize, args.target, &args.takeover)
}
