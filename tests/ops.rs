//! The in-place playbook kinds against a real PostgreSQL, each under a concurrent write
//! workload: every write of the workload goes to `items` and, in the same transaction, to
//! `twin`, so after a run (or a kill, resume or rollback) the two must still hold the same
//! rows; and no write may wait longer than the lock_timeout allows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/db.rs"]
mod db;
use db::{connect, rt};

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lockstep::db::cluster::TempCluster;

const ROWS: i64 = 20_000;
/// The playbooks' lock_timeout.
const LOCK_TIMEOUT_MS: u64 = 100;
/// What a write may take beyond the lock_timeout on a loaded 2-core machine (the workload
/// waits at most one lock_timeout per attempt of a statement of lockstep's, plus the few
/// milliseconds of a swap, which a busy machine can stretch): far below what a write would
/// wait behind a whole step (a backfill, an index build) holding a lock.
const SLACK_MS: u64 = 1900;

struct Db {
    db: db::Db,
    _cluster: TempCluster,
}

impl std::ops::Deref for Db {
    type Target = db::Db;
    fn deref(&self) -> &db::Db {
        &self.db
    }
}

impl Db {
    /// A fresh cluster and database with `items` (ROWS rows, every fourth `n` NULL), its
    /// `twin`, and `refs` pointing at `items`.
    fn new() -> Db {
        let cluster = db::cluster();
        let db = Db {
            db: db::Db::create(&cluster, "ops"),
            _cluster: cluster,
        };
        db.exec(&format!(
            "CREATE TABLE items (id serial PRIMARY KEY, grp int NOT NULL, val text, n int, flag text);
             CREATE INDEX items_grp_idx ON items (grp);
             INSERT INTO items (grp, val, n)
               SELECT g % 50, 'v' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE g END FROM generate_series(1, {ROWS}) g;
             CREATE TABLE twin (id bigint PRIMARY KEY, grp int, val text, n int);
             INSERT INTO twin SELECT id, grp, val, n FROM items;
             CREATE TABLE refs (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES items (id) ON DELETE CASCADE);
             INSERT INTO refs (item_id) SELECT g FROM generate_series(1, {ROWS}, 3) g;
             CREATE ROLE app_writer LOGIN;
             GRANT SELECT, INSERT, DELETE ON items TO app_writer;
             GRANT UPDATE (val, n) ON items TO app_writer;
             GRANT USAGE ON SEQUENCE items_id_seq TO app_writer;
             GRANT SELECT, INSERT, UPDATE, DELETE ON twin TO app_writer;
             ANALYZE"
        ));
        db
    }

    /// A playbook with the tests' lock settings.
    fn playbook(&self, text: &str) -> PathBuf {
        self.db.playbook(
            &format!("pb{}.toml", fastrand::u32(..)),
            &format!(
                "{text}\n[swap]\nlock_timeout = \"{LOCK_TIMEOUT_MS}ms\"\nbackoff = \"50ms\"\n"
            ),
        )
    }

    /// A playbook with `[swap] reverse = "..."`.
    fn playbook_reverse(&self, text: &str, reverse: &str) -> PathBuf {
        self.db.playbook(
            &format!("pb{}.toml", fastrand::u32(..)),
            &format!(
                "{text}\n[swap]\nlock_timeout = \"{LOCK_TIMEOUT_MS}ms\"\nbackoff = \"50ms\"\nreverse = \"{reverse}\"\n"
            ),
        )
    }

    /// `lockstep ARGS`, holding at `hold` (if given).
    fn command(&self, args: &[&str], hold: Option<&str>) -> Command {
        let mut c = self.db.command(args);
        if let Some(h) = hold {
            c.env("LOCKSTEP_TEST_HOLD_AT", h);
        }
        c
    }

    /// (step, status, rows done) of the latest run.
    fn state(&self) -> Option<(String, String, i64)> {
        let rows = self
            .rt
            .block_on(self.client.query(
                "SELECT step, status, rows_copied FROM lockstep.runs ORDER BY started_at DESC LIMIT 1",
                &[],
            ))
            .ok()?;
        rows.first().map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    /// Starts `lockstep ARGS` holding at `point`, waits until it holds there, and kills it
    /// with SIGKILL.
    fn kill_at(&self, args: &[&str], point: &str) {
        let done_before = self.state().map_or(0, |s| s.2);
        let mut child: Child = self
            .command(args, Some(point))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                panic!(
                    "lockstep {args:?} exited ({s}) before holding at {point}; state {:?}",
                    self.state()
                );
            }
            let reached = match (self.state(), point) {
                (Some((_, _, n)), "backfill") => n > done_before,
                (Some((step, _, _)), "indexes") => step == "backfill",
                (Some((step, _, _)), "before-swap") => step == "verify" || step == "verified",
                (Some((step, _, _)), "after-swap") => step == "swap" || step == "swapped",
                (Some((_, status, _)), "restore") => {
                    status == "rolling_back" && self.restore_progress().is_some_and(|p| p.0 > 0)
                }
                _ => false,
            };
            let idle: bool = reached
                && self.one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE l.locktype = 'advisory' AND l.granted AND a.state = 'idle'
                       AND a.state_change < now() - interval '1 s')",
                );
            if idle {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "lockstep {args:?} did not hold at {point}; state {:?}",
                self.state()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let start = Instant::now();
        while self.one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted)",
        ) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the killed runner's backend did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The latest run's rollback cursor: (undo rows handled, undo rows in all), once a
    /// rollback started.
    fn restore_progress(&self) -> Option<(i64, i64)> {
        let id: String = self.one("SELECT id FROM lockstep.runs ORDER BY started_at DESC LIMIT 1");
        let (undo, cursor) = (
            format!("lockstep.\"undo_{id}\""),
            format!("lockstep.\"undo_{id}_rollback\""),
        );
        if !self.one::<bool>(&format!("SELECT to_regclass('{cursor}') IS NOT NULL")) {
            return None;
        }
        let r = &self.query(
            &format!("SELECT (SELECT entries FROM {cursor}), (SELECT count(*) FROM {undo})"),
            &[],
        )[0];
        Some((r.get::<_, Option<i64>>(0).unwrap_or(0), r.get(1)))
    }

    /// The undo tables left in the `lockstep` schema.
    fn undo_tables(&self) -> i64 {
        self.one("SELECT count(*) FROM pg_tables WHERE schemaname = 'lockstep' AND tablename LIKE 'undo%'")
    }

    /// Rows of `items` and `twin` that differ (on id, grp, val and, when `with_n`, n).
    fn differences(&self, with_n: bool) -> i64 {
        let n = if with_n { ", i.n" } else { "" };
        let tn = if with_n { ", t.n" } else { "" };
        self.one(&format!(
            "SELECT count(*) FROM items i FULL JOIN twin t ON t.id = i.id
             WHERE i.id IS NULL OR t.id IS NULL OR (i.grp, i.val{n}) IS DISTINCT FROM (t.grp, t.val{tn})"
        ))
    }

    /// Columns, indexes and constraints of `items`, for comparing before and after.
    fn shape(&self) -> String {
        self.one(
            "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
               SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END AS x
                 FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped
               UNION ALL SELECT pg_get_indexdef(indexrelid) || CASE WHEN indisvalid THEN '' ELSE ' INVALID' END
                 FROM pg_index WHERE indrelid = 'items'::regclass
               UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END
                 FROM pg_constraint WHERE conrelid = 'items'::regclass OR confrelid = 'items'::regclass
               UNION ALL SELECT tgname FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal) s",
        )
    }
}

