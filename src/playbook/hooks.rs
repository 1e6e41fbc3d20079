//! `[hooks]`: commands and a webhook told about a run's events.
//!
//! ```toml
//! [hooks]
//! command = "/usr/local/bin/notify"  # run (by `sh -c`) on every event in `events`
//! events = ["ready_to_swap", "swapped", "failed", "finished"]   # default: all
//! webhook = "http://hooks.internal:8080/lockstep"   # POST the event as JSON
//! timeout = "10s"                    # per command, per POST attempt
//! retries = 2                        # more POST attempts after a failed one
//! required = false                   # true: a failing hook stops the run
//! [hooks.on]                         # a command for one event
//! ready_to_swap = "lockstep swap $LOCKSTEP_RUN_ID"
//! ```
//!
//! Events: `step_started`, `step_done`, `ready_to_swap`, `swapped`, `paused`, `resumed`,
//! `failed`, `finished`, `stopped`. The engine reports every event through one door
//! (`Exec::emit`); the [`Dispatcher`] hands them, in order, to a task that runs the
//! commands and POSTs to the webhook, so the run never waits for a hook. A hook that fails
//! (exit status not 0, no 2xx answer after the retries, over the timeout) is reported as a
//! note; with `required = true` it also stops the run, as failed: the runner waits for the
//! hooks of the events so far before every statement that takes locks (and before the
//! swap), so a required hook that fails on `ready_to_swap` or `step_started` keeps that
//! step from running.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::http::{self, Url};

/// What happened in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    StepStarted,
    StepDone,
    /// `[swap] mode = "manual"`: verified, caught up, waiting for `lockstep swap`.
    ReadyToSwap,
    Swapped,
    Paused,
    Resumed,
    Failed,
    /// Every step ran (up to the swap's validation, for kinds that swap).
    Finished,
    /// Stopped at a safe point (Ctrl-C, SIGTERM).
    Stopped,
    /// A statement did not get its locks within lock_timeout and is retried (not a hook
    /// event: for progress and metrics).
    LockWait,
}

impl EventKind {
    /// The events hooks can be told about.
    pub const HOOKED: [EventKind; 9] = [
        EventKind::StepStarted,
        EventKind::StepDone,
        EventKind::ReadyToSwap,
        EventKind::Swapped,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Failed,
        EventKind::Finished,
        EventKind::Stopped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::StepStarted => "step_started",
            EventKind::StepDone => "step_done",
            EventKind::ReadyToSwap => "ready_to_swap",
            EventKind::Swapped => "swapped",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Failed => "failed",
            EventKind::Finished => "finished",
            EventKind::Stopped => "stopped",
            EventKind::LockWait => "lock_wait",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::HOOKED.into_iter().find(|k| k.name() == s)
    }
}

/// One event: what happened, in which step, and a sentence about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The step it happened in (empty before the first).
    pub step: String,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    pub command: Option<String>,
    pub events: Option<Vec<String>>,
    pub webhook: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub required: Option<bool>,
    #[serde(default)]
    pub on: BTreeMap<String, String>,
}

/// The `[hooks]` of a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Run on every event of `events`.
    pub command: Option<String>,
    /// The events `command` and `webhook` get (`None`: all).
    pub events: Option<Vec<EventKind>>,
    pub webhook: Option<Url>,
    pub timeout: Duration,
    /// More attempts after a failed POST.
    pub retries: u32,
    pub required: bool,
    /// A command per event.
    pub on: Vec<(EventKind, String)>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            command: None,
            events: None,
            webhook: None,
            timeout: Duration::from_secs(10),
            retries: 2,
            required: false,
            on: Vec::new(),
        }
    }
}

impl Hooks {
    /// No command, no webhook.
    pub fn is_empty(&self) -> bool {
        self.command.is_none() && self.webhook.is_none() && self.on.is_empty()
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }

    /// The commands for an event of `kind`, in order.
    pub(crate) fn commands(&self, kind: EventKind) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .on
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, c)| c.as_str())
            .collect();
        if let Some(c) = &self.command {
            if self.wants(kind) {
                out.push(c);
            }
        }
        out
    }
}

/// The facts of a run every event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    pub run_id: String,
    pub kind: String,
    pub table: String,
    pub database: String,
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// One event ready to deliver: everything a hook is told.
#[derive(Debug, Clone)]
struct Delivery {
    event: Event,
    rows: (i64, i64),
    at: SystemTime,
}

impl Delivery {
    fn json(&self, f: &RunFacts) -> serde_json::Value {
        json!({
            "version": 1,
            "event": self.event.kind.name(),
            "run": {
                "id": f.run_id,
                "kind": f.kind,
                "table": f.table,
                "database": f.database,
                "host": f.host,
                "port": f.port,
            },
            "step": self.event.step,
            "message": self.event.message,
            "rows": { "done": self.rows.0, "total": self.rows.1 },
            "time": rfc3339(self.at),
        })
    }

