//! The one place where the demo calls the playbook engine (`crate::playbook`): the playbook it
//! runs, starting a conversion and rolling it back, and the engine's progress and status turned
//! into the demo's [`Screen`] events and step times.

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::{DemoError, Screen, StepTime};
use crate::db::connect::ConnectOptions;
use crate::playbook::engine::{self, Ctx, Progress};
use crate::playbook::spec;

/// Monthly partitions of `telemetry` on `recorded_at`.
const PLAYBOOK: &str = "kind = \"partition\"
table = \"public.telemetry\"
[partition]
column = \"recorded_at\"
strategy = \"range\"
interval = \"1 month\"
premake = 2
[swap]
lock_timeout = \"200ms\"
";

/// The demo's playbook, checked.
pub(super) struct Playbook {
    parsed: spec::Playbook,
    text: String,
}

impl Playbook {
    /// The playbook with the demo's `--duty-cycle`, `--workers` and `--capture`.
    pub(super) fn new(
        duty_cycle: Option<f64>,
        workers: Option<u32>,
        capture: Option<&str>,
    ) -> Result<Playbook, DemoError> {
        let mut text = format!("{PLAYBOOK}[backfill]\n");
        if let Some(d) = duty_cycle {
            text.push_str(&format!("duty_cycle = {d:?}\n"));
        }
        if let Some(w) = workers {
            text.push_str(&format!("workers = {w}\n"));
        }
        if let Some(c) = capture {
            // After `[backfill]`: its own table.
            text.push_str(&format!("[capture]\nmode = {}\n", toml_string(c)));
        }
        let parsed =
            spec::parse(&text, "demo playbook").map_err(|e| DemoError::Engine(e.to_string()))?;
        Ok(Playbook { parsed, text })
    }

