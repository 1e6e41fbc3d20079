//! The query check of `lockstep plan` and `lockstep run` against a real PostgreSQL with
//! pg_stat_statements: a workload runs statements a partitioning breaks (and some it does
//! not), the plan and the run name exactly the ones that break; after the swap each of them
//! is run again on the partitioned table, to hold the warnings to what PostgreSQL does.
//! Without the extension, with it not loaded, and for a role that may not read other roles'
//! statements, the plan says why it could not check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/db.rs"]
mod db;

use std::process::{Command, Stdio};

use db::{assert_exit, cluster, text, Db};
use lockstep::db::cluster::{find_bin_dir, TempCluster};

fn stats_cluster() -> TempCluster {
    TempCluster::builder()
        .setting("shared_preload_libraries", "pg_stat_statements")
        .start()
        .expect("a throwaway PostgreSQL must start for this test")
}

const PARTITION: &str = "kind = \"partition\"\ntable = \"events\"\n[partition]\ncolumn = \"recorded_at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n[backfill]\nworkers = 1\n";

/// `events` with 1,000 rows over three months.
fn events(db: &Db) {
    db.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, recorded_at timestamptz NOT NULL, payload text);
         INSERT INTO events SELECT g, '2024-01-01'::timestamptz + (g % 90) * interval '1 day', 'p' || g
           FROM generate_series(1, 1000) g;
         ANALYZE events",
    );
}

/// The statements of the workload that the partitioning breaks, as pg_stat_statements
/// normalizes them, each with the start of its warning.
const BREAKS: &[(&str, &str)] = &[
    (
        "`INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload` (5 calls) breaks: ",
        "`ON CONFLICT (id)` relies on the primary key events_pkey (id), which becomes (id, recorded_at): PostgreSQL refuses it (\"there is no unique or exclusion constraint matching the ON CONFLICT specification\"); write `ON CONFLICT (id, recorded_at)`",
    ),
    (
        "`INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET recorded_at = EXCLUDED.recorded_at` (1 call) breaks: ",
        "`DO UPDATE SET recorded_at = …` fails when the new value belongs in another partition (\"invalid ON UPDATE specification\")",
    ),
    (
        "`INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT ON CONSTRAINT events_pkey DO NOTHING` (1 call) changes meaning: ",
        "`ON CONFLICT ON CONSTRAINT events_pkey` still works, but the constraint becomes (id, recorded_at) instead of (id)",
    ),
    (
        "`INSERT INTO events (id, recorded_at, payload) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING` (1 call) changes meaning: ",
        "`ON CONFLICT DO NOTHING` skips a row that conflicts with any unique key; after the change a row that repeats (id) with another recorded_at is inserted (the key becomes (id, recorded_at))",
    ),
    (
        "`SELECT count(*) FROM ONLY events` (1 call) breaks: ",
        "with `ONLY` it sees no row once the table is partitioned",
    ),
    (
        "`UPDATE events SET payload = $1 WHERE ctid = $2` (1 call) breaks: ",
        "a `ctid` names a row only within one partition",
    ),
    (
        "`TRUNCATE ONLY events` (1 call) breaks: ",
        "fails on a partitioned table (\"cannot truncate only a partitioned table\")",
    ),
    (
        "`COPY events TO STDOUT` (1 call) breaks: ",
        "fails on a partitioned table (\"cannot copy from partitioned table\")",
    ),
    (
        "`CREATE INDEX CONCURRENTLY events_payload ON events (payload)` (1 call) breaks: ",
        "fails on a partitioned table (\"cannot create index on partitioned table … concurrently\")",
    ),
    (
        "`CLUSTER events` (1 call) breaks: ",
        "fails on the new table, which has no clustered index (\"there is no previously clustered index\")",
    ),
    (
        "`ALTER TABLE events CLUSTER ON events_pkey` (1 call) breaks: ",
        "fails on a partitioned table (\"cannot mark index clustered in partitioned table\")",
    ),
];

