//! The online partitioning engine against a real (throwaway) PostgreSQL, with a concurrent
//! workload: row-for-row equality after the conversion, `kill -9` at every checkpoint and
//! then resume or rollback, a transaction blocking the swap, dependents (sequences,
//! identity, grants, foreign keys, views) forward and back, refusals, awkward identifiers,
//! composite keys and list partitions, two runners at once, and `lockstep plan`. Three
//! tests pin down races the engine once lost: a long transaction during the index builds,
//! application row locks against the copy's key order, and a key update racing a batch.
//!
//! The workload keeps an independent copy of everything it commits in a plain side table
//! (`expected`), written in the same transaction as each write, so "every committed write is
//! present" is a comparison with that table, row for row.

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, rt};

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lockstep::db::cluster::TempCluster;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

const BIN: &str = env!("CARGO_BIN_EXE_lockstep");

fn cluster() -> TempCluster {
    TempCluster::start().expect("a throwaway PostgreSQL must start for this test")
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One database of a cluster, with a synchronous face for the test's own queries.
struct Db {
    url: String,
    rt: tokio::runtime::Runtime,
    client: Client,
    dir: tempfile::TempDir,
}

impl Db {
    fn create(cluster: &TempCluster, name: &str) -> Db {
        let rt = rt();
        let admin_url = format!("{} application_name=tests", cluster.conn_string("postgres"));
        let url = cluster.conn_string(name);
        let test_url = format!("{url} application_name=tests");
        let client = rt.block_on(async {
            let admin = connect(&admin_url).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin
                .batch_execute(&format!("ALTER DATABASE {name} SET timezone TO 'UTC'"))
                .await
                .unwrap();
            connect(&test_url).await
        });
        Db {
            url,
            rt,
            client,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A connection string for the test's own extra connections (told apart from lockstep's
    /// by application_name).
    fn test_url(&self) -> String {
        format!("{} application_name=tests", self.url)
    }

    fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Row> {
        self.rt
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.rt
            .block_on(self.client.query_one(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--database-url")
            .arg(&self.url)
            .env("NO_COLOR", "1")
            .env_remove("LOCKSTEP_TEST_HOLD_AT")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null());
        c
    }

    /// Runs `lockstep ARGS --database-url …` to the end.
    fn lockstep(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `lockstep ARGS` in the background, holding at `hold` (if given).
    fn spawn(&self, args: &[&str], hold: Option<&str>) -> Running {
        let log = self.dir.path().join(format!(
            "run-{}.log",
            self.dir.path().read_dir().unwrap().count()
        ));
        let mut c = self.command(args);
        if let Some(h) = hold {
            c.env("LOCKSTEP_TEST_HOLD_AT", h);
        }
        c.stdout(Stdio::from(File::create(&log).unwrap()))
            .stderr(Stdio::from(
                File::create(log.with_extension("err")).unwrap(),
            ));
        Running {
            child: Some(c.spawn().unwrap()),
            log,
        }
    }

    /// The backend pid holding the run lock, if any.
    fn runner_pid(&self) -> Option<i32> {
        self.query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1",
            &[],
        )
        .first()
        .map(|r| r.get(0))
    }

    /// Waits until no backend holds the run lock (after killing a runner, its backend needs
    /// a moment to notice).
    fn wait_runner_gone(&self) {
        wait_for(
            "the killed runner's backend to exit",
            Duration::from_secs(20),
            || self.runner_pid().is_none(),
        );
    }

    /// (step, status, rows_copied, paused) of the only run on the table.
    fn run_state(&self) -> Option<(String, String, i64, bool)> {
        let exists: bool = self.one("SELECT to_regclass('lockstep.runs') IS NOT NULL");
        if !exists {
            return None;
        }
        self.query(
            "SELECT step, status, rows_copied, paused FROM lockstep.runs ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .first()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    }

    /// Waits until a runner started with `LOCKSTEP_TEST_HOLD_AT=point` is holding there:
    /// the state table shows the point was reached and the runner's connection has been idle
    /// for a second.
    fn wait_held(&self, run: &mut Running, point: &str) {
        let start = Instant::now();
        loop {
            if let Some(status) = run.try_wait() {
                panic!(
                    "the runner exited ({status}) before holding at {point}:\n{}",
                    run.output()
                );
            }
            let reached = match self.run_state() {
                Some((step, _, copied, _)) => match point {
                    "backfill" => step == "capture" && copied > 0,
                    "indexes" => step == "backfill",
                    "replay" | "verify" => step == "indexes",
                    "before-swap" => step == "verified",
                    "after-swap" => step == "swapped",
                    _ => panic!("unknown hold point {point}"),
                },
                None => false,
            };
            if reached {
                if let Some(pid) = self.runner_pid() {
                    let idle: bool = self.query(
                        "SELECT coalesce(state = 'idle' AND state_change < now() - interval '1 s', false) FROM pg_stat_activity WHERE pid = $1",
                        &[&pid],
                    )
                    .first()
                    .is_some_and(|r| r.get(0));
                    if idle {
                        return;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the runner did not hold at {point} within 90 s (state {:?}):\n{}",
                self.run_state(),
                run.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Compares two relations row for row (in one snapshot); panics with samples on a
    /// difference. Returns the number of rows.
    fn assert_same_rows(&self, a: &str, b: &str) -> i64 {
        let rows = self.rt.block_on(async {
            let tx_sql = format!(
                "SELECT (SELECT count(*) FROM {a}), (SELECT count(*) FROM {b}),
                        (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x),
                        (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) x),
                        (SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) y LIMIT 5) x),
                        (SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y LIMIT 5) x)"
            );
            self.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .await
                .unwrap();
            let r = self.client.query_one(&tx_sql, &[]).await;
            self.client.batch_execute("COMMIT").await.unwrap();
            r.unwrap_or_else(|e| panic!("{tx_sql}: {e:?}"))
        });
        let (na, nb, only_a, only_b): (i64, i64, i64, i64) =
            (rows.get(0), rows.get(1), rows.get(2), rows.get(3));
        assert!(
            only_a == 0 && only_b == 0 && na == nb,
            "{a} ({na} rows) and {b} ({nb} rows) differ: {only_a} rows only in {a}, e.g. {:?}; {only_b} rows only in {b}, e.g. {:?}",
            rows.get::<_, Option<String>>(4),
            rows.get::<_, Option<String>>(5)
        );
        assert!(na > 0, "{a} is empty");
        na
    }

    /// Names of the relations in `schema`, sorted (to prove nothing is left behind).
    fn relations(&self, schema: &str) -> Vec<String> {
        self.query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = to_regnamespace($1) ORDER BY 1",
            &[&schema],
        )
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// `pg_get_indexdef` of every index of `table`, sorted.
    fn index_defs(&self, table: &str) -> Vec<String> {
        self.query(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass($1) ORDER BY 1",
            &[&table],
        )
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    fn lockstep_functions(&self) -> i64 {
        self.one("SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace('lockstep')")
    }
}

/// A `lockstep` process running in the background; killed when dropped.
struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// SIGKILL (`Child::kill` on unix) and reap.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            let status = c.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "{status}"
            );
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout: {}\nstderr: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}

/// The copy was exact: verification never had to copy a range again.
/// `lockstep resume` finishes, and verification found the copy exact.
fn resume_exactly(db: &Db) {
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
}

fn assert_exact_copy(output: &str) {
    assert!(
        !output.contains("a range differs"),
        "the copy was not exact, verification had to repair it:\n{output}"
    );
}

// ---------------------------------------------------------------------------------------
// The `events` table and its workload.

const EVENTS: &str = "
DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    account    integer NOT NULL DEFAULT 0,
    payload    text,
    amount     numeric(12,2)
);
CREATE INDEX events_account ON events (account);
CREATE VIEW recent_events AS SELECT id, created_at, account FROM events WHERE created_at >= '2024-03-01';
GRANT SELECT ON events TO reader;
GRANT SELECT ON recent_events TO reader;
";

/// Creates `events` with `rows` rows over six months of 2024 (some payloads NULL) and the
/// workload's side table `expected` holding the same rows.
fn setup_events(db: &Db, rows: i64) {
    db.exec(EVENTS);
    db.exec(&format!(
        "INSERT INTO events (created_at, account, payload, amount)
         SELECT '2024-01-01'::timestamptz + (i * 37 % 4344) * interval '1 hour' + (i % 60) * interval '1 second',
                i % 500,
                CASE WHEN i % 7 = 0 THEN NULL ELSE 'payload ' || i END,
                (i % 10000) / 100.0
         FROM generate_series(1, {rows}) i;
         CREATE TABLE expected (LIKE events);
         ALTER TABLE expected ADD PRIMARY KEY (id);
         INSERT INTO expected SELECT * FROM events;
         ANALYZE events;"
    ));
}

fn events_playbook(extra: &str) -> String {
    format!(
        "kind = \"partition\"
table = \"events\"

[partition]
column = \"created_at\"
strategy = \"range\"
interval = \"1 month\"
premake = 2

[backfill]
batch_size = 500
target_batch_ms = 50
{extra}
"
    )
}

#[derive(Debug, Default, Clone)]
struct Stats {
    counts: BTreeMap<&'static str, u64>,
    worst: BTreeMap<&'static str, Duration>,
    /// Errors from the database: none are expected.
    errors: Vec<String>,
    /// A write that touched no row, or a read that found none, for a row the workload knows
    /// to exist.
    anomalies: Vec<String>,
}

impl Stats {
    fn worst(&self) -> Duration {
        self.worst.values().copied().max().unwrap_or_default()
    }

    fn merge(&mut self, o: Stats) {
        for (k, v) in o.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in o.worst {
            let w = self.worst.entry(k).or_default();
            *w = (*w).max(v);
        }
        self.errors.extend(o.errors);
        self.anomalies.extend(o.anomalies);
    }

    fn assert_clean(&self) {
        assert!(
            self.errors.is_empty(),
            "workload errors: {:?}",
            &self.errors[..self.errors.len().min(10)]
        );
        assert!(
            self.anomalies.is_empty(),
            "workload anomalies: {:?}",
            &self.anomalies[..self.anomalies.len().min(10)]
        );
        for kind in [
            "insert", "update", "pair", "move", "rekey", "delete", "read",
        ] {
            assert!(
                self.counts.get(kind).copied().unwrap_or(0) > 0,
                "the workload never did a {kind}: {:?}",
                self.counts
            );
        }
    }

    fn report(&self, label: &str) -> String {
        let worst: Vec<String> = self
            .worst
            .iter()
            .map(|(k, v)| format!("{k} {:.0} ms", v.as_secs_f64() * 1000.0))
            .collect();
        format!(
            "{label}: {} ops ({:?}); worst latency: {}",
            self.counts.values().sum::<u64>(),
            self.counts,
            worst.join(", ")
        )
    }
}

/// Writers on `events`, each on its own connection and its own set of rows, each write
/// mirrored into `expected` in the same statement (so in the same transaction). Inserts,
/// updates (also of NULLs), updates moving a row to another partition, updates of the
/// primary key, deletes and reads, as fast as a 2 ms pause between operations allows.
struct Workload {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Stats>>,
}

impl Workload {
    /// Starts `writers` writers on the rows now in `expected`.
    fn start(db: &Db, writers: u64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let ids: Vec<i64> = db
            .query("SELECT id FROM expected ORDER BY id", &[])
            .iter()
            .map(|r| r.get(0))
            .collect();
        let threads = (0..writers)
            .map(|w| {
                let live: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|i| *i as u64 % writers == w)
                    .collect();
                let url = db.test_url();
                let stop = stop.clone();
                let ops = ops.clone();
                std::thread::spawn(move || {
                    rt().block_on(async move {
                        let client = connect(&url).await;
                        writer(&client, live, w, &stop, &ops).await
                    })
                })
            })
            .collect();
        let w = Workload { stop, ops, threads };
        w.wait_ops(50);
        w
    }

    fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Waits until the workload has committed `n` more operations.
    fn wait_ops(&self, n: u64) {
        let target = self.ops() + n;
        wait_for(
            &format!("{n} more workload operations"),
            Duration::from_secs(60),
            || self.ops() >= target,
        );
    }

    fn finish(self) -> Stats {
        self.stop.store(true, Ordering::SeqCst);
        let mut s = Stats::default();
        for t in self.threads {
            s.merge(t.join().expect("a workload thread panicked"));
        }
        s
    }
}

async fn writer(
    c: &Client,
    mut live: Vec<i64>,
    seed: u64,
    stop: &AtomicBool,
    ops: &AtomicU64,
) -> Stats {
    let mut rng = fastrand::Rng::with_seed(seed + 7);
    let mut s = Stats::default();
    while !stop.load(Ordering::SeqCst) {
        let roll = rng.u32(0..100);
        let kind: &'static str = match roll {
            0..=24 => "insert",
            25..=44 => "update",
            45..=54 => "move",
            55..=64 => "rekey",
            65..=74 if live.len() > 100 => "delete",
            75..=84 => "pair",
            _ => "read",
        };
        let pick = rng.usize(0..live.len());
        let id = live[pick];
        let t0 = Instant::now();
        let result: Result<(), tokio_postgres::Error> = async {
            match kind {
                "insert" => {
                    let hours = rng.i32(-700..7000);
                    let account = rng.i32(0..500);
                    let payload = (rng.u8(..) >= 52).then(|| format!("new {hours}"));
                    let cents = rng.i32(0..1_000_000);
                    let row = c
                        .query_one(
                            "WITH r AS (INSERT INTO events (created_at, account, payload, amount)
                                        VALUES ('2024-01-01'::timestamptz + $1::int * interval '1 hour', $2, $3, $4::int / 100.0)
                                        RETURNING *)
                             INSERT INTO expected SELECT * FROM r RETURNING id",
                            &[&hours, &account, &payload, &cents],
                        )
                        .await?;
                    live.push(row.get(0));
                }
                "update" => {
                    let payload = (rng.u8(..) >= 64).then(|| format!("upd {}", rng.u32(..)));
                    let n = c
                        .execute(
                            "WITH r AS (UPDATE events SET payload = $2, amount = amount + 1 WHERE id = $1 RETURNING *)
                             UPDATE expected e SET payload = r.payload, amount = r.amount FROM r WHERE e.id = r.id",
                            &[&id, &payload],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("update of id {id} touched {n} rows"));
                    }
                }
                "pair" => {
                    // Two neighbouring rows in one transaction, the higher key first (the
                    // copy locks rows in key order), with a little work in between.
                    let other = live[(pick + 1) % live.len()];
                    let sql = "WITH r AS (UPDATE events SET account = account + 1 WHERE id = $1 RETURNING *)
                               UPDATE expected e SET account = r.account FROM r WHERE e.id = r.id";
                    c.batch_execute("BEGIN").await?;
                    let r: Result<(), tokio_postgres::Error> = async {
                        for row in [id.max(other), id.min(other)] {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                            let n = c.execute(sql, &[&row]).await?;
                            if n != 1 {
                                s.anomalies.push(format!("pair update of id {row} touched {n} rows"));
                            }
                        }
                        c.batch_execute("COMMIT").await
                    }
                    .await;
                    if r.is_err() {
                        let _ = c.batch_execute("ROLLBACK").await;
                    }
                    r?;
                }
                "move" => {
                    // Changes the partition key: usually another month, sometimes outside
                    // every range (the DEFAULT partition).
                    let days = rng.i32(-60..60);
                    let n = c
                        .execute(
                            "WITH r AS (UPDATE events SET created_at = created_at + $2::int * interval '1 day' WHERE id = $1 RETURNING *)
                             UPDATE expected e SET created_at = r.created_at FROM r WHERE e.id = r.id",
                            &[&id, &days],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("move of id {id} touched {n} rows"));
                    }
                }
                "rekey" => {
                    // Changes the primary key.
                    let rows = c
                        .query(
                            "WITH r AS (UPDATE events SET id = nextval('events_id_seq') WHERE id = $1 RETURNING id)
                             UPDATE expected e SET id = r.id FROM r WHERE e.id = $1 RETURNING e.id",
                            &[&id],
                        )
                        .await?;
                    match rows.as_slice() {
                        [r] => live[pick] = r.get(0),
                        _ => s
                            .anomalies
                            .push(format!("rekey of id {id} touched {} rows", rows.len())),
                    }
                }
                "delete" => {
                    let n = c
                        .execute(
                            "WITH r AS (DELETE FROM events WHERE id = $1 RETURNING id)
                             DELETE FROM expected e USING r WHERE e.id = r.id",
                            &[&id],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("delete of id {id} touched {n} rows"));
                    }
                    live.swap_remove(pick);
                }
                _ => {
                    let n = c
                        .query("SELECT id FROM events WHERE id = $1", &[&id])
                        .await?
                        .len();
                    if n != 1 {
                        s.anomalies.push(format!("read of id {id} found {n} rows"));
                    }
                    c.query(
                        "SELECT count(*) FROM events WHERE account = $1",
                        &[&rng.i32(0..500)],
                    )
                    .await?;
                }
            }
            Ok(())
        }
        .await;
        let took = t0.elapsed();
        match result {
            Ok(()) => {
                *s.counts.entry(kind).or_default() += 1;
                let w = s.worst.entry(kind).or_default();
                *w = (*w).max(took);
                ops.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                s.errors.push(format!("{kind} of id {id}: {e:?}"));
                if s.errors.len() > 50 {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s
}

/// After a completed run: `events` is partitioned and `events_old` is not, both equal to
/// what the workload committed.
fn assert_swapped(db: &Db) {
    let kinds: Vec<String> = db
        .query(
            "SELECT relkind::text FROM pg_class WHERE oid IN ('events'::regclass, 'events_old'::regclass) ORDER BY relname",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["p", "r"], "events, events_old");
    db.assert_same_rows("events", "expected");
    db.assert_same_rows("events_old", "expected");
    let partitions: i64 =
        db.one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass");
    assert!(partitions >= 6, "{partitions} partitions");
    // Statistics were gathered before the swap, for every partition.
    let unanalyzed: i64 = db.one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_stat_user_tables s ON s.relid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND s.last_analyze IS NULL",
    );
    assert_eq!(unanalyzed, 0, "partitions without statistics");
    // Autovacuum, off while the copy was filled, is on again.
    let no_autovacuum: i64 = db.one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass
           AND 'autovacuum_enabled=off' = ANY (coalesce(c.reloptions, '{}'))",
    );
    assert_eq!(no_autovacuum, 0, "partitions with autovacuum off");
    // The secondary index is on the new table, attached in every partition (so valid), and
    // no INVALID index is left anywhere.
    let index: String = db.one(
        "SELECT pg_get_indexdef('events_account'::regclass) || ' ' || indisvalid FROM pg_index WHERE indexrelid = 'events_account'::regclass",
    );
    assert_eq!(
        index,
        "CREATE INDEX events_account ON ONLY public.events USING btree (account) true"
    );
    let invalid: i64 = db.one("SELECT count(*) FROM pg_index WHERE NOT indisvalid");
    assert_eq!(invalid, 0, "INVALID indexes left");
}

/// After a rollback: the original `events` is back as it was, with every committed write.
fn assert_restored(db: &Db, relations_before: &[String], indexes_before: &[String]) {
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r");
    db.assert_same_rows("events", "expected");
    assert_eq!(
        db.relations("public"),
        relations_before,
        "relations in public"
    );
    assert_eq!(db.index_defs("events"), indexes_before, "indexes of events");
    let pk: String = db.one(
        "SELECT conname::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'p'",
    );
    assert_eq!(pk, "events_pkey PRIMARY KEY (id)");
    let triggers: i64 = db.one(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
    );
    assert_eq!(triggers, 0, "triggers left on events");
    assert_eq!(
        db.lockstep_functions(),
        0,
        "functions left in schema lockstep"
    );
    let seq: String = db.one("SELECT pg_get_serial_sequence('events', 'id')");
    assert_eq!(seq, "public.events_id_seq");
    let view_ok: bool =
        db.one("SELECT (SELECT count(*) FROM recent_events) = (SELECT count(*) FROM events WHERE created_at >= '2024-03-01')");
    assert!(view_ok);
    let granted: bool = db.one("SELECT has_table_privilege('reader', 'events', 'SELECT')");
    assert!(granted);
}

// ---------------------------------------------------------------------------------------

#[test]
fn workload_during_the_conversion_loses_nothing_and_is_never_blocked_long() {
    let cluster = cluster();
    let db = Db::create(&cluster, "workload");
    const ROWS: i64 = 30_000;
    setup_events(&db, ROWS);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(
            "max_rows_per_second = 10000\n\n[swap]\nlock_timeout = \"200ms\"\nattempts = 30\nbackoff = \"50ms\"",
        ),
    );
    let wl = Workload::start(&db, 2);
    let t0 = Instant::now();
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    let took = t0.elapsed();
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_id = stdout
        .strip_prefix("run ")
        .and_then(|s| s.split(':').next())
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
        .to_string();
    let ops_at_swap = wl.ops();
    // Writes after the swap go to the new table and, through the reverse trigger, to the old.
    wl.wait_ops(400);
    let stats = wl.finish();
    let during = stats.clone();
    stats.assert_clean();
    eprintln!(
        "{} (run took {:.1} s, {} ops after the swap)",
        stats.report("workload during the run"),
        took.as_secs_f64(),
        stats.counts.values().sum::<u64>() - ops_at_swap
    );
    assert!(
        took > Duration::from_secs(2),
        "the copy was expected to overlap the workload for a few seconds"
    );
    assert_swapped(&db);
    let step: String = db.one("SELECT step FROM lockstep.runs");
    assert_eq!(step, "validated");

    // Explicit writes after the swap: each is visible in both tables.
    let max_before: i64 = db.one("SELECT max(id) FROM events");
    let new_id: i64 = db.one(
        "WITH r AS (INSERT INTO events (created_at, account, payload) VALUES ('2024-02-02', 1, 'after swap') RETURNING *)
         INSERT INTO expected SELECT * FROM r RETURNING id",
    );
    assert!(
        new_id > max_before,
        "sequence continuity: {new_id} <= {max_before}"
    );
    db.exec(&format!(
        "WITH r AS (UPDATE events SET created_at = '2024-05-05', id = nextval('events_id_seq') WHERE id = {new_id} RETURNING id, created_at)
         UPDATE expected e SET id = r.id, created_at = r.created_at FROM r WHERE e.id = {new_id};
         WITH r AS (DELETE FROM events WHERE id = (SELECT min(id) FROM events) RETURNING id)
         DELETE FROM expected e USING r WHERE e.id = r.id;"
    ));
    let in_old: i64 =
        db.one("SELECT count(*) FROM events_old WHERE payload = 'after swap' AND created_at = '2024-05-05'");
    assert_eq!(in_old, 1);
    assert_swapped(&db);

    let out = db.lockstep(&["finalize", &run_id]);
    assert_exit(&out, 0);
    let old_gone: bool = db.one("SELECT to_regclass('events_old') IS NULL");
    assert!(old_gone, "events_old is still there after finalize");
    assert_eq!(db.lockstep_functions(), 0);
    let triggers: i64 = db.one(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
    );
    assert_eq!(triggers, 0, "the reverse trigger is still on events");
    db.assert_same_rows("events", "expected");
    // The serial's sequence belongs to the new table now and survived the old one.
    let seq: String = db.one("SELECT pg_get_serial_sequence('events', 'id')");
    assert_eq!(seq, "public.events_id_seq");
    let max_id: i64 = db.one("SELECT max(id) FROM events");
    let id: i64 = db.one("INSERT INTO events (created_at) VALUES ('2024-06-06') RETURNING id");
    assert!(id > max_id, "{id} <= {max_id}");

    // lock_timeout 200 ms: no operation of the workload waits much longer than one attempt.
    let worst = during.worst();
    eprintln!("worst workload latency during the run: {worst:?}");
    assert!(
        worst < Duration::from_secs(2),
        "{}",
        during.report("the workload was blocked too long")
    );
}

