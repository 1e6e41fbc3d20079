//! `lockstep fleet status`: the rollout's state, rebuilt from what every target recorded.
//!
//! JSON, schema version 1 (fields are only ever added within a version):
//!
//! ```text
//! { "version": 1, "fleet": path, "work": "migrations" | "playbook", "source": path,
//!   "migrations": count | null,
//!   "state": "complete" | "halted" | "in_progress" | "not_started",
//!   "summary": { "targets", "up_to_date", "pending", "partial", "failed", "changed",
//!                "untouched", "unreachable" },
//!   "targets": [ { "target", "wave", "state": "up_to_date" | "pending" | "partial" | "failed"
//!                  | "changed" | "untouched" | "unreachable",
//!                  "version": the last migration applied (a playbook: the run's step) | null,
//!                  "applied", "pending", "error": string | null,
//!                  "run": { "id", "step", "status" } | null } ] }
//! ```

use std::collections::BTreeMap;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};

use super::rollout::{playbook_for, Job};
use super::{waves, Fleet, Work};
use crate::apply::{self, RecordStatus, Target};
use crate::playbook::engine;
use crate::playbook::state::Status;

/// Where a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetState {
    /// Everything applied (a playbook: its run completed).
    UpToDate,
    /// Some applied, more to apply (a playbook: rolled back, to run again).
    Pending,
    /// A migration or run stopped half way (interrupted, or a run still at work).
    Partial,
    Failed,
    /// An applied migration's file changed since.
    Changed,
    /// Nothing recorded: the rollout has not reached it.
    Untouched,
    /// Could not be read (no connection, no such schema or table).
    Unreachable,
}

impl TargetState {
    pub const ALL: [TargetState; 7] = [
        TargetState::UpToDate,
        TargetState::Pending,
        TargetState::Partial,
        TargetState::Failed,
        TargetState::Changed,
        TargetState::Untouched,
        TargetState::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::UpToDate => "up_to_date",
            TargetState::Pending => "pending",
            TargetState::Partial => "partial",
            TargetState::Failed => "failed",
            TargetState::Changed => "changed",
            TargetState::Untouched => "untouched",
            TargetState::Unreachable => "unreachable",
        }
    }
}

/// A playbook run as a target records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub id: String,
    pub step: String,
    pub status: String,
}

/// One target's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub label: String,
    pub wave: String,
    pub state: TargetState,
    /// The last migration applied, or the run's step.
    pub version: Option<String>,
    pub applied: usize,
    pub pending: usize,
    pub error: Option<String>,
    pub run: Option<RunInfo>,
}

/// The rollout's state, target by target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetStatus {
    pub fleet: String,
    pub work: &'static str,
    pub source: String,
    /// The number of migrations (a migrations fleet).
    pub migrations: Option<usize>,
    pub targets: Vec<TargetStatus>,
}

impl FleetStatus {
    /// How many targets are in each state.
    pub fn summary(&self) -> BTreeMap<TargetState, usize> {
        let mut m: BTreeMap<TargetState, usize> =
            TargetState::ALL.iter().map(|s| (*s, 0)).collect();
        for t in &self.targets {
            *m.entry(t.state).or_default() += 1;
        }
        m
    }