/// Runs the workload: the statements of [`BREAKS`] and some a partitioning does not break.
fn workload(db: &Db, cluster: &TempCluster, name: &str) {
    for i in 0..5 {
        db.exec(&format!(
            "INSERT INTO events VALUES ({}, '2024-02-0{}', 'u') ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload",
            2000 + i,
            i + 1
        ));
    }
    for i in 0..3 {
        db.exec(&format!(
            "INSERT INTO events VALUES ({}, '2024-02-10', 'n')",
            3000 + i
        ));
    }
    // One statement at a time: CREATE INDEX CONCURRENTLY and CLUSTER refuse a transaction.
    for sql in [
        "INSERT INTO events VALUES (1, '2024-01-02', 'm') ON CONFLICT (id) DO UPDATE SET recorded_at = EXCLUDED.recorded_at",
        "INSERT INTO events VALUES (2, '2024-01-03', 'c') ON CONFLICT ON CONSTRAINT events_pkey DO NOTHING",
        "INSERT INTO events (id, recorded_at, payload) VALUES (4000, '2024-02-11', 'ok') ON CONFLICT DO NOTHING",
        "SELECT count(*) FROM ONLY events",
        "SELECT * FROM events WHERE id = 1",
        "UPDATE events SET payload = 'c' WHERE ctid = '(0,1)'",
        "BEGIN; TRUNCATE ONLY events; ROLLBACK",
        "CREATE INDEX CONCURRENTLY events_payload ON events (payload)",
        "CLUSTER events USING events_pkey",
        "CLUSTER events",
        "ALTER TABLE events CLUSTER ON events_pkey",
    ] {
        db.exec(sql);
    }
    let out = psql(cluster, name, "COPY events TO STDOUT");
    assert!(out.status.success(), "{}", text(&out));
}

/// `psql -c SQL` on the cluster's database `db`.
fn psql(cluster: &TempCluster, db: &str, sql: &str) -> std::process::Output {
    let bin = find_bin_dir().expect("PostgreSQL binaries");
    Command::new(bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(cluster.conn_string(db))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The error of `sql` on the test's connection.
fn error_of(db: &Db, sql: &str) -> String {
    match db.rt.block_on(db.client.batch_execute(sql)) {
        Ok(()) => panic!("{sql} worked"),
        Err(e) => e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string()),
    }
}

#[test]
fn plan_and_run_name_the_statements_a_partitioning_breaks_and_postgres_agrees() {
    let cluster = stats_cluster();
    let db = Db::create(&cluster, "upserts");
    db.exec("CREATE EXTENSION pg_stat_statements");
    events(&db);
    workload(&db, &cluster, "upserts");
    let pb = db.playbook("pb.toml", PARTITION);

    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    for (query, why) in BREAKS {
        assert!(
            out.contains(&format!("warning: {query}{why}")),
            "no warning {query}{why} in:\n{out}"
        );
    }
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    // Two for the upsert that also moves rows; nothing for the statements that keep working
    // (an INSERT without a column list included: the columns keep their order).
    assert_eq!(warnings.len(), BREAKS.len() + 1, "{out}");
    for fine in [
        "INSERT INTO events VALUES ($1, $2, $3)`",
        "WHERE id = $1",
        "(id, recorded_at, payload)` (1 call) breaks",
        "USING events_pkey",
    ] {
        assert!(
            !warnings.iter().any(|w| w.contains(fine)),
            "{fine} warned:\n{out}"
        );
    }
    assert!(
        out.contains("11 of them break or change meaning after the change (warnings below)"),
        "{out}"
    );

    // The run warns the same way at its start, and goes on.
    let run = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&run, 0);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!("warning: {}{}", BREAKS[0].0, BREAKS[0].1)),
        "{}",
        text(&run)
    );

    // PostgreSQL agrees, on the table the swap left.
    let conflict = error_of(
        &db,
        "INSERT INTO events VALUES (2000, '2024-02-01', 'v') ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload",
    );
    assert_eq!(
        conflict,
        "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    );
    // What the warning says to write instead works.
    db.exec("INSERT INTO events VALUES (2000, '2024-02-01', 'v') ON CONFLICT (id, recorded_at) DO UPDATE SET payload = EXCLUDED.payload");
    assert_eq!(
        db.one::<String>("SELECT payload FROM events WHERE id = 2000"),
        "v"
    );
    assert_eq!(
        error_of(&db, "INSERT INTO events VALUES (2000, '2024-02-01', 'w') ON CONFLICT (id, recorded_at) DO UPDATE SET recorded_at = '2024-03-15'"),
        "invalid ON UPDATE specification"
    );
    // The constraint conflicts on (id, recorded_at) now: a repeated id is a new row.
    db.exec("INSERT INTO events VALUES (2, '2024-03-20', 'c') ON CONFLICT ON CONSTRAINT events_pkey DO NOTHING");
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events WHERE id = 2"), 2);
    // Without a target, the insert skipped a repeated id; now only a repeated (id, recorded_at).
    db.exec("INSERT INTO events (id, recorded_at, payload) VALUES (4000, '2024-03-11', 'dup') ON CONFLICT DO NOTHING");
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM events WHERE id = 4000"),
        2
    );
    assert_eq!(db.one::<i64>("SELECT count(*) FROM ONLY events"), 0);
    assert!(db.one::<i64>("SELECT count(*) FROM events") > 1000);
    let updated = db
        .rt
        .block_on(
            db.client
                .execute("UPDATE events SET payload = 'c' WHERE ctid = '(0,1)'", &[]),
        )
        .unwrap();
    assert!(updated >= 2, "ctid (0,1) matched {updated} rows");
    assert_eq!(
        error_of(&db, "TRUNCATE ONLY events"),
        "cannot truncate only a partitioned table"
    );
    assert!(error_of(
        &db,
        "CREATE INDEX CONCURRENTLY events_payload2 ON events (payload)"
    )
    .starts_with("cannot create index on partitioned table \"events\" concurrently"));
    // PostgreSQL 14 cannot cluster a partitioned table at all; 15 and later only with USING.
    let v: i32 = db.one("SELECT current_setting('server_version_num')::int");
    assert_eq!(
        error_of(&db, "CLUSTER events"),
        if v >= 150_000 {
            "there is no previously clustered index for table \"events\""
        } else {
            "cannot cluster a partitioned table"
        }
    );
    assert_eq!(
        error_of(&db, "ALTER TABLE events CLUSTER ON events_pkey"),
        "cannot mark index clustered in partitioned table"
    );
    let copy = psql(&cluster, "upserts", "COPY events TO STDOUT");
    assert!(
        !copy.status.success()
            && String::from_utf8_lossy(&copy.stderr)
                .contains("cannot copy from partitioned table \"events\""),
        "{}",
        text(&copy)
    );
    // And the INSERT without a column list still works.
    db.exec("INSERT INTO events VALUES (5000, '2024-02-10', 'n')");
}

