//! The work of a partition run that several connections can share: the copy, the index
//! builds and the verification, each split into lanes (key ranges, or one index build each),
//! and the replay of the log, which one connection does at a time.
//!
//! A [`Worker`] is one connection with what it needs to work on its own: the run, its plan and
//! settings, the progress sink (shared: every call borrows it only for the call), and the stop
//! flags. The lanes of a step run concurrently on the one task ([`join_all`]); PostgreSQL does
//! the work, so a thread per connection would buy nothing.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::engine::{
    begin_with_lock_timeout, busy, dberr, hold_point, in_transaction, next_batch_size, pace, rest,
    stopped, wait_while_paused, with_retry, EngineError, PauseGate, Policy, Progress, Retry, Share,
};
use super::plan::{ChildIndex, Plan};
use super::spec::Playbook;
use super::state::Lane;

/// A progress sink several workers report to.
pub(crate) struct SharedProgress<'w, 'p>(pub &'w RefCell<&'p mut dyn Progress>);

impl Progress for SharedProgress<'_, '_> {
    fn step(&mut self, name: &str, detail: &str) {
        self.0.borrow_mut().step(name, detail);
    }
    fn copy(&mut self, copied: i64, total: i64, rows_per_sec: f64) {
        self.0.borrow_mut().copy(copied, total, rows_per_sec);
    }
    fn note(&mut self, message: &str) {
        self.0.borrow_mut().note(message);
    }
}

/// A future of a lane.
pub(crate) type LaneFuture<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