fn assert_ok(o: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    all
}

/// Writers (the role `app_writer`, not the owner) mirroring every insert, update and
/// delete of `items` into `twin` in the same transaction. Updates and deletes touch only ids divisible by 7 (and rows the workload
/// inserted), so tests can tell rows it changed from rows it did not.
struct Workload {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    threads: Vec<JoinHandle<(u64, Duration, Vec<String>)>>,
}

impl Workload {
    /// `null_free`: never write a NULL `n`.
    fn start(db: &Db, writers: u64, null_free: bool) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let threads = (0..writers)
            .map(|w| {
                // The application's role owns nothing: INSERT, DELETE, SELECT and an UPDATE
                // of two columns on `items`, as in production.
                let url = format!("{} user=app_writer application_name=workload", db.url);
                let (stop, ops) = (stop.clone(), ops.clone());
                std::thread::spawn(move || {
                    rt().block_on(async move {
                        let mut c = connect(&url).await;
                        let mut rng = fastrand::Rng::with_seed(w ^ fastrand::u64(..));
                        let (mut n_ops, mut worst, mut errors) = (0u64, Duration::ZERO, Vec::new());
                        while !stop.load(Ordering::SeqCst) {
                            let t = Instant::now();
                            let n: Option<i32> = if !null_free && rng.u8(..4) == 0 {
                                None
                            } else {
                                Some(rng.i32(0..1000))
                            };
                            let val = format!("w{w}-{}", rng.u32(..));
                            let r: Result<(), tokio_postgres::Error> = async {
                                let tx = c.transaction().await?;
                                match rng.u8(..10) {
                                    0..=4 => {
                                        let id: i64 = tx
                                            .query_one(
                                                "INSERT INTO items (grp, val, n) VALUES ($1, $2, $3) RETURNING id::bigint",
                                                &[&rng.i32(0..50), &val, &n],
                                            )
                                            .await?
                                            .get(0);
                                        tx.execute(
                                            "INSERT INTO twin SELECT id, grp, val, n FROM items WHERE id = $1::bigint",
                                            &[&id],
                                        )
                                        .await?;
                                    }
                                    5..=8 => {
                                        let id = 7 * rng.i64(1..ROWS / 7);
                                        tx.execute("UPDATE items SET val = $2, n = $3 WHERE id = $1::bigint", &[&id, &val, &n])
                                            .await?;
                                        tx.execute("UPDATE twin SET val = $2, n = $3 WHERE id = $1", &[&id, &val, &n])
                                            .await?;
                                    }
                                    _ => {
                                        let id = 7 * rng.i64(1..ROWS / 7);
                                        tx.execute("DELETE FROM items WHERE id = $1::bigint", &[&id]).await?;
                                        tx.execute("DELETE FROM twin WHERE id = $1", &[&id]).await?;
                                    }
                                }
                                tx.commit().await
                            }
                            .await;
                            worst = worst.max(t.elapsed());
                            match r {
                                Ok(()) => {
                                    n_ops += 1;
                                    ops.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => errors.push(e.to_string()),
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        (n_ops, worst, errors)
                    })
                })
            })
            .collect();
        Workload { stop, ops, threads }
    }

    fn wait_ops(&self, more: u64) {
        let target = self.ops.load(Ordering::SeqCst) + more;
        let start = Instant::now();
        while self.ops.load(Ordering::SeqCst) < target {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the workload stalled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the writers; asserts no write failed and none waited too long.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let (mut ops, mut worst, mut errors) = (0, Duration::ZERO, Vec::new());
        for t in self.threads {
            let (o, w, e) = t.join().unwrap();
            ops += o;
            worst = worst.max(w);
            errors.extend(e);
        }
        assert!(
            errors.is_empty(),
            "workload errors: {:?}",
            &errors[..errors.len().min(5)]
        );
        assert!(ops > 0, "the workload did nothing");
        assert!(
            worst < Duration::from_millis(LOCK_TIMEOUT_MS + SLACK_MS),
            "a write waited {worst:?}, more than the lock_timeout ({LOCK_TIMEOUT_MS} ms) allows"
        );
        eprintln!(
            "workload: {ops} transactions, worst {:.0} ms",
            worst.as_secs_f64() * 1000.0
        );
        ops
    }
}

/// Runs `playbook` to the end under the workload; returns lockstep's output.
fn run_under_workload(db: &Db, playbook: &str, null_free: bool) -> String {
    let pb = db.playbook(playbook);
    let wl = Workload::start(db, 2, null_free);
    wl.wait_ops(100);
    let out = assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    wl.wait_ops(100);
    wl.finish();
    out
}

#[test]
fn column_type_survives_kills_then_swaps_back_and_forth_under_writes() {
    let db = Db::new();
    let before = db.shape();
    // The old table is compared with the reverse log in one snapshot while the workload
    // writes: the trigger logs each key in the writer's transaction (`deferred`).
    let pb = db.playbook_reverse("kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"id\"\ntype = \"bigint\"\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 20", "deferred");
    let pb = pb.to_str().unwrap();
    let wl = Workload::start(&db, 2, false);
    db.kill_at(&["run", pb], "backfill");
    wl.wait_ops(50);
    db.kill_at(&["resume"], "indexes");
    wl.wait_ops(50);
    db.kill_at(&["resume"], "before-swap");
    wl.wait_ops(50);
    db.kill_at(&["resume"], "after-swap");
    wl.wait_ops(50);
    let status = assert_ok(&db.lockstep(&["status"]));
    assert!(status.contains("step       swapped"), "{status}");
    assert_ok(&db.lockstep(&["resume"]));
    wl.wait_ops(100);
    assert_eq!(db.one::<String>("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'id'"), "bigint");
    assert_eq!(db.one::<String>("SELECT data_type::text FROM information_schema.sequences WHERE sequence_name = 'items_id_seq'"), "bigint");
    assert!(db
        .one::<bool>("SELECT convalidated FROM pg_constraint WHERE conname = 'refs_item_id_fkey'"));
    assert!(db.one::<bool>("SELECT indisprimary AND indisvalid FROM pg_index WHERE indexrelid = 'items_pkey'::regclass"));
    // The columns kept their order, and the old table is as the new one but for the rows
    // changed since the swap, whose keys wait in the reverse log for a rollback.
    assert_eq!(
        db.one::<String>(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, NULL), ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped"
        ),
        "id bigint, grp integer, val text, n integer, flag text"
    );
    assert_eq!(
        db.one::<i64>(
            &format!("SELECT count(*) FROM items i FULL JOIN items_old o USING (id)
             WHERE (i.grp, i.val, i.n, i.flag) IS DISTINCT FROM (o.grp, o.val, o.n, o.flag)
               AND id NOT IN (SELECT id FROM {})", db.one::<String>(
                "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'lockstep'::regnamespace AND c.relname LIKE 'rlog%'"
            ))
        ),
        0
    );
    assert_eq!(db.differences(true), 0);
    // Ids go on above every existing one.
    let max: i64 = db.one("SELECT max(id) FROM twin");
    let next: i64 = db.one("SELECT nextval('items_id_seq')");
    assert!(next > max, "{next} <= {max}");
    // Swap back under the workload: the original definition, every write present.
    assert_ok(&db.lockstep(&["rollback"]));
    wl.wait_ops(100);
    wl.finish();
    assert_eq!(db.differences(true), 0);
    assert_eq!(db.shape(), before);
    assert_eq!(db.state().unwrap().0, "rolled_back");
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_proc WHERE pronamespace = 'lockstep'::regnamespace"),
        0
    );
}

