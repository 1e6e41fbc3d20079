//! Verification: both tables compared range by range (row count and a hash of every row) in
//! one snapshot per range, leaving out the keys with changes still to replay, up to the key
//! that was highest when verification began. The ranges are spread over the connections; the
//! main one also replays the log between its ranges, and one gathers the new table's
//! statistics meanwhile. A range that differs is copied again and compared again, up to
//! three times; a persistent difference refuses the swap.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use super::copy::range_params;
use tokio_postgres::Client;

use super::logical::PumpError;
use super::runner::Runner;
use super::swap::Attempt;
use crate::playbook::exec::{
    dberr, hold_point, in_transaction, is_undefined_function, is_unique_violation, BatchError,
    Batching, Conn, EngineError, Outcome, Pacing, Sizing,
};

/// Rows per verified range.
const VERIFY_CHUNK: u32 = 50_000;

/// Logical capture: rounds of reading the slot, replaying and comparing again the ranges
/// that differed, before the rest is left to the swap.
const SETTLE_ROUNDS: usize = 6;

/// A key range `(lower, upper]` (no lower key: from the start).
pub(super) type KeyRange = (Option<Vec<String>>, Vec<String>);

/// A piece of the verification that one connection does.
enum Job {
    /// Verify the key range.
    Range(KeyRange),
    /// Gather the new table's statistics.
    Analyze(String),
}

/// How far the verification got, over all connections.
struct VerifyTally {
    ranges: Cell<u64>,
    rows: Cell<i64>,
    /// The rows to verify, for progress (what the copy counted).
    total: i64,
    /// Whether rows can be hashed with `hash_record_extended` (PostgreSQL 14+, every column
    /// type hashable); cleared at the first failure.
    hash_record: Cell<bool>,
    /// Ranges that differed, to be copied again and compared once more, one at a time.
    differing: RefCell<Vec<KeyRange>>,
}

