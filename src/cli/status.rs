use std::io::{self, Write};

use clap::{Args, ValueEnum};

use super::online::{self, RunRef};
use super::{eprint_error, EXIT_ERROR, EXIT_OK};
use crate::playbook::engine::{self, RunStatus};
use crate::playbook::lock::Holder;
use crate::playbook::shadow::CaptureStatus;
use crate::playbook::view::human_bytes;
use crate::report::run_status;

/// Show a run's step, progress, throttle state and replica lag (from any terminal).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep status\n  lockstep status 16384_20260412_101500_123 --database-url postgres://app@db.internal/app\n  lockstep status --all --format json\n  lockstep status --all --format prometheus > /var/lib/node_exporter/lockstep.prom\n  watch -n 5 lockstep status      # from another terminal while a run works"
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: RunRef,
    /// Every run recorded in the database, oldest first
    #[arg(long, conflicts_with = "run")]
    pub all: bool,
    /// Output format: text, json (versioned schema, see the README) or prometheus (text
    /// exposition format, for a textfile collector)
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Prometheus,
}

#[inline(never)] // see `cli::main`
pub fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let t = args.target;
    let color = t.color.enabled();
    let (all, format) = (args.all, args.format);
    online::with_client(&t.db, color, |client| async move {
        let runs = if all {
            engine::status_all(&client).await
        } else {
            engine::status(&client, t.run.as_deref())
                .await
                .map(|s| vec![s])
        };
        match runs {
            Ok(runs) => match write(&runs, format, all) {
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

fn write(runs: &[RunStatus], format: Format, all: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &run_status::json(runs))?;
            writeln!(out)
        }
        Format::Prometheus => out.write_all(run_status::prometheus(runs).as_bytes()),
        Format::Text if all => list(&mut out, runs),
        Format::Text => runs.iter().try_for_each(|st| print(&mut out, st)),
    }
}

/// `--all` as text: one line per run.
fn list(out: &mut impl Write, runs: &[RunStatus]) -> io::Result<()> {
    if runs.is_empty() {
        return writeln!(out, "no runs recorded yet");
    }
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|st| {
            let r = &st.run.row;
            let (done, total) = (
                r.copy.rows_copied,
                r.copy.rows_estimate.max(r.copy.rows_copied),
            );
            [
                r.id.clone(),
                st.run.kind.to_string(),
                r.table_name.clone(),
                r.step.clone(),
                if st.interrupted() {
                    "interrupted".to_string()
                } else {
                    st.run.status.to_string()
                },
                format!("{done}/{total}"),
            ]
        })
        .collect();
    let head = ["RUN", "KIND", "TABLE", "STEP", "STATUS", "ROWS"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                s.push_str(c);
            }
        }
        writeln!(out, "{s}")
    };
    line(out, &head)?;
    for r in &rows {
        line(out, &r.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// `, heartbeat N s ago` when the runner writes one.
fn heartbeat(h: &Holder) -> String {
    h.beat.as_ref().map_or(String::new(), |b| {
        format!(", heartbeat {} s ago", b.age.as_secs())
    })
}

fn print(out: &mut impl Write, st: &RunStatus) -> io::Result<()> {
    let r = &st.run.row;
    let state = match (st.run.status.as_str(), &st.holder) {
        ("running" | "paused" | "ready_to_swap", None) => {
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
    if let Some(c) = st.capture.as_ref().filter(|c| !c.reverse) {
        let how = match (&c.slot, c.retained_wal) {
            (None, _) => "a trigger logs changed keys".to_string(),
            (Some(s), Some(b)) => format!(
                "logical decoding, slot {s} (holds back {} of WAL)",
                crate::playbook::view::human_bytes(b)
            ),
            (Some(s), None) => format!("logical decoding (slot {s} gone)"),
        };
        writeln!(out, "capture    {how}")?;
    }
    if let Some(n) = st.logged {
        writeln!(out, "logged     {n} changes not replayed yet")?;
    }
    // The replay's last reading, while there is a log to replay.
    if let (Some(w), Some(_)) = (&r.replay, st.logged) {
        let growth = w.per_second.map_or_else(
            || "growth not measured yet".to_string(),
            |g| format!("{g:+.0} changes/s"),
        );
        let behind = if w.behind {
            ": behind, replaying without rest; the other connections wait"
        } else {
            ""
        };
        writeln!(
            out,
            "replay     {} waiting, {growth}{behind} ({:.0} s ago)",
            w.backlog, w.age_seconds
        )?;
    }
    if let Some(lines) = reverse_lines(st.reverse_backlog, st.capture.as_ref()) {
        writeln!(out, "{lines}")?;
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
    for (i, a) in r.swaps.iter().enumerate() {
        let how = match (a.held_ms, &a.error) {
            (Some(h), None) => format!("lock held {h} ms (granted after {} ms)", a.waited_ms),
            (Some(h), Some(e)) => format!(
                "lock held {h} ms (granted after {} ms), then failed: {e}",
                a.waited_ms
            ),
            (None, e) => format!(
                "lock not granted after {} ms: {}",
                a.waited_ms,
                e.as_deref().unwrap_or("")
            ),
        };
        let label = if i == 0 { "swaps" } else { "" };
        writeln!(out, "{label:<10} {}: {how}", a.what)?;
    }
    let c = &st.controls;
    if c.max_rows_per_second.is_some() || c.target_batch_ms.is_some() || c.duty_cycle.is_some() {
        writeln!(
            out,
            "settings   max_rows_per_second {}, target_batch_ms {}, duty_cycle {} (changed with `lockstep set`)",
            st.settings.max_rows_per_second, st.settings.target_batch_ms, st.settings.duty_cycle
        )?;
    }
    if st.manual_swap {
        let what = if st.run.status == crate::playbook::state::Status::ReadyToSwap {
            format!("ready, waiting for `lockstep swap {}`", r.id)
        } else if c.swap_requested {
            "requested: swaps as soon as it is ready".to_string()
        } else {
            "waits for `lockstep swap` once verified".to_string()
        };
        writeln!(out, "swap       manual: {what}")?;
    }
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

/// After a shadow rebuild's swap: what keeps the changes since for a rollback (the reverse
/// slot, and how much WAL it holds back, against `max_retained_wal`), or how many wait in
/// the reverse log.
fn reverse_lines(backlog: Option<i64>, capture: Option<&CaptureStatus>) -> Option<String> {
    match (backlog, capture.filter(|c| c.reverse)) {
        (n, Some(c)) => {
            let held = c.retained_wal.unwrap_or(0);
            let mut s = format!(
                "reverse    slot {} keeps the changes since the swap (holds back {} of WAL){}; `lockstep sync-back` or a rollback applies them to the old table",
                c.slot.as_deref().unwrap_or_default(),
                human_bytes(held),
                match n {
                    Some(n) if n > 0 => format!(", {n} more wait in the reverse log"),
                    _ => String::new(),
                }
            );
            // Nothing reads the slot between commands: the limit is the user's to keep.
            if let Some(limit) = c.limit.filter(|l| u64::try_from(held).unwrap_or(0) > *l) {
                s.push_str(&format!(
                    "\n           that is more than [capture] max_retained_wal ({}): run `lockstep sync-back`, or finalize, before the server's disk fills",
                    human_bytes(i64::try_from(limit).unwrap_or(i64::MAX))
                ));
            }
            Some(s)
        }
        (Some(n), None) => Some(format!(
            "reverse    {n} changes since the swap not applied to the old table yet (a rollback applies them first)"
        )),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(held: i64, limit: u64) -> CaptureStatus {
        CaptureStatus {
            slot: Some("lockstep_r_1".into()),
            retained_wal: Some(held),
            reverse: true,
            limit: Some(limit),
        }
    }

    #[test]
    fn the_reverse_slot_is_named_and_warned_about_past_the_limit() {
        let under = reverse_lines(Some(0), Some(&slot(1 << 20, 4 << 30))).unwrap();
        assert!(
            under.starts_with("reverse    slot lockstep_r_1 keeps the changes since the swap (holds back 1 MiB of WAL);"),
            "{under}"
        );
        assert!(!under.contains("max_retained_wal"), "{under}");
        let over = reverse_lines(Some(3), Some(&slot(5 << 30, 4 << 30))).unwrap();
        assert!(over.contains(", 3 more wait in the reverse log"), "{over}");
        assert!(
            over.contains("more than [capture] max_retained_wal (4 GiB): run `lockstep sync-back`"),
            "{over}"
        );
        // The forward capture's slot is not the reverse sync's.
        let forward = CaptureStatus {
            reverse: false,
            ..slot(1, 1)
        };
        assert_eq!(
            reverse_lines(Some(7), Some(&forward)).unwrap(),
            "reverse    7 changes since the swap not applied to the old table yet (a rollback applies them first)"
        );
        assert_eq!(reverse_lines(None, None), None);
    }
}