#[test]
fn column_type_rolled_back_before_the_swap_and_finalized_after_it() {
    let db = Db::new();
    let before = db.shape();
    let text = "kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"id\"\ntype = \"bigint\"";
    let pb = db.playbook(text);
    let wl = Workload::start(&db, 2, false);
    db.kill_at(&["run", pb.to_str().unwrap()], "indexes");
    assert_ok(&db.lockstep(&["rollback"]));
    wl.wait_ops(100);
    assert_eq!(db.shape(), before);
    assert_eq!(db.differences(true), 0);
    // Again, to the end, then finalize: the old column goes.
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    wl.wait_ops(100);
    let out = assert_ok(&db.lockstep(&["finalize"]));
    assert!(out.contains("finalized"), "{out}");
    wl.wait_ops(100);
    wl.finish();
    let shape = db.shape();
    assert!(shape.contains("id bigint not null"), "{shape}");
    assert!(!shape.contains("lockstep"), "{shape}");
    assert_eq!(db.differences(true), 0);
    let o = db.lockstep(&["rollback"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a finalized run cannot be rolled back"
    );
}

/// A backfill under the writes of an application role that is not the table's owner,
/// killed twice and resumed, then rolled back and finalized while the role writes on: no
/// write fails or waits long, and the rollback restores each backfilled column unless that
/// column changed since.
#[test]
fn backfill_survives_kills_and_rollback_restores_per_column_under_a_non_owner_role() {
    let db = Db::new();
    let pb = db.playbook("kind = \"backfill\"\ntable = \"items\"\n[update]\nset = \"flag = 'done:' || val, n = n + 1000000\"\nwhere = \"flag IS NULL\"\n[backfill]\nbatch_size = 300\ntarget_batch_ms = 10");
    let wl = Workload::start(&db, 2, false);
    db.kill_at(&["run", pb.to_str().unwrap()], "backfill");
    wl.wait_ops(50);
    let copied = db.state().unwrap().2;
    assert!(copied > 0 && copied < ROWS, "{copied}");
    db.kill_at(&["resume"], "backfill");
    wl.wait_ops(50);
    assert_ok(&db.lockstep(&["resume"]));
    // Every row that existed at the start was updated once, by the value at that time.
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM items WHERE id <= {ROWS} AND flag IS NULL"
        )),
        0
    );
    assert_eq!(db.one::<i64>(&format!("SELECT count(*) FROM items i JOIN twin t USING (id) WHERE id <= {ROWS} AND id % 7 <> 0 AND (i.flag <> 'done:' || i.val OR i.n IS DISTINCT FROM t.n + 1000000)")), 0);
    // The workload changes `n` (and `val`) of rows the backfill wrote, never `flag`.
    wl.wait_ops(300);
    let changed_since: i64 = db.one(&format!(
        "SELECT count(*) FROM items WHERE id <= {ROWS} AND flag IS NOT NULL AND n < 1000000"
    ));
    assert!(changed_since > 0, "the workload changed no backfilled row");
    let out = assert_ok(&db.lockstep(&["rollback"]));
    assert!(
        out.contains("kept a newer value in a column the application changed since")
            && out.contains("(n: "),
        "{out}"
    );
    assert!(out.contains("`lockstep finalize"), "{out}");
    assert_eq!(db.undo_tables(), 2, "the rollback keeps the undo data");
    wl.wait_ops(100);
    let out = assert_ok(&db.lockstep(&["finalize"]));
    assert!(out.contains("undo data"), "{out}");
    assert_eq!(db.undo_tables(), 0, "finalize drops the undo data");
    wl.wait_ops(100);
    wl.finish();
    // No write of the workload was undone (`n` of the rows it changed kept its value); every
    // `flag` is back to NULL, also in rows whose `n` the workload changed since.
    assert_eq!(db.differences(true), 0);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE flag IS NOT NULL"),
        0
    );
}

