//! Running a shadow rebuild: the steps in order, each checkpointed in the state table (in
//! the same transaction as its work where it is one transaction), every step safe to run
//! again after a crash; the rollback (drop the copy before the swap, swap back after it) and
//! finalize.

use super::{ShadowPlan, TriggerLog};
use crate::playbook::exec::{hold_point, EngineError, Exec};
use crate::playbook::state::{self, CopyState, LaneCounts, Status};

/// A log of at least this many batches per connection of the crew is replayed in lanes.
const LANE_BATCHES: i64 = 2;

/// The steps of a shadow rebuild, in order; a run's `step` is the last one completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Created,
    Shadow,
    Capture,
    Backfill,
    Indexes,
    Verified,
    Swapped,
    Validated,
    Finalized,
    RolledBack,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Created,
        Step::Shadow,
        Step::Capture,
        Step::Backfill,
        Step::Indexes,
        Step::Verified,
        Step::Swapped,
        Step::Validated,
        Step::Finalized,
        Step::RolledBack,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Created => state::CREATED,
            Step::Shadow => "shadow",
            Step::Capture => "capture",
            Step::Backfill => "backfill",
            Step::Indexes => "indexes",
            Step::Verified => "verified",
            Step::Swapped => "swapped",
            Step::Validated => "validated",
            Step::Finalized => state::FINALIZED,
            Step::RolledBack => state::ROLLED_BACK,
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A shadow run at work: the execution context, the frozen plan, where the run is.
pub(super) struct Runner<'r, 'e> {
    pub exec: Exec<'e>,
    pub plan: &'r ShadowPlan,
    pub step: Step,
    pub copy: CopyState,
    pub capture: TriggerLog<'r>,
    /// Key ranges the verification left to the swap (logical capture, see verify.rs).
    pub unsettled: Vec<super::verify::KeyRange>,
}

/// Runs the steps after `step`, up to and including the validation after the swap.
pub(crate) async fn forward(
    exec: Exec<'_>,
    plan: &ShadowPlan,
    step: Step,
    copy: CopyState,
) -> Result<(), EngineError> {
    let mut r = Runner {
        exec,
        plan,
        step,
        copy,
        capture: TriggerLog::new(plan),
        unsettled: Vec::new(),
    };
    r.forward_steps().await
}

/// What `lockstep status` shows of a shadow run besides its row: changes logged and not
/// replayed yet, and the copy's lanes.
pub(crate) async fn status(
    client: &tokio_postgres::Client,
    plan: &ShadowPlan,
    run_id: &str,
) -> (Option<i64>, Option<LaneCounts>) {
    let capture = TriggerLog::new(plan);
    (
        capture.backlog(client).await,
        state::lane_counts(client, run_id).await,
    )
}

/// How a shadow run captures changes, for `lockstep status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureStatus {
    /// Logical decoding's slot (none: the trigger captures).
    pub slot: Option<String>,
    /// The WAL the slot holds back now, in bytes (none when it does not exist).
    pub retained_wal: Option<i64>,
    /// The slot is the reverse sync's (after the swap, `[swap] reverse = "logical"`).
    pub reverse: bool,
    /// `[capture] max_retained_wal`, in bytes.
    pub limit: Option<u64>,
}

pub(crate) async fn capture_status(
    client: &tokio_postgres::Client,
    plan: &ShadowPlan,
) -> CaptureStatus {
    let forward = plan.capture().retained(client).await;
    // After the swap, the reverse slot (`reverse = "logical"`) keeps the changes.
    if forward.is_none() {
        if let Some((slot, held)) = super::reverse_slot::retained(client, plan).await {
            return CaptureStatus {
                slot: Some(slot),
                retained_wal: Some(held),
                reverse: true,
                limit: plan.logical.as_ref().map(|l| l.max_retained_wal),
            };
        }
    }
    CaptureStatus {
        slot: plan.logical.as_ref().map(|l| l.slot.clone()),
        retained_wal: forward,
        reverse: false,
        limit: plan.logical.as_ref().map(|l| l.max_retained_wal),
    }
}

