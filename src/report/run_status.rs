//! `lockstep status --format json|prometheus`: the state of playbook runs for machines.
//!
//! JSON, a stable schema (version 1; a field is only ever added, never renamed or removed
//! within a version):
//!
//! ```text
//! { "version": 1,
//!   "runs": [ { "id", "kind", "table",
//!               "step":   the last step completed, as stored ("backfill", "verified", …),
//!               "status": "running" | "paused" | "ready_to_swap" | "stopped" | "failed"
//!                         | "done" | "swapped" | "rolling_back" | "rolled_back" | "finalized",
//!               "interrupted": true when the run is running, paused or ready to swap and
//!                              no runner is alive (`lockstep resume` continues it),
//!               "runner": { "alive": a live runner holds the run's lock,
//!                           "backend_pid": int | null (the backend holding the lock, alive
//!                                          or a session left behind),
//!                           "heartbeat_age_seconds": float | null (the runner's last
//!                                                    heartbeat in lockstep.runners),
//!                           "process": string | null ("lockstep <version> (pid N on HOST)") },
//!               "paused": the copy is asked to pause,
//!               "rows": { "done", "total", "percent": float | null },
//!               "rows_per_second": float | null, "eta_seconds": float | null,
//!               "batch_size": int | null,
//!               "throttle": { "active", "reason": string | null },
//!               "replica_lag_ms": int | null (null: no replicas),
//!               "log_backlog": int | null (changes captured, not replayed yet),
//!               "replay": { "backlog": int (as the runner last read it),
//!                           "growth_per_second": float | null (the backlog's growth over
//!                                                the last seconds; null: not measured yet),
//!                           "behind": the log grows faster than it is replayed: the replay
//!                                     works without rest and the run's other connections
//!                                     wait (`throttle` says so too),
//!                           "age_seconds": float (how long ago the runner measured) } | null,
//!               "reverse_backlog": int | null (after the swap: changes not applied to
//!                 the old table yet; none with [swap] reverse = "sync"),
//!               "capture": { "method": "logical" | "trigger", "slot": string | null,
//!                            "retained_wal_bytes": int | null (WAL the slot holds back) }
//!                          | null (kinds without a shadow table),
//!               "swaps": [ { "what": "swap" | "swap back", "waited_ms": float,
//!                            "held_ms": float | null (lock not granted), "error": string | null } ],
//!               "lanes": { "total", "copied", "under_way", "waiting" } | null,
//!               "settings": { "max_rows_per_second", "target_batch_ms", "duty_cycle" },
//!               "swap": { "mode": "auto" | "manual", "requested", "ready" },
//!               "started_at", "updated_at": RFC 3339, UTC,
//!               "last_error": string | null (the error of a failed run),
//!               "message": string | null } ] }
//! ```
//!
//! Prometheus text format (version 0.0.4): one series per run and metric, labelled with
//! `run`, `kind` and `table` (`lockstep_run_info` also carries `step` and `status`), so
//! that a textfile collector or a cron job can publish them.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::playbook::engine::RunStatus;
use crate::playbook::state::Status;

/// The version of the JSON schema.
pub const VERSION: u32 = 1;

/// The runs as one JSON document.
pub fn json(runs: &[RunStatus]) -> Value {
    json!({
        "version": VERSION,
        "runs": runs.iter().map(run_value).collect::<Vec<_>>(),
    })
}

/// Rows done and the estimated total (never below what is done).
fn rows(st: &RunStatus) -> (i64, i64) {
    let c = &st.run.row.copy;
    (c.rows_copied, c.rows_estimate.max(c.rows_copied))
}

/// Seconds left at the current rate, while rows are left and a rate is known.
fn eta_seconds(st: &RunStatus) -> Option<f64> {
    let (done, total) = rows(st);
    let rate = st.run.row.rows_per_sec?;
    (rate > 0.0 && total > done && st.run.status == Status::Running)
        .then(|| (total - done) as f64 / rate)
}

/// The runner: the backend holding the run lock and its heartbeat (of this run).
fn runner_value(st: &RunStatus) -> Value {
    let h = st.holder.as_ref();
    let beat = h
        .and_then(|h| h.beat.as_ref())
        .filter(|b| b.run_id == st.run.row.id);
    json!({
        "alive": st.runner().is_some(),
        "backend_pid": h.map(|h| h.pid),
        "heartbeat_age_seconds": beat.map(|b| b.age.as_secs_f64()),
        "process": beat.map(|b| b.process.as_str()),
    })
}

