//! The one batch driver: a loop of short transactions over a table (keyset batches of a
//! copy or an update, ranges of a verification, batches of a log replay, an undo), with the
//! checks every such loop needs: stop and abort, `lockstep pause`, giving way to the
//! application's locks, batch sizes that follow the target batch time, and pacing.
//!
//! What a batch does, and where it resumes from (a high-water key, the head of a log), is
//! the caller's: the body runs one batch of the size it is given and says what happened.

use std::time::{Duration, Instant};

use super::backlog::BEHIND_STRETCH;
use super::conn::Conn;
use super::error::{dberr, EngineError};
use super::pace::next_batch_size;
use super::retry::Retry;

/// How batches are sized.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sizing {
    /// Starting at `first`, sized to take the playbook's `target_batch_ms`, never below `min`.
    Adaptive { first: u32, min: u32 },
    /// Always this size.
    Fixed(u32),
}

/// What the driver does between batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// The duty cycle, `max_rows_per_second` and `max_replica_lag`.
    Full,
    /// The duty cycle only.
    Rest,
    /// Nothing.
    None,
    /// A replay's: as `Full` while it keeps up; while it is behind (see `backlog.rs`), no
    /// rest for the duty cycle, and batches sized for a longer target time.
    Replay,
}

/// How a loop of batches runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching<'a> {
    /// The step, for messages.
    pub step: &'a str,
    pub sizing: Sizing,
    /// Waits while `lockstep pause` is in force (checked before the first batch, then
    /// whenever a batch says the run is paused).
    pub pause: bool,
    /// Gives way to the application's locks: a batch that meets a lock timeout or a deadlock
    /// is run again after a backoff, up to the playbook's attempts.
    pub give_way: bool,
    pub pacing: Pacing,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Rows the batch handled (what pacing counts).
    pub rows: i64,
    /// Whether there is more to do.
    pub more: bool,
    /// Whether `lockstep pause` is in force (as the batch's checkpoint read it).
    pub paused: bool,
}

/// Why a batch failed: a database error (which the driver may retry) or an error of the run.
pub(crate) enum BatchError {
    Db(tokio_postgres::Error),
    Run(EngineError),
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(e: tokio_postgres::Error) -> Self {
        BatchError::Db(e)
    }
}

impl From<EngineError> for BatchError {
    fn from(e: EngineError) -> Self {
        BatchError::Run(e)
    }
}

impl Conn<'_, '_> {
    /// Runs `batch` (given the size of the batch) until it says there is no more.
    pub(crate) async fn drive(
        &self,
        how: Batching<'_>,
        mut batch: impl AsyncFnMut(u32) -> Result<Outcome, BatchError>,
    ) -> Result<(), EngineError> {
        let mut size = match how.sizing {
            Sizing::Adaptive { first, min } => first.max(min),
            Sizing::Fixed(n) => n,
        };
        let mut give_way = Retry::batches(&self.exec.swap);
        let mut check_pause = true;
        loop {
            self.check()?;
            if how.pause && check_pause {
                self.wait_while_paused().await?;
            }
            let t0 = Instant::now();
            let out = match batch(size).await {
                Ok(o) => {
                    give_way.reset();
                    o
                }
                Err(BatchError::Db(e)) if how.give_way => {
                    self.retry_failed(&mut give_way, e, how.step).await?;
                    continue;
                }
                Err(BatchError::Db(e)) => return Err(dberr(how.step)(e)),
                Err(BatchError::Run(e)) => return Err(e),
            };
            check_pause = out.paused;
            if !out.more {
                return Ok(());
            }
            let elapsed = t0.elapsed();
            if let Sizing::Adaptive { min, .. } = how.sizing {
                let mut target = self.exec.backfill().target_batch_ms;
                if how.pacing == Pacing::Replay && self.exec.backlog.behind() {
                    target *= BEHIND_STRETCH;
                }
                size = next_batch_size(size, elapsed, target).max(min);
            }
            self.between(how.pacing, out.rows, elapsed).await?;
        }
    }

    async fn between(
        &self,
        pacing: Pacing,
        rows: i64,
        elapsed: Duration,
    ) -> Result<(), EngineError> {
        match pacing {
            Pacing::Rest => {
                self.rest(elapsed).await;
                Ok(())
            }
            Pacing::Replay if self.exec.backlog.behind() => self.limits(rows, elapsed).await,
            Pacing::Full | Pacing::Replay => self.pace(rows, elapsed).await,
            Pacing::None => Ok(()),
        }
    }
}
