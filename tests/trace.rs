//! `lockstep trace` against a throwaway PostgreSQL: every statement of the RULES.md
//! ground-truth table traced in one migration, a `CREATE INDEX CONCURRENTLY` file watched
//! from a second connection, confirmed/mismatch marking, rollback mode, and the CLI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/ground_truth_cases.rs"]
mod cases;

use std::path::Path;

use cases::{BASE, CASES};
use lockstep::db::cluster::TempCluster;
use lockstep::files::Input;
use lockstep::lint::LintOptions;
use lockstep::sql::ir::LockMode;
use lockstep::trace::{self, Connections, Mode, Outcome, Step, TraceOptions, Verdict};
use tokio_postgres::{Client, NoTls};

async fn connect(cluster: &TempCluster, db: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(&cluster.conn_string(db), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn input(dir: &Path, name: &str, text: &str) -> Input {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    Input::File {
        display: name.to_string(),
        path,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a trace in a fresh database of `cluster`.
fn trace(
    cluster: &TempCluster,
    db: &str,
    files: &[Input],
    setup: Option<&Input>,
    mode: Mode,
) -> Vec<Step> {
    trace_with(
        cluster,
        db,
        files,
        setup,
        &LintOptions::default(),
        mode.into(),
    )
}

/// [`trace`] with lint options and trace options of its own.
fn trace_with(
    cluster: &TempCluster,
    db: &str,
    files: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    how: TraceOptions,
) -> Vec<Step> {
    rt().block_on(async {
        let admin = connect(cluster, "postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let main = connect(cluster, db).await;
        let watch = connect(cluster, db).await;
        trace::run(
            Connections {
                main: &main,
                watch: &watch,
            },
            files,
            setup,
            opts,
            how,
        )
        .await
        .expect("trace runs")
    })
}

fn step<'a>(steps: &'a [Step], sql: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.sql.trim_end_matches(';') == sql)
        .unwrap_or_else(|| panic!("no step for {sql}"))
}

fn locks(s: &Step) -> Vec<(String, LockMode)> {
    let mut v: Vec<(String, LockMode)> = s
        .locks
        .iter()
        .filter(|l| l.mode > LockMode::AccessShare)
        .map(|l| (l.table.clone(), l.mode))
        .collect();
    v.sort();
    v
}

#[test]
fn every_ground_truth_statement_is_traced_and_confirmed() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let setup = input(dir.path(), "setup.sql", BASE);
    // Each case in its own transaction, rolled back, so the cases do not disturb each other.
    let mut migration = String::new();
    for (pre, stmt) in CASES {
        migration.push_str("BEGIN;\n");
        if !pre.is_empty() {
            migration.push_str(&format!("{pre};\n"));
        }
        migration.push_str(&format!("{stmt};\nROLLBACK;\n"));
    }
    let file = input(dir.path(), "0001_ground_truth.sql", &migration);
    let steps = trace(&cluster, "gt", &[file], Some(&setup), Mode::Commit);

    let problems: Vec<String> = steps
        .iter()
        .filter(|s| !matches!(s.sql.as_str(), "BEGIN;" | "ROLLBACK;"))
        .filter(|s| s.outcome != Outcome::Ran || s.verdict != Verdict::Confirmed)
        .map(|s| {
            format!(
                "{}: {:?} {:?}\n    postgres: {:?}\n    lockstep: {:?}",
                s.sql,
                s.outcome,
                s.verdict,
                s.observed(),
                s.predicted
            )
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} statements not confirmed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    for (_, stmt) in CASES {
        step(&steps, stmt);
    }

    // Independent of the lint model: what PostgreSQL is known to do (RULES.md table).
    let s = step(&steps, "ALTER TABLE t ALTER COLUMN i TYPE bigint");
    assert_eq!(locks(s), [("t".into(), LockMode::AccessExclusive)]);
    assert!(s.rewrites.contains("t"), "{s:?}");
    let s = step(&steps, "ALTER TABLE t ALTER COLUMN a TYPE varchar(200)");
    assert_eq!(locks(s), [("t".into(), LockMode::AccessExclusive)]);
    assert!(s.rewrites.is_empty());
    let s = step(&steps, "ALTER TABLE t ALTER COLUMN note SET NOT NULL");
    assert!(s.scans.contains("t") && s.rewrites.is_empty());
    let s = step(&steps, "CREATE INDEX t_n_idx ON t (n)");
    assert_eq!(locks(s), [("t".into(), LockMode::Share)]);
    assert!(s.scans.contains("t"));
    let s = step(
        &steps,
        "ALTER TABLE child ADD CONSTRAINT child_u_fk FOREIGN KEY (u_id) REFERENCES u (id)",
    );
    assert_eq!(
        locks(s),
        [
            ("child".into(), LockMode::ShareRowExclusive),
            ("u".into(), LockMode::ShareRowExclusive)
        ]
    );
    // Its set-up (ADD … NOT VALID) ran in the same transaction and already holds ACCESS
    // EXCLUSIVE, which covers VALIDATE's SHARE UPDATE EXCLUSIVE.
    let s = step(&steps, "ALTER TABLE t VALIDATE CONSTRAINT t_i_pos");
    assert_eq!(locks(s), []);
    assert_eq!(s.already_held.get("t"), Some(&LockMode::AccessExclusive));
    assert!(s.scans.contains("t"));
    let s = step(&steps, "UPDATE solo SET v = 'w'");
    assert_eq!(locks(s), [("solo".into(), LockMode::RowExclusive)]);
    // Locks taken inside BEGIN … ROLLBACK are held until the ROLLBACK.
    assert!(s
        .locks
        .iter()
        .all(|l| l.held_ms.is_some_and(|ms| ms >= s.duration_ms)));
    assert!(steps.iter().all(|s| s.lock_timeout == "0"));
}

#[test]
fn create_index_concurrently_is_watched_from_a_second_connection() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let setup = input(
        dir.path(),
        "setup.sql",
        "CREATE TABLE orders (id int PRIMARY KEY, created_at timestamptz);\n\
         INSERT INTO orders SELECT g, now() FROM generate_series(1, 20000) g;\n",
    );
    let file = input(
        dir.path(),
        "0002_index.sql",
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);\n\
         DROP INDEX CONCURRENTLY IF EXISTS no_such_idx;\n",
    );
    let steps = trace(&cluster, "cic", &[file], Some(&setup), Mode::Commit);
    assert_eq!(steps.len(), 3);
    let s = &steps[1];
    assert_eq!(s.outcome, Outcome::Ran);
    assert!(s.outside_transaction);
    assert_eq!(s.lock_timeout, "2s");
    assert_eq!(
        locks(s),
        [("orders".into(), LockMode::ShareUpdateExclusive)],
        "{s:?}"
    );
    assert!(s.scans.contains("orders"), "{s:?}");
    assert!(s.rewrites.is_empty());
    assert_eq!(s.verdict, Verdict::Confirmed, "{s:?}");
    // Nothing to drop, no lock: not compared (a statement that skips may also have taken a
    // lock and let it go between two polls), never confirmed.
    let s = &steps[2];
    assert!(s.locks.is_empty(), "{s:?}");
    assert!(
        matches!(&s.verdict, Verdict::NotCompared(why) if why.contains("finished before")),
        "{s:?}"
    );
}

#[test]
fn verdicts_are_honest_about_failures_lines_and_transactions() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let setup = input(
        dir.path(),
        "setup.sql",
        "CREATE TABLE p (id int PRIMARY KEY);\n\
         CREATE TABLE c (id int, p_id int CONSTRAINT c_fk REFERENCES p (id));\n\
         CREATE TABLE other (id int);\n",
    );

    // A statement that fails is never confirmed, nor does it hide the verdicts before it.
    let file = input(
        dir.path(),
        "0001_fails.sql",
        "ALTER TABLE c DROP CONSTRAINT c_fk;\nSELECT 1/0;\n",
    );
    let steps = trace(&cluster, "fails", &[file], Some(&setup), Mode::Commit);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(
        matches!(&steps[1].outcome, Outcome::Failed(m) if m.contains("division by zero")),
        "{:?}",
        steps[1]
    );
    assert_ne!(steps[1].verdict, Verdict::Confirmed, "{:?}", steps[1]);
    // Dropping the foreign key locks the referenced table too: judged, and confirmed.
    assert_eq!(
        locks(&steps[0]),
        [
            ("c".into(), LockMode::AccessExclusive),
            ("p".into(), LockMode::AccessExclusive)
        ]
    );
    assert_eq!(steps[0].verdict, Verdict::Confirmed, "{:?}", steps[0]);

    // Two statements on one line keep their own predictions.
    let file = input(
        dir.path(),
        "0002_one_line.sql",
        "CREATE INDEX other_id_idx ON other (id); ALTER TABLE c ADD COLUMN note text;\n",
    );
    let steps = trace(&cluster, "one_line", &[file], Some(&setup), Mode::Commit);
    assert_eq!(steps.len(), 2, "{steps:?}");
    for s in &steps {
        assert_eq!(s.verdict, Verdict::Confirmed, "{s:?}");
    }
    assert_eq!(locks(&steps[0]), [("other".into(), LockMode::Share)]);
    assert_eq!(locks(&steps[1]), [("c".into(), LockMode::AccessExclusive)]);

    // The file's own BEGIN runs as written: SET TRANSACTION must be its first statement.
    let file = input(
        dir.path(),
        "0003_isolation.sql",
        "BEGIN;\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n\
         ALTER TABLE other ADD COLUMN v int;\nCOMMIT;\n",
    );
    let steps = trace(&cluster, "isolation", &[file], Some(&setup), Mode::Commit);
    assert!(steps.iter().all(|s| s.outcome == Outcome::Ran), "{steps:?}");
    let s = step(&steps, "ALTER TABLE other ADD COLUMN v int");
    assert_eq!(s.verdict, Verdict::Confirmed, "{s:?}");
}