impl Runner<'_, '_> {
    /// Gathers the new table's statistics and compares the copy with the table, in key
    /// ranges, spread over the crew. The comparison ends at the highest key when it starts:
    /// rows inserted later came only through the log, and a comparison chasing the end of a
    /// table that grows would not end.
    pub(super) async fn verify(&mut self) -> Result<(), EngineError> {
        self.exec.step(
            "verify",
            "comparing the copy with the table, range by range",
        );
        let main = self.exec.main();
        // The fast row hash needs PostgreSQL 14 and hashable column types.
        let hash_record = main
            .query_one(
                "SELECT current_setting('server_version_num')::int >= 140000",
                &[],
                "verify",
            )
            .await?
            .get::<_, bool>(0);
        let bound: Option<Vec<String>> = main
            .query_opt(&self.plan.max_key_sql(), &[], "verify")
            .await?
            .map(|r| r.get(0));
        let Some(bound) = bound else {
            // An empty table: only the statistics.
            return main.with_retry(&[self.plan.analyze_sql()], "verify").await;
        };
        self.exec.crew().await;
        // More ranges than connections: the main one, which also replays the log, takes
        // fewer, and helpers only work while the application is quiet.
        let crew = self.exec.crew_size();
        let parts = if crew > 1 { 8 * crew } else { 1 };
        let bounds = self.bounds(&bound, parts, "sampling keys").await?;
        let mut lower = None;
        // The statistics too, on one connection while the others verify.
        let mut queue = VecDeque::from([Job::Analyze(self.plan.analyze_sql())]);
        for upper in bounds {
            queue.push_back(Job::Range((lower.take(), upper.clone())));
            lower = Some(upper);
        }
        let tally = VerifyTally {
            ranges: Cell::new(0),
            rows: Cell::new(0),
            total: self.copy.rows_copied,
            hash_record: Cell::new(hash_record),
            differing: RefCell::new(Vec::new()),
        };
        let this = &*self;
        this.exec
            .in_lanes(queue, async |conn, i, job| match job {
                Job::Range(range) => this.verify_range(conn, range, i == 0, &tally).await,
                Job::Analyze(sql) => {
                    conn.check()?;
                    conn.with_retry(std::slice::from_ref(&sql), "verify").await
                }
            })
            .await?;
        let differing = tally.differing.take();
        if self.plan.logical.is_some() {
            self.unsettled = self.settle(differing, &tally).await?;
            return Ok(());
        }
        let main = self.exec.main();
        for (lower, upper) in differing {
            let mut attempt = 0;
            loop {
                attempt += 1;
                if attempt > 3 {
                    return Err(EngineError::Mismatch {
                        table: self.plan.source(),
                        from: lower
                            .as_ref()
                            .map_or("the start".into(), |l| format!("({})", l.join(", "))),
                    });
                }
                main.note("a range differs: copying it again");
                self.recopy(main, lower.as_deref(), &upper).await?;
                if self
                    .compare(main, lower.as_deref(), &upper, &tally)
                    .await?
                    .0
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Logical capture: a range compared in a snapshot can differ because a change committed
    /// before the snapshot had not been read from the slot yet. Each round reads the slot and
    /// replays, then compares the differing ranges again, splitting those that still differ
    /// into eighths, and copying again those of at most 64 rows. Ranges that differ after the last round are left for the
    /// swap, which compares them under its lock, where nothing changes
    /// ([`Runner::check_settled`]).
    async fn settle(
        &self,
        mut ranges: Vec<KeyRange>,
        tally: &VerifyTally,
    ) -> Result<Vec<KeyRange>, EngineError> {
        let main = self.exec.main();
        let mut told = false;
        for _ in 0..SETTLE_ROUNDS {
            if ranges.is_empty() {
                break;
            }
            self.capture.catch_up(main, false, false).await?;
            let mut next = Vec::new();
            for (lower, upper) in ranges {
                let (same, rows) = self.compare(main, lower.as_deref(), &upper, tally).await?;
                if same {
                    continue;
                }
                if rows > 64 {
                    next.extend(self.eighths(main, lower, upper, rows).await?);
                } else {
                    // Small enough to copy again: what changes it later is replayed, and a
                    // copy damaged behind the capture's back is repaired.
                    if !told {
                        told = true;
                        main.note("a key range still differs after the replay: copying it again");
                    }
                    // A copy caught up piecemeal may briefly give another row of the copy
                    // the same unique value: the next round's replay settles it first.
                    match self.recopy_raw(main, lower.as_deref(), &upper).await {
                        Err(e) if !is_unique_violation(&e) => return Err(dberr("verify")(e)),
                        _ => {}
                    }
                    next.push((lower, upper));
                }
            }
            ranges = next;
        }
        if !ranges.is_empty() {
            main.note(&format!(
                "{} key range(s) kept changing during the verification: the swap compares them under its lock",
                ranges.len()
            ));
        }
        Ok(ranges)
    }

    /// The range `(lower, upper]` of about `rows` rows in eight (one range when small).
    async fn eighths(
        &self,
        conn: Conn<'_, '_>,
        lower: Option<Vec<String>>,
        upper: Vec<String>,
        rows: i64,
    ) -> Result<Vec<KeyRange>, EngineError> {
        if rows <= 64 {
            return Ok(vec![(lower, upper)]);
        }
        let chunk = u32::try_from(rows / 8).unwrap_or(u32::MAX).max(1);
        let mut out = Vec::new();
        let mut lo = lower;
        while out.len() < 16 {
            let end: Option<Vec<String>> = conn
                .query_opt(
                    &self.plan.chunk_end_sql(lo.is_none(), chunk),
                    &range_params(lo.as_deref(), &upper),
                    "verify",
                )
                .await?
                .map(|r| r.get(0));
            match end {
                Some(e) if e != upper => {
                    out.push((lo.take(), e.clone()));
                    lo = Some(e);
                }
                _ => break,
            }
        }
        out.push((lo, upper));
        Ok(out)
    }

    /// Under the swap's lock, after the last replay: the ranges that kept changing during the
    /// verification ([`Runner::settle`]) compared once more, when nothing can change them. A
    /// difference now is real: the swap is refused.
    pub(super) async fn check_settled(&self, client: &Client) -> Result<(), Attempt> {
        for (lower, upper) in &self.unsettled {
            let r = client
                .query_one(
                    &self.plan.verify_sql(lower.is_none(), false),
                    &range_params(lower.as_deref(), upper),
                )
                .await?;
            let same = r.get::<_, i64>(0) == r.get::<_, i64>(2)
                && r.get::<_, String>(1) == r.get::<_, String>(3);
            if !same {
                return Err(Attempt::Stop(EngineError::Mismatch {
                    table: self.plan.source(),
                    from: lower
                        .as_ref()
                        .map_or("the start".into(), |l| format!("({})", l.join(", "))),
                }));
            }
        }
        Ok(())
    }

    /// Verifies the key range `(lower, upper]` chunk by chunk. With `replays`, this
    /// connection also catches up with the log before each chunk (one connection does: two
    /// replaying at once would collide), keeping the comparison's exclusion of logged keys
    /// cheap. A chunk that differs is noted in the tally for later.
    async fn verify_range(
        &self,
        conn: Conn<'_, '_>,
        (mut lower, upper): KeyRange,
        replays: bool,
        tally: &VerifyTally,
    ) -> Result<(), EngineError> {
        let how = Batching {
            step: "verify",
            sizing: Sizing::Fixed(VERIFY_CHUNK),
            pause: false,
            give_way: false,
            pacing: Pacing::Rest,
        };
        conn.drive(how, async |chunk| {
            if replays {
                self.capture.catch_up(conn, false, false).await?;
            }
            let end: Option<Vec<String>> = conn
                .query_opt(
                    &self.plan.chunk_end_sql(lower.is_none(), chunk),
                    &range_params(lower.as_deref(), &upper),
                    "verify",
                )
                .await?
                .map(|r| r.get(0));
            let end = end.unwrap_or_else(|| upper.clone());
            let (same, rows) = self.compare(conn, lower.as_deref(), &end, tally).await?;
            if !same {
                tally
                    .differing
                    .borrow_mut()
                    .push((lower.clone(), end.clone()));
            }
            tally.ranges.set(tally.ranges.get() + 1);
            tally.rows.set(tally.rows.get() + rows);
            let done = tally.rows.get();
            self.exec.copy(done, done.max(tally.total), 0.0);
            if tally.ranges.get() == 1 {
                hold_point("verify").await;
            }
            let more = end != upper;
            lower = Some(end);
            Ok::<_, BatchError>(Outcome {
                rows,
                more,
                paused: false,
            })
        })
        .await
    }

    /// Whether the range `(lower, upper]` is the same in the table and the copy, but for
    /// the logged keys, and how many rows of the table it compared.
    async fn compare(
        &self,
        conn: Conn<'_, '_>,
        lower: Option<&[String]>,
        upper: &[String],
        tally: &VerifyTally,
    ) -> Result<(bool, i64), EngineError> {
        loop {
            match self
                .compare_once(conn, lower, upper, tally.hash_record.get())
                .await
            {
                Ok(same) => return Ok(same),
                Err(PumpError::Db(e)) if tally.hash_record.get() && is_undefined_function(&e) => {
                    tally.hash_record.set(false);
                }
                Err(PumpError::Db(e)) => return Err(dberr("verify")(e)),
                Err(e) => return Err(e.engine()),
            }
        }
    }

    async fn compare_once(
        &self,
        conn: Conn<'_, '_>,
        lower: Option<&[String]>,
        upper: &[String],
        hash_record: bool,
    ) -> Result<(bool, i64), PumpError> {
        let c = conn.client;
        let sql = self.plan.verify_sql(lower.is_none(), hash_record);
        let params = range_params(lower, upper);
        let same = |r: tokio_postgres::Row| {
            let rows: i64 = r.get(0);
            (
                rows == r.get::<_, i64>(2) && r.get::<_, String>(1) == r.get::<_, String>(3),
                rows,
            )
        };
        if self.plan.logical.is_some() {
            // The keys of changes committed before the snapshot but still in the capture's
            // stream join the log in this transaction, which then rolls back (they stay in
            // the stream for the replay).
            c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL enable_nestloop = off; SET LOCAL enable_seqscan = off")
                .await?;
            let r = async {
                // The snapshot, before the stream's token.
                c.batch_execute("SELECT 1").await?;
                self.capture.pump_locked(c, conn.exec).await?;
                Ok::<_, PumpError>(c.query_one(&sql, &params).await?)
            }
            .await;
            c.batch_execute("ROLLBACK").await?;
            return r.map(same);
        }
        // One snapshot for both tables and the log: the copy differs from the table exactly
        // in the logged keys, which the comparison leaves out.
        // The logged keys are left out with a hash anti-join: a nested loop over the log for
        // every row would be quadratic if the log's statistics made it look tiny. The range
        // is read through the primary keys: a partition holding a range was read whole
        // (measured with `lockstep demo --bench`: verification took a fifth longer).
        let r = in_transaction(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL enable_nestloop = off; SET LOCAL enable_seqscan = off",
            c.query_one(&sql, &params),
        )
        .await?;
        Ok(same(r))
    }

    /// Copies the range `(lower, upper]` again (after a verification found it different),
    /// in one `REPEATABLE READ` transaction.
    async fn recopy(
        &self,
        conn: Conn<'_, '_>,
        lower: Option<&[String]>,
        upper: &[String],
    ) -> Result<(), EngineError> {
        self.recopy_raw(conn, lower, upper)
            .await
            .map_err(dberr("verify"))
    }

    async fn recopy_raw(
        &self,
        conn: Conn<'_, '_>,
        lower: Option<&[String]>,
        upper: &[String],
    ) -> Result<(), tokio_postgres::Error> {
        let c = conn.client;
        let params = range_params(lower, upper);
        let sqls = self.plan.recopy_sql(lower.is_none());
        in_transaction(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", async {
            for s in &sqls {
                c.execute(s.as_str(), &params).await?;
            }
            Ok(())
        })
        .await
    }
}
