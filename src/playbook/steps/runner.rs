//! Running a plan of steps with the execution core's guarantees: every DDL under the
//! playbook's lock_timeout with retries and backoff (giving up with the blocking backends
//! named), concurrent index builds that survive long transactions and INVALID leftovers,
//! batches that are throttled, pausable and checkpointed, a checkpoint per step (in the
//! step's own transaction where the step is one), stop at safe points, resume, rollback
//! (each completed step undone in reverse order) and finalize.

use std::time::Instant;

use tokio_postgres::types::ToSql;

use super::{Action, Batches, Restore, StepPlan};
use crate::playbook::exec::{
    begin_with_lock_timeout, dberr, hold_point, in_transaction, BatchError, Batching, Conn,
    EngineError, Exec, Outcome, Pacing, Sizing,
};
use crate::playbook::names::{lit, quote_ident};
use crate::playbook::state::{self, CopyState, Status};

/// Where a run of steps is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Created,
    /// The step at this index of the plan is the last one completed.
    After(usize),
    /// Every step ran.
    Done,
    Finalized,
    RolledBack,
}

/// The `step` of a run whose steps all ran.
const DONE: &str = "done";

impl At {
    /// A stored step of a run of `plan`.
    pub fn parse(s: &str, plan: &StepPlan) -> Option<At> {
        match s {
            state::CREATED => Some(At::Created),
            DONE => Some(At::Done),
            state::FINALIZED => Some(At::Finalized),
            state::ROLLED_BACK => Some(At::RolledBack),
            name => plan
                .steps
                .iter()
                .position(|x| x.name == name)
                .map(At::After),
        }
    }

    /// As stored.
    pub fn as_str(self, plan: &StepPlan) -> &str {
        match self {
            At::Created => state::CREATED,
            At::After(i) => &plan.steps[i].name,
            At::Done => DONE,
            At::Finalized => state::FINALIZED,
            At::RolledBack => state::ROLLED_BACK,
        }
    }

    /// How many steps are complete.
    fn completed(self, plan: &StepPlan) -> usize {
        match self {
            At::Created | At::RolledBack => 0,
            At::After(i) => i + 1,
            At::Done | At::Finalized => plan.steps.len(),
        }
    }
}

struct Runner<'e> {
    exec: Exec<'e>,
    copy: CopyState,
    /// What the restores of a rollback did, one sentence each.
    restored: Vec<String>,
}

/// What a rollback did not take back, and what its restores did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Undone {
    /// What a rollback cannot take back (the steps' `kept`).
    pub kept: Vec<String>,
    /// What each restore from undo data did: rows restored, rows that kept a newer value,
    /// and where the undo data is.
    pub restored: Vec<String>,
}

/// Runs the steps after `at`, to the end.
pub(crate) async fn forward(
    exec: Exec<'_>,
    plan: &StepPlan,
    at: At,
    copy: CopyState,
) -> Result<(), EngineError> {
    let mut r = Runner {
        exec,
        copy,
        restored: Vec::new(),
    };
    for i in at.completed(plan)..plan.steps.len() {
        r.exec.check()?;
        let step = &plan.steps[i];
        r.exec.step(&step.name, &step.what);
        if step.swap {
            hold_point("before-swap").await;
        }
        r.run_actions(&step.actions, &step.name, &step.name).await?;
        if step.swap {
            hold_point("after-swap").await;
        }
    }
    state::set_step(r.exec.client, &r.exec.run_id, DONE, Status::Running, None)
        .await
        .map_err(dberr("checkpoint"))
}

