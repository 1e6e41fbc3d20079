//! The deferred reverse syncs: after the swap the changed keys are kept, by a replication
//! slot (`[swap] reverse = "logical"`, the default with logical capture: nothing on the
//! writers' path) or by a trigger that logs them (`"deferred"`); `lockstep rollback` applies
//! them to the old table (in batches, then the rest under the swap back's lock), also after
//! `kill -9` in the middle, and `lockstep sync-back` without swapping back; rows the old
//! column types cannot hold stop the rollback, named; `reverse = "sync"` still keeps the
//! old table current in the writer's transaction; a reverse stream cut again and again is
//! read again from where it was confirmed.

use super::*;

/// `app_writer`, a role that owns nothing and may write `events` and `expected`.
const WRITER: &str = "
DO $$ BEGIN CREATE ROLE app_writer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON events, expected TO app_writer;
GRANT USAGE ON SEQUENCE events_id_seq TO app_writer;
";

/// Writes as `app_writer`, each mirrored into `expected` in its transaction: `n` rounds of
/// an insert, an update, a key change and a delete.
fn write_as_app(db: &Db, n: i64) {
    let url = db.url.replace("user=postgres", "user=app_writer");
    rt().block_on(async {
        let c = connect(&format!("{url} application_name=tests")).await;
        for i in 0..n {
            c.batch_execute(&format!(
                "BEGIN;
                 WITH r AS (INSERT INTO events (created_at, account, payload, amount)
                            VALUES ('2024-02-01'::timestamptz + {i} * interval '1 minute', 7, 'after swap {i}', 1.5) RETURNING *)
                 INSERT INTO expected SELECT * FROM r;
                 WITH r AS (UPDATE events SET payload = 'changed {i}', amount = amount + 1
                            WHERE id = (SELECT min(id) + {i} * 3 FROM expected) RETURNING *)
                 UPDATE expected e SET payload = r.payload, amount = r.amount FROM r WHERE e.id = r.id;
                 WITH r AS (UPDATE events SET id = nextval('events_id_seq')
                            WHERE id = (SELECT min(id) + {i} * 3 + 1 FROM expected) RETURNING id)
                 UPDATE expected e SET id = r.id FROM r WHERE e.id = (SELECT min(id) + {i} * 3 + 1 FROM expected);
                 WITH r AS (DELETE FROM events WHERE id = (SELECT min(id) + {i} * 3 + 2 FROM expected) RETURNING id)
                 DELETE FROM expected e USING r WHERE e.id = r.id;
                 COMMIT;"
            ))
            .await
            .unwrap();
        }
    });
}

/// Changes since the swap waiting in the reverse log (-1: there is none).
fn reverse_backlog(db: &Db) -> i64 {
    reverse_log(db).map_or(-1, |l| db.one(&format!("SELECT count(*) FROM {l}")))
}