#[test]
fn a_backfill_killed_half_way_and_rolled_back_restores_what_it_updated() {
    let db = Db::new();
    let pb = db.playbook("kind = \"backfill\"\ntable = \"items\"\n[update]\nset = \"flag = 'half'\"\n[backfill]\nbatch_size = 300\ntarget_batch_ms = 10");
    let wl = Workload::start(&db, 2, false);
    db.kill_at(&["run", pb.to_str().unwrap()], "backfill");
    assert!(db.one::<i64>("SELECT count(*) FROM items WHERE flag = 'half'") > 0);
    let out = assert_ok(&db.lockstep(&["rollback"]));
    assert!(out.contains("restored "), "{out}");
    wl.wait_ops(100);
    wl.finish();
    // The workload never writes `flag`: every one is back, whatever else it changed.
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE flag IS NOT NULL"),
        0
    );
    assert_eq!(db.differences(true), 0);
    assert_eq!(db.undo_tables(), 2, "the rollback keeps the undo data");
    assert_ok(&db.lockstep(&["finalize"]));
    assert_eq!(db.undo_tables(), 0);
}

/// The values a rollback restores, per column, on a table with a two-column key, awkward
/// names and awkward types: a column the application changed since keeps its value while
/// the row's other backfilled columns come back; a row whose other column changed comes
/// back whole; killed half way, a rollback run again ends as one run to the end would.
#[test]
fn backfill_rollback_per_column_with_awkward_types_and_names_survives_a_kill() {
    let db = Db::new();
    db.exec(
        r#"CREATE SCHEMA "Odd Schema";
         CREATE TYPE "Mood" AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TABLE "Odd Schema"."Order Lines" (
           "Order Id" int, "select" text, "Note" text, "from" bytea, "Ratio" float8, tags text[],
           mood "Mood", qty positive, payload json, "Say ""hi""" text, untouched text,
           total int GENERATED ALWAYS AS (qty * 2) STORED,
           PRIMARY KEY ("Order Id", "select"));
         INSERT INTO "Odd Schema"."Order Lines" ("Order Id", "select", "Note", "from", "Ratio", tags, mood, qty, payload, "Say ""hi""")
           SELECT g % 1500, CASE WHEN g <= 1500 THEN 'a' ELSE 'b' END,
                  CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END,
                  CASE WHEN g % 6 = 0 THEN NULL ELSE decode(lpad(to_hex(g), 8, '0'), 'hex') END,
                  CASE g % 5 WHEN 0 THEN 'NaN' WHEN 1 THEN '-Infinity' WHEN 2 THEN NULL ELSE g / 7.0 END,
                  CASE WHEN g % 3 = 0 THEN NULL ELSE ARRAY['t' || g, NULL] END,
                  CASE WHEN g % 2 = 0 THEN 'sad'::"Mood" END, 1 + g % 9,
                  CASE WHEN g % 7 = 0 THEN NULL ELSE json_build_object('g', g) END,
                  CASE WHEN g % 8 = 0 THEN NULL ELSE 'it''s ' || g END
           FROM generate_series(1, 3000) g;
         CREATE TABLE snap AS SELECT * FROM "Odd Schema"."Order Lines";"#,
    );
    let pb = db.playbook(&(String::from("kind = \"backfill\"\ntable = '\"Odd Schema\".\"Order Lines\"'\n")
        + r#"[update]
set = '''"Note" = upper(coalesce("Note", 'none')), ("from", "Ratio") = ("from" || '\xff'::bytea, "Ratio" * 2), tags = tags || 'x'::text, mood = 'happy', qty = qty + 1, payload = '{"v": 2}', "Say ""hi""" = 'hello', total = DEFAULT'''
where = '"Order Id" % 10 <> 9'
[backfill]
batch_size = 100
target_batch_ms = 5"#));
    let plan = assert_ok(&db.lockstep(&["plan", pb.to_str().unwrap()]));
    assert!(
        plan.contains(r#"a rollback restores "Note", "from", "Ratio", tags, mood, qty, payload, "Say ""hi""" of each updated row"#),
        "{plan}"
    );
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    assert_eq!(
        db.one::<i64>(
            r#"SELECT count(*) FROM "Odd Schema"."Order Lines" WHERE mood = 'happy' AND total = qty * 2"#
        ),
        2700
    );
    // The application, after the backfill: a backfilled column of some rows, a column the
    // backfill does not write of others, deletes.
    db.exec(
        r#"UPDATE "Odd Schema"."Order Lines" SET "Note" = 'app' WHERE "Order Id" % 10 = 1;
         UPDATE "Odd Schema"."Order Lines" SET "from" = '\x00'::bytea WHERE "Order Id" % 10 = 4;
         UPDATE "Odd Schema"."Order Lines" SET untouched = 'app' WHERE "Order Id" % 10 IN (2, 9);
         DELETE FROM "Odd Schema"."Order Lines" WHERE "Order Id" % 10 = 3;"#,
    );
    // Killed after its first batch, the rollback is run again.
    db.kill_at(&["rollback"], "restore");
    let (done, all) = db.restore_progress().unwrap();
    assert!(done > 0 && done < all, "{done} of {all}");
    // Under the settings the plan runs each batch with, a batch of the rollback reads the
    // table through its primary key, never a scan of the whole table, however large.
    let r = &db.query(
        "SELECT r #>> '{settings}', r #>> '{batch_sql}' FROM lockstep.runs, jsonb_path_query_first(plan, 'strict $.**.Restore') r",
        &[],
    )[0];
    let (settings, batch): (String, String) = (r.get(0), r.get(1));
    for limit in [100, 50000] {
        db.exec(&format!("BEGIN; {settings}"));
        let plan: Vec<String> = db
            .query(
                &format!("EXPLAIN {}", batch.replace("{limit}", &limit.to_string())),
                &[],
            )
            .iter()
            .map(|r| r.get(0))
            .collect();
        db.exec("ROLLBACK");
        let plan = plan.join("\n");
        assert!(
            !plan.contains(r#"Seq Scan on "Order Lines""#)
                && plan.contains(r#"using "Order Lines_pkey" on "Order Lines""#),
            "{plan}"
        );
    }
    let out = assert_ok(&db.lockstep(&["rollback"]));
    // Rows 0, 2, 5, 6, 7, 8 (mod 10) restored; 1 and 4 kept a column; 3 deleted; 9 untouched.
    assert!(
        out.contains(r#"restored 1800 row(s); 600 row(s) kept a newer value in a column the application changed since the backfill wrote it ("Note": 300, "from": 300); 300 row(s) were deleted since; the undo data is kept in lockstep."#),
        "{out}"
    );
    let differing: i64 = db.one(
        r#"SELECT count(*) FROM snap s FULL JOIN "Odd Schema"."Order Lines" t USING ("Order Id", "select")
           WHERE CASE WHEN s."Order Id" % 10 = 3 THEN t IS NOT NULL
                 ELSE t IS NULL OR (t."Note", t."from", t."Ratio", t.tags, t.mood, t.qty, t.payload::text, t."Say ""hi""", t.untouched, t.total)
                   IS DISTINCT FROM (CASE WHEN s."Order Id" % 10 = 1 THEN 'app' ELSE s."Note" END,
                                     CASE WHEN s."Order Id" % 10 = 4 THEN '\x00'::bytea ELSE s."from" END,
                                     s."Ratio", s.tags, s.mood, s.qty, s.payload::text, s."Say ""hi""",
                                     CASE WHEN s."Order Id" % 10 IN (2, 9) THEN 'app' END, s.total) END"#,
    );
    assert_eq!(
        differing, 0,
        "the table is not as the rollback should leave it"
    );
    assert_eq!(
        db.one::<i64>(r#"SELECT count(*) FROM "Odd Schema"."Order Lines" WHERE "Ratio" = 'NaN'"#),
        db.one::<i64>(
            r#"SELECT count(*) FROM snap WHERE "Ratio" = 'NaN' AND "Order Id" % 10 <> 3"#
        )
    );
    assert_eq!(db.undo_tables(), 2);
    let o = db.lockstep(&["rollback"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a rolled-back run cannot be rolled back again"
    );
    assert_ok(&db.lockstep(&["finalize"]));
    assert_eq!(db.undo_tables(), 0);
    let o = db.lockstep(&["finalize"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already finalized"));
}

/// A row with two entries in the undo data (updated twice) gets the value from before the
/// first update back, also when both entries fall in one batch.
#[test]
fn a_row_backfilled_twice_gets_its_oldest_value_back() {
    let db = Db::new();
    let pb =
        db.playbook("kind = \"backfill\"\ntable = \"items\"\n[update]\nset = \"flag = 'one'\"\n[backfill]\nbatch_size = 50000");
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    let id: String = db.one("SELECT id FROM lockstep.runs");
    // A second update of ten rows, recorded after the first as the backfill records them.
    db.exec(&format!(
        "UPDATE items SET flag = 'two' WHERE id <= 10;
         INSERT INTO lockstep.\"undo_{id}\" (key1, old1, new1) SELECT id, 'one', 'two' FROM items WHERE id <= 10;"
    ));
    let out = assert_ok(&db.lockstep(&["rollback"]));
    assert!(
        out.contains(&format!("restored {} row(s)", ROWS + 10)),
        "{out}"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE flag IS NOT NULL"),
        0
    );
}

#[test]
fn not_null_with_a_backfill_under_writes() {
    let db = Db::new();
    let out = run_under_workload(
        &db,
        "kind = \"not-null\"\ntable = \"items\"\n[not_null]\ncolumn = \"n\"\nbackfill = \"-1\"",
        true,
    );
    assert!(out.contains("done"), "{out}");
    assert!(db.shape().contains("n integer not null"));
    assert!(
        !db.shape().contains("not_null CHECK"),
        "the helper check is dropped"
    );
    // Every row that was NULL and that the workload never touches (ids not divisible by 7)
    // was filled; nothing else was.
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM items WHERE id <= {ROWS} AND id % 4 = 0 AND id % 7 <> 0 AND n IS DISTINCT FROM -1"
        )),
        0
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE n = -1 AND id % 4 <> 0"),
        0
    );
    assert_eq!(db.differences(false), 0);
    // A NULL now fails, as NOT NULL should.
    assert!(db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO items (grp) VALUES (1)")
        )
        .is_err());
}

#[test]
fn constraints_and_indexes_under_writes() {
    let db = Db::new();
    run_under_workload(&db, "kind = \"check\"\ntable = \"items\"\n[check]\nname = \"items grp range\"\nexpression = \"grp BETWEEN 0 AND 49\"", false);
    run_under_workload(&db, "kind = \"foreign-key\"\ntable = \"refs\"\n[foreign_key]\nname = \"refs_item_fk2\"\ncolumns = [\"item_id\"]\nreferences = \"items\"\non_delete = \"cascade\"", false);
    run_under_workload(
        &db,
        "kind = \"index\"\ntable = \"items\"\n[index]\nname = \"Items Val\"\ncolumns = [\"val\"]",
        false,
    );
    run_under_workload(&db, "kind = \"unique\"\ntable = \"items\"\n[unique]\nname = \"items_val_grp_key\"\ncolumns = [\"val\", \"grp\"]", false);
    run_under_workload(
        &db,
        "kind = \"reindex\"\ntable = \"items\"\n[reindex]\nname = \"items_grp_idx\"",
        false,
    );
    run_under_workload(
        &db,
        "kind = \"drop-index\"\ntable = \"items\"\n[drop_index]\nname = \"Items Val\"",
        false,
    );
    let shape = db.shape();
    for expected in [
        "items grp range CHECK (((grp >= 0) AND (grp <= 49)))",
        "refs_item_fk2 FOREIGN KEY (item_id) REFERENCES items(id) ON DELETE CASCADE",
        "items_val_grp_key UNIQUE (val, grp)",
        "CREATE INDEX items_grp_idx ON public.items USING btree (grp)",
        "CREATE INDEX refs_item_id_idx ON public.refs USING btree (item_id)",
    ] {
        assert!(
            shape.contains(expected)
                || db.one::<bool>(&format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexdef = '{expected}')"
                )),
            "{expected} missing:\n{shape}"
        );
    }
    assert!(
        !shape.contains("NOT VALID") && !shape.contains("INVALID"),
        "{shape}"
    );
    assert!(!shape.contains("Items Val"), "dropped: {shape}");
    assert_eq!(db.differences(true), 0);
    // Rolling back the drop builds the index again.
    assert_ok(&db.lockstep(&["rollback"]));
    assert!(db.shape().contains("CREATE INDEX \"Items Val\""));
}

#[test]
fn awkward_names_a_failed_build_resumed_and_a_primary_key() {
    let db = Db::new();
    db.exec(
        "CREATE SCHEMA \"Odd Schema\";
         CREATE TABLE \"Odd Schema\".\"Select\" (\"User Id\" int, \"order\" text);
         INSERT INTO \"Odd Schema\".\"Select\" SELECT g, 'o' || (g % 10) FROM generate_series(1, 5000) g;",
    );
    let table = "table = '\"Odd Schema\".\"Select\"'";
    // A unique key over duplicates: the concurrent build fails and leaves an INVALID index.
    let pb = db.playbook(&format!(
        "kind = \"unique\"\n{table}\n[unique]\nname = \"Select order key\"\ncolumns = [\"order\"]"
    ));
    let o = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("could not create unique index"));
    assert!(db.one::<bool>("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = '\"Odd Schema\".\"Select order key\"'::regclass"));
    // Fixed data, then resume: the leftover is dropped and built again.
    db.exec("UPDATE \"Odd Schema\".\"Select\" SET \"order\" = 'o' || \"User Id\"");
    let out = assert_ok(&db.lockstep(&["resume"]));
    assert!(out.contains("INVALID"), "{out}");
    assert!(db.one::<bool>("SELECT convalidated FROM pg_constraint WHERE conname = 'Select order key' AND contype = 'u'"));
    // A primary key on a nullable column: NOT NULL first, through a validated check.
    let pb = db.playbook(&format!(
        "kind = \"primary-key\"\n{table}\n[primary_key]\ncolumns = [\"User Id\"]"
    ));
    let plan = assert_ok(&db.lockstep(&["plan", pb.to_str().unwrap()]));
    assert!(
        plan.contains("CHECK (\"User Id\" IS NOT NULL) NOT VALID")
            || plan.contains("NOT NULL \"User Id\" NOT VALID"), // PostgreSQL 18
        "{plan}"
    );
    assert!(plan.contains("+    \"User Id\" integer NOT NULL"), "{plan}");
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    assert!(db.one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'Select_pkey' AND contype = 'p')"));
    assert_eq!(db.one::<i64>("SELECT count(*) FROM pg_constraint WHERE conrelid = '\"Odd Schema\".\"Select\"'::regclass AND contype = 'c'"), 0);
    // Bad input: a missing column is refused in preflight, and nothing changes.
    let pb = db.playbook(&format!(
        "kind = \"check\"\n{table}\n[check]\nexpression = \"nope > 0\""
    ));
    let runs: i64 = db.one("SELECT count(*) FROM lockstep.runs");
    let o = db.lockstep(&["run", pb.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`check.expression` does not work on \"Odd Schema\".\"Select\": column \"nope\" does not exist"),
        "{err}"
    );
    let pb = db.playbook(&format!(
        "kind = \"backfill\"\n{table}\n[update]\nset = \"\\\"order\\\" = 1 +\""
    ));
    let o = db.lockstep(&["plan", pb.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("`update.set` could not be read as assignments"),
        "{out}"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM lockstep.runs"),
        runs,
        "a refused run is not recorded"
    );
    // An expression that smuggles in statements of its own is refused, not run, by plan.
    db.exec("CREATE TABLE victim ()");
    let pb = db.playbook(&format!(
        "kind = \"check\"\n{table}\n[check]\nexpression = 'true) FROM victim; COMMIT; DROP TABLE victim; SELECT (true'"
    ));
    let o = db.lockstep(&["plan", pb.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("`check.expression` does not work"), "{out}");
    assert!(
        db.one::<bool>("SELECT to_regclass('victim') IS NOT NULL"),
        "plan dropped a table"
    );
}

#[test]
fn primary_key_added_under_writes() {
    let db = Db::new();
    db.exec("ALTER TABLE refs DROP CONSTRAINT refs_item_id_fkey; ALTER TABLE items DROP CONSTRAINT items_pkey; ALTER TABLE items ALTER COLUMN id DROP NOT NULL");
    let out = run_under_workload(
        &db,
        "kind = \"primary-key\"\ntable = \"items\"\n[primary_key]\ncolumns = [\"id\"]",
        false,
    );
    assert!(
        out.contains("validate items_id_not_null"),
        "NOT NULL came first: {out}"
    );
    let shape = db.shape();
    assert!(shape.contains("items_pkey PRIMARY KEY (id)"), "{shape}");
    assert!(shape.contains("id integer not null"), "{shape}");
    assert!(
        !shape.contains("CHECK"),
        "the helper check is dropped: {shape}"
    );
    assert_eq!(db.differences(true), 0);
    // Rollback removes the key and the NOT NULL again.
    assert_ok(&db.lockstep(&["rollback"]));
    let shape = db.shape();
    assert!(
        !shape.contains("PRIMARY KEY") && shape.contains("id integer\n"),
        "{shape}"
    );
}

#[test]
fn index_on_a_partitioned_table_is_built_per_partition_and_attached() {
    let db = Db::new();
    db.exec(
        "CREATE TABLE \"Events\" (id bigint, at date NOT NULL, kind text) PARTITION BY RANGE (at);
         CREATE TABLE \"Events 2025\" PARTITION OF \"Events\" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE events_2026 PARTITION OF \"Events\" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO \"Events\" SELECT g, date '2025-01-01' + (g % 700), 'k' || (g % 9) FROM generate_series(1, 5000) g;",
    );
    let pb = db.playbook("kind = \"index\"\ntable = '\"Events\"'\n[index]\nname = \"Events kind\"\ncolumns = [\"kind\"]");
    let plan = assert_ok(&db.lockstep(&["plan", pb.to_str().unwrap()]));
    assert!(plan.contains("ON ONLY public.\"Events\""), "{plan}");
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    // The parent index is valid only once every partition's index is attached.
    assert!(db.one::<bool>(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"Events kind\"'::regclass"
    ));
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"Events kind\"'::regclass"
        ),
        2
    );
    assert_ok(&db.lockstep(&["rollback"]));
    assert!(db.one::<bool>("SELECT to_regclass('\"Events kind\"') IS NULL"));
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_indexes WHERE tablename IN ('Events 2025', 'events_2026')"
        ),
        0
    );
}

#[test]
fn column_type_with_using_swaps_and_swaps_back() {
    let db = Db::new();
    let pb = db.playbook(
        "kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"val\"\ntype = \"jsonb\"\nusing = \"jsonb_build_object('v', val)\"\nreverse_using = \"val ->> 'v'\"",
    );
    assert_ok(&db.lockstep(&["run", pb.to_str().unwrap()]));
    assert_eq!(
        db.one::<String>("SELECT val::text FROM items WHERE id = 5"),
        "{\"v\": \"v5\"}"
    );
    // Writes after the swap reach the old table through the reverse expression, when a
    // rollback applies them.
    db.exec("INSERT INTO items (grp, val) VALUES (1, '{\"v\": \"new\"}'); UPDATE items SET val = '{\"v\": \"changed\"}' WHERE id = 6");
    assert_eq!(
        db.one::<String>("SELECT val FROM items_old WHERE id = 6"),
        "v6"
    );
    assert_ok(&db.lockstep(&["rollback"]));
    assert_eq!(db.one::<String>("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'val'"), "text");
    assert_eq!(
        db.one::<String>("SELECT val FROM items WHERE id = 6"),
        "changed"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE val = 'new'"),
        1
    );
    assert_eq!(db.one::<i64>("SELECT count(*) FROM items i JOIN twin t USING (id) WHERE i.val IS DISTINCT FROM t.val AND i.id <> 6"), 0);
}

#[test]
fn a_blocking_transaction_makes_the_swap_give_up_naming_it_while_writes_go_on() {
    let db = Db::new();
    let pb = db.playbook("kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"id\"\ntype = \"bigint\"");
    // Replace the [swap] table: few attempts.
    let text = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("backoff = \"50ms\"", "backoff = \"50ms\"\nattempts = 3");
    std::fs::write(&pb, text).unwrap();
    let wl = Workload::start(&db, 2, false);
    db.kill_at(&["run", pb.to_str().unwrap()], "before-swap");
    // An open transaction that has read the table holds ACCESS SHARE on it.
    let holder = db
        .rt
        .block_on(connect(&format!("{} application_name=holder", db.url)));
    db.rt
        .block_on(holder.batch_execute("BEGIN; SELECT count(*) FROM items WHERE id = 1"))
        .unwrap();
    let o = db.lockstep(&["resume"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("could not get its locks within 3 attempts of 100 ms"),
        "{err}"
    );
    assert!(
        err.contains("blocked by backend pid") && err.contains("AccessShareLock"),
        "{err}"
    );
    wl.wait_ops(100);
    db.rt.block_on(holder.batch_execute("ROLLBACK")).unwrap();
    // With the transaction gone, the same run finishes.
    assert_ok(&db.lockstep(&["resume"]));
    wl.wait_ops(100);
    wl.finish();
    assert_eq!(db.differences(true), 0);
}

#[test]
fn a_backfill_pauses_and_resumes_while_running() {
    let db = Db::new();
    let pb = db.playbook("kind = \"backfill\"\ntable = \"items\"\n[update]\nset = \"flag = 'x'\"\nkeep_undo = false\n[backfill]\nbatch_size = 100\ntarget_batch_ms = 5\nmax_rows_per_second = 2000");
    let mut child = db
        .command(&["run", pb.to_str().unwrap()], None)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("the first batches", &|| db.state().is_some_and(|s| s.2 > 0));
    let out = assert_ok(&db.lockstep(&["pause"]));
    assert!(out.contains("paused"), "{out}");
    wait("the pause", &|| db.state().is_some_and(|s| s.1 == "paused"));
    let at_pause = db.state().unwrap().2;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        db.state().unwrap().2,
        at_pause,
        "no batch runs while paused"
    );
    let status = assert_ok(&db.lockstep(&["status"]));
    assert!(
        status.contains("kind       backfill") && status.contains("paused"),
        "{status}"
    );
    let out = assert_ok(&db.lockstep(&["resume"]));
    assert!(out.contains("resumed"), "{out}");
    assert!(child.wait().unwrap().success());
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE flag IS DISTINCT FROM 'x'"),
        0
    );
    assert_eq!(db.state().unwrap().0, "done");
    // Without undo data, a rollback ends the run and says what it could not take back.
    let out = assert_ok(&db.lockstep(&["rollback"]));
    assert!(
        out.contains("except: rows updated with `SET flag = 'x'` keep their new values"),
        "{out}"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM items WHERE flag IS DISTINCT FROM 'x'"),
        0
    );
}