const HOLD_POINTS: [&str; 6] = [
    "backfill",
    "indexes",
    "replay",
    "verify",
    "before-swap",
    "after-swap",
];

/// Starts a run on a fresh `events` with a workload, holds it at `point`, kills it with
/// SIGKILL while the workload goes on, then resumes or rolls back (the workload still going).
/// The lanes that have copied something (a lane starts at the end of the one before).
const LANES_STARTED: &str = "SELECT count(*) FROM lockstep.lanes h
     LEFT JOIN lockstep.lanes p ON p.run_id = h.run_id AND p.lane = h.lane - 1
     WHERE h.high_water IS DISTINCT FROM p.upper_key";

fn kill_at(cluster: &TempCluster, point: &str, rollback: bool) {
    const ROWS: i64 = 20_000;
    let db = Db::create(
        cluster,
        &format!(
            "k_{}_{}",
            point.replace('-', "_"),
            if rollback { "rb" } else { "res" }
        ),
    );
    setup_events(&db, ROWS);
    let relations_before = db.relations("public");
    let indexes_before = db.index_defs("events");
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\""),
    );
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some(point));
    db.wait_held(&mut run, point);
    if point == "backfill" {
        // Eight lanes (four per connection, the default `workers = 2`), each a key range
        // with its own high-water mark. While the workload writes, the helper connection
        // waits: under load the main connection alone keeps to the duty cycle.
        let lanes: i64 = db.one("SELECT count(*) FROM lockstep.lanes");
        assert_eq!(lanes, 8);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            db.one::<i64>(LANES_STARTED),
            1,
            "only the main connection's lane"
        );
    }
    run.kill9();
    db.wait_runner_gone();
    if point == "indexes" {
        // An INVALID index with the name the engine builds next (a concurrent unique build,
        // by hand, that failed on duplicates): the resumed run builds it again.
        // The secondary indexes come after the primary key's: none is built yet.
        let partition: String = db.one(
            "SELECT tableoid::regclass::text FROM events_lockstep_new
             GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        );
        let failed = db.rt.block_on(db.client.batch_execute(&format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {partition}_0_idx ON {partition} (account)"
        )));
        assert!(failed.is_err(), "the unique build must fail on duplicates");
        let invalid: bool = db.one(&format!(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = '{partition}_0_idx'::regclass"
        ));
        assert!(invalid);
    }
    let (step, status, _, _) = db.run_state().unwrap();
    let status_out = db.lockstep(&["status"]);
    assert_exit(&status_out, 0);
    assert!(
        String::from_utf8_lossy(&status_out.stdout).contains("interrupted (no runner is alive"),
        "{}",
        text(&status_out)
    );
    if point == "backfill" {
        assert!(
            String::from_utf8_lossy(&status_out.stdout)
                .contains("lanes      8: 0 copied, 1 under way, 7 waiting"),
            "{}",
            text(&status_out)
        );
    }
    // Writes while no runner is alive: the triggers keep both tables current.
    wl.wait_ops(200);
    let out = if rollback {
        db.lockstep(&["rollback"])
    } else {
        db.lockstep(&["resume"])
    };
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
    wl.wait_ops(200);
    let stats = wl.finish();
    stats.assert_clean();
    eprintln!(
        "killed at {point} (step {step}, status {status}), then {}: {}",
        if rollback { "rollback" } else { "resume" },
        stats.report("workload")
    );
    // The lanes are forgotten once the copy is done, or undone.
    let lanes: i64 = db.one("SELECT count(*) FROM lockstep.lanes");
    assert_eq!(lanes, 0);
    if rollback {
        assert_restored(&db, &relations_before, &indexes_before);
        let (step, _, _, _) = db.run_state().unwrap();
        assert_eq!(step, "rolled_back");
    } else {
        assert_swapped(&db);
        let (step, _, _, _) = db.run_state().unwrap();
        assert_eq!(step, "validated");
        let out = db.lockstep(&["finalize"]);
        assert_exit(&out, 0);
        db.assert_same_rows("events", "expected");
    }
}

