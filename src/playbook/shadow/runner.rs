//! Running a shadow rebuild: the steps in order, each checkpointed in the state table (in
//! the same transaction as its work where it is one transaction), every step safe to run
//! again after a crash; the rollback (drop the copy before the swap, swap back after it) and
//! finalize.

use std::cell::Cell;

use super::{ShadowPlan, TriggerLog};
use crate::playbook::exec::{hold_point, try_tx, EngineError, Exec, Retry};
use crate::playbook::state::{self, CopyState, LaneCounts, Status};

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
        capture: TriggerLog {
            plan,
            unvacuumed: Cell::new(0),
        },
    };
    r.forward_steps().await
}

/// Undoes a run: before the swap, drops what it created; after the swap (before finalize),
/// swaps back to the original table, which the reverse trigger kept current.
pub(crate) async fn rollback(
    exec: Exec<'_>,
    plan: &ShadowPlan,
    step: Step,
) -> Result<(), EngineError> {
    let conn = exec.main();
    if step >= Step::Swapped {
        // Rows the old table's types cannot hold would be lost.
        if let Some(t) = plan.unsynced_table() {
            if conn.exists(&t, "rollback").await? {
                let r = conn
                    .query_one(
                        &format!("SELECT count(*), max(lockstep_error) FROM {t}"),
                        &[],
                        "rollback",
                    )
                    .await?;
                let n: i64 = r.get(0);
                if n > 0 {
                    return Err(EngineError::State(format!(
                        "{n} row(s) written since the swap hold values the old table's column types cannot ({}): swapping back would lose them; fix or delete them, then empty {t}",
                        r.get::<_, Option<String>>(1).unwrap_or_default()
                    )));
                }
            }
        }
        exec.step("swap back", &plan.source());
        let mut sql = plan.swap_back_sql();
        sql.push(state::set_step_sql(
            &exec.run_id,
            Step::RolledBack.as_str(),
            Some(Status::RolledBack),
        ));
        conn.with_retry(&sql, "swap").await?;
        for v in plan.validate_sql() {
            conn.with_retry(std::slice::from_ref(&v), "validate")
                .await?;
        }
    } else {
        exec.step("drop the copy", &plan.shadow());
        for s in plan.drop_shadow_sql() {
            conn.with_retry(std::slice::from_ref(&s), "rollback")
                .await?;
        }
        state::set_step(
            exec.client,
            &exec.run_id,
            Step::RolledBack.as_str(),
            Status::RolledBack,
            None,
        )
        .await
        .map_err(crate::playbook::exec::dberr("state"))?;
        state::drop_lanes(exec.client, &exec.run_id)
            .await
            .map_err(crate::playbook::exec::dberr("state"))?;
    }
    Ok(())
}

/// After the swap: drops the reverse trigger and the old table.
pub(crate) async fn finalize(exec: Exec<'_>, plan: &ShadowPlan) -> Result<(), EngineError> {
    exec.step("finalize", &plan.old());
    let conn = exec.main();
    for s in plan.finalize_sql() {
        conn.with_retry(std::slice::from_ref(&s), "finalize")
            .await?;
    }
    state::set_step(
        exec.client,
        &exec.run_id,
        Step::Finalized.as_str(),
        Status::Finalized,
        None,
    )
    .await
    .map_err(crate::playbook::exec::dberr("state"))
}

/// What `lockstep status` shows of a shadow run besides its row: changes logged and not
/// replayed yet, and the copy's lanes.
pub(crate) async fn status(
    client: &tokio_postgres::Client,
    plan: &ShadowPlan,
    run_id: &str,
) -> (Option<i64>, Option<LaneCounts>) {
    let capture = TriggerLog {
        plan,
        unvacuumed: Cell::new(0),
    };
    (
        capture.backlog(client).await,
        state::lane_counts(client, run_id).await,
    )
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
        if !self.done(Step::Shadow) {
            let detail = self.plan.shadow();
            self.ddl_step(Step::Shadow, &detail, self.plan.shadow_sql())
                .await?;
        }
        self.exec.check()?;
        if !self.done(Step::Capture) {
            self.ddl_step(
                Step::Capture,
                "change-capture trigger",
                self.capture.install_sql(),
            )
            .await?;
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
            self.catch_up(true).await?;
            self.verify().await?;
            self.checkpoint(Step::Verified).await?;
        }
        self.exec.check()?;
        if !self.done(Step::Swapped) {
            hold_point("before-swap").await;
            self.swap().await?;
            hold_point("after-swap").await;
        }
        if !self.done(Step::Validated) {
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

    /// Replays the log on the main connection; with `hold`, reports what it replayed.
    pub(super) async fn catch_up(&self, hold: bool) -> Result<(), EngineError> {
        let replayed = self.capture.catch_up(self.exec.main(), hold).await?;
        if replayed > 0 && hold {
            self.exec
                .note(&format!("replay: {replayed} logged changes applied"));
        }
        Ok(())
    }

    /// The swap: one transaction with the retry policy. What is left in the log is replayed
    /// under its lock, so the runner catches up right before every attempt: a backlog grown
    /// during a backoff would otherwise hold the application up for its whole replay.
    async fn swap(&mut self) -> Result<(), EngineError> {
        let mut sql = self.plan.swap_sql();
        sql.push(state::set_step_sql(
            &self.exec.run_id,
            Step::Swapped.as_str(),
            Some(Status::Running),
        ));
        let mut retry = Retry::new(&self.exec.swap);
        self.exec.step("swap", &self.plan.source());
        let conn = self.exec.main();
        loop {
            self.catch_up(false).await?;
            match try_tx(conn.client, &sql, self.exec.swap.lock_timeout_ms).await {
                Ok(()) => break,
                Err(e) => conn.retry_failed(&mut retry, e, "swap").await?,
            }
        }
        self.step = Step::Swapped;
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
