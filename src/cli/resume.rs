use clap::Args;

use std::cell::RefCell;
use std::rc::Rc;

use super::online::{self, Drawer, Metered, MetricsArgs, RunRef, TakeoverArg};
use super::{eprint_error, EXIT_ERROR};
use crate::playbook::engine::{self, Ctx};

/// Continue a run: un-pause a paused copy, or pick up a stopped, failed or killed run at its
/// last checkpoint.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep resume                 # the latest run, from its last checkpoint\n  lockstep resume 16384_20260412_101500_123 --database-url postgres://app@db.internal/app"
)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub target: RunRef,
    #[command(flatten)]
    pub takeover: TakeoverArg,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[inline(never)] // see `cli::main`
pub fn run(args: ResumeArgs) -> anyhow::Result<u8> {
    let t = args.target;
    let color = t.color.enabled();
    online::with_clients(&t.db, color, |client, monitor, conn| async move {
        // A live runner with a paused copy: just un-pause it.
        if let Ok(st) = engine::status(&client, t.run.as_deref()).await {
            if st.holder.as_ref().is_some_and(|h| h.alive().is_some()) && st.run.row.paused {
                let r = engine::set_paused(&client, Some(st.run.id()), false).await;
                return online::report(color, r, |id| format!("run {id}: copy resumed"));
            }
        }
        let listener = match args.metrics.listen().await {
            Ok(l) => l,
            Err(m) => {
                eprint_error(color, &m);
                return EXIT_ERROR;
            }
        };
        let stop = online::stop_on_ctrl_c();
        let metrics = Rc::new(RefCell::new(Default::default()));
        let mut drawer = Drawer::new();
        let mut metered = Metered::new(&mut drawer, metrics.clone());
        let mut ctx = Ctx {
            client: &client,
            progress: &mut metered,
            stop: &stop,
            monitor: monitor.as_ref(),
            connect: Some(&conn),
            takeover: args.takeover.takeover,
        };
        let work = engine::resume(&mut ctx, t.run.as_deref());
        let r = online::serving(listener, &conn, metrics, work).await;
        drop(metered);
        drop(drawer);
        online::finished(color, r)
    })
}