    /// The share of the time the conversion works while the application is busy.
    pub(super) fn duty_cycle(&self) -> f64 {
        self.parsed.common.backfill.duty_cycle
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => Vec::new(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// What the demo asks of the engine.
pub(super) enum Command<'a> {
    Start(&'a Playbook),
    Rollback(&'a str),
    /// Apply the changes since the swap to the old table (the reverse log).
    SyncBack(&'a str),
}

/// What a conversion did: the run, its steps' times, and when the swap ran.
pub(super) struct Converted {
    pub(super) run_id: String,
    pub(super) took: Duration,
    /// Per step, in the order they first ran: when it began and ended.
    pub(super) spans: Vec<(String, Instant, Instant)>,
    pub(super) swap: Option<(Instant, Instant)>,
}

impl Converted {
    /// Per step: seconds and `ops(from, to)` summed over its spans.
    pub(super) fn step_times(&self, ops: impl Fn(Instant, Instant) -> f64) -> Vec<StepTime> {
        let mut out: Vec<StepTime> = Vec::new();
        for (name, from, to) in &self.spans {
            let secs = to.duration_since(*from).as_secs_f64();
            let n = ops(*from, *to);
            match out.iter_mut().find(|s| s.name == *name) {
                Some(s) => {
                    s.secs += secs;
                    s.ops += n;
                }
                None => out.push(StepTime {
                    name: name.clone(),
                    secs,
                    ops: n,
                }),
            }
        }
        out
    }
}

/// Runs an engine command on the throwaway cluster, reporting to `screen`. While it runs, a
/// second connection reads the run's status every half second, for the replay's progress
/// (how many logged changes are still waiting). That connection is the run's monitor (as
/// with `lockstep run`): the runner knows it as its own, so its reads never make the
/// database look busy to the duty cycle.
pub(super) async fn convert(
    c: &Client,
    conn: &ConnectOptions,
    screen: &mut dyn Screen,
    command: Command<'_>,
) -> Result<Converted, DemoError> {
    let tracker = RefCell::new(Tracker::new(screen));
    let stop = AtomicBool::new(false);
    let from = Instant::now();
    let status_client = conn.connect().await.ok();
    let finished = {
        let mut sink = Sink(&tracker);
        let run = async {
            let mut ctx = Ctx {
                client: c,
                progress: &mut sink,
                stop: &stop,
                monitor: status_client.as_ref(),
                takeover: false,
                connect: Some(conn),
            };
            match command {
                Command::Start(pb) => engine::start(&mut ctx, pb.parsed.clone(), &pb.text).await,
                Command::Rollback(id) => engine::rollback(&mut ctx, Some(id)).await,
                Command::SyncBack(id) => engine::sync_back(&mut ctx, Some(id)).await,
            }
        };
        let watch = async {
            if let Some(status_client) = &status_client {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if tracker.borrow().current != "replay" {
                        continue;
                    }
                    if let Ok(Some(waiting)) =
                        engine::status(status_client, None).await.map(|s| s.logged)
                    {
                        tracker.borrow_mut().replay_waiting(waiting);
                    }
                }
            }
        };
        tokio::pin!(run);
        tokio::pin!(watch);
        tokio::select! {
            r = &mut run => r,
            () = &mut watch => run.await,
        }
    };
    let to = Instant::now();
    let mut t = tracker.into_inner();
    t.end_step(to);
    let finished = finished.map_err(|e| DemoError::Engine(e.to_string()))?;
    Ok(Converted {
        run_id: finished.id,
        took: to.duration_since(from),
        spans: t.spans,
        swap: t.swap,
    })
}

/// Turns the engine's progress into screen events: one step per name (the engine reports
/// each index build as the `indexes` step again, `n/total: name`), counts for the bars.
struct Tracker<'s> {
    screen: &'s mut dyn Screen,
    current: String,
    since: Instant,
    spans: Vec<(String, Instant, Instant)>,
    swap: Option<(Instant, Instant)>,
    /// `indexes`: (builds started, total).
    indexes: Option<(u64, u64)>,
    /// `replay`: the most changes seen waiting in this replay step (the bar shows how far
    /// the backlog is down from that peak).
    replay_most: i64,
}

impl<'s> Tracker<'s> {
    fn new(screen: &'s mut dyn Screen) -> Tracker<'s> {
        Tracker {
            screen,
            current: String::new(),
            since: Instant::now(),
            spans: Vec::new(),
            swap: None,
            indexes: None,
            replay_most: 0,
        }
    }

    /// Closes the current step's span (and its bar at 100 % for counted steps).
    fn end_step(&mut self, at: Instant) {
        if self.current.is_empty() {
            return;
        }
        if let Some((_, total)) = self.indexes.take() {
            self.screen.progress(total, total, "indexes", None);
        }
        if self.current == "replay" && self.replay_most > 0 {
            let most = self.replay_most as u64;
            self.screen.progress(most, most, "changes", None);
        }
        if self.current == "swap" {
            self.swap = Some((self.since, at));
        }
        self.spans
            .push((std::mem::take(&mut self.current), self.since, at));
    }

    fn replay_waiting(&mut self, waiting: i64) {
        self.replay_most = self.replay_most.max(waiting);
        let most = self.replay_most.max(1) as u64;
        let done = most.saturating_sub(waiting.max(0) as u64);
        // No rate: the backlog also grows while the workload writes.
        self.screen.progress(done, most, "changes", None);
    }
}

/// [`Progress`] for the engine, forwarding to the tracker.
struct Sink<'t, 's>(&'t RefCell<Tracker<'s>>);

impl Progress for Sink<'_, '_> {
    fn step(&mut self, name: &str, detail: &str) {
        let mut t = self.0.borrow_mut();
        let counted = (name == "indexes")
            .then(|| {
                let (count, _) = detail.split_once(':')?;
                let (n, total) = count.split_once('/')?;
                Some((
                    n.trim().parse::<u64>().ok()?,
                    total.trim().parse::<u64>().ok()?,
                ))
            })
            .flatten();
        if name != t.current {
            let now = Instant::now();
            t.end_step(now);
            t.current = name.to_string();
            t.since = now;
            t.replay_most = 0;
            match counted {
                Some((_, total)) => {
                    t.screen
                        .step(name, &format!("{total} builds, one partition at a time"));
                }
                None => t.screen.step(name, detail),
            }
        }
        if let Some((n, total)) = counted {
            t.indexes = Some((n, total));
            t.screen
                .progress(n.saturating_sub(1), total, "indexes", None);
        }
    }

    fn copy(&mut self, copied: i64, total: i64, rows_per_sec: f64) {
        let mut t = self.0.borrow_mut();
        let rate = (rows_per_sec > 0.0).then_some(rows_per_sec);
        t.screen.progress(
            copied.max(0) as u64,
            total.max(copied).max(0) as u64,
            "rows",
            rate,
        );
    }

    fn note(&mut self, message: &str) {
        self.0.borrow_mut().screen.note(message);
    }
}
