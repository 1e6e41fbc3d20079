use std::io::{self, Write};

use clap::Args;

use super::online::{self, RunRef};
use super::{eprint_error, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine;
use crate::playbook::lock::Holder;

/// Show a run's step, progress, throttle state and replica lag (from any terminal).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep status\n  lockstep status 16384_20260412_101500_123 --database-url postgres://app@db.internal/app\n  watch -n 5 lockstep status      # from another terminal while a run works"
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: RunRef,
}

pub fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let t = args.target;
    let color = t.color.enabled();
    online::with_client(&t.db, color, |client| async move {
        match engine::status(&client, t.run.as_deref()).await {
            Ok(st) => match print(&st) {
                Ok(()) => EXIT_OK,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
                Err(e) => {
                    eprint_error(color, &format!("cannot write the status: {e}"));
                    EXIT_ERROR
                }
            },
            Err(e) => online::fail(color, &e),
        }
    })
}

/// `, heartbeat N s ago` when the runner writes one.
fn heartbeat(h: &Holder) -> String {
    h.beat.as_ref().map_or(String::new(), |b| {
        format!(", heartbeat {} s ago", b.age.as_secs())
    })
}

fn print(st: &engine::RunStatus) -> io::Result<()> {
    let r = &st.run.row;
    let state = match (st.run.status.as_str(), &st.holder) {
        ("running" | "paused", None) => {
            format!(
                "interrupted (no runner is alive; `lockstep resume {}` continues it)",
                r.id
            )
        }
        (s, Some(h)) if h.alive().is_some() => {
            format!("{s} (runner backend pid {}{})", h.pid, heartbeat(h))
        }
        (s, Some(h)) => format!(
            "{s}, but its runner is gone and backend pid {} (idle {} s) still holds the run lock{}: `lockstep resume {} --takeover` ends it and continues",
            h.pid,
            h.idle.as_secs(),
            heartbeat(h),
            r.id
        ),
        (s, None) => s.to_string(),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "run        {}", r.id)?;
    writeln!(out, "kind       {}", st.run.kind)?;
    writeln!(out, "table      {}", r.table_name)?;
    writeln!(out, "step       {} (last completed)", r.step)?;
    writeln!(
        out,
        "state      {state}{}",
        if r.paused { ", copy paused" } else { "" }
    )?;
    let pct = if r.copy.rows_estimate > 0 {
        format!(
            " ({:.0}%)",
            r.copy.rows_copied as f64 * 100.0 / r.copy.rows_estimate.max(r.copy.rows_copied) as f64
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "copied     {} of about {} rows{pct}",
        r.copy.rows_copied,
        r.copy.rows_estimate.max(r.copy.rows_copied)
    )?;
    if let Some(rate) = r.rows_per_sec {
        writeln!(
            out,
            "rate       {rate:.0} rows/s, batch {}",
            r.copy.batch_size.unwrap_or(0)
        )?;
    }
    if let Some(l) = st.lanes {
        writeln!(
            out,
            "lanes      {}: {} copied, {} under way, {} waiting",
            l.total,
            l.copied,
            l.under_way,
            l.total - l.copied - l.under_way
        )?;
    }
    if let Some(n) = st.logged {
        writeln!(out, "logged     {n} changes not replayed yet")?;
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
    Ok(())
}