/// Undoes every completed step, newest first (and the one in progress when it may have half
/// run). Returns what a rollback could not take back and what its restores did.
pub(crate) async fn rollback(
    exec: Exec<'_>,
    plan: &StepPlan,
    at: At,
) -> Result<Undone, EngineError> {
    state::set_status(exec.client, &exec.run_id, Status::RollingBack, None)
        .await
        .map_err(dberr("state"))?;
    // The completed steps, and the one in progress when it may have half run: a step that is
    // one transaction was all or nothing, any other (batches, concurrent builds) may have
    // left work behind, and its undo is idempotent.
    let mut done = at.completed(plan);
    if plan
        .steps
        .get(done)
        .is_some_and(|s| !matches!(s.actions.as_slice(), [Action::Tx(_)]))
    {
        done += 1;
    }
    let kept: Vec<String> = plan.steps[..done]
        .iter()
        .filter_map(|s| s.kept.clone())
        .collect();
    let mut r = Runner {
        exec,
        copy: CopyState::default(),
        restored: Vec::new(),
    };
    for i in (0..done).rev() {
        let step = &plan.steps[i];
        let previous = if i == 0 {
            state::CREATED
        } else {
            plan.steps[i - 1].name.as_str()
        };
        r.exec.step(
            "rollback",
            &format!(
                "undo `{}`{}",
                step.name,
                if step.swap { " (swap back)" } else { "" }
            ),
        );
        let name = format!("rollback {}", step.name);
        r.run_actions(&step.undo, &name, previous).await?;
    }
    state::set_step(
        r.exec.client,
        &r.exec.run_id,
        state::ROLLED_BACK,
        Status::RolledBack,
        None,
    )
    .await
    .map_err(dberr("state"))?;
    Ok(Undone {
        kept,
        restored: r.restored,
    })
}

/// Runs the plan's finalize actions and drops what it kept for a rollback: after every step
/// ran, or (`rolled_back`) only the latter, after a rollback.
pub(crate) async fn finalize(
    exec: Exec<'_>,
    plan: &StepPlan,
    rolled_back: bool,
) -> Result<(), EngineError> {
    exec.step("finalize", &plan.table);
    let mut r = Runner {
        exec,
        copy: CopyState::default(),
        restored: Vec::new(),
    };
    let actions = if rolled_back {
        plan.discard.clone()
    } else {
        [plan.finalize.as_slice(), plan.discard.as_slice()].concat()
    };
    r.run_actions(&actions, "finalize", state::FINALIZED)
        .await?;
    let (status, message) = if rolled_back {
        (
            Status::RolledBack,
            Some("rolled back; `lockstep finalize` dropped the undo data"),
        )
    } else {
        (Status::Finalized, None)
    };
    state::set_step(
        r.exec.client,
        &r.exec.run_id,
        state::FINALIZED,
        status,
        message,
    )
    .await
    .map_err(dberr("state"))
}

