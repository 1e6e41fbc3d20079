//! lockstep behind a real pgbouncer: a transaction or statement pool is refused before
//! anything is created (a run keeps session state a pool would hand to other clients); a
//! session pool runs to the end while the application writes through a transaction pool; and
//! a run lock left on a pooled server session is named, and taken over only once its
//! runner is provably gone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/db.rs"]
mod db;
#[path = "common/pgbouncer.rs"]
mod pgbouncer;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use db::{assert_exit, cluster, connect, rt, text, wait_for, Db, BIN};
use pgbouncer::Bouncer;

const PARTITION: &str = r#"
kind = "partition"
table = "public.t"

[partition]
column = "at"
strategy = "range"
interval = "1 month"
default_partition = true

[backfill]
batch_size = 200
target_batch_ms = 20
"#;

const INDEX: &str = r#"
kind = "index"
table = "public.t"

[index]
columns = ["v"]
"#;

/// A table `t` of `rows` rows, written by the role `app_writer` (not the owner: INSERT,
/// SELECT, DELETE and UPDATE of `v` only), with its side table `expected`.
fn setup(db: &Db, rows: i64) {
    db.exec(&format!(
        "DO $$ BEGIN CREATE ROLE app_writer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE t (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), v int);
         INSERT INTO t (v) SELECT g FROM generate_series(1, {rows}) g;
         CREATE TABLE expected AS SELECT * FROM t;
         GRANT SELECT, INSERT, DELETE ON t TO app_writer;
         GRANT UPDATE (v) ON t TO app_writer;
         GRANT USAGE ON SEQUENCE t_id_seq TO app_writer;
         GRANT SELECT, INSERT, UPDATE, DELETE ON expected TO app_writer;"
    ));
}

/// `lockstep ARGS --database-url URL`, to the end.
fn lockstep(url: &str, args: &[&str], hold: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--database-url")
        .arg(url)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("LOCKSTEP_TEST_HOLD_AT")
        .stdin(Stdio::null());
    if let Some(h) = hold {
        c.env("LOCKSTEP_TEST_HOLD_AT", h);
    }
    c.output().unwrap()
}

/// Nothing of lockstep's in the database: no schema, no trigger, no relation.
fn assert_untouched(db: &Db) {
    let leftovers: String = db.one(
        "SELECT coalesce(string_agg(what, ', '), '') FROM (
           SELECT 'schema lockstep' AS what WHERE to_regnamespace('lockstep') IS NOT NULL
           UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
           UNION ALL SELECT 'relation ' || relname FROM pg_class
             WHERE relname NOT IN ('t', 'expected', 't_pkey', 't_id_seq')
               AND relnamespace = 'public'::regnamespace) x",
    );
    assert_eq!(leftovers, "", "a refused run left something behind");
}

#[test]
fn a_transaction_or_statement_pool_is_refused_before_anything_is_created() {
    let c = cluster();
    let db = Db::create(&c, "pooled");
    setup(&db, 2000);
    for mode in ["transaction", "statement"] {
        let pool = Bouncer::start(&c, mode);
        // A pool already in use (its server connections have served other clients).
        let rt = rt();
        rt.block_on(async {
            let a = connect(&pool.url("pooled")).await;
            let b = connect(&pool.url("pooled")).await;
            a.simple_query("SELECT count(*) FROM t").await.unwrap();
            b.simple_query("SELECT count(*) FROM t").await.unwrap();
        });
        for (name, text_) in [("partition", PARTITION), ("index", INDEX)] {
            let pb = db.playbook(&format!("{name}.toml"), text_);
            let out = lockstep(&pool.url("pooled"), &["run", pb.to_str().unwrap()], None);
            assert_exit(&out, 2);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("connection pooler in transaction or statement mode")
                    && err.contains("Nothing was changed")
                    && err.contains("session-mode pool"),
                "{mode} pool, {name}: {err}\npgbouncer log:\n{}",
                pool.log()
            );
            assert_untouched(&db);
        }
    }
}