#[test]
fn every_example_playbook_plans_and_runs() {
    let db = Db::new();
    db.exec(
        "CREATE TABLE customers (id serial PRIMARY KEY);
         INSERT INTO customers SELECT FROM generate_series(1, 100);
         CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, created_at timestamptz NOT NULL DEFAULT now(), status text, total int);
         INSERT INTO orders (customer_id, status, total)
           SELECT 1 + g % 100, CASE WHEN g % 3 = 0 THEN NULL ELSE 'new' END, g FROM generate_series(1, 3000) g;
         CREATE INDEX orders_status_idx ON orders (status);
         CREATE INDEX orders_legacy_idx ON orders (total);
         CREATE TABLE users (id serial PRIMARY KEY, email text);
         INSERT INTO users (email) SELECT CASE WHEN g % 5 = 0 THEN NULL ELSE 'u' || g || '@example.com' END FROM generate_series(1, 1000) g;
         CREATE TABLE events (id bigint NOT NULL, payload text);
         INSERT INTO events SELECT g, 'p' FROM generate_series(1, 1000) g;",
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    // In an order where each finds what it needs (the NOT NULL fill before the unique key).
    for name in [
        "column-type-orders-id-bigint",
        "not-null-users-email",
        "unique-users-email",
        "check-orders-total",
        "foreign-key-orders-customer",
        "primary-key-events",
        "index-orders-created-at",
        "reindex-orders-status",
        "drop-index-orders-legacy",
        "backfill-orders-status",
        "rebuild-orders",
    ] {
        let path = dir.join(format!("{name}.toml"));
        let path = path.to_str().unwrap();
        let plan = assert_ok(&db.lockstep(&["plan", path]));
        assert!(plan.contains("preflight: ok"), "{name}:\n{plan}");
        assert!(
            plan.contains("definition before → after:"),
            "{name}:\n{plan}"
        );
        let out = assert_ok(&db.lockstep(&["run", path]));
        // A rebuild swaps and keeps the old table current until finalize.
        if let Some(rest) = out.strip_prefix("run ") {
            if let Some((run, _)) = rest.split_once(": swapped.") {
                let done = assert_ok(&db.lockstep(&["finalize", run]));
                assert!(done.contains("finalized"), "{name}:\n{done}");
                continue;
            }
        }
        assert!(out.contains(" done on "), "{name}:\n{out}");
    }
    let shape: String = db.one(
        "SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\\n' ORDER BY conname) FROM pg_constraint",
    );
    for c in [
        "orders_total_nonnegative CHECK ((total >= 0))",
        "orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE RESTRICT",
        "users_email_key UNIQUE (email)",
        "events_pkey PRIMARY KEY (id)",
    ] {
        assert!(shape.contains(c), "{c} missing:\n{shape}");
    }
    assert!(db.one::<bool>("SELECT to_regclass('orders_legacy_idx') IS NULL AND to_regclass('orders_created_at_idx') IS NOT NULL"));
    // The rebuild: total widened, a column and a check added.
    assert!(
        shape.contains("orders_total_small CHECK ((total < 1000000000))"),
        "{shape}"
    );
    assert_eq!(
        db.one::<String>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total'"),
        "bigint"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM orders WHERE note = ''"),
        3000
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM orders WHERE status IS NULL"),
        0
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM users WHERE email IS NULL"),
        0
    );
}

#[test]
fn an_index_build_reports_its_progress() {
    let db = Db::new();
    db.exec(
        "CREATE TABLE big (id bigint PRIMARY KEY, v text);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1500000) g;",
    );
    let pb = db.playbook("kind = \"index\"\ntable = \"big\"\n[index]\ncolumns = [\"v\"]");
    let o = db.lockstep(&["run", pb.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{err}");
    // While the build runs, a second connection reads pg_stat_progress_create_index.
    assert!(
        err.lines()
            .any(|l| l.starts_with("index: public.big_v_idx: building index")),
        "{err}"
    );
    assert!(
        db.one::<bool>("SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass")
    );
}