#[test]
fn killed_at_every_checkpoint_then_resumed() {
    let cluster = cluster();
    for point in HOLD_POINTS {
        kill_at(&cluster, point, false);
    }
}

#[test]
fn killed_at_every_checkpoint_then_rolled_back() {
    let cluster = cluster();
    for point in HOLD_POINTS {
        kill_at(&cluster, point, true);
    }
}

#[test]
fn a_blocking_transaction_makes_the_swap_give_up_without_blocking_the_workload() {
    let cluster = cluster();
    let db = Db::create(&cluster, "blocked");
    const ROWS: i64 = 20_000;
    setup_events(&db, ROWS);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[swap]\nlock_timeout = \"100ms\"\nattempts = 3\nbackoff = \"50ms\""),
    );
    // A transaction that read the table and stays open: it holds ACCESS SHARE until it ends.
    // (Simple protocol only, so it keeps no snapshot: the index builds do not wait for it.)
    let blocker = db.rt.block_on(connect(&db.test_url()));
    let blocker_pid: i32 = db.rt.block_on(async {
        let pid = blocker
            .simple_query("SELECT pg_backend_pid()")
            .await
            .unwrap()
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap()
            .parse()
            .unwrap();
        blocker
            .batch_execute(
                "BEGIN; LOCK TABLE events IN ACCESS SHARE MODE; SELECT count(*) FROM events",
            )
            .await
            .unwrap();
        pid
    });
    let holds_snapshot: bool = db.query(
        "SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE pid = $1",
        &[&blocker_pid],
    )[0]
    .get(0);
    assert!(!holds_snapshot);
    let wl = Workload::start(&db, 2);
    let t0 = Instant::now();
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    let took = t0.elapsed();
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("swap: could not get its locks within 3 attempts of 100 ms")
            && stderr.contains(&format!("blocked by backend pid {blocker_pid} ")),
        "the message names the blocking backend {blocker_pid}:\n{}",
        text(&out)
    );
    assert!(stderr.contains("lockstep resume"), "{stderr}");
    let (step, status, _, _) = db.run_state().unwrap();
    assert_eq!((step.as_str(), status.as_str()), ("verified", "failed"));
    // Nothing was swapped.
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r");
    wl.wait_ops(100);
    let blocked = wl.finish();
    blocked.assert_clean();
    eprintln!(
        "{} (the failed run took {:.1} s)",
        blocked.report("workload during the blocked run"),
        took.as_secs_f64()
    );
    // Each attempt may hold the workload up to lock_timeout (100 ms), never longer.
    assert!(
        blocked.worst() < Duration::from_secs(1),
        "{}",
        blocked.report("the workload was blocked too long")
    );

    // The blocking transaction ends: resume swaps.
    db.rt.block_on(blocker.batch_execute("COMMIT")).unwrap();
    let wl = Workload::start(&db, 2);
    resume_exactly(&db);
    wl.wait_ops(200);
    wl.finish().assert_clean();
    db.assert_same_rows("events", "expected");
    db.assert_same_rows("events_old", "expected");
}