    /// `complete` (every target up to date), `halted` (a target failed, or changed),
    /// `not_started` (no target touched), else `in_progress`.
    pub fn state(&self) -> &'static str {
        let s = self.summary();
        let n = |k: TargetState| s.get(&k).copied().unwrap_or(0);
        if n(TargetState::UpToDate) == self.targets.len() {
            "complete"
        } else if n(TargetState::Failed) + n(TargetState::Changed) > 0 {
            "halted"
        } else if n(TargetState::Untouched) + n(TargetState::Unreachable) == self.targets.len() {
            "not_started"
        } else {
            "in_progress"
        }
    }

    pub fn json(&self) -> Value {
        let summary = self.summary();
        let mut s = serde_json::Map::new();
        s.insert("targets".into(), json!(self.targets.len()));
        for (k, v) in &summary {
            s.insert(k.as_str().into(), json!(v));
        }
        json!({
            "version": 1,
            "fleet": self.fleet,
            "work": self.work,
            "source": self.source,
            "migrations": self.migrations,
            "state": self.state(),
            "summary": s,
            "targets": self.targets.iter().map(|t| json!({
                "target": t.label,
                "wave": t.wave,
                "state": t.state.as_str(),
                "version": t.version,
                "applied": t.applied,
                "pending": t.pending,
                "error": t.error,
                "run": t.run.as_ref().map(|r| json!({"id": r.id, "step": r.step, "status": r.status})),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Reads every target's record (`concurrency` at once) and rebuilds the rollout's state.
pub async fn status(
    fleet: &Fleet,
    job: &Job<'_>,
    targets: &[Target],
    concurrency: usize,
) -> FleetStatus {
    let mut wave_of = vec![String::new(); targets.len()];
    for w in waves(targets.len(), &fleet.rollout) {
        for i in w.targets {
            wave_of[i] = w.name.clone();
        }
    }
    let mut out: Vec<(usize, TargetStatus)> = Vec::with_capacity(targets.len());
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    loop {
        while running.len() < concurrency.max(1) && next < targets.len() {
            let (i, t, wave) = (next, &targets[next], wave_of[next].clone());
            running.push(async move { (i, one(t, job, wave).await) });
            next += 1;
        }
        match running.next().await {
            Some(r) => out.push(r),
            None => break,
        }
    }
    out.sort_by_key(|(i, _)| *i);
    let (work, source) = match &fleet.work {
        Work::Migrations(d) => ("migrations", d.display().to_string()),
        Work::Playbook { path, .. } => ("playbook", path.display().to_string()),
    };
    FleetStatus {
        fleet: fleet.path.display().to_string(),
        work,
        source,
        migrations: match job {
            Job::Migrations(l) => Some(l.migrations.len()),
            Job::Playbook { .. } => None,
        },
        targets: out.into_iter().map(|(_, s)| s).collect(),
    }
}

async fn one(target: &Target, job: &Job<'_>, wave: String) -> TargetStatus {
    let mut st = TargetStatus {
        label: target.label.clone(),
        wave,
        state: TargetState::Untouched,
        version: None,
        applied: 0,
        pending: 0,
        error: None,
        run: None,
    };
    match job {
        Job::Migrations(loaded) => match apply::status(target).await {
            Err(e) => {
                st.state = TargetState::Unreachable;
                st.error = Some(e.to_string());
            }
            Ok(rec) => {
                let pending = rec.pending(&loaded.migrations);
                st.pending = pending.len();
                st.applied = loaded.migrations.len() - pending.len();
                st.version = rec
                    .last_applied(&loaded.migrations)
                    .map(|m| m.version.clone());
                let unfinished = rec.unfinished();
                st.error = unfinished.and_then(|r| r.error.clone());
                st.state = if !rec.changed(&loaded.migrations).is_empty() {
                    TargetState::Changed
                } else if let Some(r) = unfinished {
                    if r.status == RecordStatus::Failed {
                        TargetState::Failed
                    } else {
                        TargetState::Partial
                    }
                } else if rec.records.is_empty() {
                    TargetState::Untouched
                } else if pending.is_empty() {
                    TargetState::UpToDate
                } else {
                    TargetState::Pending
                };
            }
        },
        Job::Playbook { text, playbook } => {
            let read = async {
                let (pb, _) = playbook_for(text, playbook, target)?;
                let client = target
                    .conn
                    .with_application_name("lockstep status")
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                engine::latest_on_table(&client, &pb)
                    .await
                    .map_err(|e| e.to_string())
            };
            match read.await {
                Err(e) => {
                    st.state = TargetState::Unreachable;
                    st.error = Some(e);
                }
                Ok(None) => {}
                Ok(Some(run)) => {
                    st.version = Some(run.step_name().to_string());
                    st.state = if run.is_complete() {
                        TargetState::UpToDate
                    } else if run.is_rolled_back() {
                        TargetState::Pending
                    } else if run.status == Status::Failed {
                        TargetState::Failed
                    } else {
                        TargetState::Partial
                    };
                    if run.status == Status::Failed {
                        st.error = run.row.message.clone();
                    }
                    st.run = Some(RunInfo {
                        id: run.id().to_string(),
                        step: run.step_name().to_string(),
                        status: run.status.as_str().to_string(),
                    });
                }
            }
        }
    }
    st
}
