//! Conversions under a concurrent workload: nothing lost, nobody blocked long; blocking and
//! long transactions, the application's row locks, key updates racing the copy, a writer
//! role without other rights, swap retries, an autovacuum cancelled before the swap.

use super::*;

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
    // Writes after the swap go to the new table, their keys to the reverse log.
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

    // Explicit writes after the swap: each in the new table, its key in the reverse log.
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
    // Not in the old table yet: the reverse slot keeps the change for a rollback; `lockstep
    // sync-back` applies it.
    let in_old = || -> i64 {
        db.one("SELECT count(*) FROM events_old WHERE payload = 'after swap' AND created_at = '2024-05-05'")
    };
    assert_eq!(in_old(), 0);
    assert_eq!(
        reverse_log(&db).map(|l| db.one::<i64>(&format!("SELECT count(*) FROM {l}"))),
        Some(0)
    );
    assert_swapped(&db);
    assert_eq!(in_old(), 1);

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
    assert_old_behind_by_the_log(&db, "events_old", "expected");
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
fn values_moving_between_rows_under_a_unique_index_are_carried_over() {
    unique_moves("trigger", false);
}

/// With logical capture, a replay of every logged change first reads the slot up to its own
/// snapshot: two rows trading a unique value are then replayed together.
#[test]
fn values_moving_between_rows_under_a_unique_index_are_carried_over_with_logical_capture() {
    unique_moves("logical", false);
}

/// The capture's replication stream ended by the server again and again (a restart, a
/// network cut, an administrator): the run reads the slot again from where it confirmed it
/// and loses nothing.
#[test]
fn a_logical_capture_whose_stream_is_cut_again_and_again_loses_nothing() {
    unique_moves("logical", true);
}

fn unique_moves(capture: &str, cut_stream: bool) {
    let cluster = cluster();
    let db = Db::create(
        &cluster,
        &format!(
            "unique_moves_{capture}{}",
            if cut_stream { "_cut" } else { "" }
        ),
    );
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
        &format!("kind = \"partition\"\ntable = \"slots\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 day\"\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 20\nmax_rows_per_second = 10000\n[capture]\nmode = \"{capture}\"\n"),
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
    let mut cuts = 0;
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
        if cut_stream && swaps % 40 == 0 {
            // A burst of cuts: the stream the runner opens again is often cut while it
            // starts, as on a network that comes and goes.
            for _ in 0..30 {
                cuts += db.one::<i64>(
                    // (The stream's server process only: while the slot is being made, the
                    // runner's own connection holds it.)
                    "WITH w AS MATERIALIZED (SELECT s.active_pid AS pid FROM pg_replication_slots s
                                              JOIN pg_stat_replication r ON r.pid = s.active_pid
                                              WHERE s.database = current_database())
                     SELECT count(*) FROM w WHERE pg_terminate_backend(pid)",
                );
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(run.try_wait().unwrap().success(), "{}", run.output());
    assert!(swaps > 100, "only {swaps} swaps during the run");
    if cut_stream {
        assert!(cuts > 0, "the stream was never cut");
        assert!(
            run.output().contains("the replication stream stopped"),
            "{}",
            run.output()
        );
    }
    assert_exact_copy(&run.output());
    db.assert_same_rows("slots", "expected_slots");
    assert_old_behind_by_the_log(&db, "slots_old", "expected_slots");
    let unique: bool = db.one(
        "SELECT i.indisunique AND i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relname = 'slots_seat'",
    );
    assert!(unique);
    // Swapped back: the seats traded since the swap reach the original table through the
    // reverse log, whose batches may hold a seat twice for a moment.
    assert_exit(&db.lockstep(&["rollback"]), 0);
    db.assert_same_rows("slots", "expected_slots");
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
    // The trigger's rights are what this test is about (logical capture has no trigger).
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[capture]\nmode = \"trigger\""),
    );
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
    let status = text(&db.lockstep(&["status"]));
    for want in [
        "capture    a trigger logs changed keys",
        "logged     5 changes not replayed yet",
    ] {
        assert!(status.contains(want), "{want:?} not in:\n{status}");
    }
    run.kill9();
    db.wait_runner_gone();
    resume_exactly(&db);
    assert_swapped(&db);
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
    // Every attempt is kept with the run: those that timed out waiting, then the one that
    // held the lock, for how long (also in the run's output and in `lockstep status`).
    let not_granted: i64 = db.one(
        "SELECT count(*) FROM lockstep.runs, jsonb_array_elements(swaps) a
          WHERE a->>'what' = 'swap' AND a->>'held_ms' IS NULL AND (a->>'waited_ms')::float8 >= 90",
    );
    assert!(not_granted >= 2, "{not_granted} attempts not granted");
    let held: f64 = db.one(
        "SELECT (a->>'held_ms')::float8 FROM lockstep.runs, jsonb_array_elements(swaps) WITH ORDINALITY AS x(a, n)
          ORDER BY n DESC LIMIT 1",
    );
    assert!(held > 0.0 && held < 1000.0, "held {held} ms");
    assert!(
        run.output().contains("swap: the lock was held "),
        "{}",
        run.output()
    );
    let status = text(&db.lockstep(&["status"]));
    assert!(
        status.contains("swaps      swap: lock not granted after ")
            && status.contains("           swap: lock held "),
        "{status}"
    );
    eprintln!("{status}");
}

