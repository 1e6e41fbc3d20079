//! The retry policy of everything that needs a lock: DDL and the swap under `lock_timeout`,
//! retried with exponential backoff and jitter, giving up with the blocking backends named;
//! and batches that meet the application's row locks, which give way and go again.

use std::time::Duration;

use tokio_postgres::Client;

use super::error::{dberr, is_lock_conflict, is_lock_timeout, EngineError};
use crate::playbook::settings::Swap;

/// What a retry needs to know besides the error: the playbook's lock settings, the run, and
/// the tables involved (for naming blockers and cancelling autovacuum).
pub(crate) struct Policy<'p> {
    pub swap: &'p Swap,
    pub run_id: &'p str,
    pub tables: &'p [String],
}

/// The state of one retried operation: after each failure to get a lock within
/// lock_timeout, cancels blocking autovacuum workers, says who blocks, and waits with
/// exponential backoff and jitter; after the last attempt, gives up naming the blockers.
pub(crate) struct Retry {
    attempt: u32,
    backoff: u64,
    first_backoff: u64,
    /// Batches: a row-lock wait over lock_timeout or a deadlock is retried too, and the count
    /// starts again after each batch that goes through ([`Retry::reset`]).
    batches: bool,
}

impl Retry {
    /// For a transaction that takes locks on the tables (DDL, the swap).
    pub(crate) fn new(swap: &Swap) -> Retry {
        Retry {
            attempt: 0,
            backoff: swap.backoff_ms,
            first_backoff: swap.backoff_ms,
            batches: false,
        }
    }

    /// For the batches of a copy or an update, which meet the application's row locks.
    pub(crate) fn batches(swap: &Swap) -> Retry {
        Retry {
            batches: true,
            ..Retry::new(swap)
        }
    }

