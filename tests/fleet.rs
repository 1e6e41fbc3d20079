//! `lockstep apply` and `lockstep fleet` against real PostgreSQL: migrations applied once
//! and recorded, statements retried under lock_timeout while something holds their locks,
//! lint refusing, a changed file refused; a fleet of three clusters × ten databases plus
//! 200 schemas of one database rolled out (canary, waves, status rebuilt from the targets),
//! and a rollout halted by its error budget, then resumed.
//!
//! The tables are tiny and the targets run concurrently, so the whole binary takes well
//! under a minute on two cores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/db.rs"]
mod db;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use db::{assert_exit, cluster, text, wait_for, Db, BIN};
use serde_json::Value;

/// The three statements every fleet target gets: a table, an index built concurrently
/// (so that file runs statement by statement), and a column.
const MIGRATIONS: [(&str, &str); 3] = [
    (
        "0001_create.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY, v int);\n",
    ),
    (
        "0002_index.sql",
        "CREATE INDEX CONCURRENTLY items_v_idx ON items (v);\n",
    ),
    (
        "0003_column.sql",
        "ALTER TABLE items ADD COLUMN note text;\n",
    ),
];

fn write_dir(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
    dir.to_path_buf()
}

fn lockstep(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn records(db: &Db, scope: &str) -> Vec<(String, String, i32)> {
    db.query(
        "SELECT version, status, lock_waits FROM lockstep.migrations WHERE scope = $1 ORDER BY version",
        &[&scope],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[test]
fn apply_runs_each_file_once_and_waits_for_locks_under_lock_timeout() {
    let c = cluster();
    let db = Db::create(&c, "app");
    let dir = write_dir(&db.dir.path().join("migrations"), &MIGRATIONS);
    let d = dir.to_str().unwrap();

    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("applied 0001_create.sql (1 statement, one transaction"),
        "{out}"
    );
    assert!(
        out.contains("applied 0002_index.sql (1 statement, statement by statement"),
        "{out}"
    );
    assert!(out.contains("3 migrations applied"), "{out}");
    assert_eq!(
        records(&db, ""),
        [
            ("0001_create.sql".into(), "applied".into(), 0),
            ("0002_index.sql".into(), "applied".into(), 0),
            ("0003_column.sql".into(), "applied".into(), 0),
        ]
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_index WHERE indexrelid = 'items_v_idx'::regclass AND indisvalid"),
        1
    );

    // Once only.
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("0 migrations applied, 3 applied before"),
        "{}",
        text(&o)
    );

    // A file whose statement cannot get its lock waits, retried under lock_timeout, and
    // goes through once the blocker ends.
    write_dir(
        &dir,
        &[("0004_more.sql", "ALTER TABLE items ADD COLUMN w int;\n")],
    );
    let blocker = db.rt.block_on(async {
        let b = db::connect(&db.test_url()).await;
        b.batch_execute("BEGIN; SELECT * FROM items").await.unwrap();
        b
    });
    let mut run = db.spawn(&["apply", d, "--lock-timeout", "100ms"], None);
    wait_for(
        "apply to retry behind the blocker",
        Duration::from_secs(60),
        || run.output().contains("lock not granted within 100 ms"),
    );
    assert!(run.try_wait().is_none(), "{}", run.output());
    db.rt.block_on(blocker.batch_execute("ROLLBACK")).unwrap();
    wait_for("apply to finish", Duration::from_secs(60), || {
        run.try_wait().is_some()
    });
    assert_eq!(run.try_wait().unwrap().code(), Some(0), "{}", run.output());
    let waits = records(&db, "")[3].2;
    assert!(waits >= 1, "the record counts the lock waits: {waits}");

    // Lint first: a blocking index build is refused, unless allowed.
    write_dir(
        &dir,
        &[("0005_index.sql", "CREATE INDEX items_w ON items (w);\n")],
    );
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 1);
    let t = text(&o);
    assert!(
        t.contains("create-index-non-concurrently") && t.contains("0005_index.sql:1:1"),
        "{t}"
    );
    assert_eq!(
        records(&db, "").len(),
        4,
        "nothing applied after a lint error"
    );
    let o = db.lockstep(&["apply", d, "--allow-lint-errors"]);
    assert_exit(&o, 0);
    // Once applied, its finding is shown but no longer refuses the files after it.
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("create-index-non-concurrently"),
        "{}",
        text(&o)
    );

    // A migration that changed after it was applied stops the target.
    std::fs::write(
        dir.join("0001_create.sql"),
        "CREATE TABLE items (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 1);
    assert!(
        text(&o).contains("0001_create.sql was applied with checksum"),
        "{}",
        text(&o)
    );
    std::fs::write(dir.join("0001_create.sql"), MIGRATIONS[0].1).unwrap();

    // A failing statement is recorded with its place; fixed, it is tried again.
    write_dir(
        &dir,
        &[(
            "0006_bad.sql",
            "SELECT 1;\nALTER TABLE nope ADD COLUMN x int;\n",
        )],
    );
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 1);
    assert!(
        text(&o).contains("0006_bad.sql:2: relation \"nope\" does not exist"),
        "{}",
        text(&o)
    );
    assert_eq!(records(&db, "")[5].1, "failed");
    let o = db.lockstep(&["apply", "--status", d]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("failed after 0/2 statements"),
        "{}",
        text(&o)
    );
    write_dir(&dir, &[("0006_bad.sql", "SELECT 1;\n")]);
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 0);
    assert_eq!(records(&db, "")[5].1, "applied");

    // The lock budget: the target gives up once it has waited that long for locks in all.
    write_dir(
        &dir,
        &[("0007_budget.sql", "ALTER TABLE items ADD COLUMN y int;\n")],
    );
    let blocker = db.rt.block_on(async {
        let b = db::connect(&db.test_url()).await;
        b.batch_execute("BEGIN; SELECT * FROM items").await.unwrap();
        b
    });
    let o = db.lockstep(&[
        "apply",
        d,
        "--lock-timeout",
        "100ms",
        "--lock-budget",
        "500ms",
    ]);
    assert_exit(&o, 1);
    assert!(
        text(&o).contains("0007_budget.sql:1: the lock budget of 500 ms is spent"),
        "{}",
        text(&o)
    );
    assert_eq!(records(&db, "")[6].1, "failed");
    db.rt.block_on(blocker.batch_execute("ROLLBACK")).unwrap();
    let o = db.lockstep(&["apply", d]);
    assert_exit(&o, 0);

    // A concurrent build behind a writer: each attempt that times out leaves an INVALID
    // index, dropped (itself retried) before the next attempt; once the writer ends, the
    // index is built, valid, once.
    write_dir(
        &dir,
        &[(
            "0008_cic.sql",
            "CREATE INDEX CONCURRENTLY items_y_idx ON items (y);\n",
        )],
    );
    db.rt
        .block_on(blocker.batch_execute("BEGIN; INSERT INTO items (id) VALUES (100000)"))
        .unwrap();
    let mut run = db.spawn(&["apply", d, "--lock-timeout", "100ms"], None);
    wait_for(
        "the build to retry behind the writer",
        Duration::from_secs(60),
        || {
            run.output()
                .contains("dropping the INVALID index items_y_idx")
        },
    );
    assert!(run.try_wait().is_none(), "{}", run.output());
    db.rt.block_on(blocker.batch_execute("ROLLBACK")).unwrap();
    wait_for("apply to finish", Duration::from_secs(120), || {
        run.try_wait().is_some()
    });
    assert_eq!(run.try_wait().unwrap().code(), Some(0), "{}", run.output());
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass AND indisvalid
               AND indexrelid::regclass::text = 'items_y_idx'"
        ),
        1
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        0
    );
}

