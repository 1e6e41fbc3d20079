//! The replay's backlog: how many captured changes wait, how fast that number grows, and
//! whether the replay is behind (the log grows faster than it is replayed).
//!
//! While the replay is behind it works without resting for the duty cycle, in larger
//! batches, and the run's other connections (the verification's helpers) wait: resting is
//! what lets a log fed by busy writers outgrow its replay. It stops being behind once a batch
//! takes all it sees. The growth is read from the log's statistics (`n_live_tup`: no
//! scan of a log that may hold millions of entries), at most once a second, and recorded in
//! the state table for `lockstep status`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// How far back the growth is measured.
const WINDOW: Duration = Duration::from_secs(5);
/// The shortest span of samples a growth rate is computed from.
const MIN_SPAN: Duration = Duration::from_millis(1500);
/// How often the backlog is read.
const EVERY: Duration = Duration::from_secs(1);
/// While behind, replay batches are sized for this many times the target batch time:
/// fewer statements per change, and a key changed many times is replayed once per batch.
pub(crate) const BEHIND_STRETCH: u64 = 4;

/// The backlog as last read: entries waiting and their growth per second (none until there
/// are samples over a long enough span).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    pub backlog: i64,
    pub per_second: Option<f64>,
}

/// The growth per second from the oldest to the newest of `samples` (times in seconds),
/// when they span at least `min_span` seconds.
pub(crate) fn growth(samples: &[(f64, i64)], min_span: f64) -> Option<f64> {
    let (t0, n0) = *samples.first()?;
    let (t1, n1) = *samples.last()?;
    let span = t1 - t0;
    (span >= min_span).then(|| (n1 - n0) as f64 / span)
}

/// Whether the replay is behind after a reading: it falls behind when the backlog grows and
/// is more than one batch takes. It stays behind until a batch takes all it sees
/// ([`Backlog::caught_up`]): the statistics lag by a second or so, and a replay that stopped
/// hurrying on their word would fall behind again at once.
pub(crate) fn next_behind(behind: bool, reading: Reading, batch: u32) -> bool {
    behind || (reading.backlog > i64::from(batch) && reading.per_second.is_some_and(|r| r > 0.0))
}

/// What the run knows of its replay's backlog (one per run, shared by its connections).
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    samples: RefCell<VecDeque<(Instant, i64)>>,
    last: Cell<Option<Instant>>,
    behind: Cell<bool>,
}

impl Backlog {
    /// Whether the replay is behind now.
    pub(crate) fn behind(&self) -> bool {
        self.behind.get()
    }

    /// Whether a reading is due (none in the last second).
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.last
            .get()
            .is_none_or(|t| now.duration_since(t) >= EVERY)
    }

    /// Records that `backlog` entries wait at `now`; the reading with the growth over the
    /// last few seconds.
    pub(crate) fn record(&self, now: Instant, backlog: i64) -> Reading {
        self.last.set(Some(now));
        let mut s = self.samples.borrow_mut();
        s.push_back((now, backlog));
        // The last sample older than the window stays: batches held back by a limit may
        // come further apart than the window.
        while s
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            s.pop_front();
        }
        let Some((first, _)) = s.front().copied() else {
            return Reading {
                backlog,
                per_second: None,
            };
        };
        let secs: Vec<(f64, i64)> = s
            .iter()
            .map(|(t, n)| (t.duration_since(first).as_secs_f64(), *n))
            .collect();
        Reading {
            backlog,
            per_second: growth(&secs, MIN_SPAN.as_secs_f64()),
        }
    }

    /// A batch took all that waited: the growth so far says nothing about what comes next.
    /// Returns whether a reading is due (for the status).
    pub(crate) fn caught_up(&self, now: Instant) -> bool {
        self.samples.borrow_mut().clear();
        let due = self.due(now);
        if due {
            self.last.set(Some(now));
        }
        due
    }

    /// Sets whether the replay is behind; returns the previous value.
    pub(crate) fn set_behind(&self, behind: bool) -> bool {
        self.behind.replace(behind)
    }
}

/// The entries in the log `log` (qualified), from its statistics; `None` when they are not
/// there (the log is gone, or `track_counts` is off).
pub(crate) async fn read(client: &Client, log: &str) -> Option<i64> {
    client
        .query_opt(
            "SELECT n_live_tup FROM pg_catalog.pg_stat_user_tables WHERE relid = to_regclass($1)",
            &[&log],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get::<_, Option<i64>>(0))
}

/// Records a reading in the state table for `lockstep status` (and, while behind, why the
/// other work waits); with `clear`, the throttle reason goes. Best effort: a failed write
/// only leaves the status older.
pub(crate) async fn publish(
    client: &Client,
    run_id: &str,
    reading: Reading,
    (behind, reason, clear): (bool, Option<&str>, bool),
) {
    let _ = client
        .execute(
            "UPDATE lockstep.runs SET replay = jsonb_build_object('backlog', $2::bigint,
                 'per_second', $3::float8, 'behind', $4::boolean, 'at', now()),
                 throttle = CASE WHEN $5::text IS NOT NULL THEN $5::text WHEN $6 THEN NULL ELSE throttle END
             WHERE id = $1",
            &[
                &run_id,
                &reading.backlog,
                &reading.per_second,
                &behind,
                &reason,
                &clear,
            ],
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_the_slope_over_a_long_enough_span() {
        assert_eq!(growth(&[], 1.5), None);
        assert_eq!(growth(&[(0.0, 100)], 1.5), None);
        assert_eq!(growth(&[(0.0, 100), (1.0, 300)], 1.5), None);
        assert_eq!(
            growth(&[(0.0, 100), (1.0, 300), (2.0, 500)], 1.5),
            Some(200.0)
        );
        assert_eq!(growth(&[(0.0, 500), (2.0, 100)], 1.5), Some(-200.0));
    }

    #[test]
    fn behind_once_growing_beyond_a_batch() {
        let r = |backlog, per_second| Reading {
            backlog,
            per_second,
        };
        // Not behind: growing and more than a batch.
        assert!(next_behind(false, r(5000, Some(10.0)), 1000));
        assert!(!next_behind(false, r(5000, Some(-10.0)), 1000));
        assert!(!next_behind(false, r(5000, None), 1000));
        assert!(!next_behind(false, r(500, Some(10.0)), 1000));
        // Behind: stays so while shrinking, also when the statistics say a batch could take
        // it all (only a batch that did ends it).
        assert!(next_behind(true, r(5000, Some(-10.0)), 1000));
        assert!(next_behind(true, r(900, Some(-10.0)), 1000));
    }

    #[test]
    fn readings_keep_a_window_of_a_few_seconds() {
        let b = Backlog::default();
        let t0 = Instant::now();
        assert!(b.due(t0));
        assert_eq!(b.record(t0, 0).per_second, None);
        assert!(!b.due(t0 + Duration::from_millis(500)));
        let r = b.record(t0 + Duration::from_secs(2), 1000);
        assert_eq!(r.per_second, Some(500.0));
        // Ten seconds later the oldest sample is gone; the one before the window stays.
        let r = b.record(t0 + Duration::from_secs(12), 2000);
        assert_eq!(r.per_second, Some(100.0));
        let r = b.record(t0 + Duration::from_secs(18), 2000);
        assert_eq!(r.per_second, Some(0.0));
        // Caught up: no rate until there are samples again.
        b.caught_up(t0 + Duration::from_secs(19));
        assert_eq!(b.record(t0 + Duration::from_secs(20), 10).per_second, None);
    }
}
