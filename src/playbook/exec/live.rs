//! What can be changed while a run works, from any terminal: the pacing settings
//! (`lockstep set`, re-read between batches, at most once a second) and the swap on command
//! (`[swap] mode = "manual"`: the run waits, catching up, until `lockstep swap`).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::error::{dberr, EngineError};
use crate::playbook::engine::live_settings;
use crate::playbook::settings::Backfill;
use crate::playbook::state::{self, Controls, Status};

/// How often a runner looks for changed settings.
const REREAD: Duration = Duration::from_secs(1);

/// The pacing settings of a run: the playbook's, with what `lockstep set` changed.
#[derive(Debug)]
pub(crate) struct Live {
    playbook: Backfill,
    current: RefCell<Backfill>,
    read_at: Cell<Option<Instant>>,
}

impl Live {
    pub(crate) fn new(playbook: Backfill) -> Live {
        Live {
            current: RefCell::new(playbook.clone()),
            playbook,
            read_at: Cell::new(None),
        }
    }

    /// The settings in force.
    pub(crate) fn get(&self) -> Backfill {
        self.current.borrow().clone()
    }

    /// Re-reads the controls of `run_id` when the last read is a second old; returns what
    /// changed, for a note (a failed read keeps the settings as they are).
    pub(crate) async fn refresh(&self, client: &Client, run_id: &str) -> Option<String> {
        if self.read_at.get().is_some_and(|t| t.elapsed() < REREAD) {
            return None;
        }
        self.read_at.set(Some(Instant::now()));
        let controls = state::controls(client, run_id).await.ok()?;
        let next = live_settings(self.playbook.clone(), &controls);
        let before = self.current.replace(next.clone());
        changes(&before, &next)
    }
}

/// What differs between two sets of settings, as a sentence.
fn changes(before: &Backfill, after: &Backfill) -> Option<String> {
    let mut parts = Vec::new();
    if before.max_rows_per_second != after.max_rows_per_second {
        parts.push(format!(
            "max_rows_per_second {} → {}",
            before.max_rows_per_second, after.max_rows_per_second
        ));
    }
    if before.target_batch_ms != after.target_batch_ms {
        parts.push(format!(
            "target_batch_ms {} → {}",
            before.target_batch_ms, after.target_batch_ms
        ));
    }
    if before.duty_cycle != after.duty_cycle {
        parts.push(format!(
            "duty_cycle {} → {}",
            before.duty_cycle, after.duty_cycle
        ));
    }
    (!parts.is_empty()).then(|| format!("settings changed: {}", parts.join(", ")))
}

/// Whether `lockstep swap` was asked for `run_id`; a request found is taken (cleared), so
/// that a swap that gives up waits for the next one.
pub(crate) async fn take_swap_request(client: &Client, run_id: &str) -> Result<bool, EngineError> {
    let c: Controls = state::controls(client, run_id)
        .await
        .map_err(dberr("lockstep.controls"))?;
    if c.swap_requested {
        client
            .execute(
                "UPDATE lockstep.controls SET swap_requested_at = NULL, updated_at = now() WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(dberr("lockstep.controls"))?;
    }
    Ok(c.swap_requested)
}

/// Marks the run ready to swap (or working again).
pub(crate) async fn set_ready(
    client: &Client,
    run_id: &str,
    ready: bool,
) -> Result<(), EngineError> {
    let status = if ready {
        Status::ReadyToSwap
    } else {
        Status::Running
    };
    state::set_status(client, run_id, status, None)
        .await
        .map_err(dberr("state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_setting_that_moved() {
        let a = Backfill::default();
        assert_eq!(changes(&a, &a), None);
        let b = Backfill {
            max_rows_per_second: 500,
            duty_cycle: 0.3,
            ..a.clone()
        };
        assert_eq!(
            changes(&a, &b).as_deref(),
            Some("settings changed: max_rows_per_second 0 → 500, duty_cycle 0.6 → 0.3")
        );
    }
}
