//! The foreground workload: writer connections inserting, updating and deleting while the
//! table is converted, each operation timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::connect::ConnectOptions;

/// What the workload measured.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Operations PostgreSQL refused (must stay 0: nothing may break the application).
    pub(super) errors: AtomicU64,
    /// (when, latency) of every operation, for windows.
    samples: Mutex<Vec<(Instant, Duration)>>,
}

/// The workload over a span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub ops_per_sec: f64,
    pub worst: Duration,
}

impl Stats {
    /// Throughput and worst latency of the operations that ended between `from` and `to`.
    pub(super) fn window(&self, from: Instant, to: Instant) -> Window {
        let s = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        let inside: Vec<&(Instant, Duration)> =
            s.iter().filter(|(t, _)| *t >= from && *t <= to).collect();
        let secs = to.duration_since(from).as_secs_f64().max(0.001);
        let worst = inside.iter().map(|(_, d)| *d).max().unwrap_or_default();
        Window {
            ops_per_sec: inside.len() as f64 / secs,
            worst,
        }
    }
}

/// Running writers; [`Workload::stop`] ends them.
pub(super) struct Workload {
    pub(super) stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    /// Starts `n` writers (60 % inserts, 30 % updates, 10 % deletes of ids up to `max_id`).
    pub(super) fn start(conn: &ConnectOptions, n: u32, max_id: i64) -> Workload {
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let writers = (0..n)
            .map(|i| {
                tokio::spawn(writer(
                    conn.clone(),
                    stats.clone(),
                    stop.clone(),
                    max_id,
                    u64::from(i) + 1,
                ))
            })
            .collect();
        Workload {
            stats,
            stop,
            writers,
        }
    }

    /// Stops the writers and waits for them.
    pub(super) async fn stop(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.writers {
            let _ = w.await;
        }
        self.stats
    }
}

async fn writer(
    conn: ConnectOptions,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    max_id: i64,
    seed: u64,
) {
    let Ok(c) = conn.connect().await else {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let r = match rng.u8(0..10) {
            0..=5 => {
                c.execute(
                    "INSERT INTO telemetry (device_id, recorded_at, status, payload)
                     VALUES ($1::int, now(), 'new', jsonb_build_object('v', $2::int))",
                    &[&rng.i32(0..1000), &rng.i32(0..100)],
                )
                .await
            }
            6..=8 => {
                c.execute(
                    "UPDATE telemetry SET status = 'seen', payload = payload || '{\"seen\": true}' WHERE id = $1",
                    &[&rng.i64(1..max_id.max(2))],
                )
                .await
            }
            _ => {
                c.execute("DELETE FROM telemetry WHERE id = $1", &[&rng.i64(1..max_id.max(2))])
                    .await
            }
        };
        if r.is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut s) = stats.samples.lock() {
            s.push((Instant::now(), t.elapsed()));
        }
    }
}
