//! `lockstep demo`: a busy table converted to partitions online, on a throwaway PostgreSQL.
//!
//! [`run`] fills a telemetry table, measures a write workload alone, converts the table to
//! monthly partitions with the playbook engine while the workload keeps writing, measures
//! the workload after the swap, and compares the new table with the old one row for row.
//! With `bench` it also times the naive conversion and a conversion with no workload. It
//! prints nothing: what it does goes to a [`Screen`], what it measured comes back as a
//! [`Report`]. Every call into the playbook engine is in `engine.rs`.

mod data;
mod engine;
mod workload;

use std::time::{Duration, Instant};

use crate::db::connect::{ConnectError, ConnectOptions};

pub use workload::Window;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows in the sample table.
    pub rows: u64,
    /// Foreground writer connections.
    pub writers: u32,
    /// The playbook's `[backfill] duty_cycle` (default: the playbook's).
    pub duty_cycle: Option<f64>,
    /// The playbook's `[backfill] workers` (default: the playbook's).
    pub workers: Option<u32>,
    /// The playbook's `[capture] mode` (default: the playbook's, `auto`).
    pub capture: Option<String>,
    /// Also time the naive conversion and a conversion with no workload.
    pub bench: bool,
    /// How long the workload is measured alone before the conversion, and after the swap.
    pub measure: Duration,
}

/// Where the demo shows what it does.
pub trait Screen {
    /// A phase of the demo begins (one line: loading, measuring, converting …).
    fn phase(&mut self, message: &str);
    /// A step of the conversion begins.
    fn step(&mut self, name: &str, detail: &str);
    /// How far the current phase or step is: `done` of `total` `unit`s (rows, indexes,
    /// changes), at `rate` per second when known.
    fn progress(&mut self, done: u64, total: u64, unit: &str, rate: Option<f64>);
    /// A line worth keeping (a retry, a pause, a warning).
    fn note(&mut self, message: &str);
}

/// One step of the conversion: seconds, and the workload's operations meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub name: String,
    pub secs: f64,
    pub ops: f64,
}

/// The `bench` measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Bench {
    /// The naive conversion (one `INSERT … SELECT` into an indexed partitioned copy).
    pub naive: Duration,
    /// lockstep with no workload (then swapped back), and its steps; `None` when the
    /// measured conversion itself ran without a workload.
    pub idle: Option<(Duration, Vec<StepTime>)>,
}

/// What the demo measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows: u64,
    pub writers: u32,
    pub duty_cycle: f64,
    /// `pg_size_pretty` of the table before.
    pub size_before: String,
    /// `pg_size_pretty` of `telemetry_old` after the swap.
    pub size_old: String,
    pub partitions: i64,
    pub rows_after: i64,
    /// Rows that differ between the new table and the old one (must be 0).
    pub differing: i64,
    pub conversion: Duration,
    pub steps: Vec<StepTime>,
    pub before: Window,
    pub during: Window,
    pub after: Window,
    /// The workload's worst latency while the swap ran.
    pub swap_worst: Option<Duration>,
    /// Workload operations PostgreSQL refused (must be 0).
    pub errors: u64,
    pub bench: Option<Bench>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{what}: {source}")]
    Db {
        what: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("{0}")]
    Engine(String),
}

impl DemoError {
    /// `map_err` for a query failing while doing `what`.
    fn db(what: &'static str) -> impl Fn(tokio_postgres::Error) -> DemoError {
        move |source| DemoError::Db { what, source }
    }
}

/// Runs the demo on the (empty, throwaway) database `conn`.
pub async fn run(
    conn: &ConnectOptions,
    options: &Options,
    screen: &mut dyn Screen,
) -> Result<Report, DemoError> {
    let c = conn.connect().await?;
    screen.phase(&format!(
        "creating telemetry with {} rows",
        group_digits(options.rows)
    ));
    data::load(&c, options.rows, screen).await?;
    let size_before = data::size(&c, "telemetry").await;
    let naive = if options.bench {
        screen.phase(
            "bench: timing the naive conversion (INSERT … SELECT into an indexed partitioned copy)",
        );
        Some(data::naive(&c).await?)
    } else {
        None
    };
    let pb = engine::Playbook::new(
        options.duty_cycle,
        options.workers,
        options.capture.as_deref(),
    )?;
    // Like the naive conversion, once with no workload (then swapped back), for the time.
    let idle = if options.bench && options.writers > 0 {
        screen.phase(
            "bench: converting with no workload, as the naive conversion ran, then rolling back",
        );
        let run = engine::convert(&c, conn, screen, engine::Command::Start(&pb)).await?;
        let steps = run.step_times(|_, _| 0.0);
        engine::convert(&c, conn, screen, engine::Command::Rollback(&run.run_id)).await?;
        Some((run.took, steps))
    } else {
        None
    };

    let max_id = data::max_id(&c).await?;
    let workload = workload::Workload::start(conn, options.writers, max_id);
    screen.phase(&format!(
        "measuring the write workload alone for {} s",
        options.measure.as_secs()
    ));
    let before_from = Instant::now();
    tokio::time::sleep(options.measure).await;
    let before_to = Instant::now();

    screen.phase("converting telemetry to monthly partitions while the workload writes");
    let converted = engine::convert(&c, conn, screen, engine::Command::Start(&pb)).await;
    let converted = match converted {
        Ok(c) => c,
        Err(e) => {
            workload.stop().await;
            return Err(e);
        }
    };
    screen.phase(&format!(
        "measuring the workload after the swap (changes kept for a rollback) for {} s",
        options.measure.as_secs()
    ));
    let after_from = Instant::now();
    tokio::time::sleep(options.measure).await;
    let after_to = Instant::now();
    let stats = workload.stop().await;

    screen.phase("applying the changes since the swap to telemetry_old, as a rollback would");
    engine::convert(
        &c,
        conn,
        screen,
        engine::Command::SyncBack(&converted.run_id),
    )
    .await?;
    screen.phase("comparing telemetry with telemetry_old row for row");
    let (differing, rows_after, partitions) = data::check(&c).await?;
    let size_old = data::size(&c, "telemetry_old").await;
    let steps = converted.step_times(|from, to| {
        stats.window(from, to).ops_per_sec * to.duration_since(from).as_secs_f64()
    });
    let conv_from = converted.spans.first().map(|(_, f, _)| *f);
    let conv_to = converted.spans.last().map(|(_, _, t)| *t);
    let during = match (conv_from, conv_to) {
        (Some(f), Some(t)) => stats.window(f, t),
        _ => Window::default(),
    };
    Ok(Report {
        rows: options.rows,
        writers: options.writers,
        duty_cycle: pb.duty_cycle(),
        size_before,
        size_old,
        partitions,
        rows_after,
        differing,
        conversion: converted.took,
        steps,
        before: stats.window(before_from, before_to),
        during,
        after: stats.window(after_from, after_to),
        swap_worst: converted.swap.map(|(f, t)| stats.window(f, t).worst),
        errors: stats.errors.load(std::sync::atomic::Ordering::Relaxed),
        bench: naive.map(|naive| Bench { naive, idle }),
    })
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_three() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