    /// After a batch that went through.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.backoff = self.first_backoff;
    }

    /// After an attempt failed with `e`: `Ok(())` to try again (after the backoff), or the
    /// error to give up with.
    pub(crate) async fn failed(
        &mut self,
        e: tokio_postgres::Error,
        client: &Client,
        note: &dyn Fn(&str),
        policy: &Policy<'_>,
        step: &str,
    ) -> Result<(), EngineError> {
        let swap = policy.swap;
        self.attempt += 1;
        let retried = if self.batches {
            is_lock_conflict(&e)
        } else {
            is_lock_timeout(&e)
        };
        if !retried {
            return Err(dberr(step)(e));
        }
        if self.attempt >= swap.attempts {
            return Err(EngineError::SwapGaveUp {
                step: step.to_string(),
                run: policy.run_id.to_string(),
                attempts: swap.attempts,
                lock_timeout_ms: swap.lock_timeout_ms,
                blockers: blockers(client, policy.tables, swap.lock_timeout_ms).await,
            });
        }
        if self.batches {
            let who = blockers(client, policy.tables, swap.lock_timeout_ms).await;
            note(&format!(
                "{step}: a batch waited more than {} ms for row locks (attempt {}/{}; {who}); retrying",
                swap.lock_timeout_ms, self.attempt, swap.attempts
            ));
        } else {
            // PostgreSQL cancels an autovacuum that blocks a lock request only after
            // deadlock_timeout (1 s by default), longer than our lock_timeout: do it
            // ourselves, except for a wraparound vacuum, which must finish.
            let cancelled = cancel_autovacuum(client, policy.tables).await;
            if cancelled > 0 {
                note(&format!(
                    "{step}: cancelled {cancelled} autovacuum worker(s) holding a lock on the tables (they restart later)"
                ));
            }
            let who = blockers(client, policy.tables, swap.lock_timeout_ms).await;
            note(&format!(
                "{step}: lock not granted within {} ms (attempt {}/{}; {who}); retrying",
                swap.lock_timeout_ms, self.attempt, swap.attempts
            ));
        }
        tokio::time::sleep(jitter(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(swap.max_backoff_ms);
        Ok(())
    }
}

impl Retry {
    /// After an attempt that could not go on for `why` (nothing to do with locks): `Ok(())`
    /// to try again after the backoff, or the error once every attempt is spent.
    pub(crate) async fn again(
        &mut self,
        why: &str,
        note: &dyn Fn(&str),
        swap: &Swap,
        step: &str,
    ) -> Result<(), EngineError> {
        self.attempt += 1;
        if self.attempt >= swap.attempts {
            return Err(EngineError::State(format!(
                "{step}: {why}, at each of {} attempts; `lockstep resume` tries again",
                swap.attempts
            )));
        }
        note(&format!(
            "{step}: {why} (attempt {}/{}); retrying",
            self.attempt, swap.attempts
        ));
        tokio::time::sleep(jitter(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(swap.max_backoff_ms);
        Ok(())
    }
}

/// `ms` with ±25 % jitter.
pub(crate) fn jitter(ms: u64) -> Duration {
    let spread = ms / 4;
    let low = ms - spread;
    Duration::from_millis(low + fastrand::u64(0..=spread * 2))
}

/// The tables (and their partitions) of `tables`, as a CTE `lockstep_involved(oid)`; `$1` is
/// the array of qualified names.
const INVOLVED_CTE: &str = "WITH lockstep_named AS (SELECT to_regclass(n) AS oid FROM unnest($1::text[]) n),
     lockstep_involved AS (SELECT oid FROM lockstep_named WHERE oid IS NOT NULL
         UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent IN (SELECT oid FROM lockstep_named))";

/// Cancels autovacuum workers (not wraparound ones) holding locks on `tables` (and their
/// partitions).
pub(crate) async fn cancel_autovacuum(client: &Client, tables: &[String]) -> u64 {
    client
        .query_one(
            &format!(
                "{INVOLVED_CTE}
                 SELECT count(*) FILTER (WHERE pg_cancel_backend(a.pid))
                 FROM pg_stat_activity a
                 WHERE a.backend_type = 'autovacuum worker'
                   AND a.query NOT LIKE '%to prevent wraparound%'
                   AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation'
                               AND l.relation IN (SELECT oid FROM lockstep_involved))"
            ),
            &[&tables],
        )
        .await
        .map_or(0, |r| r.get::<_, i64>(0).max(0) as u64)
}

/// The backends holding locks on `tables` (and their partitions) in a transaction open for
/// longer than `min_ms` (the lock_timeout), for messages: the application's own short
/// transactions, which hold locks for an instant and then let go, block nobody for long and
/// are not named.
pub(crate) async fn blockers(client: &Client, tables: &[String], min_ms: u64) -> String {
    let min_ms = min_ms as f64;
    let rows = client
        .query(
            &format!(
                "{INVOLVED_CTE}
                 SELECT DISTINCT a.pid, coalesce(a.usename::text, a.backend_type, '?'), coalesce(a.state, '?'),
                        coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0),
                        left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80), l.mode
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.granted AND l.pid <> pg_backend_pid() AND l.locktype = 'relation'
                   AND l.relation IN (SELECT oid FROM lockstep_involved)
                   AND coalesce(a.xact_start, now()) <= now() - make_interval(secs => $2::float8 / 1000)"
            ),
            &[&tables, &min_ms],
        )
        .await;
    match rows {
        Ok(rows) if !rows.is_empty() => rows
            .iter()
            .map(|r| {
                format!(
                    "blocked by backend pid {} (user {}, {}, transaction open {} s, holding {}, running `{}`)",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, String>(5),
                    r.get::<_, String>(4)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Ok(_) => "no transaction older than the lock_timeout holds a lock on the tables: only the application's own short ones took turns with it (more attempts, or a longer lock_timeout, will get through)".to_string(),
        Err(_) => "no blocking backend seen any more".to_string(),
    }
}