impl Runner<'_, '_> {
    async fn checkpoint(&mut self, step: Step) -> Result<(), EngineError> {
        let status = if step == Step::Validated {
            Status::Swapped
        } else {
            Status::Running
        };
        state::set_step(
            self.exec.client,
            &self.exec.run_id,
            step.as_str(),
            status,
            None,
        )
        .await
        .map_err(crate::playbook::exec::dberr("checkpoint"))?;
        self.step = step;
        Ok(())
    }

    fn done(&self, step: Step) -> bool {
        self.step >= step
    }

    async fn forward_steps(&mut self) -> Result<(), EngineError> {
        if self.plan.logical.is_some() {
            // The stream's tokens are committed from a connection of their own.
            self.exec.open_flusher().await;
        }
        if !self.done(Step::Shadow) {
            let detail = self.plan.shadow();
            self.ddl_step(Step::Shadow, &detail, self.plan.shadow_sql())
                .await?;
        }
        self.exec.check()?;
        if !self.done(Step::Capture) {
            if self.plan.logical.is_some() {
                // The slot cannot be made in a transaction that wrote: the log and the
                // publication first, then the slot, then the checkpoint.
                self.exec.step(Step::Capture.as_str(), "logical decoding");
                self.exec
                    .main()
                    .with_retry(&self.capture.install_sql(), "capture")
                    .await?;
                self.capture.create_slot(self.exec.main()).await?;
                self.checkpoint(Step::Capture).await?;
            } else {
                self.ddl_step(
                    Step::Capture,
                    "change-capture trigger",
                    self.capture.install_sql(),
                )
                .await?;
            }
        } else if !self.done(Step::Swapped) && !self.capture.slot_exists(self.exec.client).await? {
            return Err(EngineError::State(format!(
                "the capture's replication slot {} is gone (dropped because it held back too much WAL, or by someone): the changes since are lost to this run; roll it back (`lockstep rollback`) and run it again",
                self.plan.logical.as_ref().map_or("", |l| l.slot.as_str())
            )));
        }
        self.exec.check()?;
        if !self.done(Step::Backfill) {
            self.backfill().await?;
            self.checkpoint(Step::Backfill).await?;
            state::drop_lanes(self.exec.client, &self.exec.run_id)
                .await
                .map_err(crate::playbook::exec::dberr("backfill"))?;
        }
        self.exec.check()?;
        if !self.done(Step::Indexes) {
            self.indexes().await?;
            self.checkpoint(Step::Indexes).await?;
        }
        self.exec.check()?;
        if !self.done(Step::Verified) {
            self.exec
                .step("replay", "changes logged during the copy and the builds");
            let held = self.replay_in_lanes(true).await?;
            self.catch_up(!held).await?;
            self.verify().await?;
            // Ranges left to the swap's comparison are known to this process only: a run
            // resumed before the swap verifies again.
            if self.unsettled.is_empty() {
                self.checkpoint(Step::Verified).await?;
            }
        }
        self.exec.check()?;
        if !self.done(Step::Swapped) {
            if self.exec.swap.manual {
                let detail = self.plan.source();
                self.exec
                    .wait_for_swap(&detail, async || self.catch_up(false).await)
                    .await?;
            }
            hold_point("before-swap").await;
            self.swap().await?;
            hold_point("after-swap").await;
        }
        if !self.done(Step::Validated) {
            // The capture's slot, once the swap has committed (idempotent).
            self.capture.stop_stream().await;
            self.exec
                .main()
                .with_retry(&self.capture.logical_discard_sql(), "swap")
                .await?;
            self.exec.step("validate", "re-pointed foreign keys");
            for v in self.plan.validate_sql() {
                self.exec
                    .main()
                    .with_retry(std::slice::from_ref(&v), "validate")
                    .await?;
            }
            self.checkpoint(Step::Validated).await?;
        }
        Ok(())
    }

    /// Runs a step's DDL and its checkpoint in one transaction (with the retry policy), so a
    /// crash leaves either all of it or none.
    async fn ddl_step(
        &mut self,
        step: Step,
        detail: &str,
        mut sql: Vec<String>,
    ) -> Result<(), EngineError> {
        self.exec.step(step.as_str(), detail);
        sql.push(state::set_step_sql(&self.exec.run_id, step.as_str(), None));
        self.exec.main().with_retry(&sql, step.as_str()).await?;
        self.step = step;
        Ok(())
    }

