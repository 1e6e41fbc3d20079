//! A test hook: with `LOCKSTEP_TEST_HOLD_AT=<point>` a run stops moving at that point (after
//! checkpointing) and waits there until the process is killed, so tests can kill it at every
//! checkpoint. Points: `backfill` (after the first batch), `indexes` (after the first index
//! build), `replay` (after the first replay batch after the builds), `verify` (after the
//! first verified range), `before-swap`, `after-swap`, `reverse` (after the first batch of
//! a rollback's reverse replay), `swapped-back` (a rollback after its swap back, before it
//! drops the reverse slot).
//!
//! And with `LOCKSTEP_TEST_FAULT_AT=<point>` a fault happens once at that point (see
//! [`fault_once`]). Points: `swap-stream` (the logical capture's stream breaks right after
//! the swap's lock is granted).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether the fault of `point` is due now: the first time the environment asks for it.
pub(crate) fn fault_once(point: &str) -> bool {
    static FIRED: AtomicBool = AtomicBool::new(false);
    std::env::var("LOCKSTEP_TEST_FAULT_AT").is_ok_and(|v| v == point)
        && !FIRED.swap(true, Ordering::SeqCst)
}

/// Holds at `point` when the environment asks for it.
pub(crate) async fn hold_point(point: &str) {
    if std::env::var("LOCKSTEP_TEST_HOLD_AT").is_ok_and(|v| v == point) {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}
