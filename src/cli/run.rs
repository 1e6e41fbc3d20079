use std::path::PathBuf;

use clap::Args;

use super::online::{self, DbArgs, Drawer};
use super::{eprint_error, ColorChoice, EXIT_ERROR};
use crate::playbook::engine::{self, Ctx};
use crate::playbook::spec;

/// Run a playbook: change the table online (up to and including the swap, where there is one).
#[derive(Debug, Args)]
#[command(
    after_help = "Kinds (the playbook's `kind`): partition, column-type, not-null, foreign-key, check,\n\
unique, primary-key, index, reindex, drop-index, backfill; playbooks/ has an example of each.\n\n\
partition: preflight, shadow (the partitioned copy), capture (a trigger logs the key of every\n\
changed row), backfill (batched copy, checkpointed, in `workers` key ranges at once), indexes\n\
(built per partition, several at once), replay (the logged changes), verify (range by range,\n\
in parallel), swap (one short transaction, lock_timeout and retries), validate. After the\n\
swap the old table stays current (a reverse trigger) until `lockstep finalize`; `lockstep\n\
rollback` swaps back. The in-place kinds run their own steps (`lockstep plan` lists them)\n\
with the same guarantees; column-type also swaps, and keeps the old column until finalize.\n\n\
Every step is recorded in lockstep.runs; Ctrl-C or SIGTERM stops at the next safe point, and\n\
`lockstep resume` continues a stopped, failed or killed run.\n\n\
Examples:\n  lockstep run playbooks/partition-events-monthly.toml\n  lockstep run playbooks/column-type-orders-id-bigint.toml"
)]
pub struct RunArgs {
    /// The playbook file (TOML)
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

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
        let stop = online::stop_on_ctrl_c();
        let mut drawer = Drawer::new();
        let mut ctx = Ctx {
            client: &client,
            progress: &mut drawer,
            stop: &stop,
            monitor: monitor.as_ref(),
            connect: Some(&conn),
            takeover: false,
        };
        let r = engine::start(&mut ctx, pb, &text).await;
        drop(drawer);
        online::finished(color, r)
    })
}