impl Runner<'_> {
    /// Runs `actions`, then records `checkpoint` as the run's step: inside the last
    /// transaction when the actions end with one, so a crash leaves all of it or none.
    async fn run_actions(
        &mut self,
        actions: &[Action],
        step: &str,
        checkpoint: &str,
    ) -> Result<(), EngineError> {
        let record = format!(
            "UPDATE lockstep.runs SET step = {}, max_key = NULL, high_water = NULL, updated_at = now() WHERE id = {}",
            lit(checkpoint),
            lit(&self.exec.run_id)
        );
        let mut recorded = false;
        for (i, a) in actions.iter().enumerate() {
            self.exec.check()?;
            let main = self.exec.main();
            match a {
                Action::Tx(sql) => {
                    let mut sql = sql.clone();
                    if i + 1 == actions.len() {
                        sql.push(record.clone());
                        recorded = true;
                    }
                    main.with_retry(&sql, step).await?;
                }
                Action::BuildIndex { index, sql } => {
                    main.build_index_concurrently(index, sql, step).await?;
                }
                Action::Concurrent(sql) => main.concurrent(sql, step).await?,
                Action::DropInvalid { table, prefix } => {
                    let rows = main
                        .query(
                            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                             WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid AND left(c.relname, length($2)) = $2",
                            &[table, prefix],
                            step,
                        )
                        .await?;
                    for r in rows {
                        let ix: String = r.get(0);
                        main.note(&format!(
                            "{ix} is an INVALID leftover of an interrupted run: dropping it"
                        ));
                        main.concurrent(&format!("DROP INDEX CONCURRENTLY IF EXISTS {ix}"), step)
                            .await?;
                    }
                }
                Action::Batches(b) => self.batches(b).await?,
                Action::Drain(sql) => drain(main, sql, step).await?,
                Action::Restore(restore) => {
                    let done = self.restore(restore, step).await?;
                    self.restored.push(done);
                }
                Action::Guard { sql, message } => {
                    let n: i64 = main.query_one(sql.as_str(), &[], step).await?.get(0);
                    if n > 0 {
                        return Err(EngineError::State(format!("{step}: {n} {message}")));
                    }
                }
            }
        }
        if !recorded {
            self.exec.main().batch(&record, "checkpoint").await?;
        }
        self.copy.max_key = None;
        self.copy.high_water = None;
        Ok(())
    }

    /// Keyset batches, each with its checkpoint in its own transaction.
    async fn batches(&mut self, b: &Batches) -> Result<(), EngineError> {
        let main = self.exec.main();
        let max_key = match self.copy.max_key.clone() {
            Some(k) => Some(k),
            None => {
                let key: Option<Vec<String>> = main
                    .query_opt(b.max_key_sql.as_str(), &[], &b.label)
                    .await?
                    .map(|r| r.get(0));
                if let Some(k) = &key {
                    state::set_max_key(self.exec.client, &self.exec.run_id, k, true)
                        .await
                        .map_err(dberr(&b.label))?;
                    self.copy.rows_copied = 0;
                }
                key
            }
        };
        let Some(max_key) = max_key else {
            return Ok(()); // an empty table
        };
        let mut high = self.copy.high_water.clone();
        let mut changed = self.copy.rows_copied;
        let total = self.copy.rows_estimate.max(changed);
        let started = Instant::now();
        let at_start = changed;
        let mut batches = 0u64;
        let mut walked = 0i64;
        let rate =
            |changed: i64| (changed - at_start) as f64 / started.elapsed().as_secs_f64().max(0.001);
        let how = Batching {
            step: &b.label,
            sizing: Sizing::Adaptive {
                first: self
                    .copy
                    .batch_size
                    .map_or(self.exec.backfill().batch_size, |b| b.max(1) as u32),
                min: 1,
            },
            pause: true,
            give_way: true,
            pacing: Pacing::Full,
        };
        let run_id = &self.exec.run_id;
        main.drive(how, async |size| {
            let sql = if high.is_none() {
                &b.first_sql
            } else {
                &b.next_sql
            }
            .replace("{limit}", &size.to_string());
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
            for k in &max_key {
                params.push(k);
            }
            if let Some(h) = &high {
                for k in h {
                    params.push(k);
                }
            }
            let (n, last, paused) =
                one_batch(main, run_id, (&sql, &params), (size as i32, rate(changed))).await?;
            let Some(last) = last else {
                return Ok(Outcome {
                    rows: 0,
                    more: false,
                    paused,
                });
            };
            changed += n;
            walked += i64::from(size);
            high = Some(last);
            batches += 1;
            self.exec.copy(
                walked.min(total.max(walked)),
                total.max(walked),
                rate(changed),
            );
            if batches == 1 {
                hold_point("backfill").await;
            }
            Ok::<_, BatchError>(Outcome {
                rows: i64::from(size),
                more: true,
                paused,
            })
        })
        .await?;
        self.copy.rows_copied = changed;
        Ok(())
    }
}

