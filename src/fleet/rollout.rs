//! A rollout: the canary, then the waves, each with bounded concurrency; a circuit breaker
//! that stops starting targets once failures pass the error budget; targets done before
//! (recorded on them) are skipped, so running again resumes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{waves, Fleet, Wave, Work};
use crate::apply::{self, Event, Loaded, Target};
use crate::playbook::engine::{self, Ctx, EngineError};
use crate::playbook::spec::Playbook;
use crate::playbook::state::Status;

/// How one target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Migrations applied (how many), or a playbook run completed.
    Done {
        applied: usize,
    },
    /// Nothing left to do on it.
    UpToDate,
    Failed(String),
    /// Stopped at a safe point (Ctrl-C).
    Stopped(String),
}

/// One target's part of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetResult {
    /// The target's place in the fleet's list.
    pub index: usize,
    pub label: String,
    /// The wave's name (`canary`, `wave 1`, …).
    pub wave: String,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Retries and other notes of the target, in order.
    pub notes: Vec<String>,
}

/// What a rollout did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub results: Vec<TargetResult>,
    /// Why the circuit breaker halted the rollout.
    pub halted: Option<String>,
    /// Ctrl-C stopped it.
    pub stopped: bool,
    /// Targets not started (after a halt or a stop), in order.
    pub untouched: Vec<String>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count()
    }

    /// Every target was done or up to date.
    pub fn complete(&self) -> bool {
        self.halted.is_none()
            && !self.stopped
            && self.untouched.is_empty()
            && self
                .results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Done { .. } | Outcome::UpToDate))
    }
}

/// Where a rollout reports what it does; the CLI draws a bar per wave.
pub trait Progress {
    /// A wave starts: its targets.
    fn wave(&mut self, wave: &Wave);
    fn started(&mut self, wave: &Wave, label: &str);
    fn finished(&mut self, wave: &Wave, result: &TargetResult);
    /// The breaker opened: no target starts any more.
    fn halted(&mut self, why: &str);
}

/// What runs on each target.
pub enum Job<'a> {
    Migrations(&'a Loaded),
    Playbook {
        text: &'a str,
        playbook: &'a Playbook,
    },
}

impl<'a> Job<'a> {
    /// The job of `fleet` (`migrations`: the directory, read and linted).
    pub fn of(fleet: &'a Fleet, migrations: Option<&'a Loaded>) -> Option<Job<'a>> {
        match (&fleet.work, migrations) {
            (Work::Migrations(_), Some(m)) => Some(Job::Migrations(m)),
            (Work::Playbook { text, playbook, .. }, _) => Some(Job::Playbook { text, playbook }),
            _ => None,
        }
    }
}

/// The playbook (and its text) for `target`: on a schema target the table is qualified by
/// the schema.
pub(super) fn playbook_for(
    text: &str,
    playbook: &Playbook,
    target: &Target,
) -> Result<(Playbook, String), String> {
    let Some(schema) = &target.schema else {
        return Ok((playbook.clone(), text.to_string()));
    };
    if playbook.common.table.schema.is_some() {
        return Err(format!(
            "the playbook names its table with a schema ({}): on schema targets, name it without one and each target's schema qualifies it",
            playbook.common.table
        ));
    }
    let mut pb = playbook.clone();
    pb.common.table.schema = Some(schema.clone());
    // The stored text names the table the run works on.
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    doc.insert(
        "table".into(),
        toml::Value::String(pb.common.table.to_string()),
    );
    let text = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok((pb, text))
}

/// A progress sink for a playbook run on one target: keeps the notes.
#[derive(Default)]
struct Notes(Vec<String>);

impl engine::Progress for Notes {
    fn step(&mut self, _: &str, _: &str) {}
    fn copy(&mut self, _: i64, _: i64, _: f64) {}
    fn note(&mut self, message: &str) {
        self.0.push(message.to_string());
    }
}