/// Three clusters of ten databases each and 200 schemas of one more database: one rollout
/// of the same three migrations, then `fleet status` rebuilt from the 230 targets.
#[test]
fn a_fleet_rolls_out_across_clusters_databases_and_schemas() {
    let clusters = [cluster(), cluster(), cluster()];
    let rt = db::rt();
    rt.block_on(async {
        for c in &clusters {
            let admin = db::connect(&c.conn_string("postgres")).await;
            for i in 0..10 {
                admin
                    .batch_execute(&format!("CREATE DATABASE tenant_{i:02}"))
                    .await
                    .unwrap();
            }
        }
    });
    let shared = Db::create(&clusters[0], "shared");
    shared.exec(
        "DO $$ BEGIN FOR i IN 0..199 LOOP EXECUTE format('CREATE SCHEMA %I', 'org_' || lpad(i::text, 3, '0')); END LOOP; END $$",
    );
    let dir = write_dir(&shared.dir.path().join("migrations"), &MIGRATIONS);
    let mut toml = format!(
        "migrations = {:?}\n\n[rollout]\ncanary = 2\nwave_size = 100\nconcurrency = 8\n\n[targets]\n",
        dir.display().to_string()
    );
    for c in &clusters {
        toml.push_str(&format!(
            "[[targets.discover]]\nurl = {:?}\ndatabases = \"SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%' ORDER BY 1\"\n",
            c.conn_string("postgres")
        ));
    }
    toml.push_str(&format!(
        "[[targets.discover]]\nurl = {:?}\nschemas = \"SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'org_%' ORDER BY 1\"\n",
        shared.url
    ));
    let fleet = shared.dir.path().join("fleet.toml");
    std::fs::write(&fleet, toml).unwrap();
    let f = fleet.to_str().unwrap();

    let o = lockstep(&["fleet", "plan", f]);
    assert_exit(&o, 0);
    let t = text(&o);
    assert!(t.contains("230 targets (30 databases, 200 schemas)"), "{t}");
    assert!(t.contains("canary (2 targets, 2 with work left)"), "{t}");
    assert!(t.contains("wave 3 (28 targets, 28 with work left)"), "{t}");
    let st = status_json(f);
    assert_eq!(st["state"], "not_started");
    assert_eq!(st["summary"]["untouched"], 230);

    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 0);
    let t = text(&o);
    assert!(
        t.contains("230 target(s) done, 0 already up to date, 0 failed"),
        "{t}"
    );
    assert!(
        t.contains("canary: 2 targets") && t.contains("wave 1: 100 targets"),
        "{t}"
    );

    let st = status_json(f);
    assert_eq!(st["version"], 1);
    assert_eq!(st["state"], "complete", "{st}");
    assert_eq!(st["summary"]["up_to_date"], 230);
    let targets = st["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 230);
    assert!(targets
        .iter()
        .all(|t| t["version"] == "0003_column.sql" && t["applied"] == 3 && t["pending"] == 0));
    assert_eq!(targets[0]["wave"], "canary");
    assert_eq!(targets[229]["wave"], "wave 3");
    assert!(targets[229]["target"]
        .as_str()
        .unwrap()
        .ends_with("/shared#org_199"));

    // What the status claims is on the targets: the column in every schema and database.
    assert_eq!(
        shared.one::<i64>(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = 'items' AND a.attname = 'note' AND n.nspname LIKE 'org_%'"
        ),
        200
    );
    assert_eq!(
        shared.one::<i64>(
            "SELECT count(DISTINCT scope) FROM lockstep.migrations WHERE status = 'applied'"
        ),
        200
    );
    rt.block_on(async {
        for c in &clusters {
            for i in [0, 9] {
                let t = db::connect(&c.conn_string(&format!("tenant_{i:02}"))).await;
                let n: i64 = t
                    .query_one(
                        "SELECT count(*) FROM pg_index WHERE indexrelid = 'items_v_idx'::regclass AND indisvalid",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(n, 1);
            }
        }
    });

    // A second run has nothing left to do.
    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("0 target(s) done, 230 already up to date"),
        "{}",
        text(&o)
    );
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// `fleet status --format json`, its schema (version 1) checked.
fn status_json(fleet: &str) -> Value {
    let o = lockstep(&["fleet", "status", fleet, "--format", "json"]);
    assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        keys(&v),
        [
            "fleet",
            "migrations",
            "source",
            "state",
            "summary",
            "targets",
            "version",
            "work"
        ]
    );
    assert_eq!(
        keys(&v["summary"]),
        [
            "changed",
            "failed",
            "partial",
            "pending",
            "targets",
            "unreachable",
            "untouched",
            "up_to_date"
        ]
    );
    for t in v["targets"].as_array().unwrap() {
        assert_eq!(
            keys(t),
            ["applied", "error", "pending", "run", "state", "target", "version", "wave"]
        );
    }
    v
}

