//! The online partitioning engine against a real (throwaway) PostgreSQL, with a concurrent
//! workload: row-for-row equality after the conversion, `kill -9` at every checkpoint and
//! then resume or rollback, a transaction blocking the swap, dependents (sequences,
//! identity, grants, foreign keys, views) forward and back, refusals, awkward identifiers,
//! composite keys and list partitions, two runners at once, and `lockstep plan`. Three
//! tests pin down races the engine once lost: a long transaction during the index builds,
//! application row locks against the copy's key order, and a key update racing a batch.
//!
//! The workload keeps an independent copy of everything it commits in a plain side table
//! (`expected`), written in the same transaction as each write, so "every committed write is
//! present" is a comparison with that table, row for row.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../common/db.rs"]
mod db;

mod capture;
mod commands;
mod dependents;
mod events;
mod fidelity;
mod kills;
mod pacing;
mod rebuild;
mod refusals;
mod replay;
mod reverse;
mod workload;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use db::{assert_exit, cluster, connect, rt, text, wait_for, Db, Running};
use events::*;
use lockstep::db::cluster::TempCluster;
use tokio_postgres::Client;

/// `lockstep resume` finishes, and verification found the copy exact.
fn resume_exactly(db: &Db) {
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
}

/// The copy was exact: verification never had to copy a range again.
fn assert_exact_copy(output: &str) {
    assert!(
        !output.contains("a range differs"),
        "the copy was not exact, verification had to repair it:\n{output}"
    );
}

/// What the partition tests read of a run.
trait Runs {
    /// (step, status, rows_copied, paused) of the only run on the table.
    fn run_state(&self) -> Option<(String, String, i64, bool)>;

    /// Waits until a runner started with `LOCKSTEP_TEST_HOLD_AT=point` is holding there:
    /// the state table shows the point was reached and the runner's connection has been idle
    /// for a second.
    fn wait_held(&self, run: &mut Running, point: &str);
}

impl Runs for Db {
    /// (step, status, rows_copied, paused) of the only run on the table.
    fn run_state(&self) -> Option<(String, String, i64, bool)> {
        let exists: bool = self.one("SELECT to_regclass('lockstep.runs') IS NOT NULL");
        if !exists {
            return None;
        }
        self.query(
            "SELECT step, status, rows_copied, paused FROM lockstep.runs ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .first()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    }

    /// Waits until a runner started with `LOCKSTEP_TEST_HOLD_AT=point` is holding there:
    /// the state table shows the point was reached and the runner's connection has been idle
    /// for a second.
    fn wait_held(&self, run: &mut Running, point: &str) {
        let start = Instant::now();
        loop {
            if let Some(status) = run.try_wait() {
                panic!(
                    "the runner exited ({status}) before holding at {point}:\n{}",
                    run.output()
                );
            }
            let reached = match self.run_state() {
                Some((step, _, copied, _)) => match point {
                    "backfill" => step == "capture" && copied > 0,
                    "indexes" => step == "backfill",
                    "replay" | "verify" => step == "indexes",
                    "before-swap" => step == "verified",
                    "after-swap" => step == "swapped",
                    _ => panic!("unknown hold point {point}"),
                },
                None => false,
            };
            if reached {
                if let Some(pid) = self.runner_pid() {
                    let idle: bool = self.query(
                        "SELECT coalesce(state = 'idle' AND state_change < now() - interval '1 s', false) FROM pg_stat_activity WHERE pid = $1",
                        &[&pid],
                    )
                    .first()
                    .is_some_and(|r| r.get(0));
                    if idle {
                        return;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the runner did not hold at {point} within 90 s (state {:?}):\n{}",
                self.run_state(),
                run.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