impl Runner<'_> {
    /// Restores from undo data in batches (see [`Restore`]); returns what it did.
    async fn restore(&mut self, r: &Restore, step: &str) -> Result<String, EngineError> {
        let main = self.exec.main();
        if !main.exists(&r.undo, step).await? {
            return Err(EngineError::State(format!(
                "{step}: the undo data {} is gone: the old values cannot be restored",
                r.undo
            )));
        }
        main.with_retry(&r.start, step).await?;
        let row = main.query_one(r.count_sql.as_str(), &[], step).await?;
        let (total, mut handled): (i64, i64) = (row.get(0), row.get(1));
        let (started, at_start) = (Instant::now(), handled);
        let rate = |n: i64| (n - at_start) as f64 / started.elapsed().as_secs_f64().max(0.001);
        let begin = format!(
            "{}; {}",
            begin_with_lock_timeout(self.exec.swap.lock_timeout_ms),
            r.settings
        );
        let how = Batching {
            step,
            sizing: Sizing::Adaptive {
                first: self.exec.backfill().batch_size,
                min: 1,
            },
            pause: false,
            give_way: true,
            pacing: Pacing::Full,
        };
        main.drive(how, async |size| {
            let sql = r.batch_sql.replace("{limit}", &size.to_string());
            let c = main.client;
            let n: i64 = in_transaction(c, &begin, c.query_one(sql.as_str(), &[]))
                .await?
                .get(0);
            handled += n;
            self.exec.copy(handled, total.max(handled), rate(handled));
            if n > 0 && handled - at_start <= n {
                hold_point("restore").await;
            }
            Ok::<_, BatchError>(Outcome {
                rows: n,
                more: n > 0,
                paused: false,
            })
        })
        .await?;
        let row = main.query_one(r.summary_sql.as_str(), &[], step).await?;
        let (restored, kept, gone, per_column): (i64, i64, i64, Vec<i64>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let detail: Vec<String> = r
            .columns
            .iter()
            .zip(&per_column)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{}: {n}", quote_ident(c)))
            .collect();
        let mut s = format!("restored {restored} row(s)");
        if kept > 0 {
            s.push_str(&format!(
                "; {kept} row(s) kept a newer value in a column the application changed since the backfill wrote it ({})",
                detail.join(", ")
            ));
        }
        if gone > 0 {
            s.push_str(&format!("; {gone} row(s) were deleted since"));
        }
        s.push_str(&format!("; the undo data is kept in {}", r.undo));
        Ok(s)
    }
}

/// One batch and its checkpoint in one transaction: (rows changed, last key, paused).
async fn one_batch(
    conn: Conn<'_, '_>,
    run_id: &str,
    (sql, params): (&str, &[&(dyn ToSql + Sync)]),
    (batch_size, rate): (i32, f64),
) -> Result<(i64, Option<Vec<String>>, bool), tokio_postgres::Error> {
    let c = conn.client;
    let begin = begin_with_lock_timeout(conn.exec.swap.lock_timeout_ms);
    in_transaction(c, &begin, async {
        let row = c.query_one(sql, params).await?;
        let n: i64 = row.get(0);
        let last: Option<Vec<String>> = row.get(1);
        let mut paused = false;
        if let Some(l) = &last {
            paused = c
                .query_one(
                    "UPDATE lockstep.runs SET high_water = $2, rows_copied = rows_copied + $3,
                         batch_size = $4, rows_per_sec = $5, throttle = NULL, updated_at = now()
                     WHERE id = $1 RETURNING paused",
                    &[&run_id, l, &n, &batch_size, &rate],
                )
                .await?
                .get(0);
        }
        Ok((n, last, paused))
    })
    .await
}

/// Runs `sql` (returning rows handled and rows changed) until it handles none, each time in
/// its own transaction under lock_timeout, giving way to the application's locks.
async fn drain(conn: Conn<'_, '_>, sql: &str, step: &str) -> Result<(), EngineError> {
    let (mut handled, mut changed) = (0i64, 0i64);
    let how = Batching {
        step,
        sizing: Sizing::Fixed(0),
        pause: false,
        give_way: true,
        pacing: Pacing::None,
    };
    conn.drive(how, async |_| {
        let c = conn.client;
        let begin = begin_with_lock_timeout(conn.exec.swap.lock_timeout_ms);
        let row = in_transaction(c, &begin, c.query_one(sql, &[])).await?;
        let (h, ch): (i64, i64) = (row.get(0), row.get(1));
        handled += h;
        changed += ch;
        Ok::<_, BatchError>(Outcome {
            rows: h,
            more: h > 0,
            paused: false,
        })
    })
    .await?;
    if handled > 0 {
        conn.note(&format!(
            "{step}: restored {changed} row(s); {} changed by the application since were left as they are",
            handled - changed
        ));
    }
    Ok(())
}
