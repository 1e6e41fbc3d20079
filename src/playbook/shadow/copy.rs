//! The copy (backfill): keyset batches in primary-key order up to the key that was highest
//! when the capture went live, split into lanes (key ranges of about equal size, from a
//! sample of the table's pages) that the run's connections take one after another. Each
//! batch is one plain `INSERT … SELECT` of the rows as its snapshot sees them; each lane's
//! high-water mark is checkpointed in its batch's transaction.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Instant;

use tokio_postgres::types::ToSql;

use super::runner::Runner;
use crate::playbook::exec::{
    begin_with_lock_timeout, dberr, hold_point, in_transaction, BatchError, Batching, Conn,
    EngineError, Outcome, Pacing, Sizing,
};
use crate::playbook::state::{self, Lane};

/// Where to split a key range into `parts` parts of about equal size: the upper keys of all
/// parts but the last, from `sample` (keys in order). Fewer parts when the sample is too
/// small to tell (fewer than two keys per part).
pub(super) fn split(sample: &[Vec<String>], parts: usize) -> Vec<Vec<String>> {
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

/// The parameters of a key range: the upper key, then the lower one (none from the start).
pub(super) fn range_params<'p>(
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

/// How far the copy got, over all lanes.
struct CopyTally {
    copied: Cell<i64>,
    total: i64,
    started: Instant,
    at_start: i64,
    batches: Cell<u64>,
    /// The first batch size (the last one a killed run used).
    first_batch: u32,
}

impl CopyTally {
    fn rate(&self) -> f64 {
        (self.copied.get() - self.at_start) as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

impl Runner<'_, '_> {
    /// The upper keys of up to `parts` key ranges of about equal size that together cover
    /// the keys up to `upper` (the last is `upper`), from a sample of the table's pages.
    pub(super) async fn bounds(
        &self,
        upper: &[String],
        parts: usize,
        step: &str,
    ) -> Result<Vec<Vec<String>>, EngineError> {
        // Pages sampled: a few thousand keys place the bounds within a percent or so.
        const SAMPLE_PAGES: f64 = 100.0;
        let mut bounds = Vec::new();
        if parts > 1 {
            let conn = self.exec.main();
            let pages: f64 = conn
                .query_one(&self.plan.pages_sql(), &[], step)
                .await?
                .get(0);
            let percent = (100.0 * SAMPLE_PAGES / pages.max(1.0)).clamp(0.0001, 100.0);
            let sample: Vec<Vec<String>> = conn
                .query(
                    &self.plan.sample_keys_sql(percent),
                    &range_params(None, upper),
                    step,
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            bounds = split(&sample, parts);
        }
        bounds.push(upper.to_vec());
        Ok(bounds)
    }

    pub(super) async fn backfill(&mut self) -> Result<(), EngineError> {
        self.exec.step(
            "backfill",
            &format!("{} → {}", self.plan.source(), self.plan.shadow()),
        );
        let client = self.exec.client;
        let run_id = self.exec.run_id.clone();
        // The upper bound, read after the capture is active: later rows come through the log.
        let max_key = match self.copy.max_key.clone() {
            Some(k) => Some(k),
            None => {
                let key: Option<Vec<String>> = self
                    .exec
                    .main()
                    .query_opt(&self.plan.copy_max_key_sql(), &[], "backfill")
                    .await?
                    .map(|r| r.get(0));
                if let Some(k) = &key {
                    state::set_max_key(client, &run_id, k, false)
                        .await
                        .map_err(dberr("backfill"))?;
                }
                key
            }
        };
        let Some(max_key) = max_key else {
            return Ok(()); // empty table
        };
        // The lanes table, also for a state table made by an earlier version.
        state::ensure(client)
            .await
            .map_err(dberr("creating the state table"))?;
        let mut lanes = state::lanes(client, &run_id)
            .await
            .map_err(dberr("backfill"))?;
        if lanes.is_empty() {
            // More lanes than connections: a connection that is done (or a helper that waited
            // while the application was busy) takes the next. A copy begun by a version
            // without lanes (its high-water mark in lockstep.runs) goes on as one lane.
            // Rows written in another order than the key's come from one lane: lanes
            // copying at once would interleave their pages.
            let parts = match (self.exec.backfill().workers as usize, &self.copy.high_water) {
                (1, _) | (_, Some(_)) => 1,
                _ if self.plan.reordered() => 1,
                (n, None) => 4 * n,
            };
            let bounds = self.bounds(&max_key, parts, "sampling keys").await?;
            lanes = state::create_lanes(client, &run_id, self.copy.high_water.as_deref(), &bounds)
                .await
                .map_err(dberr("backfill"))?;
        }
        if lanes.len() > 1 {
            self.exec.crew().await;
        }
        let tally = CopyTally {
            copied: Cell::new(self.copy.rows_copied),
            total: self.copy.rows_estimate.max(self.copy.rows_copied),
            started: Instant::now(),
            at_start: self.copy.rows_copied,
            batches: Cell::new(0),
            first_batch: self
                .copy
                .batch_size
                .map_or(self.exec.backfill().batch_size, |b| b.max(1) as u32),
        };
        let queue: VecDeque<Lane> = lanes.into_iter().collect();
        let this = &*self;
        this.exec
            .in_lanes(queue, async |conn, i, lane| {
                this.copy_lane(conn, &lane, &tally, i == 0).await
            })
            .await?;
        self.copy.rows_copied = tally.copied.get();
        Ok(())
    }

    /// Copies one lane, from its high-water mark to its upper key, in batches that each
    /// checkpoint the lane. With `pumps` (the main connection), logical capture's slot is
    /// read into the log between batches, at most once a second.
    async fn copy_lane(
        &self,
        conn: Conn<'_, '_>,
        lane: &Lane,
        tally: &CopyTally,
        pumps: bool,
    ) -> Result<(), EngineError> {
        let mut high = lane.high_water.clone();
        let how = Batching {
            step: "backfill",
            sizing: Sizing::Adaptive {
                first: tally.first_batch,
                min: 1,
            },
            pause: true,
            give_way: true,
            pacing: Pacing::Full,
        };
        conn.drive(how, async |size| {
            if pumps {
                self.pump_now(conn, false).await?;
            }
            let (n, last, paused) = self
                .copy_batch(conn, lane, high.as_deref(), (size as i32, tally.rate()))
                .await?;
            tally.batches.set(tally.batches.get() + 1);
            // The end of the range, not the rows copied, says when the lane is done: every
            // row of a range may have been deleted meanwhile.
            let Some(last) = last else {
                return Ok(Outcome {
                    rows: 0,
                    more: false,
                    paused,
                });
            };
            tally.copied.set(tally.copied.get() + n);
            high = Some(last);
            let copied = tally.copied.get();
            self.exec
                .copy(copied, tally.total.max(copied), tally.rate());
            if tally.batches.get() == 1 {
                hold_point("backfill").await;
            }
            Ok::<_, BatchError>(Outcome {
                rows: n,
                more: true,
                paused,
            })
        })
        .await
    }

    /// One batch and its checkpoint (the lane's high-water mark; rows copied, batch size and
    /// rate of the run), in one transaction: the batch's end (parameters: the lane's upper
    /// key, then the high-water key), then the copy (parameters: the batch's end, then the
    /// high-water key). Returns the rows copied, the batch's end (`None`: the lane is done)
    /// and whether `lockstep pause` is in force.
    async fn copy_batch(
        &self,
        conn: Conn<'_, '_>,
        lane: &Lane,
        high: Option<&[String]>,
        (batch_size, rows_per_sec): (i32, f64),
    ) -> Result<(i64, Option<Vec<String>>, bool), tokio_postgres::Error> {
        let c = conn.client;
        let run_id = &self.exec.run_id;
        let end = self
            .plan
            .batch_end_sql(high.is_none(), batch_size.max(1) as u32);
        let copy_sql = self.plan.batch_sql(high.is_none());
        let begin = begin_with_lock_timeout(self.exec.swap.lock_timeout_ms);
        in_transaction(c, &begin, async {
            let last: Option<Vec<String>> = c
                .query_opt(&end, &range_params(high, &lane.upper))
                .await?
                .map(|r| r.get(0));
            let Some(l) = last else {
                // Done: the high-water mark becomes the upper key, which says so to
                // `lockstep status`.
                c.execute(
                    "UPDATE lockstep.lanes SET high_water = upper_key WHERE run_id = $1 AND lane = $2",
                    &[run_id, &lane.lane],
                )
                .await?;
                return Ok((0, None, false));
            };
            let rows = c.execute(&copy_sql, &range_params(high, &l)).await? as i64;
            c.execute(
                "UPDATE lockstep.lanes SET high_water = $3 WHERE run_id = $1 AND lane = $2",
                &[run_id, &lane.lane, &l],
            )
            .await?;
            let paused: bool = c
                .query_one(
                    "UPDATE lockstep.runs SET rows_copied = rows_copied + $2, batch_size = $3,
                         rows_per_sec = $4, throttle = NULL, updated_at = now()
                     WHERE id = $1 RETURNING paused",
                    &[run_id, &rows, &batch_size, &rows_per_sec],
                )
                .await?
                .get(0);
            Ok((rows, Some(l), paused))
        })
        .await
    }
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
}
