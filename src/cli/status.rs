use std::io::{self, Write};

use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine;

/// Show a run's step, progress, throttle state and replica lag (from any terminal).
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run id [default: the most recent run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

pub fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let conn = match args.db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let st = online::block_on(async {
        let client = conn.connect().await.map_err(|e| e.to_string())?;
        engine::status(&client, args.run.as_deref())
            .await
            .map_err(|e| e.to_string())
    })?;
    let st = match st {
        Ok(s) => s,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let r = &st.run;
    let state = match (r.status.as_str(), st.runner_pid) {
        ("running" | "paused", None) => {
            format!(
                "interrupted (no runner is alive; `lockstep resume {}` continues it)",
                r.id
            )
        }
        (s, Some(pid)) => format!("{s} (runner backend pid {pid})"),
        (s, None) => s.to_string(),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "run        {}", r.id)?;
    writeln!(out, "table      {}", r.table_name)?;
    writeln!(out, "step       {} (last completed)", r.step)?;
    writeln!(
        out,
        "state      {state}{}",
        if r.paused { ", copy paused" } else { "" }
    )?;
    let pct = if r.rows_estimate > 0 {
        format!(
            " ({:.0}%)",
            r.rows_copied as f64 * 100.0 / r.rows_estimate.max(r.rows_copied) as f64
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "copied     {} of about {} rows{pct}",
        r.rows_copied,
        r.rows_estimate.max(r.rows_copied)
    )?;
    if let Some(rate) = r.rows_per_sec {
        writeln!(
            out,
            "rate       {rate:.0} rows/s, batch {}",
            r.batch_size.unwrap_or(0)
        )?;
    }
    writeln!(
        out,
        "throttle   {}",
        r.throttle.as_deref().unwrap_or("none")
    )?;
    writeln!(
        out,
        "lag        {}",
        st.replica_lag_ms
            .map_or_else(|| "no replicas".to_string(), |ms| format!("{ms} ms"))
    )?;
    if let Some(m) = &r.message {
        writeln!(out, "message    {m}")?;
    }
    writeln!(
        out,
        "started    {}\nupdated    {}",
        r.started_at, r.updated_at
    )?;
    Ok(EXIT_OK)
}