/// Writes through `url` as `app_writer` until `stop`: inserts, updates of `v` and deletes,
/// each transaction also applied to `expected`. Returns (transactions, errors).
fn writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let rt = rt();
        rt.block_on(async {
            let c = connect(&url).await;
            let done = AtomicU64::new(0);
            let mut errors = Vec::new();
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let sql = match i % 3 {
                    0 => "BEGIN; WITH n AS (INSERT INTO t (v) VALUES (-1) RETURNING *)
                          INSERT INTO expected SELECT * FROM n; COMMIT;"
                        .to_string(),
                    1 => format!(
                        "BEGIN; UPDATE t SET v = v + 1 WHERE id = {k}; UPDATE expected SET v = v + 1 WHERE id = {k}; COMMIT;",
                        k = 1 + (i * 7) % 1500
                    ),
                    _ => format!(
                        "BEGIN; DELETE FROM t WHERE id = {k}; DELETE FROM expected WHERE id = {k}; COMMIT;",
                        k = 1 + (i * 13) % 1500
                    ),
                };
                // Simple queries: what an application behind a transaction pool sends.
                match c.simple_query(&sql).await {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        let _ = c.simple_query("ROLLBACK").await;
                        errors.push(format!("{sql}: {e:?}"));
                    }
                }
            }
            (done.load(Ordering::Relaxed), errors)
        })
    })
}

#[test]
fn a_session_pool_runs_to_the_end_while_the_application_writes_through_a_transaction_pool() {
    let c = cluster();
    let db = Db::create(&c, "sessions");
    setup(&db, 3000);
    let sessions = Bouncer::start(&c, "session");
    let transactions = Bouncer::start(&c, "transaction");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(transactions.url_as("sessions", "app_writer"), stop.clone());
    wait_for(
        "the application's first writes",
        Duration::from_secs(30),
        || db.one::<i64>("SELECT count(*) FROM expected WHERE v = -1") > 3,
    );
    let pb = db.playbook("partition.toml", PARTITION);
    let url = sessions.url("sessions");
    // pgbouncer does not pass a replication connection on: the capture falls back to the
    // trigger, and the plan says why.
    let plan = text(&lockstep(&url, &["plan", pb.to_str().unwrap()], None));
    assert!(
        plan.contains("not logical decoding, which the application's writes would not pay for: a replication connection failed"),
        "{plan}"
    );
    let out = lockstep(&url, &["run", pb.to_str().unwrap()], None);
    assert_exit(&out, 0);
    assert!(text(&out).contains("swapped"), "{}", text(&out));
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_replication_slots"),
        0
    );
    // Writes go on through the swap; then finalize through the session pool too.
    let after = db.one::<i64>("SELECT count(*) FROM expected");
    wait_for("writes after the swap", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM expected") > after + 3
    });
    let out = lockstep(&url, &["finalize"], None);
    assert_exit(&out, 0);
    stop.store(true, Ordering::Relaxed);
    let (done, errors) = w.join().unwrap();
    assert!(
        errors.is_empty(),
        "the application's writes failed ({} of {}): {:?}",
        errors.len(),
        done + errors.len() as u64,
        &errors[..errors.len().min(3)]
    );
    assert!(db.one::<bool>("SELECT relkind = 'p' FROM pg_class WHERE oid = 't'::regclass"));
    db.assert_same_rows("t", "expected");
}

/// The backend holding the run lock of `public.t`, if any.
fn holder(db: &Db) -> Option<i32> {
    db.query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('lockstep:public.t', 0)",
        &[],
    )
    .first()
    .map(|r| r.get(0))
}

