//! Logical capture: the run's slot and publication live exactly as long as the run needs
//! them, the WAL the slot holds back is bounded, and the capture follows what the server
//! allows (the trigger where logical decoding is not possible).

use super::*;

/// (replication slots, publications) in the cluster.
fn capture_objects(db: &Db) -> (i64, i64) {
    (
        db.one("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
        db.one("SELECT count(*) FROM pg_publication"),
    )
}

#[test]
fn no_slot_or_publication_survives_a_rollback_a_swap_a_swap_back_or_finalize() {
    let cluster = cluster();
    let db = Db::create(&cluster, "slots");
    setup_events(&db, 5_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[capture]\nmode = \"logical\""),
    );
    let pb = pb.to_str().unwrap();
    let plan = text(&db.lockstep(&["plan", pb]));
    for want in [
        "2. capture: logical decoding: publication lockstep_",
        "CREATE PUBLICATION lockstep_",
        "FOR TABLE ONLY public.events",
        "SELECT pg_create_logical_replication_slot('lockstep_",
        // The reverse sync: a slot, no trigger.
        "a publication of the new table and a replication slot (after the swap they keep its changes for a rollback, with no trigger",
        "drop the reverse slot, its publication and the old table",
    ] {
        assert!(plan.contains(want), "{want:?} not in:\n{plan}");
    }

    // Killed during the copy: the slot stays for the resume; no trigger on the table.
    let mut run = db.spawn(&["run", pb], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    assert_eq!(capture_objects(&db), (1, 1));
    // The slot is streamed over a replication connection, not read with the SQL functions.
    wait_for("the slot's stream", Duration::from_secs(60), || {
        db.one::<i64>("SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.database = current_database()") == 1
    });
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'lockstep%'");
    assert_eq!(triggers, 0, "logical capture puts no trigger on the table");
    run.kill9();
    db.wait_runner_gone();
    let out = db.lockstep(&["rollback"]);
    assert_exit(&out, 0);
    assert_eq!(
        capture_objects(&db),
        (0, 0),
        "after a rollback before the swap"
    );

    // The swap drops them; the reverse sync's slot and publication of the new table take
    // over until a swap back, or finalize, drops them.
    let out = db.lockstep(&["run", pb]);
    assert_exit(&out, 0);
    let reverse: Vec<String> = db
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database() UNION ALL SELECT pubname::text FROM pg_publication",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reverse.len(), 2, "after the swap: {reverse:?}");
    assert!(
        reverse.iter().all(|n| n.starts_with("lockstep_r_")),
        "after the swap: {reverse:?}"
    );
    assert_swapped(&db);
    let out = db.lockstep(&["rollback"]);
    assert_exit(&out, 0);
    assert_eq!(capture_objects(&db), (0, 0), "after a swap back");
    db.assert_same_rows("events", "expected");

    // Killed right after the swap committed, before dropping the slot: the resume drops it.
    let mut run = db.spawn(&["run", pb], Some("after-swap"));
    db.wait_held(&mut run, "after-swap");
    run.kill9();
    db.wait_runner_gone();
    assert_eq!(
        capture_objects(&db),
        (2, 1),
        "the slot outlives a runner killed after the swap (beside the reverse slot)"
    );
    let status = text(&db.lockstep(&["status"]));
    assert!(
        status.contains("capture    logical decoding, slot lockstep_"),
        "{status}"
    );
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 0);
    assert_eq!(
        capture_objects(&db),
        (1, 1),
        "after the resume: the reverse slot"
    );
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 0);
    assert_eq!(capture_objects(&db), (0, 0), "after finalize");
    db.assert_same_rows("events", "expected");
}

#[test]
fn a_slot_held_back_past_max_retained_wal_stops_the_run_and_is_dropped() {
    let cluster = cluster();
    let db = Db::create(&cluster, "retained");
    setup_events(&db, 5_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[capture]\nmode = \"logical\"\nmax_retained_wal = \"24MiB\""),
    );
    let pb = pb.to_str().unwrap();
    let mut run = db.spawn(&["run", pb], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    run.kill9();
    db.wait_runner_gone();
    // A transaction that wrote and stays open: the slot cannot let go of the WAL after its
    // first write. Then about 45 MB of WAL.
    let holder = db.rt.block_on(connect(&db.test_url()));
    db.rt
        .block_on(
            holder.batch_execute("CREATE TABLE pin (x int); BEGIN; INSERT INTO pin VALUES (1)"),
        )
        .unwrap();
    db.exec(
        "CREATE TABLE filler AS SELECT g, repeat('x', 400) AS t FROM generate_series(1, 100000) g",
    );
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 2);
    let said = text(&out);
    for want in [
        "held back",
        "more than [capture] max_retained_wal (24 MiB)",
        "the slot is dropped",
        "lockstep rollback",
    ] {
        assert!(said.contains(want), "{want:?} not in:\n{said}");
    }
    assert_eq!(capture_objects(&db), (0, 0));
    // A resume cannot go on without the changes since: it says so.
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 2);
    assert!(text(&out).contains("replication slot"), "{}", text(&out));
    assert!(text(&out).contains("is gone"), "{}", text(&out));
    db.rt.block_on(holder.batch_execute("COMMIT")).unwrap();
    let out = db.lockstep(&["rollback"]);
    assert_exit(&out, 0);
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r");
    db.assert_same_rows("events", "expected");
}