/// Runs `futures` concurrently on this task; their results, in order.
pub(crate) async fn join_all<T>(futures: Vec<LaneFuture<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<LaneFuture<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The first real error of the lanes: one that stopped because another failed reports
/// `Stopped`, which only counts when nothing else went wrong.
pub(crate) fn first_error(results: Vec<Result<(), EngineError>>) -> Result<(), EngineError> {
    let mut stopped = None;
    for r in results {
        match r {
            Ok(()) => {}
            Err(e @ EngineError::Stopped(_)) => stopped = Some(e),
            Err(e) => return Err(e),
        }
    }
    stopped.map_or(Ok(()), Err)
}

/// Where to split a key range into `parts` parts of about equal size: the upper keys of all
/// parts but the last, from `sample` (keys in order). Fewer parts when the sample is too
/// small to tell (fewer than two keys per part).
pub(crate) fn split(sample: &[Vec<String>], parts: usize) -> Vec<Vec<String>> {
    if parts < 2 || sample.len() < 2 * parts {
        return Vec::new();
    }
    let mut bounds: Vec<Vec<String>> = Vec::new();
    for i in 1..parts {
        let key = &sample[i * sample.len() / parts];
        if bounds.last() != Some(key) {
            bounds.push(key.clone());
        }
    }
    bounds
}

/// How far the copy got, over all lanes.
pub(crate) struct CopyTally {
    pub copied: Cell<i64>,
    pub total: i64,
    pub started: Instant,
    pub at_start: i64,
    pub batches: Cell<u64>,
}

impl CopyTally {
    fn rate(&self) -> f64 {
        (self.copied.get() - self.at_start) as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

/// A key range `(lower, upper]` (no lower key: from the start).
pub(crate) type KeyRange = (Option<Vec<String>>, Vec<String>);

/// How far the verification got, over all lanes.
pub(crate) struct VerifyTally {
    pub ranges: Cell<u64>,
    pub rows: Cell<i64>,
    /// The rows to verify, for progress (what the copy counted).
    pub total: i64,
    /// Whether rows can be hashed with `hash_record_extended` (PostgreSQL 14+, every
    /// column type hashable); cleared at the first failure.
    pub hash_record: Cell<bool>,
    /// Ranges that differed, to be copied again and compared once more, one at a time.
    pub differing: RefCell<Vec<KeyRange>>,
}

/// Rows per verified range.
pub(crate) const VERIFY_CHUNK: u32 = 50_000;

/// A piece of a step that one connection does.
pub(crate) enum Job<'j> {
    /// Copy a lane of the table.
    Copy(Lane),
    /// Build one partition's index: the `n`-th build of `total`.
    Build(usize, usize, &'j ChildIndex),
    /// Verify the key range `(lower, upper]`.
    Verify(KeyRange),
    /// Run one statement (with the lock_timeout and retries), for `step`.
    Sql(String, &'static str),
}

/// What the lanes of a step share.
#[derive(Default)]
pub(crate) struct Tallies<'t> {
    pub copy: Option<&'t CopyTally>,
    /// The copy's first batch size (the last one a killed run used).
    pub first_batch: u32,
    pub verify: Option<&'t VerifyTally>,
}

/// One connection of a run, and what it needs to work on its own.
pub(crate) struct Worker<'w, 'p> {
    pub client: &'w Client,
    pub pb: &'w Playbook,
    pub plan: &'w Plan,
    pub run_id: &'w str,
    /// Ctrl-C.
    pub stop: &'w AtomicBool,
    /// Another lane failed: stop at the next safe point.
    pub abort: &'w AtomicBool,
    pub progress: &'w RefCell<&'p mut dyn Progress>,
    /// The runner's backends and how many of them work now (for the duty cycle).
    pub share: Share<'w>,
    /// The tables involved (for naming blockers).
    pub tables: &'w [String],
    /// Log entries replayed since the log's last `VACUUM`.
    pub unvacuumed: &'w Cell<u64>,
    /// How the lanes say a pause once.
    pub pause: &'w PauseGate,
}

impl Worker<'_, '_> {
    /// Does `job`; the worker `index` 0 (the runner's main connection) is the one that
    /// replays the log while verifying.
    pub(crate) async fn work(
        &self,
        index: usize,
        job: Job<'_>,
        tallies: &Tallies<'_>,
    ) -> Result<(), EngineError> {
        match (job, tallies.copy, tallies.verify) {
            (Job::Copy(lane), Some(tally), _) => self.copy(&lane, tallies.first_batch, tally).await,
            (Job::Build(n, total, child), _, _) => self.build(child, (n, total)).await,
            (Job::Verify(range), _, Some(tally)) => self.verify(range, index == 0, tally).await,
            (Job::Sql(sql, step), _, _) => {
                self.check()?;
                self.with_retry(std::slice::from_ref(&sql), step).await
            }
            _ => Err(EngineError::State(
                "a lane was given a job without its tally".into(),
            )),
        }
    }

    /// A helper's wait before its next job: while jobs are left and the application is busy
    /// (and the duty cycle asks for rest), it does not count as working.
    pub(crate) async fn wait_for_a_quiet_moment<T>(
        &self,
        queue: &RefCell<VecDeque<T>>,
        working: &AtomicUsize,
    ) -> Result<(), EngineError> {
        if self.pb.backfill.duty_cycle >= 1.0 {
            return Ok(());
        }
        let mut waiting = false;
        while !queue.borrow().is_empty() && busy(self.client, self.share.pids).await {
            if !waiting {
                working.fetch_sub(1, Ordering::SeqCst);
                waiting = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.check()?;
        }
        if waiting {
            working.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.abort.load(Ordering::SeqCst) {
            return Err(EngineError::Stopped(self.run_id.to_string()));
        }
        stopped(self.stop, self.run_id)
    }

    pub(crate) fn note(&self, message: &str) {
        self.progress.borrow_mut().note(message);
    }

    fn policy(&self) -> Policy<'_> {
        Policy {
            swap: &self.pb.swap,
            run_id: self.run_id,
            tables: self.tables,
        }
    }

    /// [`with_retry`] on this connection.
    pub(crate) async fn with_retry(&self, sql: &[String], step: &str) -> Result<(), EngineError> {
        let mut progress = SharedProgress(self.progress);
        with_retry(self.client, &mut progress, &self.policy(), sql, step).await
    }

    /// After an attempt failed with `e`: [`Retry::failed`] on this connection.
    pub(crate) async fn retry_failed(
        &self,
        retry: &mut Retry,
        e: tokio_postgres::Error,
        step: &str,
    ) -> Result<(), EngineError> {
        let mut progress = SharedProgress(self.progress);
        retry
            .failed(e, self.client, &mut progress, &self.policy(), step)
            .await
    }

    async fn pace(&self, rows: i64, elapsed: Duration) -> Result<(), EngineError> {
        let mut progress = SharedProgress(self.progress);
        pace(
            self.client,
            &mut progress,
            (self.run_id, self.stop, self.share),
            &self.pb.backfill,
            (rows, elapsed),
        )
        .await?;
        self.check()
    }

    async fn wait_while_paused(&self) -> Result<(), EngineError> {
        let mut progress = SharedProgress(self.progress);
        wait_while_paused(
            self.client,
            &mut progress,
            (self.run_id, self.stop),
            Some((self.pause, self.share.working)),
        )
        .await?;
        self.check()
    }

    /// Copies one lane, from its high-water mark to its upper key, in batches that each
    /// checkpoint the lane.
    pub(crate) async fn copy(
        &self,
        lane: &Lane,
        first_batch: u32,
        tally: &CopyTally,
    ) -> Result<(), EngineError> {
        let settings = &self.pb.backfill;
        let mut batch = first_batch;
        let mut high = lane.high_water.clone();
        let mut retry = Retry::batches(&self.pb.swap);
        // Whether `lockstep pause` may be in force: checked before the first batch, then
        // reported by each batch's checkpoint.
        let mut paused = true;
        loop {
            self.check()?;
            if paused {
                self.wait_while_paused().await?;
            }
            let t0 = Instant::now();
            let end = self.plan.batch_end_sql(high.is_none(), batch);
            let copy = self.plan.batch_sql(high.is_none());
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
            for k in &lane.upper {
                params.push(k);
            }
            if let Some(h) = &high {
                for k in h {
                    params.push(k);
                }
            }
            let rate = tally.rate();
            let (n, last) = match self
                .run_batch(
                    &end,
                    &copy,
                    (&params, high.as_deref()),
                    (lane.lane, batch as i32, rate),
                )
                .await
            {
                Ok(r) => {
                    retry.reset();
                    paused = r.paused;
                    (r.rows, r.last)
                }
                Err(e) => {
                    self.retry_failed(&mut retry, e, "backfill").await?;
                    continue;
                }
            };
            tally.batches.set(tally.batches.get() + 1);
            let elapsed = t0.elapsed();
            // The end of the range, not the rows copied, says when the lane is done: every
            // row of a range may have been deleted meanwhile.
            if last.is_none() {
                return Ok(());
            }
            tally.copied.set(tally.copied.get() + n);
            high = last;
            batch = next_batch_size(batch, elapsed, settings.target_batch_ms);
            let copied = tally.copied.get();
            self.progress
                .borrow_mut()
                .copy(copied, tally.total.max(copied), tally.rate());
            if tally.batches.get() == 1 {
                hold_point("backfill").await;
            }
            self.pace(n, elapsed).await?;
        }
    }

    /// One batch and its checkpoint (the lane's high-water mark; rows copied, batch size
    /// and rate of the run), in one transaction: the batch's end from `end` (parameters: the
    /// lane's upper key, then the high-water key), then the copy (parameters: the batch's
    /// end, then the high-water key).
    async fn run_batch(
        &self,
        end: &str,
        copy_sql: &str,
        (params, high): (&[&(dyn ToSql + Sync)], Option<&[String]>),
        (lane, batch_size, rows_per_sec): (i32, i32, f64),
    ) -> Result<BatchResult, tokio_postgres::Error> {
        let c = self.client;
        let begin = begin_with_lock_timeout(self.pb.swap.lock_timeout_ms);
        in_transaction(c, &begin, async {
            let last: Option<Vec<String>> = c.query_opt(end, params).await?.map(|r| r.get(0));
            let Some(l) = last else {
                // Done: the high-water mark becomes the upper key, which says so to
                // `lockstep status`.
                c.execute(
                    "UPDATE lockstep.lanes SET high_water = upper_key WHERE run_id = $1 AND lane = $2",
                    &[&self.run_id, &lane],
                )
                .await?;
                return Ok(BatchResult {
                    rows: 0,
                    last: None,
                    paused: false,
                });
            };
            let mut copy: Vec<&(dyn ToSql + Sync)> = Vec::new();
            for k in &l {
                copy.push(k);
            }
            for k in high.unwrap_or_default() {
                copy.push(k);
            }
            let rows = c.execute(copy_sql, &copy).await? as i64;
            c.execute(
                "UPDATE lockstep.lanes SET high_water = $3 WHERE run_id = $1 AND lane = $2",
                &[&self.run_id, &lane, &l],
            )
            .await?;
            let paused: bool = c
                .query_one(
                    "UPDATE lockstep.runs SET rows_copied = rows_copied + $2, batch_size = $3,
                         rows_per_sec = $4, throttle = NULL, updated_at = now()
                     WHERE id = $1 RETURNING paused",
                    &[&self.run_id, &rows, &batch_size, &rows_per_sec],
                )
                .await?
                .get(0);
            Ok(BatchResult {
                rows,
                last: Some(l),
                paused,
            })
        })
        .await
    }

    /// Builds one index of one partition (the `started`-th of `total`), unless it exists: a
    /// build and what goes with it are one transaction, so an existing index is complete. An
    /// INVALID one (a concurrent build interrupted by hand) is built again.
    pub(crate) async fn build(
        &self,
        child: &ChildIndex,
        (started, total): (usize, usize),
    ) -> Result<(), EngineError> {
        self.check()?;
        self.progress
            .borrow_mut()
            .step("indexes", &format!("{started}/{total}: {}", child.name));
        let rel = self.plan.rel(&child.name);
        let valid: Option<bool> = self
            .client
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&rel],
            )
            .await
            .map_err(dberr("indexes"))?
            .map(|r| r.get(0));
        if valid == Some(false) {
            self.note(&format!(
                "{rel} is INVALID (an interrupted build): dropping and building it again"
            ));
            self.with_retry(&[format!("DROP INDEX IF EXISTS {rel}")], "indexes")
                .await?;
        }
        if valid != Some(true) {
            let t0 = Instant::now();
            self.with_retry(&child.build, "indexes").await?;
            rest(self.client, &self.pb.backfill, t0.elapsed(), self.share).await;
        }
        if started == 1 {
            hold_point("indexes").await;
        }
        Ok(())
    }

    /// Replays the log in batches until a batch finds fewer entries than it may take; that
    /// batch takes all it sees, so the copy then matches the table as of its snapshot (a few
    /// milliseconds behind). Batches adapt to the target batch time and follow the backfill's
    /// throttling and `lockstep pause`. With `hold`, the test hook `replay` holds after the
    /// first batch. Returns the entries replayed.
    pub(crate) async fn catch_up(&self, hold: bool) -> Result<u64, EngineError> {
        // Fewer than this many entries per batch could fall behind the application: a batch
        // has a fixed cost of a few statements.
        const MIN_BATCH: u32 = 1_000;
        let settings = &self.pb.backfill;
        let mut batch = settings.batch_size.max(MIN_BATCH);
        let mut retry = Retry::batches(&self.pb.swap);
        let mut replayed = 0u64;
        let mut first = true;
        loop {
            self.check()?;
            self.wait_while_paused().await?;
            let t0 = Instant::now();
            let result = match self.replay_batch(Some(batch)).await {
                // Rows caught up piecemeal may briefly share a unique value: a batch of every
                // logged change matches the table at one moment.
                Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "23505") => {
                    self.replay_batch(None).await
                }
                r => r,
            };
            let (n, all) = match result {
                Ok(r) => {
                    retry.reset();
                    r
                }
                Err(e) => {
                    self.retry_failed(&mut retry, e, "replay").await?;
                    continue;
                }
            };
            replayed += n;
            self.vacuum_log(n).await?;
            if hold && first {
                hold_point("replay").await;
            }
            first = false;
            if all {
                return Ok(replayed);
            }
            let elapsed = t0.elapsed();
            batch = next_batch_size(batch, elapsed, settings.target_batch_ms).max(MIN_BATCH);
            self.pace(n as i64, elapsed).await?;
        }
    }

    /// Vacuums the log after every 10,000 replayed entries. Batches delete from the head of
    /// the log and read it from there, and autovacuum comes by once a minute at best: the
    /// dead entries it leaves would make every batch slower than the last. Under the
    /// playbook's lock_timeout: when an autovacuum of the log holds it, this one is skipped.
    async fn vacuum_log(&self, replayed: u64) -> Result<(), EngineError> {
        self.unvacuumed.set(self.unvacuumed.get() + replayed);
        if self.unvacuumed.get() >= 10_000 {
            let c = self.client;
            let vacuum = async {
                c.batch_execute(&format!(
                    "SET lock_timeout = '{}ms'",
                    self.pb.swap.lock_timeout_ms
                ))
                .await?;
                let r = c
                    .batch_execute(&format!("VACUUM {}", self.plan.log()))
                    .await;
                c.batch_execute("RESET lock_timeout").await?;
                r
            };
            match vacuum.await {
                Err(e) if !super::engine::is_lock_timeout(&e) => return Err(dberr("replay")(e)),
                _ => self.unvacuumed.set(0),
            }
        }
        Ok(())
    }

    /// One replay batch of at most `limit` log entries (all of them with `None`), in one
    /// `REPEATABLE READ` transaction. Returns the entries replayed and whether the batch took
    /// every entry it saw.
    async fn replay_batch(&self, limit: Option<u32>) -> Result<(u64, bool), tokio_postgres::Error> {
        let c = self.client;
        let begin = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = '{}ms'",
            self.pb.swap.lock_timeout_ms
        );
        in_transaction(c, &begin, async {
            c.batch_execute(&self.plan.replay_begin_sql()).await?;
            // The batch: up to `limit` entries, fixed for the transaction's statements.
            let batch: Option<String> = match limit {
                Some(n) => {
                    let row = c.query_one(&self.plan.replay_batch_sql(n), &[]).await?;
                    let count: i64 = row.get(1);
                    (count >= i64::from(n)).then(|| row.get(0))
                }
                None => None,
            };
            let mut replayed = 0;
            for sql in self.plan.replay_sql(batch.is_some()) {
                replayed = match &batch {
                    Some(b) => c.execute(sql.as_str(), &[b]).await?,
                    None => c.execute(sql.as_str(), &[]).await?,
                };
            }
            // The last statement deletes the replayed entries.
            Ok((replayed, batch.is_none()))
        })
        .await
    }

    /// Verifies the key range `(lower, upper]` range by range. With `replays`, this worker
    /// also catches up with the log before each range (one worker does: two replaying at
    /// once would collide), keeping the comparison's exclusion of logged keys cheap. A range
    /// that differs is noted in the tally for later.
    pub(crate) async fn verify(
        &self,
        (mut lower, upper): KeyRange,
        replays: bool,
        tally: &VerifyTally,
    ) -> Result<(), EngineError> {
        loop {
            self.check()?;
            if replays {
                self.catch_up(false).await?;
            }
            let end: Option<Vec<String>> = self
                .client
                .query_opt(
                    &self.plan.chunk_end_sql(lower.is_none(), VERIFY_CHUNK),
                    &range_params(lower.as_deref(), &upper),
                )
                .await
                .map_err(dberr("verify"))?
                .map(|r| r.get(0));
            let end = end.unwrap_or_else(|| upper.clone());
            let t0 = Instant::now();
            let (same, rows) = self.compare(lower.as_deref(), &end, tally).await?;
            if !same {
                tally
                    .differing
                    .borrow_mut()
                    .push((lower.clone(), end.clone()));
            }
            rest(self.client, &self.pb.backfill, t0.elapsed(), self.share).await;
            tally.ranges.set(tally.ranges.get() + 1);
            tally.rows.set(tally.rows.get() + rows);
            let rows = tally.rows.get();
            self.progress
                .borrow_mut()
                .copy(rows, rows.max(tally.total), 0.0);
            if tally.ranges.get() == 1 {
                hold_point("verify").await;
            }
            if end == upper {
                return Ok(());
            }
            lower = Some(end);
        }
    }

    /// Whether the range `(lower, upper]` is the same in the table and the copy, but for
    /// the logged keys, and how many rows of the table it compared.
    pub(crate) async fn compare(
        &self,
        lower: Option<&[String]>,
        upper: &[String],
        tally: &VerifyTally,
    ) -> Result<(bool, i64), EngineError> {
        loop {
            match self
                .compare_once(lower, upper, tally.hash_record.get())
                .await
            {
                Ok(same) => return Ok(same),
                Err(e)
                    if tally.hash_record.get()
                        && e.as_db_error().is_some_and(|d| d.code().code() == "42883") =>
                {
                    tally.hash_record.set(false);
                }
                Err(e) => return Err(dberr("verify")(e)),
            }
        }
    }

    async fn compare_once(
        &self,
        lower: Option<&[String]>,
        upper: &[String],
        hash_record: bool,
    ) -> Result<(bool, i64), tokio_postgres::Error> {
        let c = self.client;
        // One snapshot for both tables and the log: the copy differs from the table exactly
        // in the logged keys, which the comparison leaves out.
        // The logged keys are left out with a hash anti-join: a nested loop over the log for
        // every row would be quadratic if the log's statistics made it look tiny. The range
        // is read through the primary keys: a partition holding a range was read whole
        // (measured with `lockstep demo --bench`: verification took a fifth longer).
        let r = in_transaction(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL enable_nestloop = off; SET LOCAL enable_seqscan = off",
            c.query_one(
                &self.plan.verify_sql(lower.is_none(), hash_record),
                &range_params(lower, upper),
            ),
        )
        .await?;
        let rows: i64 = r.get(0);
        Ok((
            rows == r.get::<_, i64>(2) && r.get::<_, String>(1) == r.get::<_, String>(3),
            rows,
        ))
    }

    /// Copies the range `(lower, upper]` again (after a verification found it different),
    /// in one `REPEATABLE READ` transaction.
    pub(crate) async fn recopy(
        &self,
        lower: Option<&[String]>,
        upper: &[String],
    ) -> Result<(), EngineError> {
        let c = self.client;
        let params = range_params(lower, upper);
        let sqls = self.plan.recopy_sql(lower.is_none());
        in_transaction(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", async {
            for s in &sqls {
                c.execute(s.as_str(), &params).await?;
            }
            Ok(())
        })
        .await
        .map_err(dberr("verify"))
    }
}

