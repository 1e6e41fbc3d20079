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
