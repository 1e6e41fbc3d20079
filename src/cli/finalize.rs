use clap::Args;

use super::online::{self, Drawer, RunRef, TakeoverArg};
use crate::playbook::engine::{self, Ctx};

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
        let r = engine::finalize(&mut ctx, t.run.as_deref()).await;
        drop(drawer);
        online::finished(color, r)
    })
}