/// A target that fails opens the circuit breaker: no more targets start, the status says
/// halted and which targets were not touched, and `fleet resume` continues once fixed.
#[test]
fn a_failed_target_halts_the_rollout_and_resume_continues() {
    let c = cluster();
    let db = Db::create(&c, "app");
    db.exec(
        "DO $$ BEGIN FOR i IN 0..11 LOOP EXECUTE format('CREATE SCHEMA %I', 's' || lpad(i::text, 2, '0')); END LOOP; END $$",
    );
    // s03 already has an `items` of its own: the first migration fails there.
    db.exec("CREATE TABLE s03.items (id int)");
    let dir = write_dir(&db.dir.path().join("migrations"), &MIGRATIONS);
    let fleet = db.dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "migrations = {:?}\n[rollout]\ncanary = 1\nwave_size = 3\nconcurrency = 1\nerror_budget = 0\n[[targets.discover]]\nurl = {:?}\nschemas = \"SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^s[0-9]+$' ORDER BY 1\"\n",
            dir.display().to_string(),
            db.url
        ),
    )
    .unwrap();
    let f = fleet.to_str().unwrap();

    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 1);
    let t = text(&o);
    assert!(
        t.contains("the rollout halted: 1 target(s) failed, over the error budget of 0"),
        "{t}"
    );
    assert!(t.contains("relation \"items\" already exists"), "{t}");
    // canary s00, wave 1 s01..s03: s03 fails; the 8 after it are untouched.
    assert!(
        t.contains("3 target(s) done, 0 already up to date, 1 failed, 0 stopped, 8 not started"),
        "{t}"
    );
    let st = status_json(f);
    assert_eq!(st["state"], "halted", "{st}");
    assert_eq!(st["summary"]["up_to_date"], 3);
    assert_eq!(st["summary"]["failed"], 1);
    assert_eq!(st["summary"]["untouched"], 8);
    assert_eq!(st["targets"][3]["state"], "failed");
    assert!(st["targets"][3]["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid WHERE c.relname = 'items' AND n.nspname > 's03'"),
        0,
        "no target after the failure was touched"
    );

    // `run` again does not retry the failed target; `resume` does, once it is fixed.
    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 1);
    assert!(
        text(&o).contains("`lockstep fleet resume` tries it again"),
        "{}",
        text(&o)
    );
    db.exec("DROP TABLE s03.items");
    let o = lockstep(&["fleet", "resume", f]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("9 target(s) done, 3 already up to date, 0 failed"),
        "{}",
        text(&o)
    );
    assert_eq!(status_json(f)["state"], "complete");

    // A new migration with a lint error fails the canary, and the rollout halts there.
    write_dir(
        &dir,
        &[(
            "0004_index.sql",
            "CREATE INDEX items_note ON items (note);\n",
        )],
    );
    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 1);
    let t = text(&o);
    assert!(
        t.contains("#s00: lint found 1 error(s) in the migrations to apply")
            && t.contains("0004_index.sql:1:1: error[create-index-non-concurrently]"),
        "{t}"
    );
    assert!(
        t.contains("0 target(s) done, 0 already up to date, 1 failed, 0 stopped, 11 not started"),
        "{t}"
    );
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_note'"),
        0
    );
}