    /// Logical capture: reads the slot into the log (unless it was read less than a second
    /// ago, or `always`), and holds the caller back while the slot holds back more than
    /// 80 % of `max_retained_wal` (saying so once), reading it again every second; past the
    /// limit the run stops.
    pub(super) async fn pump_now(
        &self,
        conn: crate::playbook::exec::Conn<'_, '_>,
        always: bool,
    ) -> Result<(), EngineError> {
        if self.plan.logical.is_none() {
            return Ok(());
        }
        let mut told = false;
        loop {
            self.capture.pump(conn, always).await?;
            if self.capture.check_retained(conn).await? {
                return Ok(());
            }
            if !told {
                told = true;
                conn.note("the capture's slot holds back more than 80% of [capture] max_retained_wal: the copy waits for it (a long transaction holds the slot back)");
            }
            conn.check()?;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// Replays a large log with every connection of the crew at once, each its share of the
    /// keys (a lane), until each lane has replayed its share of the log as it was when the
    /// lanes began (or found its part empty); the replay on the main connection then does
    /// the rest. The helpers start at once, busy application or not: the duty cycle is
    /// shared by the connections working (each rests its part), so while the replay keeps up
    /// the lanes together rest as one connection would; while it is behind, none rests. A
    /// log of a few batches, or a crew of one, is left to that replay alone. With `hold`, the
    /// main connection's lane holds at the test hook `replay`. Returns whether the lanes ran.
    pub(super) async fn replay_in_lanes(&mut self, hold: bool) -> Result<bool, EngineError> {
        let settings = self.exec.backfill();
        let (workers, batch) = (settings.workers, i64::from(settings.batch_size));
        if workers < 2 {
            return Ok(false);
        }
        // With logical capture, what the stream holds counts too.
        self.capture.pump(self.exec.main(), true).await?;
        let Some(backlog) = self.capture.backlog(self.exec.client).await else {
            return Ok(false);
        };
        if backlog < LANE_BATCHES * batch * i64::from(workers) {
            return Ok(false);
        }
        self.exec.crew().await;
        let lanes = self.exec.crew_size() as u32;
        if lanes < 2 {
            return Ok(false);
        }
        self.exec.note(&format!(
            "replay: {backlog} logged changes, in {lanes} lanes (each connection replays its share of the keys)"
        ));
        let stop = std::cell::Cell::new(false);
        // What each connection replayed.
        let per_conn = std::cell::RefCell::new(vec![0u64; lanes as usize]);
        let quota = (backlog as u64).div_ceil(u64::from(lanes));
        let this = &*self;
        this.exec
            .in_lanes_at_once((0..lanes).collect(), async |conn, i, lane| {
                let n = this
                    .capture
                    .catch_up_lane(conn, (lane, lanes), (i == 0, hold && i == 0), quota, &stop)
                    .await?;
                per_conn.borrow_mut()[i] += n;
                Ok(())
            })
            .await?;
        if stop.get() {
            self.exec.note(
                "replay: two lanes met on one key (a key written two ways): the rest is replayed on one connection",
            );
        }
        let per_conn = per_conn.into_inner();
        self.exec.note(&format!(
            "replay: {} logged changes applied in {lanes} lanes ({} by each connection)",
            per_conn.iter().sum::<u64>(),
            per_conn
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" + ")
        ));
        Ok(true)
    }

    /// Replays the log on the main connection, before an attempt at the swap: with logical
    /// capture, until the stream holds little.
    pub(super) async fn catch_up_before_swap(&self) -> Result<(), EngineError> {
        self.capture
            .catch_up(self.exec.main(), false, true)
            .await
            .map(|_| ())
    }

    /// Replays the log on the main connection; with `hold`, reports what it replayed.
    pub(super) async fn catch_up(&self, hold: bool) -> Result<(), EngineError> {
        let replayed = self.capture.catch_up(self.exec.main(), hold, false).await?;
        if replayed > 0 && hold {
            self.exec
                .note(&format!("replay: {replayed} logged changes applied"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_as_written_and_in_order() {
        for (i, s) in Step::ALL.into_iter().enumerate() {
            assert_eq!(Step::parse(s.as_str()), Some(s));
            if i > 0 {
                assert!(Step::ALL[i - 1] < s);
            }
        }
        assert_eq!(Step::parse("done"), None);
    }
}