fn run_value(st: &RunStatus) -> Value {
    let r = &st.run.row;
    let (done, total) = rows(st);
    json!({
        "id": r.id,
        "kind": st.run.kind.name(),
        "table": r.table_name,
        "step": r.step,
        "status": st.run.status.as_str(),
        "interrupted": st.interrupted(),
        "runner": runner_value(st),
        "paused": r.paused,
        "rows": {
            "done": done,
            "total": total,
            "percent": (total > 0).then(|| done as f64 * 100.0 / total as f64),
        },
        "rows_per_second": r.rows_per_sec,
        "eta_seconds": eta_seconds(st),
        "batch_size": r.copy.batch_size,
        "throttle": { "active": r.throttle.is_some(), "reason": r.throttle },
        "replica_lag_ms": st.replica_lag_ms,
        "log_backlog": st.logged,
        "replay": r.replay.as_ref().map(|w| json!({
            "backlog": w.backlog,
            "growth_per_second": w.per_second,
            "behind": w.behind,
            "age_seconds": w.age_seconds,
        })),
        "reverse_backlog": st.reverse_backlog,
        "capture": st.capture.as_ref().map(|c| json!({
            "method": if c.slot.is_some() { "logical" } else { "trigger" },
            "slot": c.slot,
            "retained_wal_bytes": c.retained_wal,
        })),
        "swaps": r.swaps.iter().map(|a| json!({
            "what": a.what,
            "waited_ms": a.waited_ms,
            "held_ms": a.held_ms,
            "error": a.error,
        })).collect::<Vec<_>>(),
        "lanes": st.lanes.map(|l| json!({
            "total": l.total,
            "copied": l.copied,
            "under_way": l.under_way,
            "waiting": l.total - l.copied - l.under_way,
        })),
        "settings": {
            "max_rows_per_second": st.settings.max_rows_per_second,
            "target_batch_ms": st.settings.target_batch_ms,
            "duty_cycle": st.settings.duty_cycle,
        },
        "swap": {
            "mode": if st.manual_swap { "manual" } else { "auto" },
            "requested": st.controls.swap_requested,
            "ready": st.run.status == Status::ReadyToSwap,
        },
        "started_at": r.started_utc,
        "updated_at": r.updated_utc,
        "last_error": (st.run.status == Status::Failed).then(|| r.message.clone()).flatten(),
        "message": r.message,
    })
}

/// One metric family: its name, help, type, and a value per run (none: left out).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&RunStatus) -> Option<f64>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "lockstep_run_rows_done",
        help: "Rows the run's current batched step has done (copied, updated, verified).",
        kind: "gauge",
        value: |s| Some(rows(s).0 as f64),
    },
    Family {
        name: "lockstep_run_rows_total",
        help: "Rows the current batched step is expected to do (an estimate).",
        kind: "gauge",
        value: |s| Some(rows(s).1 as f64),
    },
    Family {
        name: "lockstep_run_rows_per_second",
        help: "The rate of the last batches.",
        kind: "gauge",
        value: |s| s.run.row.rows_per_sec,
    },
    Family {
        name: "lockstep_run_eta_seconds",
        help: "Seconds left in the current batched step at the current rate.",
        kind: "gauge",
        value: eta_seconds,
    },
    Family {
        name: "lockstep_run_throttled",
        help: "1 while the work is slowed (max_rows_per_second, replica lag).",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.run.row.throttle.is_some()))),
    },
    Family {
        name: "lockstep_run_paused",
        help: "1 while the copy is asked to pause.",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.run.row.paused))),
    },
    Family {
        name: "lockstep_run_ready_to_swap",
        help: "1 while a run in manual swap mode waits for `lockstep swap`.",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.run.status == Status::ReadyToSwap))),
    },
    Family {
        name: "lockstep_run_runner_alive",
        help: "1 while a live runner holds the run's lock.",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.runner().is_some()))),
    },
    Family {
        name: "lockstep_run_interrupted",
        help: "1 when the run is unfinished and no runner is alive.",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.interrupted()))),
    },
    Family {
        name: "lockstep_run_failed",
        help: "1 when the run failed (its message says why).",
        kind: "gauge",
        value: |s| Some(f64::from(u8::from(s.run.status == Status::Failed))),
    },
    Family {
        name: "lockstep_run_log_backlog",
        help: "Changes captured and not replayed yet (shadow rebuilds before the swap).",
        kind: "gauge",
        value: |s| s.logged.map(|n| n as f64),
    },
    Family {
        name: "lockstep_run_log_growth_per_second",
        help: "How fast the captured changes waiting for the replay grow (negative: shrink).",
        kind: "gauge",
        value: |s| s.run.row.replay.as_ref().and_then(|w| w.per_second),
    },
    Family {
        name: "lockstep_run_replay_behind",
        help: "1 while the change log grows faster than it is replayed (the other work waits).",
        kind: "gauge",
        value: |s| {
            s.run
                .row
                .replay
                .as_ref()
                .map(|w| f64::from(u8::from(w.behind)))
        },
    },
    Family {
        name: "lockstep_run_reverse_backlog",
        help: "Changes since the swap not applied to the old table yet (shadow rebuilds until finalize; rollback applies them first).",
        kind: "gauge",
        value: |s| s.reverse_backlog.map(|n| n as f64),
    },
    Family {
        name: "lockstep_run_replica_lag_seconds",
        help: "The worst replay lag of the replicas.",
        kind: "gauge",
        value: |s| s.replica_lag_ms.map(|ms| ms as f64 / 1000.0),
    },
    Family {
        name: "lockstep_run_max_rows_per_second",
        help: "The max_rows_per_second in force (0: no limit).",
        kind: "gauge",
        value: |s| Some(s.settings.max_rows_per_second as f64),
    },
    Family {
        name: "lockstep_run_duty_cycle",
        help: "The duty_cycle in force.",
        kind: "gauge",
        value: |s| Some(s.settings.duty_cycle),
    },
    Family {
        name: "lockstep_run_started_timestamp_seconds",
        help: "When the run started (Unix time).",
        kind: "gauge",
        value: |s| Some(s.run.row.started_epoch),
    },
    Family {
        name: "lockstep_run_updated_timestamp_seconds",
        help: "When the run's state last changed (Unix time).",
        kind: "gauge",
        value: |s| Some(s.run.row.updated_epoch),
    },
];