#[test]
fn seeded_rows_and_the_timezone_shape_what_is_compared() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let create = input(
        dir.path(),
        "0001_create.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, \
         born timestamp);\n\
         CREATE TABLE posts (id bigserial PRIMARY KEY, account_id bigint NOT NULL, \
         body text CHECK (length(body) < 100));\n",
    );
    let alter = input(
        dir.path(),
        "0002_alter.sql",
        "ALTER TABLE posts ADD CONSTRAINT posts_account_fk FOREIGN KEY (account_id) \
         REFERENCES accounts;\n\
         ALTER TABLE accounts ALTER COLUMN born TYPE timestamptz;\n",
    );
    let utc = LintOptions {
        timezone: Some("UTC".into()),
        ..LintOptions::default()
    };
    let how = TraceOptions {
        mode: Mode::Commit,
        seed_rows: 25,
    };
    let files = [create, alter];
    let setup = input(dir.path(), "setup.sql", "SET TIME ZONE 'UTC';\n");
    let steps = trace_with(&cluster, "seeded", &files, Some(&setup), &utc, how);
    let fk = &steps[2];
    let seeded: Vec<&str> = steps[..=2]
        .iter()
        .flat_map(|s| s.seeded.iter())
        .filter(|n| n.rows == 25)
        .map(|n| n.table.as_str())
        .collect();
    assert!(
        seeded.iter().any(|t| t.contains("accounts")) && seeded.iter().any(|t| t.contains("posts")),
        "both tables hold generated rows before the foreign key: {steps:?}"
    );
    // With rows, validating the foreign key reads both tables.
    assert!(
        fk.scans.contains("posts") && fk.scans.contains("accounts"),
        "{fk:?}"
    );
    assert_eq!(fk.verdict, Verdict::Confirmed, "{fk:?}");
    let rows: i64 = rt().block_on(async {
        connect(&cluster, "seeded")
            .await
            .query_one("SELECT count(*) FROM accounts", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(
        rows, 25,
        "the generated rows stay in the throwaway database"
    );
    // The session's TimeZone is UTC: no rewrite, as predicted with the timezone setting.
    let tz = &steps[3];
    assert!(tz.rewrites.is_empty(), "{tz:?}");
    assert_eq!(tz.verdict, Verdict::Confirmed, "{tz:?}");
    // Without it, lint says it may rewrite, which does not contradict PostgreSQL either.
    let steps = trace_with(
        &cluster,
        "unknown_zone",
        &files,
        Some(&setup),
        &LintOptions::default(),
        how,
    );
    let tz = &steps[3];
    assert!(
        tz.predicted
            .as_ref()
            .is_some_and(|p| p.may_rewrite.contains("accounts")),
        "{tz:?}"
    );
    assert_eq!(tz.verdict, Verdict::Confirmed, "{tz:?}");
}

#[test]
fn mismatches_are_marked_with_both_sides_and_rollback_mode_leaves_nothing() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let setup = input(dir.path(), "setup.sql", "CREATE TABLE t (id int);\n");
    // A DO block's literal SQL is read like a statement of the file; SQL built at run time
    // is not, and such a block is not compared.
    let file = input(
        dir.path(),
        "0003_do.sql",
        "DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN b int'; END $$;\n\
         DO $$ BEGIN EXECUTE format('ALTER TABLE %I ADD COLUMN c int', 't'); END $$;\n\
         ALTER TABLE t ADD COLUMN a int;\n",
    );
    let steps = trace(
        &cluster,
        "mm",
        std::slice::from_ref(&file),
        Some(&setup),
        Mode::Commit,
    );
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[2].verdict, Verdict::Confirmed, "{:?}", steps[2]);
    assert_eq!(steps[0].verdict, Verdict::Confirmed, "{:?}", steps[0]);
    assert_eq!(locks(&steps[0]), [("t".into(), LockMode::AccessExclusive)]);
    assert!(
        matches!(&steps[1].verdict, Verdict::NotCompared(why) if why.contains("EXECUTE")),
        "{:?}",
        steps[1]
    );
    assert_eq!(locks(&steps[1]), [("t".into(), LockMode::AccessExclusive)]);

    // A mismatch shows both sides in every format.
    let mut wrong = steps[0].clone();
    wrong.predicted = Some(trace::Effect::default());
    wrong.verdict = Verdict::Mismatch;
    let steps = vec![wrong, steps[2].clone()];
    let mut text = Vec::new();
    let info = lockstep::report::trace::TraceInfo {
        target: "test".into(),
        server_major: 15,
        rolled_back: true,
    };
    lockstep::report::trace::write_text(&mut text, &info, &steps).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("  mismatch\n    lint predicted:  no locks; rewrites -; scans -\n    postgres did:    t ACCESS EXCLUSIVE; rewrites -; scans -"), "{text}");
    let mut md = Vec::new();
    lockstep::report::trace::write_markdown(&mut md, &info, &steps).unwrap();
    let md = String::from_utf8(md).unwrap();
    assert!(
        md.contains("❌ mismatch") && md.contains("✅ confirmed"),
        "{md}"
    );
    let mut js = Vec::new();
    lockstep::report::trace::write_json(&mut js, &info, &steps).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&js).unwrap();
    assert_eq!(v["statements"][0]["verdict"], "mismatch");
    assert_eq!(v["summary"]["mismatches"], 1);

    // Rollback mode: the same file plus a statement that cannot run in a transaction.
    let file = input(
        dir.path(),
        "0004_rb.sql",
        "ALTER TABLE t ADD COLUMN a int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n",
    );
    let steps = trace(&cluster, "rb", &[file], Some(&setup), Mode::Rollback);
    assert_eq!(steps.len(), 3);
    // Set-up and statements share the trace's one transaction: `t` is already locked.
    assert_eq!(steps[0].verdict, Verdict::Confirmed, "{:?}", steps[0]);
    assert!(matches!(&steps[1].outcome, Outcome::Skipped(m) if m.contains("no transaction block")));
    assert!(matches!(&steps[2].outcome, Outcome::Skipped(m) if m.contains("--commit")));
    rt().block_on(async {
        let c = connect(&cluster, "rb").await;
        let n: i64 = c
            .query_one("SELECT count(*) FROM pg_class WHERE relname = 't'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "rollback mode undid the set-up and the file");
    });
}

