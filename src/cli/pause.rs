use std::io::{self, Write};

use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine;

/// Pause a run's copy; the trigger keeps capturing writes. `lockstep resume` continues.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The run id [default: the most recent run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

pub fn run(args: PauseArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let conn = match args.db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let r = online::block_on(async {
        let client = conn.connect().await.map_err(|e| e.to_string())?;
        engine::set_paused(&client, args.run.as_deref(), true)
            .await
            .map_err(|e| e.to_string())
    })?;
    match r {
        Ok(id) => {
            writeln!(
                io::stdout(),
                "run {id}: copy paused (after the current batch)"
            )?;
            Ok(EXIT_OK)
        }
        Err(m) => {
            eprint_error(color, &m);
            Ok(EXIT_ERROR)
        }
    }
}
