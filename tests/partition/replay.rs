//! The replay converges while the application keeps writing: a replay that rests for the
//! duty cycle lets the log outgrow it, so while the log grows it works without rest (and says
//! so once), and `lockstep status` shows the backlog, its growth and the throttle.

use super::*;
use serde_json::Value;

/// What the runner says when its replay falls behind, and when it has caught up.
const BEHIND: &str = "replay: the change log grows faster than it is replayed";
const CAUGHT_UP: &str = "replay: caught up with the change log";

fn status_json(db: &Db) -> Value {
    let out = db.lockstep(&["status", "--format", "json"]);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// The status of the run, or `None` before there is a run.
fn try_status_json(db: &Db) -> Option<Value> {
    let out = db.lockstep(&["status", "--format", "json"]);
    (out.status.code() == Some(0)).then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Waits (up to five minutes: the machine may be busy) for a background run to exit, and
/// returns its output; fails when it exits with an error or never does.
fn wait_exit_ok(run: &mut Running, what: &str) -> String {
    let mut status = None;
    wait_for(what, Duration::from_secs(300), || {
        status = run.try_wait();
        status.is_some()
    });
    let output = run.output();
    assert!(
        status.is_some_and(|s| s.success()),
        "{what}: the run failed ({status:?}):\n{output}"
    );
    output
}

/// Four writers keep writing at a steady rate (a short pause between operations, so the
/// machine is not saturated) through the whole run, with a duty cycle that rests 99% of the
/// time while the application is busy. A replay resting that much replays fewer changes than
/// the writers log, and never reaches the swap; this one notices the growth, works without
/// rest until a batch takes what waits, and swaps. The log is gone, the status's last
/// reading says the replay is not behind, and both tables hold exactly what the writers
/// committed. Changes are captured by the trigger: with logical capture the log is fed the
/// same way, but its verification under this duty cycle re-compares ranges that kept changing,
/// each resting 99 times as long as it took, and the run takes minutes.
#[test]
fn steady_writers_do_not_keep_the_replay_from_reaching_the_swap() {
    let cluster = cluster();
    let db = Db::create(&cluster, "replay_converges");
    setup_events(&db, 2_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("workers = 1\nduty_cycle = 0.01\n\n[capture]\nmode = \"trigger\""),
    );
    let wl = Workload::start(&db, 4);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    let output = wait_exit_ok(
        &mut run,
        "the run to reach the swap while the writers write",
    );
    let ops = wl.ops();
    let stats = wl.finish();
    stats.assert_clean();
    assert!(ops > 1_000, "the writers wrote too little to tell: {ops}");
    assert_swapped(&db);
    let (step, status, _, _) = db.run_state().unwrap();
    assert_eq!((step.as_str(), status.as_str()), ("validated", "swapped"));
    // The replay fell behind (the writers outpaced the resting replay) and said so once each
    // time, and caught up each time.
    let behind = output.matches(BEHIND).count();
    assert!(
        behind >= 1,
        "the replay never fell behind: the test shows nothing:\n{output}"
    );
    assert_eq!(
        output.matches(CAUGHT_UP).count(),
        behind,
        "every fall behind is followed by a catch-up:\n{output}"
    );
    // Backlog drained: the log is gone with the swap, and the runner's last reading says the
    // replay had caught up.
    assert!(
        db.relations("lockstep")
            .iter()
            .all(|r| !r.starts_with("log_")),
        "{:?}",
        db.relations("lockstep")
    );
    let last = &status_json(&db)["runs"][0]["replay"];
    assert_eq!(last["behind"], false, "{last}");
    assert_eq!(last["backlog"], 0, "{last}");
}

/// While a limit the user set (`max_rows_per_second`) holds the replay below the rate the
/// writers log changes, `lockstep status` shows the backlog, its growth per second and that
/// the replay is behind (the throttle says why the other work waits), in text and in JSON;
/// once the limit is lifted, the replay catches up and the run swaps.
#[test]
fn status_shows_the_backlog_its_growth_and_the_throttle() {
    let cluster = cluster();
    let db = Db::create(&cluster, "replay_status");
    setup_events(&db, 2_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("workers = 1\nduty_cycle = 1\nmax_rows_per_second = 100"),
    );
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    let mut seen = Value::Null;
    wait_for(
        "the status to show the replay behind",
        Duration::from_secs(300),
        || {
            if let Some(status) = run.try_wait() {
                panic!("the run exited ({status}):\n{}", run.output());
            }
            seen = try_status_json(&db).map_or(Value::Null, |s| s["runs"][0].clone());
            seen["replay"]["behind"] == true
        },
    );
    let replay = &seen["replay"];
    assert!(
        replay["growth_per_second"]
            .as_f64()
            .is_some_and(|g| g > 0.0),
        "{seen}"
    );
    assert!(
        replay["backlog"].as_i64().is_some_and(|n| n > 100),
        "{seen}"
    );
    assert!(
        seen["log_backlog"].as_i64().is_some_and(|n| n > 0),
        "{seen}"
    );
    // Throttled: by the replay falling behind, or by the limit that holds the replay back
    // (whichever said so last).
    assert_eq!(seen["throttle"]["active"], true, "{seen}");
    let status = text(&db.lockstep(&["status"]));
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("replay ") && l.contains("changes/s: behind")),
        "{status}"
    );
    let prom = text(&db.lockstep(&["status", "--format", "prometheus"]));
    assert!(prom.contains("lockstep_run_replay_behind{"), "{prom}");
    assert!(
        prom.contains("lockstep_run_log_growth_per_second{"),
        "{prom}"
    );

    // Lifted: the replay catches up and the run swaps.
    let id = seen["id"].as_str().unwrap().to_string();
    assert_exit(&db.lockstep(&["set", &id, "max_rows_per_second=0"]), 0);
    let output = wait_exit_ok(&mut run, "the run to swap once the limit is lifted");
    wl.finish().assert_clean();
    assert_swapped(&db);
    assert_eq!(output.matches(BEHIND).count(), 1, "said once:\n{output}");
    assert!(
        output.contains("max_rows_per_second = 100 limits the replay too"),
        "{output}"
    );
    let last = status_json(&db)["runs"][0].clone();
    assert_eq!(last["replay"]["behind"], false, "{last}");
    assert_eq!(last["throttle"]["active"], false, "{last}");
}

