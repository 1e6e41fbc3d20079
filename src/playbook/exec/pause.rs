//! `lockstep pause`: the work that can wait (copy, batches, replay) waits while the run is
//! paused; the capture never does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_postgres::Client;

use super::error::{dberr, EngineError};
use super::pace::stopped;
use crate::playbook::hooks::EventKind;
use crate::playbook::state::{self, Status};

/// How the connections of a run say a pause once: the run shows `paused` when every
/// connection at work waits (not when the first one does, while another still finishes its
/// batch), and `running` again when the first goes on.
#[derive(Debug, Default)]
pub(crate) struct PauseGate {
    waiting: AtomicUsize,
    announced: AtomicBool,
}

/// Where the pause gate says what it does: notes, and the `paused` / `resumed` events.
pub(crate) type Report<'r> = (&'r dyn Fn(&str), &'r dyn Fn(EventKind));

/// Waits while `lockstep pause` is in force for the run. `working` counts the connections
/// at work (the wait is announced once all of them wait).
pub(crate) async fn wait_while_paused(
    client: &Client,
    (note, emit): Report<'_>,
    (run_id, stop): (&str, &AtomicBool),
    (gate, working): (&PauseGate, &AtomicUsize),
) -> Result<(), EngineError> {
    let mut waiting = false;
    let result = async {
        loop {
            let paused: bool = client
                .query_one("SELECT paused FROM lockstep.runs WHERE id = $1", &[&run_id])
                .await
                .map_err(dberr("state"))?
                .get(0);
            if !paused {
                return Ok(());
            }
            if !waiting {
                waiting = true;
                gate.waiting.fetch_add(1, Ordering::SeqCst);
            }
            if gate.waiting.load(Ordering::SeqCst) >= working.load(Ordering::SeqCst)
                && !gate.announced.swap(true, Ordering::SeqCst)
            {
                note(
                    "copy paused (triggers keep capturing changes); `lockstep resume` continues it",
                );
                let _ = state::set_status(client, run_id, Status::Paused, None).await;
                emit(EventKind::Paused);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            stopped(stop, run_id)?;
        }
    }
    .await;
    if waiting {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() && gate.announced.swap(false, Ordering::SeqCst) {
            note("copy resumed");
            let _ = state::set_status(client, run_id, Status::Running, None).await;
            emit(EventKind::Resumed);
        }
    }
    result
}
