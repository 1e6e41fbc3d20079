use std::io::{self, Write};

use clap::Args;

use super::online::{self, DbArgs, Drawer};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine::{self, Ctx};

/// Undo a run: before the swap, drop everything lockstep created; after the swap (before
/// finalize), swap back to the original table, which the reverse trigger kept current.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run id [default: the most recent run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

pub fn run(args: RollbackArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let conn = match args.db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    online::block_on(async {
        let client = match conn.connect().await {
            Ok(c) => c,
            Err(e) => {
                eprint_error(color, &e.to_string());
                return EXIT_ERROR;
            }
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut drawer = Drawer::new();
        let mut ctx = Ctx {
            client: &client,
            progress: &mut drawer,
            stop: &stop,
        };
        match engine::rollback(&mut ctx, args.run.as_deref()).await {
            Ok(id) => {
                drop(drawer);
                let _ = writeln!(
                    io::stdout(),
                    "run {id}: rolled back: the original table is in place"
                );
                EXIT_OK
            }
            Err(e) => {
                drop(drawer);
                online::fail(color, &e)
            }
        }
    })
}
