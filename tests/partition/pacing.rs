//! What makes a run slower than it has to be on a quiet database: a sample that reads the
//! whole table to split it into lanes, and the runner's own connections taken for the
//! application's (so that it rests for the duty cycle).

use super::*;
use lockstep::playbook::shadow::ShadowPlan;

/// Where the copy is split into lanes comes from a sample of about a hundred pages: the
/// source's size in pages must be its own for a table that is not partitioned (a size of
/// zero made the sample read every row of the table, twice per run).
#[test]
fn the_lanes_are_split_from_the_pages_of_a_plain_table() {
    let cluster = cluster();
    let db = Db::create(&cluster, "sample_pages");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook("workers = 2"));
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("backfill"));
    db.wait_held(&mut run, "backfill");
    let stored: serde_json::Value = db.one("SELECT plan FROM lockstep.runs");
    let plan: ShadowPlan = serde_json::from_value(stored).unwrap();
    let pages: f64 = db.one(&plan.pages_sql());
    let own: f64 =
        db.one("SELECT (pg_relation_size('events') / current_setting('block_size')::int)::float8");
    assert!(own > 100.0, "the table is too small to tell: {own} pages");
    assert_eq!(pages, own);
    run.kill9();
}

/// With one connection on a quiet database the run never rests: the heartbeat its monitor
/// writes every two seconds is the runner's own, not the application's. Under a workload it
/// does rest, and says so once (which is what the first half looks for).
#[test]
fn one_connection_on_a_quiet_database_never_rests() {
    const RESTED: &str = "the application is busy";
    let cluster = cluster();
    let db = Db::create(&cluster, "never_rests");
    setup_events(&db, 20_000);
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("workers = 1\nduty_cycle = 0.05"),
    );
    // The test's own statements are an application to the runner: wait (watching from
    // another database) until they are over a second old.
    let watcher = Db::create(&cluster, "quiet_watch");
    wait_for(
        "the test's statements to be a second old",
        Duration::from_secs(30),
        || {
            watcher.one(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = 'never_rests' AND backend_type = 'client backend'
                   AND (state <> 'idle' OR state_change > now() - interval '1 second'))",
            )
        },
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(
        !text(&out).contains(RESTED),
        "the run rested on a quiet database:\n{}",
        text(&out)
    );
    assert_swapped(&db);

    let db = Db::create(&cluster, "rests");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook("workers = 1\nduty_cycle = 0.5"));
    let wl = Workload::start(&db, 1);
    wl.wait_ops(20);
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    wl.finish().assert_clean();
    assert_exit(&out, 0);
    assert_eq!(
        text(&out).matches(RESTED).count(),
        1,
        "under a workload the run rests and says so once:\n{}",
        text(&out)
    );
}