/// Replication slots and publications in the cluster.
fn slots_and_publications(db: &Db) -> (i64, i64) {
    (
        db.one("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
        db.one("SELECT count(*) FROM pg_publication"),
    )
}

#[test]
fn writes_after_the_swap_are_kept_by_the_slot_and_a_rollback_killed_in_the_middle_applies_them_all()
{
    killed_rollback("logical");
}

#[test]
fn writes_after_the_swap_are_logged_and_a_rollback_killed_in_the_middle_applies_them_all() {
    killed_rollback("deferred");
}

fn killed_rollback(reverse: &str) {
    let cluster = cluster();
    let db = Db::create(&cluster, &format!("reverse_writes_{reverse}"));
    setup_events(&db, 6_000);
    db.exec(WRITER);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(&format!(
            "[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\nreverse = \"{reverse}\""
        )),
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    db.assert_same_rows("events_old", "expected");
    let triggers: i64 = db.one(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND tgname LIKE 'lockstep%'",
    );
    if reverse == "logical" {
        // Nothing on the writers' path: a slot and a publication of the new table.
        assert_eq!(triggers, 0, "a trigger on the table after the swap");
        assert_eq!(slots_and_publications(&db), (1, 1));
        let published: String =
            db.one("SELECT string_agg(tablename, ',') FROM pg_publication_tables");
        assert_eq!(published, "events");
        check_killed_rollback(&db, true, 6_000);
        assert_eq!(
            slots_and_publications(&db),
            (0, 0),
            "a slot or publication left"
        );
        // Swapped again, and a rollback killed after its swap back, before it dropped the
        // slot: the next rollback drops it.
        assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
        write_as_app(&db, 20);
        let mut run = db.spawn(&["rollback"], Some("swapped-back"));
        wait_for("the swap back", Duration::from_secs(90), || {
            if let Some(status) = run.try_wait() {
                panic!("the rollback exited ({status}):\n{}", run.output());
            }
            db.one::<String>("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass")
                == "r"
        });
        run.kill9();
        db.wait_runner_gone();
        assert_eq!(slots_and_publications(&db), (1, 1));
        let out = db.lockstep(&["rollback"]);
        assert_exit(&out, 0);
        assert!(
            text(&out)
                .contains("already rolled back; the reverse slot its rollback left is dropped"),
            "{}",
            text(&out)
        );
        assert_eq!(
            slots_and_publications(&db),
            (0, 0),
            "a slot or publication left"
        );
        db.assert_same_rows("events", "expected");
        let again = db.lockstep(&["rollback"]);
        assert_exit(&again, 2);
        assert!(
            text(&again).contains("is already rolled back"),
            "{}",
            text(&again)
        );
        return;
    }
    assert_eq!(triggers, 2);
    // The writers' trigger only logs keys; the old table waits.
    let security_definer: bool = db.one(
        "SELECT bool_and(p.prosecdef) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE t.tgrelid = 'events'::regclass AND t.tgname LIKE 'lockstep_reverse%'",
    );
    assert!(security_definer);
    let public_execute: bool = db.one(
        "SELECT bool_or(has_function_privilege('app_writer', p.oid, 'EXECUTE')) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE t.tgrelid = 'events'::regclass AND t.tgname LIKE 'lockstep_reverse%'",
    );
    assert!(
        !public_execute,
        "the reverse function is executable by PUBLIC"
    );
    check_killed_rollback(&db, false, 6_000);
}

/// The application writes after the swap; the old table waits. A rollback killed after
/// its first batch swaps nothing back; the application writes on; the rollback run again
/// brings back every change. `logged`: the keys an insert, an update, a key change (two
/// keys) and a delete per round log.
fn check_killed_rollback(db: &Db, logical: bool, logged: i64) {
    write_as_app(db, 1_200);
    db.assert_same_rows("events", "expected");
    let status = db.lockstep(&["status"]);
    if logical {
        // Kept by the slot until something reads it.
        assert_eq!(reverse_backlog(db), 0);
        assert!(
            text(&status).contains("reverse    slot lockstep_r_"),
            "{}",
            text(&status)
        );
    } else {
        assert_eq!(reverse_backlog(db), logged);
        assert!(
            text(&status).contains(&format!("reverse    {logged} changes since the swap")),
            "{}",
            text(&status)
        );
    }
    let differing: i64 =
        db.one("SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM events_old) x");
    assert!(differing > 1_000, "{differing}");

    // Killed during the reverse replay: nothing swapped back, the rest of the log waits.
    let mut run = db.spawn(&["rollback"], Some("reverse"));
    // With the slot, the keys the runner replayed into the new table before the swap come
    // too (each costs a write).
    wait_for(
        "the rollback holding after its first batch",
        Duration::from_secs(90),
        || {
            if let Some(status) = run.try_wait() {
                panic!("the rollback exited ({status}):\n{}", run.output());
            }
            let left = reverse_backlog(db);
            let idle = db.runner_pid().is_some_and(|pid| {
            db.query(
                "SELECT coalesce(state = 'idle' AND state_change < now() - interval '1 s', false) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .first()
            .is_some_and(|r| r.get(0))
        });
            left > 0 && (logical || left < logged) && idle
        },
    );
    run.kill9();
    db.wait_runner_gone();
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "p", "swapped back although killed");
    // The application writes on, then the rollback runs again to the end.
    write_as_app(db, 50);
    let out = db.lockstep(&["rollback"]);
    assert_exit(&out, 0);
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r");
    db.assert_same_rows("events", "expected");
    assert_eq!(reverse_backlog(db), -1, "the reverse log is left");
    assert_eq!(db.lockstep_functions(), 0);
}

#[test]
fn a_truncate_after_the_swap_reaches_the_old_table_and_finalize_drops_the_log() {
    for reverse in ["deferred", "logical"] {
        truncate_then_finalize(reverse);
    }
}

fn truncate_then_finalize(reverse: &str) {
    let cluster = cluster();
    let db = Db::create(&cluster, &format!("reverse_truncate_{reverse}"));
    setup_events(&db, 2_000);
    db.exec(WRITER);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(&format!("[swap]\nreverse = \"{reverse}\"")),
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    write_as_app(&db, 100);
    let url = db.url.replace("user=postgres", "user=app_writer");
    rt().block_on(async {
        let c = connect(&format!("{url} application_name=tests")).await;
        c.batch_execute("BEGIN; TRUNCATE events; TRUNCATE expected; COMMIT")
            .await
            .unwrap();
    });
    if reverse == "logical" {
        // The slot keeps the truncate; `sync-back` applies it, and the writes before it
        // are gone with it.
        assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 2_000);
        let out = db.lockstep(&["sync-back"]);
        assert_exit(&out, 0);
        assert!(
            text(&out).contains("changes since the swap applied to the old table"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(reverse_backlog(&db), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 0);
    write_as_app(&db, 20);
    assert_exit(&db.lockstep(&["rollback"]), 0);
    db.assert_same_rows("events", "expected");
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events"), 20);
    assert_eq!(
        slots_and_publications(&db),
        (0, 0),
        "a slot or publication left"
    );
    // Again, and finalized: no log, trigger, function, slot or publication left.
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    write_as_app(&db, 10);
    assert_exit(&db.lockstep(&["finalize"]), 0);
    assert_eq!(reverse_backlog(&db), -1);
    assert_eq!(db.lockstep_functions(), 0);
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'lockstep%'");
    assert_eq!(triggers, 0);
    assert_eq!(
        slots_and_publications(&db),
        (0, 0),
        "a slot or publication left"
    );
    db.assert_same_rows("events", "expected");
}

#[test]
fn a_value_the_old_type_cannot_hold_stops_the_rollback_naming_the_row() {
    for reverse in ["logical", "deferred"] {
        refused_rollback(reverse);
    }
}

fn refused_rollback(reverse: &str) {
    let cluster = cluster();
    let db = Db::create(&cluster, &format!("reverse_refused_{reverse}"));
    db.exec(
        "CREATE TABLE items (id integer PRIMARY KEY, qty integer NOT NULL);
         INSERT INTO items SELECT i, i FROM generate_series(1, 3000) i;",
    );
    let pb = db.playbook(
        "pb.toml",
        &format!("kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"id\"\ntype = \"bigint\"\n[backfill]\nbatch_size = 500\n[swap]\nreverse = \"{reverse}\""),
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    db.exec(
        "INSERT INTO items VALUES (3000000000, 1), (4000000000, 2), (5000, 5000);
         UPDATE items SET qty = -qty WHERE id <= 1500;
         DELETE FROM items WHERE id = 2000",
    );
    let refused = db.lockstep(&["rollback"]);
    assert_exit(&refused, 2);
    let message = text(&refused);
    assert!(
        message.contains("2 row(s) written to public.items since the swap cannot be written back to public.items_old")
            && message.contains("(id)=(3000000000): integer out of range")
            && message.contains("(id)=(4000000000): integer out of range"),
        "{message}"
    );
    let kind: i64 = db.one(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'id' AND atttypid = 'bigint'::regtype",
    );
    assert_eq!(kind, 1, "swapped back although refused");
    db.exec("DELETE FROM items WHERE id > 2147483647");
    assert_exit(&db.lockstep(&["rollback"]), 0);
    let summary: String = db.one(
        "SELECT format_type(atttypid, atttypmod) || ' ' || (SELECT count(*) || ' ' || sum(qty) FROM items)
         FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'id'",
    );
    // 3000 rows - 1 deleted + 1 new; the first 1500 negated.
    let sum: i64 = -(1..=1500).sum::<i64>() + (1501..=3000).sum::<i64>() - 2000 + 5000;
    assert_eq!(summary, format!("integer 3000 {sum}"));
}

#[test]
fn with_reverse_sync_the_old_table_is_current_after_each_write() {
    let cluster = cluster();
    let db = Db::create(&cluster, "reverse_sync");
    setup_events(&db, 2_000);
    db.exec(WRITER);
    let pb = db.playbook("pb.toml", &events_playbook("[swap]\nreverse = \"sync\""));
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    assert!(
        !text(&plan).contains("CREATE TABLE IF NOT EXISTS lockstep.rlog_"),
        "{}",
        text(&plan)
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    write_as_app(&db, 100);
    assert_eq!(
        reverse_backlog(&db),
        -1,
        "a reverse log with reverse = \"sync\""
    );
    db.assert_same_rows("events_old", "expected");
    let out = db.lockstep(&["sync-back"]);
    assert_exit(&out, 0);
    assert!(
        text(&out)
            .contains("the old table is kept current by the reverse trigger: nothing to apply"),
        "{}",
        text(&out)
    );
    assert_exit(&db.lockstep(&["rollback"]), 0);
    db.assert_same_rows("events", "expected");
    assert_eq!(db.lockstep_functions(), 0);
    // Rolled back: nothing to bring up to date.
    let out = db.lockstep(&["sync-back"]);
    assert_exit(&out, 2);
    assert!(
        text(&out).contains("is already rolled back"),
        "{}",
        text(&out)
    );
    // And a wrong value is refused, naming the key.
    let bad = db.playbook("bad.toml", &events_playbook("[swap]\nreverse = \"later\""));
    let out = db.lockstep(&["run", bad.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        text(&out).contains(
            "`swap.reverse`: expected \"auto\", \"logical\", \"deferred\" or \"sync\", found `later`"
        ),
        "{}",
        text(&out)
    );
}

/// The reverse slot's replication stream cut by the server again and again while a
/// rollback reads it (a network that comes and goes, an administrator): the rollback reads
/// the slot again from where it confirmed it, swaps back, and loses nothing.
#[test]
fn a_rollback_whose_reverse_stream_is_cut_again_and_again_applies_every_change() {
    let cluster = cluster();
    let db = Db::create(&cluster, "reverse_cut");
    setup_events(&db, 6_000);
    db.exec(WRITER);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(
            "[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\nreverse = \"logical\"",
        ),
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    write_as_app(&db, 1_500);
    db.assert_same_rows("events", "expected");

    let mut run = db.spawn(&["rollback"], None);
    // Bursts of cuts (a stream started again is often cut while it starts).
    let url = db.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let cutter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            rt().block_on(async {
                let c = connect(&url).await;
                let mut cuts = 0i64;
                // A burst every 100 ms until one cuts the stream (as soon as the rollback
                // opens it), then three more a second apart: the stream is cut again and
                // again, and the swap back still gets one that lives for a moment.
                let mut after_first = 0;
                while after_first < 4 && !stop.load(Ordering::Relaxed) {
                    for _ in 0..10 {
                        cuts += c
                            .query_one(
                                // (Materialized first: a filter pushed into the view would
                                // end other server processes too.)
                                "WITH w AS MATERIALIZED (SELECT pid FROM pg_stat_replication)
                                 SELECT count(*) FROM w WHERE pg_terminate_backend(pid)",
                                &[],
                            )
                            .await
                            .map_or(0, |r| r.get::<_, i64>(0));
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    if cuts > 0 {
                        after_first += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                cuts
            })
        })
    };
    wait_for("the rollback", Duration::from_secs(300), || {
        run.try_wait().is_some()
    });
    stop.store(true, Ordering::Relaxed);
    let cuts = cutter.join().unwrap();
    let out = run.output();
    assert!(run.try_wait().unwrap().success(), "{out}");
    assert!(cuts > 0, "the stream was never cut");
    assert!(
        out.contains("reverse replay: the replication stream stopped"),
        "{out}"
    );
    let relkind: String =
        db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(relkind, "r", "swapped back");
    db.assert_same_rows("events", "expected");
    assert_eq!(
        slots_and_publications(&db),
        (0, 0),
        "a slot or publication left"
    );
}