    fn env(&self, f: &RunFacts) -> Vec<(&'static str, String)> {
        vec![
            ("LOCKSTEP_EVENT", self.event.kind.name().to_string()),
            ("LOCKSTEP_RUN_ID", f.run_id.clone()),
            ("LOCKSTEP_KIND", f.kind.clone()),
            ("LOCKSTEP_TABLE", f.table.clone()),
            ("LOCKSTEP_STEP", self.event.step.clone()),
            ("LOCKSTEP_MESSAGE", self.event.message.clone()),
            ("LOCKSTEP_ROWS_DONE", self.rows.0.to_string()),
            ("LOCKSTEP_ROWS_TOTAL", self.rows.1.to_string()),
            ("LOCKSTEP_TIME", rfc3339(self.at)),
            ("LOCKSTEP_DATABASE", f.database.clone()),
            // So that `lockstep swap $LOCKSTEP_RUN_ID` in a hook reaches the run's database
            // (a password comes from the inherited environment, the password file or a
            // service, never from lockstep).
            ("PGHOST", f.host.clone()),
            ("PGPORT", f.port.to_string()),
            ("PGUSER", f.user.clone()),
            ("PGDATABASE", f.database.clone()),
        ]
    }
}

/// `t` as `2026-04-12T10:15:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What the delivery task reports back.
#[derive(Debug, Default)]
struct Reports {
    /// Failures to show (every hook that failed).
    notes: Vec<String>,
    /// The first failure of a required hook.
    failure: Option<String>,
    /// Events delivered (or given up on).
    delivered: usize,
}

/// Delivers a run's events to its hooks, in order, on a task of its own.
pub struct Dispatcher {
    tx: Option<mpsc::UnboundedSender<Delivery>>,
    task: tokio::task::JoinHandle<()>,
    reports: Arc<Mutex<Reports>>,
    /// The step in progress (events are derived from step changes).
    step: RefCell<String>,
    rows: RefCell<(i64, i64)>,
    timeout: Duration,
    retries: u32,
    required: bool,
    sent: std::cell::Cell<usize>,
}