/// A `drop-index` playbook for `users_email`, and what `lockstep plan` prints for it.
fn plan_dropping_users_email(db: &Db) -> (std::path::PathBuf, String) {
    let pb = db.playbook(
        "pb.toml",
        "kind = \"drop-index\"\ntable = \"users\"\n[drop_index]\nname = \"users_email\"\n",
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    (pb, out)
}

#[test]
fn a_dropped_unique_index_breaks_the_upserts_that_rely_on_it() {
    let cluster = stats_cluster();
    let db = Db::create(&cluster, "drop");
    db.exec(
        "CREATE EXTENSION pg_stat_statements;
         CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text);
         CREATE UNIQUE INDEX users_email ON users (email);
         INSERT INTO users VALUES (1, 'a@x', 'a') ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name;
         INSERT INTO users VALUES (2, 'b@x', 'b') ON CONFLICT (id) DO NOTHING;",
    );
    let (pb, out) = plan_dropping_users_email(&db);
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        ["warning: `INSERT INTO users VALUES ($1, $2, $3) ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name` (1 call) breaks: `ON CONFLICT (email)` relies on the unique key users_email (email), which the change removes: PostgreSQL refuses it (\"there is no unique or exclusion constraint matching the ON CONFLICT specification\"); keep a unique key on (email), or change the statement"],
        "{out}"
    );
    let run = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&run, 0);
    assert_eq!(
        error_of(&db, "INSERT INTO users VALUES (1, 'a@x', 'a') ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name"),
        "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    );
}