/// Runs the job on one target.
async fn one(
    target: &Target,
    job: &Job<'_>,
    locks: &apply::Settings,
    stop: &AtomicBool,
) -> (Outcome, Vec<String>) {
    match job {
        Job::Migrations(loaded) => {
            let mut notes = Vec::new();
            let mut on = |e: Event| {
                if let Event::Note(n) = e {
                    notes.push(n);
                }
            };
            let r = apply::apply(target, loaded, locks, stop, &mut on).await;
            let outcome = match r {
                Ok(done) if done.is_empty() => Outcome::UpToDate,
                Ok(done) => Outcome::Done {
                    applied: done.len(),
                },
                Err(e @ apply::ApplyError::Stopped { .. }) => Outcome::Stopped(e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            (outcome, notes)
        }
        Job::Playbook { text, playbook } => {
            let mut notes = Notes::default();
            let outcome = run_playbook(
                target,
                (text, playbook),
                (stop, locks.retry_failed),
                &mut notes,
            )
            .await;
            (outcome, notes.0)
        }
    }
}

async fn run_playbook(
    target: &Target,
    (text, playbook): (&str, &Playbook),
    (stop, retry_failed): (&AtomicBool, bool),
    notes: &mut Notes,
) -> Outcome {
    let (pb, text) = match playbook_for(text, playbook, target) {
        Ok(x) => x,
        Err(m) => return Outcome::Failed(format!("{}: {m}", target.label)),
    };
    let conn = target.conn.with_application_name("lockstep");
    let client = match conn.connect().await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("{}: {e}", target.label)),
    };
    let failed = |e: EngineError| match e {
        EngineError::Stopped(_) => Outcome::Stopped(format!("{}: {e}", target.label)),
        e => Outcome::Failed(format!("{}: {e}", target.label)),
    };
    let existing = match engine::latest_on_table(&client, &pb).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let mut ctx = Ctx {
        client: &client,
        progress: notes,
        stop,
        monitor: None,
        connect: Some(&conn),
        takeover: false,
    };
    let r = match existing {
        Some(run) if run.is_complete() => return Outcome::UpToDate,
        Some(run) if run.status == Status::Failed && !retry_failed => {
            return Outcome::Failed(format!(
                "{}: run {} failed in an earlier rollout ({}); `lockstep fleet resume` tries it again",
                target.label,
                run.id(),
                run.row.message.as_deref().unwrap_or("no message")
            ))
        }
        Some(run) if !run.is_rolled_back() => engine::resume(&mut ctx, Some(run.id())).await,
        _ => engine::start(&mut ctx, pb, &text).await,
    };
    match r {
        Ok(_) => Outcome::Done { applied: 1 },
        Err(e) => failed(e),
    }
}

/// Runs `job` on `targets` in the fleet's waves: the canary first, each wave after the one
/// before it ended, at most `concurrency` targets at once. Once more targets failed than
/// the error budget allows (or Ctrl-C set `stop`), no target starts any more; those under
/// way finish.
pub async fn run(
    fleet: &Fleet,
    job: &Job<'_>,
    targets: &[Target],
    stop: &AtomicBool,
    progress: &mut dyn Progress,
) -> Report {
    let mut report = Report::default();
    let tolerated = fleet.rollout.error_budget.tolerated(targets.len());
    let mut failures = 0usize;
    for wave in waves(targets.len(), &fleet.rollout) {
        let closed = |report: &Report| report.halted.is_some() || stop.load(Ordering::SeqCst);
        if closed(&report) {
            report.untouched.extend(
                targets[wave.targets.clone()]
                    .iter()
                    .map(|t| t.label.clone()),
            );
            continue;
        }
        progress.wave(&wave);
        let mut next = wave.targets.start;
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < fleet.rollout.concurrency
                && next < wave.targets.end
                && !closed(&report)
            {
                let (i, target) = (next, &targets[next]);
                progress.started(&wave, &target.label);
                let name = wave.name.clone();
                running.push(async move {
                    let t0 = Instant::now();
                    let (outcome, notes) = one(target, job, &fleet.locks, stop).await;
                    TargetResult {
                        index: i,
                        label: target.label.clone(),
                        wave: name,
                        outcome,
                        duration: t0.elapsed(),
                        notes,
                    }
                });
                next += 1;
            }
            let Some(result) = running.next().await else {
                break;
            };
            if matches!(result.outcome, Outcome::Failed(_)) {
                failures += 1;
                if failures > tolerated && report.halted.is_none() {
                    let why = format!(
                        "{failures} target(s) failed, over the error budget of {tolerated} ({} failed last)",
                        result.label
                    );
                    progress.halted(&why);
                    report.halted = Some(why);
                }
            }
            progress.finished(&wave, &result);
            report.results.push(result);
        }
        report.untouched.extend(
            targets[next..wave.targets.end]
                .iter()
                .map(|t| t.label.clone()),
        );
    }
    report.stopped = stop.load(Ordering::SeqCst);
    report.results.sort_by_key(|r| r.index);
    report
}
