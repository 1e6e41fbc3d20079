//! Pacing: batch sizes that follow a target batch time, the duty cycle (rest while the
//! application is busy), `max_rows_per_second` and `max_replica_lag`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::Client;

use super::error::EngineError;
use crate::playbook::settings::Backfill;

/// The size of the next batch: one that takes about `target_ms`, at most double or half
/// the last one, between 100 and 200,000 rows.
pub(crate) fn next_batch_size(batch: u32, elapsed: Duration, target_ms: u64) -> u32 {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms <= 0.0 {
        return batch;
    }
    let ideal = f64::from(batch) * target_ms as f64 / ms;
    (ideal.clamp(f64::from(batch) / 2.0, f64::from(batch) * 2.0) as u32).clamp(100, 200_000)
}

/// The runner's backends, which are not the application, and how many of its connections
/// work at once: together they keep to the duty cycle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share<'a> {
    pub pids: &'a [i32],
    /// How many connections are at work now (one that has run out of work stops counting).
    pub working: usize,
}

/// After work that took `elapsed`, rests as `duty_cycle` asks, but only while the
/// application is busy: some client backend other than the runner's is running a statement
/// or ran one in the last second. On an idle database the runner works flat out. With
/// several connections at work, each takes its share: together they work `duty_cycle` of
/// the time one connection would. `duty_cycle = 1` never rests, with any number of them.
/// Returns the rest taken, if any.
pub(crate) async fn rest(
    client: &Client,
    settings: &Backfill,
    elapsed: Duration,
    share: Share<'_>,
) -> Option<Duration> {
    if settings.duty_cycle >= 1.0 {
        return None;
    }
    let duty = settings.duty_cycle / share.working.max(1) as f64;
    if !busy(client, share.pids).await {
        return None;
    }
    let rest = Duration::from_secs_f64((elapsed.as_secs_f64() * (1.0 - duty) / duty).min(60.0));
    tokio::time::sleep(rest).await;
    Some(rest)
}

/// Whether the application is busy: some client backend of the database other than the
/// runner's (`pids`) is running a statement or ran one in the last second.
pub(crate) async fn busy(client: &Client, pids: &[i32]) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                   AND pid <> ALL($1::int[]) AND datname = current_database()
                   AND (state <> 'idle' OR state_change > now() - interval '1 second'))",
            &[&pids],
        )
        .await
        .map_or(true, |r| r.get::<_, bool>(0))
}

/// The worst replay lag of the replicas, in milliseconds (0 without replicas).
pub(crate) async fn replica_lag_ms(client: &Client) -> u64 {
    client
        .query_one(
            "SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::bigint FROM pg_stat_replication",
            &[],
        )
        .await
        .map_or(0, |r| r.get::<_, i64>(0).max(0) as u64)
}

/// What a throttle needs: the connection, the run, Ctrl-C, and where notes go.
pub(crate) struct Throttle<'t> {
    pub client: &'t Client,
    pub run_id: &'t str,
    pub stop: &'t AtomicBool,
    pub note: &'t dyn Fn(&str),
}

impl Throttle<'_> {
    /// Records why the work is slowed and sleeps `pause` (Ctrl-C is honoured after it).
    pub(crate) async fn wait(&self, why: &str, pause: Duration) -> Result<(), EngineError> {
        let _ = self
            .client
            .execute(
                "UPDATE lockstep.runs SET throttle = $2 WHERE id = $1",
                &[&self.run_id, &why],
            )
            .await;
        if pause > Duration::from_millis(500) {
            (self.note)(&format!("copy throttled: {why}"));
        }
        tokio::time::sleep(pause).await;
        stopped(self.stop, self.run_id)
    }

    /// After a batch of `rows` that took `elapsed` (and the duty cycle's rest): waits as
    /// `max_rows_per_second` and `max_replica_lag` ask (the capture goes on meanwhile).
    /// With several connections at work, `max_rows_per_second` is shared among them.
    pub(crate) async fn pace(
        &self,
        settings: &Backfill,
        share: Share<'_>,
        (rows, elapsed): (i64, Duration),
    ) -> Result<(), EngineError> {
        stopped(self.stop, self.run_id)?;
        if settings.max_rows_per_second > 0 {
            let per_lane = settings.max_rows_per_second as f64 / share.working.max(1) as f64;
            let should_take = Duration::from_secs_f64(rows.max(0) as f64 / per_lane);
            if should_take > elapsed {
                self.wait("max_rows_per_second", should_take - elapsed)
                    .await?;
            }
        }
        if let Some(max_lag) = settings.max_replica_lag_ms {
            loop {
                let lag = replica_lag_ms(self.client).await;
                if lag <= max_lag {
                    break;
                }
                self.wait(
                    &format!("replica lag {lag} ms > {max_lag} ms"),
                    Duration::from_secs(1),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// `Err(Stopped)` once Ctrl-C asked to stop.
pub(crate) fn stopped(stop: &AtomicBool, run_id: &str) -> Result<(), EngineError> {
    if stop.load(Ordering::SeqCst) {
        return Err(EngineError::Stopped(run_id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_follow_the_target_time_within_bounds() {
        // Twice too fast: double; far too slow: half; never outside 100..=200,000.
        assert_eq!(next_batch_size(1000, Duration::from_millis(50), 100), 2000);
        assert_eq!(next_batch_size(1000, Duration::from_secs(10), 100), 500);
        assert_eq!(next_batch_size(150, Duration::from_secs(10), 100), 100);
        assert_eq!(
            next_batch_size(150_000, Duration::from_millis(1), 100),
            200_000
        );
        assert_eq!(next_batch_size(1000, Duration::ZERO, 100), 1000);
    }
}