#[test]
fn an_upsert_on_an_expression_index_and_an_untargeted_one_are_named_when_it_goes() {
    let cluster = stats_cluster();
    let db = Db::create(&cluster, "lower");
    // PostgreSQL prints the index as `lower((email)::text)`; the application writes
    // `LOWER(email)`.
    db.exec(
        "CREATE EXTENSION pg_stat_statements;
         CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200) NOT NULL);
         CREATE UNIQUE INDEX users_email ON users (lower(email));
         INSERT INTO users VALUES (1, 'A@x') ON CONFLICT (LOWER(email)) DO UPDATE SET id = EXCLUDED.id;
         INSERT INTO users VALUES (2, 'b@x') ON CONFLICT DO NOTHING;",
    );
    let (pb, out) = plan_dropping_users_email(&db);
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        [
            "warning: `INSERT INTO users VALUES ($1, $2) ON CONFLICT (LOWER(email)) DO UPDATE SET id = EXCLUDED.id` (1 call) breaks: `ON CONFLICT (LOWER(email))` relies on the unique key users_email (lower((email)::text)), which the change removes: PostgreSQL refuses it (\"there is no unique or exclusion constraint matching the ON CONFLICT specification\"); keep a unique key on (LOWER(email)), or change the statement",
            "warning: `INSERT INTO users VALUES ($1, $2) ON CONFLICT DO NOTHING` (1 call) changes meaning: `ON CONFLICT DO NOTHING` skips a row that conflicts with any unique key; after the change a row that repeats (lower((email)::text)) is inserted (the unique key users_email (lower((email)::text)) goes); make sure the application never repeats those values, or keep the key as it is",
        ],
        "{out}"
    );
    let run = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&run, 0);
    // PostgreSQL agrees: the upsert fails, and the untargeted insert adds a repeated address.
    assert_eq!(
        error_of(&db, "INSERT INTO users VALUES (1, 'a@x') ON CONFLICT (LOWER(email)) DO UPDATE SET id = EXCLUDED.id"),
        "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    );
    db.exec("INSERT INTO users VALUES (3, 'B@X') ON CONFLICT DO NOTHING");
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM users WHERE lower(email) = 'b@x'"),
        2
    );
}

#[test]
fn without_pg_stat_statements_the_plan_says_it_could_not_check() {
    let cluster = cluster();
    let db = Db::create(&cluster, "plain");
    events(&db);
    let pb = db.playbook("pb.toml", PARTITION);
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(
        out.contains("note: could not check queries: pg_stat_statements is not installed in this database (CREATE EXTENSION pg_stat_statements; needs shared_preload_libraries)"),
        "{out}"
    );
    assert!(!out.contains("warning: "), "{out}");
    // Installed, but the server was not started with it.
    db.exec("CREATE EXTENSION pg_stat_statements");
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(
        out.contains("note: could not check queries: pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and restart the server"),
        "{out}"
    );
    // A change that breaks no statement reads none, and says nothing about them.
    let pb = db.playbook(
        "idx.toml",
        "kind = \"index\"\ntable = \"events\"\n[index]\ncolumns = [\"payload\"]\n",
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    assert!(
        !String::from_utf8_lossy(&plan.stdout).contains("queries"),
        "{}",
        text(&plan)
    );
}

#[test]
fn a_role_that_may_not_read_other_roles_statements_is_told_so() {
    let cluster = stats_cluster();
    let db = Db::create(&cluster, "roles");
    db.exec(
        "CREATE EXTENSION pg_stat_statements;
         CREATE ROLE planner LOGIN;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO planner;",
    );
    events(&db);
    db.exec("GRANT SELECT ON events TO planner");
    workload(&db, &cluster, "roles");
    let pb = db.playbook("pb.toml", PARTITION);
    let as_planner = |pb: &std::path::Path| {
        Command::new(db::BIN)
            .args(["plan", pb.to_str().unwrap(), "--database-url"])
            .arg(db.url.replace("user=postgres", "user=planner"))
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let plan = as_planner(&pb);
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        out.contains("statements of other roles (`<insufficient privilege>`): grant this role pg_read_all_stats (`GRANT pg_read_all_stats TO …`) to check them too"),
        "{}",
        text(&plan)
    );
    assert!(!out.contains("warning: "), "{out}");
    db.exec("GRANT pg_read_all_stats TO planner");
    let plan = as_planner(&pb);
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        out.contains(&format!("warning: {}{}", BREAKS[0].0, BREAKS[0].1)),
        "{}",
        text(&plan)
    );
    assert!(!out.contains("<insufficient privilege>"), "{out}");
}
