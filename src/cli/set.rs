use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine;
use crate::playbook::state::Control;

/// Change a run's throttling while it works: its runner picks the change up within a second
/// (and a later `lockstep resume` keeps it).
#[derive(Debug, Args)]
#[command(
    after_help = "Settings:\n  max_rows_per_second=N   rows per second, all connections together (0: no limit)\n  target_batch_ms=N       batches are sized to take about this long (also batch_time=200ms)\n  duty_cycle=D            share of the time the runner works while the application is busy (0 < D <= 1)\n\nExamples:\n  lockstep set 16384_20260412_101500_123 max_rows_per_second=2000\n  lockstep set 16384_20260412_101500_123 duty_cycle=0.3 batch_time=50ms"
)]
pub struct SetArgs {
    /// The run id (`lockstep status --all` lists them)
    #[arg(value_name = "RUN")]
    pub run: String,
    /// One or more KEY=VALUE settings
    #[arg(value_name = "KEY=VALUE", required = true)]
    pub settings: Vec<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[inline(never)] // see `cli::main`
pub fn run(args: SetArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let mut controls = Vec::new();
    for s in &args.settings {
        match Control::parse(s) {
            Ok(c) => controls.push((s.clone(), c)),
            Err(m) => {
                eprint_error(color, &m);
                return Ok(EXIT_ERROR);
            }
        }
    }
    online::with_client(&args.db, color, |client| async move {
        let mut alive = false;
        for (text, c) in &controls {
            match engine::set_control(&client, Some(&args.run), *c).await {
                Ok((_, a)) => alive = a,
                Err(e) => return online::fail(color, &e),
            }
            println!("run {}: {text}", args.run);
        }
        if !alive {
            eprintln!(
                "note: no runner is alive for run {}; the settings apply when `lockstep resume {}` continues it",
                args.run, args.run
            );
        }
        EXIT_OK
    })
}