#[test]
fn a_long_transaction_does_not_hold_up_the_run() {
    let cluster = cluster();
    let db = Db::create(&cluster, "long_tx");
    const ROWS: i64 = 20_000;
    setup_events(&db, ROWS);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[swap]\nlock_timeout = \"100ms\"\nattempts = 3\nbackoff = \"50ms\""),
    );
    // A transaction with a snapshot, on another table. A concurrent index build would wait
    // for it; the copy's indexes are built without CONCURRENTLY (nothing else writes to the
    // copy), so nothing does.
    let long = db.rt.block_on(connect(&db.test_url()));
    let long_pid: i32 = db.rt.block_on(async {
        long.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM expected")
            .await
            .unwrap();
        long.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    });
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    wait_for("the run to finish", Duration::from_secs(90), || {
        run.try_wait().is_some()
    });
    assert!(run.try_wait().unwrap().success(), "{}", run.output());
    assert!(
        !run.output().contains("wait for older transactions"),
        "{}",
        run.output()
    );
    // The long transaction is still open.
    let open: bool = db.one(&format!(
        "SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = {long_pid}"
    ));
    assert!(open);
    assert_exact_copy(&run.output());
    let stats = wl.finish();
    stats.assert_clean();
    assert!(
        stats.worst() < Duration::from_secs(2),
        "{}",
        stats.report("blocked")
    );
    db.rt.block_on(long.batch_execute("COMMIT")).unwrap();
    assert_swapped(&db);
}