/// A label value escaped for the text format.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, the rest as Rust prints them.
pub fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

fn labels(st: &RunStatus) -> String {
    format!(
        "run=\"{}\",kind=\"{}\",table=\"{}\"",
        label(&st.run.row.id),
        label(st.run.kind.name()),
        label(&st.run.row.table_name)
    )
}

/// The runs in the Prometheus text format.
pub fn prometheus(runs: &[RunStatus]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP lockstep_run_info A playbook run: its step and status in the labels.\n# TYPE lockstep_run_info gauge"
    );
    for st in runs {
        let _ = writeln!(
            out,
            "lockstep_run_info{{{},step=\"{}\",status=\"{}\"}} 1",
            labels(st),
            label(&st.run.row.step),
            st.run.status.as_str()
        );
    }
    for f in FAMILIES {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            f.name, f.help, f.name, f.kind
        );
        for st in runs {
            if let Some(v) = (f.value)(st) {
                let _ = writeln!(out, "{}{{{}}} {}", f.name, labels(st), number(v));
            }
        }
    }
    out
}

/// What the runner process itself counts while it works (`--metrics-listen`), beside what
/// the state table says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerMetrics {
    /// The step shown last.
    pub step: String,
    pub rows_done: i64,
    pub rows_total: i64,
    pub rows_per_second: f64,
    /// Statements that did not get their locks within lock_timeout (each retried).
    pub lock_waits: u64,
    /// Swap transactions tried (lock waits in the swap, and the one that went through).
    pub swap_attempts: u64,
    /// Events by name (`step_started`, `swapped`, …).
    pub events: std::collections::BTreeMap<String, u64>,
}

impl RunnerMetrics {
    /// Counts an event.
    pub fn event(&mut self, e: &crate::playbook::hooks::Event) {
        use crate::playbook::hooks::EventKind;
        *self.events.entry(e.kind.name().to_string()).or_default() += 1;
        match e.kind {
            EventKind::LockWait => {
                self.lock_waits += 1;
                if e.message == "swap" {
                    self.swap_attempts += 1;
                }
            }
            EventKind::Swapped => self.swap_attempts += 1,
            _ => {}
        }
    }
}

/// The runner's own metrics in the Prometheus text format.
pub fn runner_prometheus(m: &RunnerMetrics) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {}", number(v));
        }
    };
    family(
        "lockstep_runner_step",
        "The step the runner is in (the label).",
        "gauge",
        vec![(format!("{{step=\"{}\"}}", label(&m.step)), 1.0)],
    );
    family(
        "lockstep_runner_rows_done",
        "Rows done of the current batched step, as the runner last reported.",
        "gauge",
        vec![(String::new(), m.rows_done as f64)],
    );
    family(
        "lockstep_runner_rows_total",
        "Rows the current batched step is expected to do.",
        "gauge",
        vec![(String::new(), m.rows_total as f64)],
    );
    family(
        "lockstep_runner_rows_per_second",
        "The runner's rate over its last batches.",
        "gauge",
        vec![(String::new(), m.rows_per_second)],
    );
    family(
        "lockstep_runner_lock_waits_total",
        "Statements that did not get their locks within lock_timeout and were retried.",
        "counter",
        vec![(String::new(), m.lock_waits as f64)],
    );
    family(
        "lockstep_runner_swap_attempts_total",
        "Swap transactions tried.",
        "counter",
        vec![(String::new(), m.swap_attempts as f64)],
    );
    family(
        "lockstep_runner_events_total",
        "Events of the run (the same the hooks get), by name.",
        "counter",
        m.events
            .iter()
            .map(|(k, v)| (format!("{{event=\"{}\"}}", label(k)), *v as f64))
            .collect(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_numbers_follow_the_text_format() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