fn lockstep(dir: &Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("lockstep")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_traces_on_a_given_database_and_rolls_back() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    rt().block_on(async {
        let admin = connect(&cluster, "postgres").await;
        admin.batch_execute("CREATE DATABASE app").await.unwrap();
        let app = connect(&cluster, "app").await;
        app.batch_execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    input(
        dir.path(),
        "0001_note.sql",
        "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;\n",
    );
    let url = cluster.conn_string("app");
    let out = lockstep(
        dir.path(),
        &[
            "trace",
            "--no-config",
            "--database-url",
            &url,
            "--format",
            "json",
            "0001_note.sql",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["mode"], "rollback");
    assert_eq!(v["statements"][0]["verdict"], "confirmed");
    assert_eq!(v["statements"][0]["locks"][0]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(v["statements"][0]["scans"][0], "orders");
    rt().block_on(async {
        let app = connect(&cluster, "app").await;
        let nullable: String = app
            .query_one(
                "SELECT is_nullable::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nullable, "YES", "the trace rolled back");
    });
    // --commit keeps the change.
    let out = lockstep(
        dir.path(),
        &[
            "trace",
            "--no-config",
            "--database-url",
            &url,
            "--commit",
            "0001_note.sql",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("confirmed: lint predicted the same"));
    rt().block_on(async {
        let app = connect(&cluster, "app").await;
        let nullable: String = app
            .query_one(
                "SELECT is_nullable::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nullable, "NO", "--commit committed");
    });
}

#[test]
fn cli_errors_are_clear_and_never_show_the_password() {
    let dir = tempfile::tempdir().unwrap();
    input(dir.path(), "1.sql", "SELECT 1;\n");
    let out = lockstep(
        dir.path(),
        &[
            "trace",
            "--no-config",
            "--database-url",
            "postgres://app:Sekr1t-pw@127.0.0.1:1/app?connect_timeout=2",
            "1.sql",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1") && stderr.contains('1'),
        "{stderr}"
    );
    assert!(!stderr.contains("Sekr1t"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let out = lockstep(
        dir.path(),
        &["trace", "--no-config", "--setup", "nope.sql", "1.sql"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--setup nope.sql"));
}

#[test]
fn trace_refuses_what_lint_refuses_before_any_database() {
    let dir = tempfile::tempdir().unwrap();
    input(dir.path(), "1.sql", &"SELECT 1;\n".repeat(200));
    let unreachable = "postgres://app@127.0.0.1:1/app?connect_timeout=2";
    let run = |args: &[&str]| {
        let out = lockstep(dir.path(), args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Over the limit given on the command line: refused with the size, the limit and how
    // to raise it, before connecting.
    let (code, stderr) = run(&[
        "trace",
        "--no-config",
        "--max-file-size",
        "1KiB",
        "--database-url",
        unreachable,
        "1.sql",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "1.sql: 2 KiB, over the 1 KiB limit; not traced (raise it with --max-file-size"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("127.0.0.1"), "{stderr}");
    // The same limit from lockstep.toml.
    input(dir.path(), "lockstep.toml", "max_file_size = \"1KiB\"\n");
    let (code, stderr) = run(&["trace", "--database-url", unreachable, "1.sql"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("over the 1 KiB limit; not traced"),
        "{stderr}"
    );
    // The flag raises it: the file passes, and the run goes on to the (unreachable) database.
    let (code, stderr) = run(&[
        "trace",
        "--max-file-size",
        "1MiB",
        "--database-url",
        unreachable,
        "1.sql",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("limit"), "{stderr}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    // A set-up file over the limit, and a FIFO: refused without being opened.
    std::fs::remove_file(dir.path().join("lockstep.toml")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe.sql"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let (code, stderr) = run(&[
        "trace",
        "--no-config",
        "--max-file-size",
        "1KiB",
        "--setup",
        "1.sql",
        "--database-url",
        unreachable,
        "pipe.sql",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("pipe.sql: a named pipe (FIFO), not a regular file; not traced"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--setup 1.sql: 2 KiB, over the 1 KiB limit; not run"),
        "{stderr}"
    );
}