/// While only other tables are written, the slot still moves on: the server's keepalives
/// say how far it has decoded, and the slot would otherwise hold back their WAL.
#[test]
fn the_slot_moves_on_while_only_other_tables_are_written() {
    let cluster = cluster();
    let db = Db::create(&cluster, "moves_on");
    setup_events(&db, 20_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("max_rows_per_second = 500\n\n[capture]\nmode = \"logical\""),
    );
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    wait_for("the copy", Duration::from_secs(60), || {
        db.run_state().is_some_and(|(_, _, copied, _)| copied > 0)
    });
    db.exec(
        "CREATE TABLE other AS SELECT g, repeat('x', 400) AS t FROM generate_series(1, 10000) g",
    );
    let written: String = db.one("SELECT pg_current_wal_lsn()::text");
    wait_for(
        "the slot confirmed past the other table's writes",
        Duration::from_secs(60),
        || {
            db.query(
                "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE database = current_database()",
                &[&written],
            )
            .first()
            .is_some_and(|r| r.get::<_, bool>(0))
        },
    );
    let (step, _, _, _) = db.run_state().unwrap();
    assert_eq!(
        step, "capture",
        "still copying: only the keepalives moved the slot"
    );
    run.kill9();
    db.wait_runner_gone();
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_eq!(capture_objects(&db), (0, 0));
}

/// Under the swap's lock the application waits: a stream that broke is not opened again
/// there. The attempt lets go of its lock and the next one (after the catch-up opened the
/// stream again) swaps.
#[test]
fn a_stream_broken_under_the_swaps_lock_makes_the_attempt_retry() {
    let cluster = cluster();
    let db = Db::create(&cluster, "swap_stream");
    setup_events(&db, 5_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[capture]\nmode = \"logical\""),
    );
    let wl = Workload::start(&db, 2);
    let out = db
        .command(&["run", pb.to_str().unwrap()])
        .env("LOCKSTEP_TEST_FAULT_AT", "swap-stream")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let said = text(&out);
    for want in [
        "swap: the capture's replication stream stopped (broken by the test hook) (attempt 1/",
        "capture: the replication stream stopped (broken by the test hook): reading the slot again",
    ] {
        assert!(said.contains(want), "{want:?} not in:\n{said}");
    }
    let stats = wl.finish();
    stats.assert_clean();
    // The run's output, shown only when a check below fails.
    eprintln!("the run said:\n{said}");
    assert_swapped(&db);
    db.assert_same_rows("events", "expected");
    // The failed attempt is in the run's record, with why.
    let failed: i64 = db.one(
        "SELECT count(*) FROM lockstep.runs r, jsonb_array_elements(r.swaps) a
         WHERE a->>'error' LIKE '%replication stream stopped%'",
    );
    assert_eq!(failed, 1);
}

#[test]
fn without_logical_decoding_auto_uses_the_trigger_and_logical_is_refused_with_the_reason() {
    let cluster = lockstep::db::cluster::TempCluster::builder()
        .setting("wal_level", "replica")
        .start()
        .expect("a throwaway PostgreSQL must start for this test");
    let db = Db::create(&cluster, "nological");
    setup_events(&db, 2_000);
    let asked = db.playbook(
        "logical.toml",
        &events_playbook("\n[capture]\nmode = \"logical\""),
    );
    let out = db.lockstep(&["plan", asked.to_str().unwrap()]);
    assert_exit(&out, 1);
    let said = text(&out);
    assert!(
        said.contains(
            "[capture] mode = \"logical\" is not possible: wal_level is replica, not logical"
        ),
        "{said}"
    );
    let auto = db.playbook(
        "auto.toml",
        &events_playbook("\n[capture]\nmode = \"auto\""),
    );
    let plan = text(&db.lockstep(&["plan", auto.to_str().unwrap()]));
    assert!(
        plan.contains("not logical decoding, which the application's writes would not pay for: wal_level is replica"),
        "{plan}"
    );
    let out = db.lockstep(&["run", auto.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(
        text(&out).contains("capture: change-capture trigger"),
        "{}",
        text(&out)
    );
    assert_eq!(capture_objects(&db), (0, 0));
    assert_swapped(&db);
}