#[test]
fn dependents_are_carried_over() {
    let cluster = cluster();
    let db = Db::create(&cluster, "dependents");
    db.exec(
        "DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE items (
             id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             sku        text NOT NULL,
             price      numeric(10,2) NOT NULL,
             doubled    numeric GENERATED ALWAYS AS (price * 2) STORED,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX items_sku ON items (sku);
         CREATE TABLE item_notes (
             id      serial PRIMARY KEY,
             item_id bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
             note    text
         );
         CREATE VIEW pricey_items AS SELECT id, sku, price FROM items WHERE price > 50;
         CREATE VIEW cheap_items WITH (security_barrier) AS
             SELECT id, sku, price FROM items WHERE price < 10 WITH LOCAL CHECK OPTION;
         GRANT SELECT, INSERT ON items TO reader;
         GRANT UPDATE (price) ON items TO reader;
         INSERT INTO items (sku, price) SELECT 'sku' || i, (i % 100) + 0.5 FROM generate_series(1, 20000) i;
         INSERT INTO item_notes (item_id, note) SELECT i, 'note ' || i FROM generate_series(1, 19000, 10) i;
         -- The sequence is ahead of the data: ids of deleted rows are never handed out again.
         DELETE FROM items WHERE id > 19990;
         CREATE TABLE expected AS SELECT * FROM items;
         ANALYZE items;",
    );
    let old_oid: u32 = db.one("SELECT 'items'::regclass::oid");
    let pb = db.playbook(
        "items.toml",
        "kind = \"partition\"\ntable = \"items\"\n[partition]\ncolumn = \"id\"\nstrategy = \"hash\"\nmodulus = 4\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 50\nworkers = 1\n",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'items'::regclass");
    assert_eq!(kind, "p");
    db.assert_same_rows("items", "expected");

    // Identity: new rows get ids above every id the old table ever handed out.
    let ids: Vec<i64> = db
        .query(
            "INSERT INTO items (sku, price) VALUES ('new1', 99), ('new2', 1) RETURNING id",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(ids.iter().all(|id| *id > 20_000), "{ids:?}");
    let doubled: String = db.one("SELECT doubled::text FROM items WHERE sku = 'new1'");
    assert_eq!(doubled, "198.00", "the generated column");
    // The reverse trigger wrote them to the old table too, with the same ids.
    let in_old: i64 =
        db.one("SELECT count(*) FROM items_old WHERE sku IN ('new1', 'new2') AND id > 20000");
    assert_eq!(in_old, 2);

    // Grants: exactly the ones the old table had.
    let privileges: Vec<bool> = db
        .query(
            "SELECT has_table_privilege('reader', 'items', p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(privileges, [true, true, false, false]);
    let column_privileges: Vec<bool> = db
        .query(
            "SELECT has_column_privilege('reader', 'items', c, 'UPDATE') FROM unnest(ARRAY['price', 'sku']) c",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(column_privileges, [true, false], "column privileges");
    // View options (security_barrier, the check option) are kept.
    let options: Vec<String> =
        db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'cheap_items'::regclass");
    assert_eq!(options, ["security_barrier=true", "check_option=local"]);
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO cheap_items (sku, price) VALUES ('dear', 500)"),
        )
        .expect_err("the check option refuses rows the view would not show");
    assert_eq!(err.code().map(|c| c.code()), Some("44000"), "{err:?}");

    // The inbound foreign key points at the new table, validated, and enforced.
    let (target, validated): (u32, bool) = {
        let r = &db.query(
            "SELECT confrelid::oid, convalidated FROM pg_constraint WHERE conname = 'item_notes_item_id_fkey'",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    let new_oid: u32 = db.one("SELECT 'items'::regclass::oid");
    assert_ne!(new_oid, old_oid);
    assert_eq!(target, new_oid, "the foreign key references the new table");
    assert!(validated, "the foreign key is validated");
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO item_notes (item_id) VALUES (19995)"),
        )
        .expect_err("a note for an item that does not exist must be refused");
    assert_eq!(err.code().map(|c| c.code()), Some("23503"), "{err:?}");
    db.exec("DELETE FROM items WHERE id = 11");
    let notes: i64 = db.one("SELECT count(*) FROM item_notes WHERE item_id = 11");
    assert_eq!(notes, 0, "ON DELETE CASCADE is kept");

    // The view reads the new table.
    let (view, direct): (i64, i64) = {
        let r = &db.query(
            "SELECT (SELECT count(*) FROM pricey_items), (SELECT count(*) FROM items WHERE price > 50)",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!(view, direct);
    let view_on_new: bool = db.one(
        "SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                        WHERE r.ev_class = 'pricey_items'::regclass AND d.refobjid = 'items'::regclass)
            AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                        WHERE r.ev_class = 'pricey_items'::regclass AND d.refobjid = 'items_old'::regclass)",
    );
    assert!(view_on_new);
    let sees_new: i64 = db.one("SELECT count(*) FROM pricey_items WHERE sku = 'new1'");
    assert_eq!(sees_new, 1);

    // Finalize drops the old table (nothing depends on it any more); all still works.
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 0);
    let gone: bool = db.one("SELECT to_regclass('items_old') IS NULL");
    assert!(gone);
    let id: i64 = db.one("INSERT INTO items (sku, price) VALUES ('new3', 60) RETURNING id");
    assert!(id > ids[1]);
    db.exec(&format!("INSERT INTO item_notes (item_id) VALUES ({id})"));
    let seen: i64 = db.one("SELECT count(*) FROM pricey_items WHERE sku = 'new3'");
    assert_eq!(seen, 1);
}

#[test]
fn unsupported_tables_are_refused_in_preflight_and_nothing_changes() {
    let cluster = cluster();
    let db = Db::create(&cluster, "refusals");
    db.exec(
        "CREATE TABLE audited (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER audit_changes AFTER INSERT OR UPDATE ON audited FOR EACH ROW EXECUTE FUNCTION audit();
         CREATE TABLE skus (id bigint PRIMARY KEY, sku text NOT NULL, at timestamptz NOT NULL);
         CREATE UNIQUE INDEX skus_sku ON skus (sku);
         CREATE TABLE loose (id bigint PRIMARY KEY, at timestamptz);
         CREATE TABLE taken (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE TABLE taken_old (id bigint);
         CREATE TABLE crowded (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO crowded VALUES (1, '2024-01-05');
         CREATE TABLE bystander (x integer);
         CREATE INDEX crowded_p202401_pkey ON bystander (x);
         INSERT INTO audited SELECT i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;
         INSERT INTO skus SELECT i, 's' || i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;
         INSERT INTO loose SELECT i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;",
    );
    let relations = db.relations("public");
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger");
    for (table, why) in [
        (
            "audited",
            "trigger audit_changes on the table is not carried over",
        ),
        (
            "skus",
            "unique index skus_sku does not include the partition column at",
        ),
        ("loose", "partition column at allows NULL"),
        ("taken", "public.taken_old already exists"),
        // The name the primary key of the copy's first partition would get.
        ("crowded", "public.crowded_p202401_pkey already exists"),
    ] {
        let pb = db.playbook(
            &format!("{table}.toml"),
            &format!(
                "kind = \"partition\"\ntable = \"{table}\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n"
            ),
        );
        let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
        assert_exit(&plan, 1);
        let stdout = String::from_utf8_lossy(&plan.stdout);
        assert!(
            stdout.contains("preflight: refused") && stdout.contains(why),
            "plan of {table}: {}",
            text(&plan)
        );
        let run = db.lockstep(&["run", pb.to_str().unwrap()]);
        assert_exit(&run, 1);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("preflight refused the conversion") && stderr.contains(why),
            "run of {table}: {}",
            text(&run)
        );
        assert!(!stderr.contains("shadow:"), "{stderr}");
    }
    assert_eq!(db.relations("public"), relations);
    let after: i64 = db.one("SELECT count(*) FROM pg_trigger");
    assert_eq!(after, triggers);
    let no_state: bool = db.one("SELECT to_regnamespace('lockstep') IS NULL");
    assert!(no_state, "a refused run created the lockstep schema");
    let rows: i64 = db.one("SELECT (SELECT count(*) FROM audited) + (SELECT count(*) FROM skus) + (SELECT count(*) FROM loose)");
    assert_eq!(rows, 300);
}

#[test]
fn awkward_identifiers_in_a_non_public_schema() {
    let cluster = cluster();
    let db = Db::create(&cluster, "idents");
    db.exec(
        r#"DO $$ BEGIN CREATE ROLE "Read Only"; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
           CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."Order ""Items""" (
               "Id"         bigserial PRIMARY KEY,
               "select"     text,
               "Created At" timestamptz NOT NULL,
               "user"       integer NOT NULL
           );
           CREATE INDEX "Order ""Items"" by select" ON "My Schema"."Order ""Items""" ("select", "user");
           CREATE VIEW "My Schema"."Big ""Orders""" AS
               SELECT "Id", "select" FROM "My Schema"."Order ""Items""" WHERE "user" > 5;
           GRANT SELECT ON "My Schema"."Order ""Items""" TO "Read Only";
           INSERT INTO "My Schema"."Order ""Items""" ("select", "Created At", "user")
               SELECT CASE WHEN i % 9 = 0 THEN NULL ELSE 'it''s "' || i || '"' END,
                      '2024-01-01'::timestamptz + i * interval '17 minutes', i % 10
               FROM generate_series(1, 20000) i;
           CREATE TABLE "My Schema".expected AS SELECT * FROM "My Schema"."Order ""Items""";"#,
    );
    let t = r#""My Schema"."Order ""Items""""#;
    let pb = db.playbook(
        "odd.toml",
        r#"kind = "partition"
table = '"My Schema"."Order ""Items"""'

[partition]
column = "Created At"
strategy = "range"
interval = "1 month"

[backfill]
batch_size = 500
target_batch_ms = 50
"#,
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let kind: String = db.one(&format!(
        "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('{}')",
        t.replace('\'', "''")
    ));
    assert_eq!(kind, "p");
    let old = r#""My Schema"."Order ""Items""_old""#;
    db.assert_same_rows(t, r#""My Schema".expected"#);
    db.assert_same_rows(old, r#""My Schema".expected"#);
    // Writes after the swap: serial default, the view, the grant, the index name.
    let id: i64 = db.one(&format!(
        r#"INSERT INTO {t} ("select", "Created At", "user") VALUES ('after', '2024-03-03', 9) RETURNING "Id""#
    ));
    assert!(id > 20_000);
    let in_view: i64 =
        db.one(r#"SELECT count(*) FROM "My Schema"."Big ""Orders""" WHERE "select" = 'after'"#);
    assert_eq!(in_view, 1);
    let granted: bool = db.one(&format!(
        "SELECT has_table_privilege('Read Only', '{}', 'SELECT')",
        t.replace('\'', "''")
    ));
    assert!(granted);
    let index: String =
        db.one(r#"SELECT pg_get_indexdef('"My Schema"."Order ""Items"" by select"'::regclass)"#);
    assert!(
        index.contains(r#"ON ONLY "My Schema"."Order ""Items""" USING btree ("select", "user")"#),
        "{index}"
    );
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 0);
    let gone: bool = db.one(&format!(
        "SELECT to_regclass('{}') IS NULL",
        old.replace('\'', "''")
    ));
    assert!(gone);
    let rows: i64 = db.one(&format!("SELECT count(*) FROM {t}"));
    assert_eq!(rows, 20_001);
    db.exec(&format!(
        r#"INSERT INTO "My Schema".expected SELECT * FROM {t} WHERE "Id" = {id}"#
    ));
    db.assert_same_rows(t, r#""My Schema".expected"#);
}

#[test]
fn a_second_runner_is_refused_and_status_pause_and_resume_work() {
    let cluster = cluster();
    let db = Db::create(&cluster, "two_runs");
    setup_events(&db, 20_000);
    // `duty_cycle = 1`: the helper connection copies too, though the test's queries make the
    // database look busy, so that a pause meets two copying connections.
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("max_rows_per_second = 4000\nduty_cycle = 1"),
    );
    let pb = pb.to_str().unwrap();
    let mut first = db.spawn(&["run", pb], Some("backfill"));
    db.wait_held(&mut first, "backfill");
    let pid = db.runner_pid().expect("the runner holds the run lock");

    let second = db.lockstep(&["run", pb]);
    assert_exit(&second, 2);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another lockstep process is working on public.events (backend pid {pid})"
        )),
        "{}",
        text(&second)
    );
    let runs: i64 = db.one("SELECT count(*) FROM lockstep.runs");
    assert_eq!(runs, 1, "the refused run recorded nothing");

    let run_id: String = db.one("SELECT id FROM lockstep.runs");
    // Three changes for the log, replayed after the copy.
    db.exec(
        "UPDATE events SET account = account + 1 WHERE id <= 3;
         UPDATE expected SET account = account + 1 WHERE id <= 3",
    );
    let status = db.lockstep(&["status"]);
    assert_exit(&status, 0);
    let s = String::from_utf8_lossy(&status.stdout);
    for want in [
        format!("run        {run_id}"),
        "table      public.events".to_string(),
        "step       capture".to_string(),
        format!("state      running (runner backend pid {pid})"),
        "logged     3 changes not replayed yet".to_string(),
    ] {
        assert!(s.contains(&want), "{want:?} not in:\n{s}");
    }

    let out = db.lockstep(&["pause", &run_id]);
    assert_exit(&out, 0);
    assert!(db.run_state().unwrap().3, "paused is set");
    let status = db.lockstep(&["status", &run_id]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(", copy paused"),
        "{}",
        text(&status)
    );
    // With a live runner, resume only un-pauses.
    let out = db.lockstep(&["resume", &run_id]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("copy resumed"),
        "{}",
        text(&out)
    );
    assert!(!db.run_state().unwrap().3, "paused is cleared");
    first.kill9();
    db.wait_runner_gone();
    // Finalize is only for swapped runs, and a new run waits for this one to be finished.
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("finalize is for swapped runs"),
        "{}",
        text(&out)
    );
    let out = db.lockstep(&["run", pb]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("run {run_id} on public.events is not finished")),
        "{}",
        text(&out)
    );

    // Pausing a live copy stops it (the rows copied stay put) until resume.
    let mut runner = db.spawn(&["resume", &run_id], None);
    let copied_at_start = db.run_state().unwrap().2;
    wait_for("the copy to go on", Duration::from_secs(30), || {
        db.run_state().unwrap().2 > copied_at_start
    });
    assert_exit(&db.lockstep(&["pause"]), 0);
    wait_for("the copy to pause", Duration::from_secs(30), || {
        db.run_state().unwrap().1 == "paused"
    });
    let copied = db.run_state().unwrap().2;
    std::thread::sleep(Duration::from_millis(1500));
    let (step, status, copied_later, paused) = db.run_state().unwrap();
    assert_eq!(
        (step.as_str(), status.as_str(), copied_later, paused),
        ("capture", "paused", copied, true)
    );
    assert!(
        copied < 20_000,
        "the copy was paused halfway ({copied} rows)"
    );
    assert_exit(&db.lockstep(&["resume"]), 0);
    wait_for("the run to finish", Duration::from_secs(60), || {
        runner.try_wait().is_some()
    });
    assert!(runner.try_wait().unwrap().success(), "{}", runner.output());
    assert_exact_copy(&runner.output());
    // Said once, however many connections copy.
    assert_eq!(
        runner
            .output()
            .matches("copy paused (triggers keep capturing")
            .count(),
        1,
        "{}",
        runner.output()
    );
    assert_swapped(&db);
    // Nothing to pause after the copy.
    let out = db.lockstep(&["pause"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to pause"),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_shows_steps_sql_preflight_and_diff_and_changes_nothing() {
    let cluster = cluster();
    let db = Db::create(&cluster, "plan");
    setup_events(&db, 2_000);
    let relations = db.relations("public");
    let pb = db.playbook("pb.toml", &events_playbook(""));
    let out = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "plan: public.events → partitioned by RANGE (created_at) into ",
        "while the application keeps the server busy (one connection at 620k rows/s, working 60% of the time)",
        "on a quiet database (2 connections)",
        "preflight: ok",
        "note: the primary key becomes (id, created_at)",
        "1. shadow: ",
        "CREATE TABLE public.events_lockstep_new (LIKE public.events",
        "CREATE TABLE public.events_p202401 PARTITION OF public.events_lockstep_new FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')",
        "CREATE TABLE public.events_default PARTITION OF public.events_lockstep_new DEFAULT",
        "2. capture: ",
        "CREATE TRIGGER lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON public.events",
        "INSERT INTO lockstep.",
        "3. backfill: ",
        "INSERT INTO public.events_lockstep_new (id, created_at, account, payload",
        "4. indexes: ",
        "CREATE UNIQUE INDEX events_p202401_pkey ON public.events_p202401 (id, created_at)",
        "PRIMARY KEY USING INDEX events_p202401_pkey",
        "ALTER TABLE public.events_lockstep_new ADD CONSTRAINT events_lockstep_new_pkey PRIMARY KEY (id, created_at)",
        "5. replay: ",
        "REPEATABLE READ",
        "6. verify: ",
        "7. swap: ",
        "ALTER TABLE public.events RENAME TO events_old",
        "GRANT SELECT ON public.events TO reader",
        "CREATE OR REPLACE VIEW recent_events AS",
        "8. validate: ",
        "9. finalize (separate command): ",
        "DROP TABLE IF EXISTS public.events_old",
        "definition before → after:",
        "--- ",
        "+++ ",
        "+) PARTITION BY RANGE (created_at);",
        "-ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);",
        "+ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at);",
    ] {
        assert!(s.contains(want), "{want:?} not in:\n{s}");
    }
    // Nothing was created or changed.
    assert_eq!(db.relations("public"), relations);
    let no_state: bool = db.one("SELECT to_regnamespace('lockstep') IS NULL");
    assert!(no_state, "plan created the lockstep schema");
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal");
    assert_eq!(triggers, 0);
    let locks: i64 = db.one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'");
    assert_eq!(locks, 0);
}

#[test]
fn the_copy_takes_no_row_locks_and_waits_for_no_writer() {
    let cluster = cluster();
    let db = Db::create(&cluster, "row_locks");
    setup_events(&db, 20_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\""),
    );
    // The first batch (rows 1..=500) is copied, then the runner dies.
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    run.kill9();
    db.wait_runner_gone();
    // An application transaction holds row 600 (in the next batch) and stays open.
    let app = db.rt.block_on(connect(&db.test_url()));
    db.rt
        .block_on(app.batch_execute(
            "BEGIN; UPDATE events SET account = account + 1 WHERE id = 600;
         UPDATE expected SET account = account + 1 WHERE id = 600",
        ))
        .unwrap();
    let mut resume = db.spawn(&["resume"], None);
    // The copy goes past the row without waiting for it (the change comes through the log).
    let mut waited_for_a_lock = false;
    wait_for("the copy to finish", Duration::from_secs(60), || {
        assert!(resume.try_wait().is_none(), "{}", resume.output());
        waited_for_a_lock |= db.runner_pid().is_some_and(|pid| {
            !db.query(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                &[&pid],
            )
            .is_empty()
        });
        db.run_state()
            .is_some_and(|(step, _, _, _)| step != "capture")
    });
    assert!(
        !waited_for_a_lock,
        "the copy waited for the application's row lock"
    );
    let t0 = Instant::now();
    db.rt
        .block_on(app.batch_execute(
            "UPDATE events SET account = account + 1 WHERE id = 550;
             UPDATE expected SET account = account + 1 WHERE id = 550; COMMIT",
        ))
        .unwrap_or_else(|e| panic!("the application transaction failed: {e:?}"));
    let waited = t0.elapsed();
    wait_for("the run to finish", Duration::from_secs(60), || {
        resume.try_wait().is_some()
    });
    assert!(resume.try_wait().unwrap().success(), "{}", resume.output());
    assert!(
        waited < Duration::from_millis(800),
        "the copy held the application up for {waited:?} (lock_timeout 200 ms)"
    );
    assert_swapped(&db);
}

#[test]
fn dependents_follow_a_rollback_after_the_swap() {
    let cluster = cluster();
    let db = Db::create(&cluster, "dependents_back");
    db.exec(
        "DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE vendors (
             id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             name text NOT NULL
         );
         CREATE TABLE vendor_orders (
             id        bigserial PRIMARY KEY,
             vendor_id integer NOT NULL REFERENCES vendors (id)
         );
         CREATE VIEW vendor_names WITH (security_barrier) AS SELECT id, name FROM vendors;
         GRANT SELECT ON vendors TO reader;
         GRANT UPDATE (name) ON vendors TO reader;
         INSERT INTO vendors (name) SELECT 'v' || i FROM generate_series(1, 5000) i;
         INSERT INTO vendor_orders (vendor_id) SELECT i FROM generate_series(1, 5000, 3) i;
         CREATE TABLE expected AS SELECT * FROM vendors;
         ANALYZE vendors;",
    );
    let original: u32 = db.one("SELECT 'vendors'::regclass::oid");
    let relations = db.relations("public");
    let pb = db.playbook(
        "vendors.toml",
        "kind = \"partition\"\ntable = \"vendors\"\n[partition]\ncolumn = \"id\"\nstrategy = \"range\"\ninterval = 1000\n[backfill]\nbatch_size = 500\n",
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    // Rows written while swapped: ids from the new table's identity.
    let swapped_ids: Vec<i32> = db
        .query(
            "WITH r AS (INSERT INTO vendors (name) VALUES ('while swapped 1'), ('while swapped 2') RETURNING *)
             INSERT INTO expected SELECT * FROM r RETURNING id",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(swapped_ids.iter().all(|id| *id > 5000), "{swapped_ids:?}");
    db.exec(&format!(
        "INSERT INTO vendor_orders (vendor_id) VALUES ({})",
        swapped_ids[0]
    ));

    assert_exit(&db.lockstep(&["rollback"]), 0);
    let oid: u32 = db.one("SELECT 'vendors'::regclass::oid");
    assert_eq!(oid, original, "the original table is back");
    db.assert_same_rows("vendors", "expected");
    assert_eq!(db.relations("public"), relations);
    let (target, validated): (u32, bool) = {
        let r = &db.query(
            "SELECT confrelid::oid, convalidated FROM pg_constraint WHERE conname = 'vendor_orders_vendor_id_fkey'",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!((target, validated), (original, true));
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO vendor_orders (vendor_id) VALUES (999999)"),
        )
        .expect_err("the foreign key is enforced");
    assert_eq!(err.code().map(|c| c.code()), Some("23503"));
    // The identity goes on above the ids handed out while swapped.
    let id: i32 = db.one("INSERT INTO vendors (name) VALUES ('after rollback') RETURNING id");
    assert!(id > swapped_ids[1], "{id} <= {}", swapped_ids[1]);
    let seen: i64 = db.one("SELECT count(*) FROM vendor_names WHERE name LIKE 'while swapped%' OR name = 'after rollback'");
    assert_eq!(seen, 3);
    let options: Vec<String> =
        db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'vendor_names'::regclass");
    assert_eq!(options, ["security_barrier=true"]);
    let privileges: (bool, bool) = {
        let r = &db.query(
            "SELECT has_table_privilege('reader', 'vendors', 'SELECT'), has_column_privilege('reader', 'vendors', 'name', 'UPDATE')",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!(privileges, (true, true));
    assert_eq!(db.lockstep_functions(), 0);
}

#[test]
fn composite_keys_and_list_partitions() {
    let cluster = cluster();
    let db = Db::create(&cluster, "composite");
    db.exec(
        "CREATE TABLE ledger (
             tenant integer NOT NULL,
             id     bigint NOT NULL,
             at     timestamptz NOT NULL,
             amount integer,
             PRIMARY KEY (tenant, id)
         );
         INSERT INTO ledger SELECT i % 7, i, '2024-01-01'::timestamptz + i * interval '9 minutes', i FROM generate_series(1, 20000) i;
         CREATE TABLE expected_ledger AS SELECT * FROM ledger;
         CREATE TABLE accounts (
             id     bigint NOT NULL,
             region text NOT NULL,
             name   text,
             PRIMARY KEY (id, region)
         );
         INSERT INTO accounts SELECT i, (ARRAY['de', 'fr', 'us', 'br'])[i % 4 + 1], 'a' || i FROM generate_series(1, 5000) i;
         CREATE TABLE expected_accounts AS SELECT * FROM accounts;
         ANALYZE ledger, accounts;",
    );
    let pb = db.playbook(
        "ledger.toml",
        "kind = \"partition\"\ntable = \"ledger\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 20\nmax_rows_per_second = 8000\n",
    );
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    // Writes while it runs: the partition key, each part of the primary key, deletes, inserts.
    let statements = [
        "WITH r AS (UPDATE ledger SET at = at + interval '40 days' WHERE (tenant, id) = (SELECT tenant, id FROM ledger WHERE id = $1) RETURNING *)
         UPDATE expected_ledger e SET at = r.at FROM r WHERE (e.tenant, e.id) = (r.tenant, r.id)",
        "WITH r AS (UPDATE ledger SET tenant = tenant + 100 WHERE id = $1 RETURNING *, tenant - 100 AS old_tenant)
         UPDATE expected_ledger e SET tenant = r.tenant FROM r WHERE (e.tenant, e.id) = (r.old_tenant, r.id)",
        "WITH r AS (UPDATE ledger SET id = id + 1000000 WHERE id = $1 RETURNING *)
         UPDATE expected_ledger e SET id = r.id FROM r WHERE e.id = r.id - 1000000 AND e.tenant = r.tenant",
        "WITH r AS (DELETE FROM ledger WHERE id = $1 RETURNING *)
         DELETE FROM expected_ledger e USING r WHERE (e.tenant, e.id) = (r.tenant, r.id)",
        "WITH r AS (INSERT INTO ledger VALUES ($1::bigint % 5, $1::bigint + 2000000, '2024-02-02', NULL) ON CONFLICT DO NOTHING RETURNING *)
         INSERT INTO expected_ledger SELECT * FROM r",
    ];
    let mut rng = fastrand::Rng::with_seed(3);
    let mut writes = 0;
    while run.try_wait().is_none() {
        let id = rng.i64(1..=20_000);
        let sql = statements[rng.usize(0..statements.len())];
        if let Err(e) = db.rt.block_on(db.client.execute(sql, &[&id])) {
            panic!("{sql}: {e:?}\nthe runner: {}", run.output());
        }
        writes += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(run.try_wait().unwrap().success(), "{}", run.output());
    assert!(writes > 200, "only {writes} writes during the run");
    assert_exact_copy(&run.output());
    db.assert_same_rows("ledger", "expected_ledger");
    db.assert_same_rows("ledger_old", "expected_ledger");
    let pk: String = db.one(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ledger'::regclass AND contype = 'p'",
    );
    assert_eq!(pk, "PRIMARY KEY (tenant, id, at)");
    db.exec(
        "WITH r AS (UPDATE ledger SET tenant = 50, at = at - interval '300 days' WHERE id = 77 RETURNING *)
         UPDATE expected_ledger e SET tenant = r.tenant, at = r.at FROM r WHERE e.id = 77;",
    );
    db.assert_same_rows("ledger_old", "expected_ledger");
    assert_exit(&db.lockstep(&["finalize"]), 0);
    db.assert_same_rows("ledger", "expected_ledger");

    // A list of regions, and a DEFAULT partition for the others.
    let pb = db.playbook(
        "accounts.toml",
        "kind = \"partition\"\ntable = \"accounts\"\n[partition]\ncolumn = \"region\"\nstrategy = \"list\"\nnaming = \"{table}_{start}\"\n[[partition.lists]]\nname = \"eu\"\nvalues = [\"de\", \"fr\"]\n[[partition.lists]]\nname = \"us\"\nvalues = [\"us\"]\n",
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    db.assert_same_rows("accounts", "expected_accounts");
    let spread: Vec<(String, i64)> = db
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM accounts GROUP BY 1 ORDER BY 1",
            &[],
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        spread,
        [
            ("accounts_default".to_string(), 1250),
            ("accounts_eu".to_string(), 2500),
            ("accounts_us".to_string(), 1250)
        ]
    );
    db.exec("UPDATE accounts SET region = 'us' WHERE id = 4; UPDATE expected_accounts SET region = 'us' WHERE id = 4;");
    db.assert_same_rows("accounts_old", "expected_accounts");
    assert_exit(&db.lockstep(&["finalize"]), 0);
}

#[test]
fn a_key_update_racing_a_batch_does_not_make_the_copy_skip_rows() {
    let cluster = cluster();
    let db = Db::create(&cluster, "key_race");
    db.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text);
         INSERT INTO t SELECT i * 10, '2024-01-01'::timestamptz + i * interval '10 minutes', 'v' || i
         FROM generate_series(1, 20000) i;
         ANALYZE t;",
    );
    let pb = db.playbook(
        "t.toml",
        "kind = \"partition\"\ntable = \"t\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n[backfill]\nbatch_size = 500\n",
    );
    // The first batch (ids up to 5000) is copied, then the runner dies.
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    run.kill9();
    db.wait_runner_gone();
    // A committed update of row 5010 makes the next batch meet a row the trigger already
    // wrote (so the copy goes on with ON CONFLICT DO NOTHING for a while). An application
    // transaction moves row 16000 far ahead (still below the copy's upper bound); a later
    // batch reaches the row, waits for the transaction, and then sees the row's new key.
    db.exec("UPDATE t SET v = 'changed' WHERE id = 5010");
    let app = db.rt.block_on(connect(&db.test_url()));
    db.rt
        .block_on(app.batch_execute("BEGIN; UPDATE t SET id = 190005 WHERE id = 16000"))
        .unwrap();
    let mut resume = db.spawn(&["resume"], None);
    wait_for(
        "the copy to wait for row 6000",
        Duration::from_secs(30),
        || {
            assert!(resume.try_wait().is_none(), "{}", resume.output());
            db.runner_pid().is_some_and(|pid| {
                db.query(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                    &[&pid],
                )
                .len()
                    == 1
            })
        },
    );
    db.rt.block_on(app.batch_execute("COMMIT")).unwrap();
    wait_for("the run to finish", Duration::from_secs(60), || {
        resume.try_wait().is_some()
    });
    assert!(resume.try_wait().unwrap().success(), "{}", resume.output());
    assert_exact_copy(&resume.output());
    let copied: i64 = db.one("SELECT rows_copied FROM lockstep.runs");
    assert!(copied >= 19_999, "{copied} rows copied");
    db.assert_same_rows("t", "t_old");
}

#[test]
fn truncate_is_captured_before_and_after_the_swap() {
    let cluster = cluster();
    let db = Db::create(&cluster, "trunc");
    setup_events(&db, 3000);
    let pb = db.playbook("p.toml", &events_playbook(""));
    let pb = pb.to_str().unwrap();
    // Before the swap: TRUNCATE on the original empties the copy through the capture trigger.
    let mut run = db.spawn(&["run", pb], Some("backfill"));
    wait_for("the first batch", Duration::from_secs(60), || {
        db.one::<bool>("SELECT to_regclass('lockstep.runs') IS NOT NULL")
            && db.one::<i64>("SELECT count(*) FROM lockstep.runs WHERE rows_copied > 0") > 0
    });
    run.kill9();
    db.exec("TRUNCATE events; INSERT INTO events (created_at, account) VALUES ('2024-02-02', 1)");
    assert_exit(&db.lockstep(&["resume"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events"), 1);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 1);
    // After the swap: TRUNCATE on the new table empties the old one (reverse trigger), so a
    // rollback does not bring the rows back.
    db.exec("TRUNCATE events");
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 0);
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events"), 0);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'lockstep%'"),
        0
    );
}

#[test]
fn ctrl_c_or_sigterm_stops_at_a_safe_point_and_resume_finishes() {
    let cluster = cluster();
    for signal in ["INT", "TERM"] {
        stop_with(&cluster, signal);
    }
}

fn stop_with(cluster: &TempCluster, signal: &str) {
    let db = Db::create(cluster, &format!("sig{}", signal.to_lowercase()));
    setup_events(&db, 6_000);
    // A slow copy: 2,000 rows per second in batches of 500.
    let pb = db.playbook("p.toml", &events_playbook("max_rows_per_second = 2000"));
    let pb = pb.to_str().unwrap();
    let mut run = db.spawn(&["run", pb], None);
    wait_for("the copy to start", Duration::from_secs(60), || {
        db.one::<bool>("SELECT to_regclass('lockstep.runs') IS NOT NULL")
            && db.one::<i64>("SELECT count(*) FROM lockstep.runs WHERE rows_copied > 0") > 0
    });
    let pid = run.child.as_ref().unwrap().id();
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut status = None;
    wait_for("the run to stop", Duration::from_secs(30), || {
        status = run.try_wait();
        status.is_some()
    });
    assert_eq!(
        status.unwrap().code(),
        Some(130),
        "SIG{signal}: {}",
        run.output()
    );
    assert!(
        run.output().contains("stopped at a safe point"),
        "{}",
        run.output()
    );
    let (step, st, copied): (String, String, i64) = {
        let r = &db.query("SELECT step, status, rows_copied FROM lockstep.runs", &[])[0];
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((step.as_str(), st.as_str()), ("capture", "stopped"));
    assert!(copied > 0 && copied < 6_000, "{copied}");
    assert_exit(&db.lockstep(&["resume"]), 0);
    db.assert_same_rows("events", "events_old");
    db.assert_same_rows("events", "expected");
}

#[test]
fn a_role_that_may_only_write_the_table_keeps_writing_while_changes_are_logged() {
    let cluster = cluster();
    let db = Db::create(&cluster, "app_role");
    setup_events(&db, 2_000);
    db.exec(
        "DO $$ BEGIN CREATE ROLE app_writer; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT SELECT, INSERT, UPDATE, DELETE ON events TO app_writer;
         GRANT USAGE ON SEQUENCE events_id_seq TO app_writer;",
    );
    let pb = db.playbook("pb.toml", &events_playbook(""));
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    // The role has no right on the log or the lockstep schema: the trigger writes the log
    // with its owner's rights.
    db.exec(
        "SET ROLE app_writer;
         INSERT INTO events (created_at, account, payload) VALUES ('2024-03-01', 7, 'from the app');
         UPDATE events SET account = 8 WHERE id = 5;
         UPDATE events SET id = 100005 WHERE id = 1500;
         DELETE FROM events WHERE id = 6;
         RESET ROLE;
         INSERT INTO expected SELECT * FROM events WHERE payload = 'from the app';
         UPDATE expected SET account = 8 WHERE id = 5;
         UPDATE expected SET id = 100005 WHERE id = 1500;
         DELETE FROM expected WHERE id = 6;",
    );
    let log: String = db.one(
        "SELECT format('lockstep.%I', relname) FROM pg_class
         WHERE relnamespace = 'lockstep'::regnamespace AND relkind = 'r' AND relname LIKE 'log\\_%'",
    );
    let logged: i64 = db.one(&format!("SELECT count(*) FROM {log}"));
    assert_eq!(
        logged, 5,
        "one key per insert, update and delete, two for the key change"
    );
    run.kill9();
    db.wait_runner_gone();
    resume_exactly(&db);
    assert_swapped(&db);
}

#[test]
fn values_moving_between_rows_under_a_unique_index_are_carried_over() {
    let cluster = cluster();
    let db = Db::create(&cluster, "unique_moves");
    // Ten rows per day, seats 0..2000 unique per day.
    db.exec(
        "CREATE TABLE slots (
             id   bigint PRIMARY KEY,
             at   timestamptz NOT NULL,
             seat integer NOT NULL
         );
         INSERT INTO slots SELECT i, '2024-01-01'::timestamptz + (i % 10) * interval '1 day', i / 10
           FROM generate_series(1, 20000) i;
         CREATE UNIQUE INDEX slots_seat ON slots (seat, at);
         CREATE TABLE expected_slots AS SELECT * FROM slots;
         ANALYZE slots;",
    );
    let pb = db.playbook(
        "slots.toml",
        "kind = \"partition\"\ntable = \"slots\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 day\"\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 20\nmax_rows_per_second = 10000\n",
    );
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    // Two rows of the same day trade seats in one transaction: a copy caught up piecemeal
    // can hold both with the same seat for a moment.
    let swap = "BEGIN;
        UPDATE slots SET seat = -1 WHERE id = $A;
        UPDATE slots SET seat = $SA WHERE id = $B;
        UPDATE slots SET seat = $SB WHERE id = $A;
        UPDATE expected_slots SET seat = $SA WHERE id = $B;
        UPDATE expected_slots SET seat = $SB WHERE id = $A;
        COMMIT;";
    let mut rng = fastrand::Rng::with_seed(11);
    let mut swaps = 0;
    while run.try_wait().is_none() {
        // Far apart in key order: the copy takes `a` in an earlier batch than `b`.
        let a = rng.i64(1..=9_000);
        let b = a + 10 * rng.i64(500..=1_000);
        let seats: Vec<(i64, i32)> = db
            .query(
                "SELECT id, seat FROM slots WHERE id IN ($1, $2) ORDER BY id",
                &[&a, &b],
            )
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if seats.len() != 2 {
            continue;
        }
        let sql = swap
            .replace("$A", &a.to_string())
            .replace("$B", &b.to_string())
            .replace("$SA", &seats[0].1.to_string())
            .replace("$SB", &seats[1].1.to_string());
        db.exec(&sql);
        swaps += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(run.try_wait().unwrap().success(), "{}", run.output());
    assert!(swaps > 100, "only {swaps} swaps during the run");
    assert_exact_copy(&run.output());
    db.assert_same_rows("slots", "expected_slots");
    db.assert_same_rows("slots_old", "expected_slots");
    let unique: bool = db.one(
        "SELECT i.indisunique AND i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relname = 'slots_seat'",
    );
    assert!(unique);
}

#[test]
fn verification_repairs_a_damaged_copy_and_refuses_one_it_cannot_repair() {
    let cluster = cluster();
    let db = Db::create(&cluster, "damaged");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook(""));
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("replay"));
    db.wait_held(&mut run, "replay");
    run.kill9();
    db.wait_runner_gone();
    // Damage the copy behind the log's back, in both halves of the key range (so in both
    // verification lanes): a changed row and a missing one. And a trigger that damages a
    // row again whenever it is copied, so that copying its range again cannot repair it.
    db.exec(
        "UPDATE events_lockstep_new SET payload = 'damaged' WHERE id = 15000;
         DELETE FROM events_lockstep_new WHERE id = 3;
         CREATE FUNCTION damage() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN NEW.payload := 'damaged'; RETURN NEW; END $$;
         CREATE TRIGGER damage BEFORE INSERT ON events_lockstep_new
             FOR EACH ROW WHEN (NEW.id = 10) EXECUTE FUNCTION damage();
         UPDATE events_lockstep_new SET payload = 'damaged' WHERE id = 10;",
    );
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 1);
    let said = text(&out);
    assert!(
        said.contains("verification found rows that differ between public.events and the copy in the key range after the start"),
        "{said}"
    );
    assert!(said.contains("a range differs: copying it again"), "{said}");
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r", "the swap must be refused");
    // Without the trigger, copying the ranges again repairs the copy, and the run swaps.
    db.exec("DROP TRIGGER damage ON events_lockstep_new");
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("a range differs: copying it again"));
    assert_swapped(&db);
}

#[test]
fn on_a_quiet_database_the_lanes_copy_at_once_and_a_killed_run_resumes_each() {
    let cluster = cluster();
    let db = Db::create(&cluster, "lanes");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook("workers = 3"));
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    // The main connection holds after its first batch; the two helpers copy the other
    // lanes meanwhile.
    let lanes: i64 = db.one("SELECT count(*) FROM lockstep.lanes");
    assert_eq!(lanes, 12);
    // (Looking only every 2 s: a statement in the last second makes the database busy,
    // and the helpers wait.)
    let copied = "SELECT count(*) FROM lockstep.lanes WHERE high_water = upper_key";
    let start = Instant::now();
    while db.one::<i64>(copied) < lanes - 1 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {lanes} lanes copied while the main connection held",
            db.one::<i64>(copied)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(db.one::<i64>(LANES_STARTED), lanes);
    let status = db.lockstep(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("lanes      12: 11 copied, 1 under way, 0 waiting"),
        "{}",
        text(&status)
    );
    // The runner's connections: the main one, its progress monitor and two helpers (the
    // backend of the `status` just run may take a moment to go).
    let runners = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND application_name = 'lockstep'";
    wait_for(
        "the runner's four connections",
        Duration::from_secs(30),
        || db.one::<i64>(runners) == 4,
    );
    run.kill9();
    db.wait_runner_gone();
    // Every lane goes on from its own high-water mark; nothing is copied twice (the
    // primary key would refuse it) or left out.
    resume_exactly(&db);
    assert_swapped(&db);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM lockstep.lanes"), 0);
}

#[test]
fn a_swap_that_waits_for_a_lock_retries_until_it_gets_it_while_the_workload_writes() {
    let cluster = cluster();
    let db = Db::create(&cluster, "retried");
    setup_events(&db, 20_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[swap]\nlock_timeout = \"100ms\"\nattempts = 60\nbackoff = \"50ms\"\nmax_backoff = \"200ms\""),
    );
    // A transaction that holds ACCESS SHARE on the table until the test ends it.
    let blocker = db.rt.block_on(connect(&db.test_url()));
    db.rt
        .block_on(blocker.batch_execute("BEGIN; LOCK TABLE events IN ACCESS SHARE MODE"))
        .unwrap();
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    wait_for("a swap attempt to fail", Duration::from_secs(90), || {
        run.output()
            .contains("swap: lock not granted within 100 ms")
    });
    // A few more attempts while the workload's changes pile up in the log, then the
    // blocking transaction ends and an attempt goes through.
    std::thread::sleep(Duration::from_secs(1));
    db.rt.block_on(blocker.batch_execute("COMMIT")).unwrap();
    let mut status = None;
    wait_for("the run to finish", Duration::from_secs(60), || {
        status = run.try_wait();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0), "{}", run.output());
    assert_exact_copy(&run.output());
    wl.wait_ops(200);
    let stats = wl.finish();
    stats.assert_clean();
    // Each attempt may hold the workload up to lock_timeout (100 ms), never longer.
    assert!(
        stats.worst() < Duration::from_secs(1),
        "{}",
        stats.report("the workload was blocked too long")
    );
    assert_swapped(&db);
}

#[test]
fn a_copy_begun_before_lanes_existed_goes_on_as_one_lane() {
    let cluster = cluster();
    let db = Db::create(&cluster, "no_lanes");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook(""));
    let wl = Workload::start(&db, 1);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    run.kill9();
    db.wait_runner_gone();
    // What a version without lanes left: its high-water mark in lockstep.runs. (Under the
    // workload only the main connection's lane, the first, has copied anything.)
    assert_eq!(db.one::<i64>(LANES_STARTED), 1);
    db.exec(
        "UPDATE lockstep.runs SET high_water = (SELECT high_water FROM lockstep.lanes WHERE lane = 0);
         DELETE FROM lockstep.lanes;",
    );
    resume_exactly(&db);
    wl.wait_ops(100);
    wl.finish().assert_clean();
    assert_swapped(&db);
}