/// An autovacuum worker on the table (slowed down to take minutes) holds a lock the swap's
/// conflicts with: the swap cancels it before it asks for its lock, so the application
/// does not queue behind a lock request waiting out its lock_timeout, and the first
/// attempt gets the lock.
#[test]
fn an_autovacuum_on_the_table_is_cancelled_before_the_swap_asks_for_its_lock() {
    let cluster = TempCluster::builder()
        .setting("autovacuum_naptime", "1")
        .start()
        .expect("a throwaway PostgreSQL must start for this test");
    let db = Db::create(&cluster, "autovacuum");
    db.exec(
        "CREATE TABLE readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, v integer NOT NULL)
           WITH (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,
                 autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 50,
                 autovacuum_vacuum_insert_threshold = -1,
                 autovacuum_analyze_threshold = 2000000000);
         INSERT INTO readings SELECT i, '2024-01-01'::timestamptz + (i % 5) * interval '1 day', i
           FROM generate_series(1, 100000) i;",
    );
    db.exec("VACUUM (ANALYZE) readings");
    let pb = db.playbook(
        "readings.toml",
        "kind = \"partition\"\ntable = \"readings\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 day\"\n[swap]\nmode = \"manual\"\n",
    );
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    wait_for(
        "the run to wait for `lockstep swap`",
        Duration::from_secs(300),
        || {
            assert!(run.try_wait().is_none(), "{}", run.output());
            db.run_state().is_some_and(|s| s.1 == "ready_to_swap")
        },
    );
    // A dead row on every page: the vacuum reads them all, a page every 100 ms.
    db.exec(
        "UPDATE readings SET v = v + 1 WHERE id % 10 = 0;
         CREATE TABLE expected_readings WITH (autovacuum_enabled = false) AS SELECT * FROM readings;",
    );
    let vacuuming = "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
                      WHERE a.backend_type = 'autovacuum worker' AND l.relation = 'readings'::regclass";
    wait_for(
        "autovacuum to work on the table",
        Duration::from_secs(120),
        || db.one::<i64>(vacuuming) > 0,
    );
    let id: String = db.one("SELECT id FROM lockstep.runs");
    assert_exit(&db.lockstep(&["swap", &id]), 0);
    wait_for("the swap", Duration::from_secs(300), || {
        run.try_wait().is_some()
    });
    let out = run.output();
    assert!(run.try_wait().unwrap().success(), "{out}");
    assert!(
        out.contains(
            "cancelled 1 autovacuum worker(s) working on the tables before taking the lock"
        ),
        "{out}"
    );
    assert!(!out.contains("lock not granted"), "{out}");
    let relkind: String =
        db.one("SELECT relkind::text FROM pg_class WHERE oid = 'readings'::regclass");
    assert_eq!(relkind, "p");
    db.assert_same_rows("readings", "expected_readings");
}