/// A run on a fresh `events` (20,000 rows) with `capture`, killed at hold point `point`
/// while two writers go on, and 5,000 more of their operations: a log of many batches (the
/// lanes start at two batches of 500 per connection, 2,000 changes).
fn killed_at(cluster: &TempCluster, name: &str, capture: &str, point: &str) -> (Db, Workload) {
    let db = Db::create(cluster, &format!("{name}_{capture}"));
    setup_events(&db, 20_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(&format!("\n[capture]\nmode = \"{capture}\"")),
    );
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some(point));
    db.wait_held(&mut run, point);
    run.kill9();
    db.wait_runner_gone();
    wl.wait_ops(5_000);
    (db, wl)
}

/// A log of many batches (the runner was killed before its index builds while two writers
/// went on writing) is replayed by both connections at once, each the keys that hash to its
/// lane, with the writers still busy (the helper does not wait for a quiet moment). A runner killed while the lanes replay loses nothing: the next resume replays in
/// lanes again, the verification finds the copy exact, and the run swaps. With the trigger
/// and with logical capture (whose stream is read into the log before the lanes start).
#[test]
fn a_large_log_is_replayed_in_lanes_and_a_kill_in_them_loses_nothing() {
    const LANES: &str = "logged changes, in 2 lanes";
    let cluster = cluster();
    for capture in ["trigger", "logical"] {
        let (db, wl) = killed_at(&cluster, "replay_lanes", capture, "indexes");
        let mut resumed = db.spawn(&["resume"], Some("replay"));
        db.wait_held(&mut resumed, "replay");
        let held = resumed.output();
        assert!(held.contains(LANES), "{capture}: no lanes:\n{held}");
        resumed.kill9();
        db.wait_runner_gone();
        wl.wait_ops(5_000);
        let out = db.lockstep(&["resume"]);
        assert_exit(&out, 0);
        let output = text(&out);
        assert!(output.contains(LANES), "{capture}: no lanes:\n{output}");
        // Both connections replayed, although the application was busy all along.
        assert!(
            output.contains("the application is busy"),
            "{capture}:\n{output}"
        );
        let each: Vec<u64> = output
            .split("logged changes applied in 2 lanes (")
            .nth(1)
            .and_then(|s| s.split(" by each connection)").next())
            .unwrap_or_else(|| panic!("{capture}:\n{output}"))
            .split(" + ")
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            each.len() == 2 && each.iter().all(|&n| n > 0),
            "{capture}: {each:?}\n{output}"
        );
        assert_exact_copy(&output);
        wl.wait_ops(200);
        let stats = wl.finish();
        stats.assert_clean();
        assert_swapped(&db);
    }
}

/// A run killed just before its swap while two writers go on comes back to a log of many
/// batches: the resumed run replays it in lanes before its swap attempts, and the swap
/// holds its lock only for what is left. The copy is exact (the swap's own comparison
/// finds no row out of place) and the writers saw no error.
#[test]
fn a_log_grown_before_the_swap_is_replayed_in_lanes_first() {
    let cluster = cluster();
    for capture in ["trigger", "logical"] {
        let (db, wl) = killed_at(&cluster, "swap_lanes", capture, "before-swap");
        let out = db.lockstep(&["resume"]);
        assert_exit(&out, 0);
        let output = text(&out);
        let swap = output
            .find("swap: ")
            .unwrap_or_else(|| panic!("{capture}: no swap:\n{output}"));
        let lanes = output
            .find("logged changes, in 2 lanes")
            .unwrap_or_else(|| panic!("{capture}: no lanes:\n{output}"));
        assert!(
            lanes > swap,
            "{capture}: the lanes ran before the swap step:\n{output}"
        );
        assert_exact_copy(&output);
        wl.wait_ops(200);
        let stats = wl.finish();
        stats.assert_clean();
        assert_swapped(&db);
    }
}
