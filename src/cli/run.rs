use std::path::PathBuf;

use clap::Args;

use std::cell::RefCell;
use std::rc::Rc;

use super::online::{self, DbArgs, Drawer, Metered, MetricsArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR};
use crate::playbook::engine::{self, Ctx};
use crate::playbook::spec;

/// Run a playbook: change the table online (up to and including the swap, where there is one).
#[derive(Debug, Args)]
#[command(
    after_help = "Kinds (the playbook's `kind`): partition, column-type, not-null, foreign-key, check,\n\
unique, primary-key, index, reindex, drop-index, backfill; playbooks/ has an example of each.\n\n\
partition: preflight, shadow (the partitioned copy), capture (logical decoding where the\n\
server allows it, else a trigger logs the key of every changed row), backfill (batched copy,\n\
checkpointed, in `workers` key ranges at once), indexes (built per partition, several at\n\
once), replay (the logged changes), verify (range by range, in parallel), swap (one short\n\
transaction, lock_timeout and retries), validate. After the swap the old table is kept for\n\
a way back until `lockstep finalize` (a replication slot or a trigger keeps the changes\n\
since: `[swap] reverse`); `lockstep rollback` applies them to it and swaps back, `lockstep\n\
sync-back` applies them without swapping back. The in-place kinds run their own steps (`lockstep plan` lists them)\n\
with the same guarantees; column-type also swaps, and keeps the old column until finalize.\n\n\
Every step is recorded in lockstep.runs; Ctrl-C or SIGTERM stops at the next safe point, and\n\
`lockstep resume` continues a stopped, failed or killed run.\n\n\
Examples:\n  lockstep run playbooks/partition-events-monthly.toml\n  lockstep run playbooks/column-type-orders-id-bigint.toml\n  lockstep run --metrics-listen 127.0.0.1:9187 playbooks/partition-events-monthly.toml"
)]
pub struct RunArgs {
    /// The playbook file (TOML)
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[inline(never)] // see `cli::main`
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let text = match std::fs::read_to_string(&args.playbook) {
        Ok(t) => t,
        Err(e) => {
            eprint_error(
                color,
                &format!(
                    "{}: {}",
                    args.playbook.display(),
                    crate::files::io_message(&e)
                ),
            );
            return Ok(EXIT_ERROR);
        }
    };
    let pb = match spec::parse(&text, &args.playbook.display().to_string()) {
        Ok(p) => p,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    online::with_clients(&args.db, color, |client, monitor, conn| async move {
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
            takeover: false,
        };
        let work = engine::start(&mut ctx, pb, &text);
        let r = online::serving(listener, &conn, metrics, work).await;
        drop(metered);
        drop(drawer);
        online::finished(color, r)
    })
}