#[test]
fn a_lock_left_behind_is_named_and_taken_over_only_once_its_runner_is_gone() {
    let c = cluster();
    let db = Db::create(&c, "leftover");
    setup(&db, 3000);
    let pool = Bouncer::start(&c, "transaction");
    let pb = db.playbook("partition.toml", PARTITION);

    // A live runner, held after its first batch: never taken over.
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    wait_for("the runner's heartbeat", Duration::from_secs(60), || {
        if let Some(status) = run.try_wait() {
            panic!("the runner exited ({status}):\n{}", run.output());
        }
        db.one::<bool>("SELECT to_regclass('lockstep.runners') IS NOT NULL")
            && db.one::<bool>(
                "SELECT EXISTS (SELECT 1 FROM lockstep.runs WHERE step = 'capture' AND rows_copied > 0)",
            )
            && db.one::<i64>("SELECT count(*) FROM lockstep.runners") == 1
    });
    let live = holder(&db).expect("the live runner holds the lock");
    let out = db.lockstep(&["resume", "--takeover"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its runner is alive"),
        "{}",
        text(&out)
    );
    assert_eq!(holder(&db), Some(live), "a live runner lost its lock");
    // Through the transaction pool, even rollback is refused before it touches anything.
    let out = lockstep(&pool.url("leftover"), &["rollback"], None);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connection pooler"),
        "{}",
        text(&out)
    );

    // The runner is killed; its lock is left on a pooled server session, as when a client
    // behind a transaction pool goes away.
    run.kill9();
    db.wait_runner_gone();
    rt().block_on(async {
        let c = connect(&pool.url("leftover")).await;
        c.simple_query("SELECT pg_advisory_lock(hashtextextended('lockstep:public.t', 0))")
            .await
            .unwrap();
    });
    let stuck = holder(&db).expect("the pooled session keeps the lock");
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains(&format!("backend pid {stuck}")) && err.contains("--takeover"),
        "{err}"
    );
    let status = text(&db.lockstep(&["status"]));
    assert!(
        status.contains("its runner is gone") && status.contains("--takeover"),
        "{status}"
    );
    let out = db.lockstep(&["resume", "--takeover"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("swapped"), "{}", text(&out));
    assert!(!db.one::<bool>(&format!(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {stuck})"
    )));
    db.assert_same_rows("t", "expected");
    assert_exit(&db.lockstep(&["finalize"]), 0);
}

/// A run that captures by logical decoding (started against the server itself) keeps the
/// changes since its swap in a slot. A rollback through pgbouncer cannot read that slot (no
/// replication connection passes the pooler): it stops, says to connect to the server
/// directly, and loses nothing. Against the server, the rollback applies every change.
#[test]
fn a_rollback_through_a_pooler_that_needs_the_slot_says_to_connect_directly() {
    let c = cluster();
    let db = Db::create(&c, "pooled_rollback");
    setup(&db, 3000);
    let sessions = Bouncer::start(&c, "session");
    let pb = db.playbook(
        "partition.toml",
        &format!("{PARTITION}\n[capture]\nmode = \"logical\"\n"),
    );
    let direct = db.test_url();
    let out = lockstep(&direct, &["run", pb.to_str().unwrap()], None);
    assert_exit(&out, 0);
    // Changes after the swap: in the reverse slot only.
    db.exec("UPDATE t SET v = -v WHERE id <= 100; INSERT INTO t (v) VALUES (7)");
    let out = lockstep(&sessions.url("pooled_rollback"), &["rollback"], None);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("needs a replication connection to the server itself")
            && said.contains("--database-url naming the server"),
        "{said}"
    );
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        ),
        1,
        "the reverse slot is kept"
    );
    let out = lockstep(&direct, &["rollback"], None);
    assert_exit(&out, 0);
    assert!(db.one::<bool>("SELECT relkind = 'r' FROM pg_class WHERE oid = 't'::regclass"));
    assert_eq!(db.one::<i64>("SELECT count(*) FROM t WHERE v < 0"), 100);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM t WHERE v = 7"), 1);
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        ),
        0
    );
}