impl VerifyTally {
    pub(crate) fn new(total: i64, hash_record: bool) -> VerifyTally {
        VerifyTally {
            ranges: Cell::new(0),
            rows: Cell::new(0),
            total,
            hash_record: Cell::new(hash_record),
            differing: RefCell::new(Vec::new()),
        }
    }
}

/// The parameters of a key range: the upper key, then the lower one (none from the start).
pub(crate) fn range_params<'p>(
    lower: Option<&'p [String]>,
    upper: &'p [String],
) -> Vec<&'p (dyn ToSql + Sync)> {
    let mut p: Vec<&(dyn ToSql + Sync)> = Vec::new();
    for k in upper {
        p.push(k);
    }
    if let Some(l) = lower {
        for k in l {
            p.push(k);
        }
    }
    p
}

/// What one backfill batch did.
struct BatchResult {
    rows: i64,
    /// The last key of the batch's range; `None` when no range was left.
    last: Option<Vec<String>>,
    /// `lockstep pause` is in force.
    paused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Vec<String>> {
        (0..n).map(|i| vec![format!("{i:04}")]).collect()
    }

    #[test]
    fn splits_where_the_sample_says() {
        assert_eq!(split(&keys(100), 2), vec![vec!["0050".to_string()]]);
        assert_eq!(
            split(&keys(9), 3),
            vec![vec!["0003".to_string()], vec!["0006".to_string()]]
        );
        // Too few keys to tell, or one part: no split.
        assert!(split(&keys(3), 2).is_empty());
        assert!(split(&keys(100), 1).is_empty());
    }

    #[test]
    fn the_real_error_wins() {
        let stopped = || Err(EngineError::Stopped("r".into()));
        let real = || {
            Err(EngineError::Db {
                step: "backfill".into(),
                message: "boom".into(),
            })
        };
        assert!(matches!(
            first_error(vec![stopped(), real(), Ok(())]),
            Err(EngineError::Db { .. })
        ));
        assert!(matches!(
            first_error(vec![Ok(()), stopped()]),
            Err(EngineError::Stopped(_))
        ));
        assert!(first_error(vec![Ok(()), Ok(())]).is_ok());
    }

    #[test]
    fn join_all_keeps_the_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(join_all(vec![
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                1
            }) as LaneFuture<'_, i32>,
            Box::pin(async { 2 }),
        ]));
        assert_eq!(out, vec![1, 2]);
    }
}
