use clap::Args;

use super::online::{self, Drawer, RunRef, TakeoverArg};
use crate::playbook::engine::{self, Ctx};

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
    let t = args.target;
    let color = t.color.enabled();
    online::with_clients(&t.db, color, |client, monitor, conn| async move {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut drawer = Drawer::new();
        let mut ctx = Ctx {
            client: &client,
            progress: &mut drawer,
            stop: &stop,
            monitor: monitor.as_ref(),
            connect: Some(&conn),
            takeover: args.takeover.takeover,
        };
        let r = engine::rollback(&mut ctx, t.run.as_deref()).await;
        drop(drawer);
        online::finished(color, r)
    })
}
