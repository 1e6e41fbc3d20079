//! `kill -9` at every checkpoint then resume or rollback; Ctrl-C and SIGTERM; the copy's
//! lanes resumed each from its own high-water mark.

use super::*;

pub const HOLD_POINTS: [&str; 6] = [
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

fn kill_at(cluster: &TempCluster, point: &str, rollback: bool, capture: &str) {
    const ROWS: i64 = 20_000;
    let db = Db::create(
        cluster,
        &format!(
            "k_{}_{}_{capture}",
            point.replace('-', "_"),
            if rollback { "rb" } else { "res" }
        ),
    );
    setup_events(&db, ROWS);
    let relations_before = db.relations("public");
    let indexes_before = db.index_defs("events");
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(&format!(
            "\n[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\n\n[capture]\nmode = \"{capture}\""
        )),
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
    // Writes while no runner is alive: the capture (trigger or slot) keeps every change.
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
        // No slot or publication survives, even one a killed runner's stream still held.
        let left: i64 = db.one(
            "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) + (SELECT count(*) FROM pg_publication)",
        );
        assert_eq!(left, 0, "a slot or publication survived the rollback");
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
        kill_at(&cluster, point, false, "trigger");
    }
}

/// The same with logical capture: a resume reads the slot from where it was moved on last.
#[test]
fn killed_at_every_checkpoint_with_logical_capture_then_resumed() {
    let cluster = cluster();
    for point in HOLD_POINTS {
        kill_at(&cluster, point, false, "logical");
    }
}

#[test]
fn killed_at_every_checkpoint_then_rolled_back() {
    let cluster = cluster();
    for point in HOLD_POINTS {
        kill_at(&cluster, point, true, "trigger");
    }
}

/// The same with logical capture (the default): the killed runner's stream still holds the
/// slot when the rollback drops it.
#[test]
fn killed_at_every_checkpoint_with_logical_capture_then_rolled_back() {
    let cluster = cluster();
    for point in HOLD_POINTS {
        kill_at(&cluster, point, true, "auto");
    }
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
    // The runner's connections: the main one, its progress monitor, two helpers and the
    // one that commits the logical capture's tokens, besides the capture's stream (the
    // backend of the `status` just run may take a moment to go).
    let runners = "SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
                          count(*) FILTER (WHERE backend_type = 'walsender')
           FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'lockstep'";
    wait_for(
        "the runner's five connections and its stream",
        Duration::from_secs(30),
        || {
            let r = &db.query(runners, &[])[0];
            (r.get::<_, i64>(0), r.get::<_, i64>(1)) == (5, 1)
        },
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