/// A playbook as a fleet's work: each schema target runs it on its own table (the schema
/// qualifies the playbook's table), and the status reads each target's run.
#[test]
fn a_fleet_runs_a_playbook_on_every_schema() {
    let c = cluster();
    let db = Db::create(&c, "app");
    db.exec(
        "DO $$ BEGIN FOR i IN 0..5 LOOP
           EXECUTE format('CREATE SCHEMA %I', 't' || i);
           EXECUTE format('CREATE TABLE %I.items (id bigint PRIMARY KEY, v int)', 't' || i);
           EXECUTE format('INSERT INTO %I.items SELECT g, g %% 7 FROM generate_series(1, 500) g', 't' || i);
         END LOOP; END $$",
    );
    let pb = db.playbook(
        "index.toml",
        "kind = \"index\"\ntable = \"items\"\n[index]\ncolumns = [\"v\"]\n",
    );
    let fleet = db.dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "playbook = {:?}\n[rollout]\ncanary = 1\nconcurrency = 3\n[[targets.discover]]\nurl = {:?}\nschemas = \"SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^t[0-9]$' ORDER BY 1\"\n",
            pb.display().to_string(),
            db.url
        ),
    )
    .unwrap();
    let f = fleet.to_str().unwrap();
    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 0);
    assert!(text(&o).contains("6 target(s) done"), "{}", text(&o));
    assert_eq!(
        db.one::<i64>(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
              WHERE c.relname = 'items' AND i.indisvalid AND NOT i.indisprimary"
        ),
        6
    );
    let st = status_json(f);
    assert_eq!(st["work"], "playbook");
    assert_eq!(st["state"], "complete", "{st}");
    assert_eq!(st["targets"][5]["run"]["status"], "done", "{st}");
    let o = lockstep(&["fleet", "run", f]);
    assert_exit(&o, 0);
    assert!(
        text(&o).contains("0 target(s) done, 6 already up to date"),
        "{}",
        text(&o)
    );
}
