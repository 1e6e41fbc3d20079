use std::io::{self, Write};

use clap::Args;

use super::online::{self, DbArgs, Drawer};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine::{self, Ctx};

/// Continue a run: un-pause a paused copy, or pick up a stopped, failed or killed run at its
/// last checkpoint.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id [default: the most recent run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

pub fn run(args: ResumeArgs) -> anyhow::Result<u8> {
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
        // A live runner with a paused copy: just un-pause it.
        if let Ok(st) = engine::status(&client, args.run.as_deref()).await {
            if st.runner_pid.is_some() && st.run.paused {
                return match engine::set_paused(&client, Some(&st.run.id), false).await {
                    Ok(id) => {
                        let _ = writeln!(io::stdout(), "run {id}: copy resumed");
                        EXIT_OK
                    }
                    Err(e) => online::fail(color, &e),
                };
            }
        }
        let stop = online::stop_on_ctrl_c();
        let mut drawer = Drawer::new();
        let mut ctx = Ctx {
            client: &client,
            progress: &mut drawer,
            stop: &stop,
        };
        match engine::resume(&mut ctx, args.run.as_deref()).await {
            Ok(id) => {
                drop(drawer);
                let _ = writeln!(
                    io::stdout(),
                    "run {id}: swapped. `lockstep finalize {id}` drops the old table; `lockstep rollback {id}` swaps back."
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