impl Dispatcher {
    /// Starts delivering to `hooks` (`None` when there is nothing to deliver to).
    pub fn start(hooks: &Hooks, facts: RunFacts) -> Option<Dispatcher> {
        if hooks.is_empty() {
            return None;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let reports = Arc::new(Mutex::new(Reports::default()));
        let shared = reports.clone();
        let h = hooks.clone();
        let task = tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let failures = deliver(&h, &facts, &d).await;
                if let Ok(mut r) = shared.lock() {
                    for failure in failures {
                        if h.required && r.failure.is_none() {
                            r.failure = Some(failure.clone());
                        }
                        r.notes.push(failure);
                    }
                    r.delivered += 1;
                }
            }
        });
        Some(Dispatcher {
            tx: Some(tx),
            task,
            reports,
            step: RefCell::new(String::new()),
            rows: RefCell::new((0, 0)),
            timeout: hooks.timeout,
            retries: hooks.retries,
            required: hooks.required,
            sent: std::cell::Cell::new(0),
        })
    }

    /// Queues an event (in the current step unless it names one).
    pub fn emit(&self, kind: EventKind, message: &str) {
        if !EventKind::HOOKED.contains(&kind) {
            return;
        }
        let step = self.step.borrow().clone();
        self.send(Event {
            kind,
            step,
            message: message.to_string(),
        });
    }

    fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            if tx
                .send(Delivery {
                    event,
                    rows: *self.rows.borrow(),
                    at: SystemTime::now(),
                })
                .is_ok()
            {
                self.sent.set(self.sent.get() + 1);
            }
        }
    }

    /// A step is shown: when it is another step than the one in progress, that one is done
    /// and this one starts.
    pub fn step(&self, name: &str, detail: &str) {
        let previous = self.step.borrow().clone();
        if previous == name {
            return;
        }
        if !previous.is_empty() {
            self.send(Event {
                kind: EventKind::StepDone,
                step: previous,
                message: String::new(),
            });
        }
        *self.step.borrow_mut() = name.to_string();
        self.send(Event {
            kind: EventKind::StepStarted,
            step: name.to_string(),
            message: detail.to_string(),
        });
    }

    /// Rows done of the current step (events carry the latest).
    pub fn rows(&self, done: i64, total: i64) {
        *self.rows.borrow_mut() = (done, total);
    }

    /// Failures reported since the last call, for notes.
    pub fn take_notes(&self) -> Vec<String> {
        self.reports
            .lock()
            .map(|mut r| std::mem::take(&mut r.notes))
            .unwrap_or_default()
    }

    /// With `required = true`: waits until every event sent so far is delivered, and
    /// returns the failure of a required hook, if one failed. Without it: at once, `None`.
    pub async fn settle(&self) -> Option<String> {
        if !self.required {
            return None;
        }
        loop {
            let delivered = self.reports.lock().map_or(usize::MAX, |r| r.delivered);
            if delivered >= self.sent.get() || self.task.is_finished() {
                return self.failure();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The failure of a required hook, if one failed.
    pub fn failure(&self) -> Option<String> {
        self.reports.lock().ok().and_then(|r| r.failure.clone())
    }

    /// The run ended: the step in progress is done (when it ended well), `kind` is sent
    /// (`finished`, `failed` or `stopped`), and every queued event is delivered before this
    /// returns (each hook within its timeout). Returns the failures not reported yet.
    pub async fn finish(mut self, kind: EventKind, message: &str) -> Vec<String> {
        if kind == EventKind::Finished {
            let last = self.step.borrow().clone();
            if !last.is_empty() {
                self.send(Event {
                    kind: EventKind::StepDone,
                    step: last,
                    message: String::new(),
                });
            }
        }
        self.emit(kind, message);
        drop(self.tx.take());
        let queued = self.task.is_finished();
        if !queued {
            // Each remaining event takes at most a command's timeout, or the webhook's
            // attempts; the task ends when the queue is empty.
            let bound = self.timeout * (self.retries + 3) * 8;
            if tokio::time::timeout(bound, &mut self.task).await.is_err() {
                self.task.abort();
                if let Ok(mut r) = self.reports.lock() {
                    r.notes.push(format!(
                        "hooks: events still undelivered after {} s were dropped",
                        bound.as_secs()
                    ));
                }
            }
        }
        self.take_notes()
    }
}

/// Runs the commands of one event and POSTs it to the webhook; returns the failures.
async fn deliver(h: &Hooks, facts: &RunFacts, d: &Delivery) -> Vec<String> {
    let mut failures = Vec::new();
    let name = d.event.kind.name();
    for command in h.commands(d.event.kind) {
        if let Err(why) = run_command(command, &d.env(facts), h.timeout).await {
            failures.push(format!("hook `{command}` ({name}): {why}"));
        }
    }
    if let Some(url) = h.webhook.as_ref().filter(|_| h.wants(d.event.kind)) {
        let body = d.json(facts).to_string();
        let mut backoff = Duration::from_millis(500);
        let mut last = String::new();
        let mut delivered = false;
        for attempt in 0..=h.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            match http::post_json(url, &body, h.timeout).await {
                Ok(code) if (200..300).contains(&code) => {
                    delivered = true;
                    break;
                }
                Ok(code) => last = format!("answered {code}"),
                Err(e) => last = e,
            }
        }
        if !delivered {
            failures.push(format!(
                "webhook {url} ({name}): {last}, after {} attempt(s)",
                h.retries + 1
            ));
        }
    }
    failures
}

/// Runs `command` with `sh -c`, with `env` added; fails on a non-zero exit or the timeout
/// (the command is killed then).
async fn run_command(
    command: &str,
    env: &[(&'static str, String)],
    timeout: Duration,
) -> Result<(), String> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = c.spawn().map_err(|e| format!("cannot start it: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "still running after {} ms: killed",
            timeout.as_millis()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("").trim();
            Err(format!(
                "{}{}",
                out.status,
                if first.is_empty() {
                    String::new()
                } else {
                    format!(": {first}")
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_776_000_000)),
            "2026-04-12T13:20:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn steps_become_started_and_done_events_and_commands_get_the_facts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events");
        let hooks = Hooks {
            command: Some(format!(
                "echo \"$LOCKSTEP_EVENT $LOCKSTEP_STEP $LOCKSTEP_RUN_ID $LOCKSTEP_ROWS_DONE\" >> '{}'",
                log.display()
            )),
            on: vec![(EventKind::Failed, "exit 3".into())],
            ..Hooks::default()
        };
        let facts = RunFacts {
            run_id: "r1".into(),
            ..RunFacts::default()
        };
        let notes = rt.block_on(async {
            let d = Dispatcher::start(&hooks, facts).unwrap();
            d.step("backfill", "");
            d.step("backfill", "more");
            d.rows(10, 20);
            d.step("indexes", "");
            d.emit(EventKind::LockWait, "not a hook event");
            d.finish(EventKind::Failed, "boom").await
        });
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "step_started backfill r1 0\nstep_done backfill r1 10\nstep_started indexes r1 10\nfailed indexes r1 10\n"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("`exit 3` (failed): exit status: 3"),
            "{notes:?}"
        );
    }
}
