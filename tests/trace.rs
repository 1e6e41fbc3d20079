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
use lockstep::trace::{self, Connections, Mode, Outcome, Step, Verdict};
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
            &LintOptions::default(),
            mode,
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
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);\n",
    );
    let steps = trace(&cluster, "cic", &[file], Some(&setup), Mode::Commit);
    assert_eq!(steps.len(), 2);
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
}

#[test]
fn mismatches_are_marked_with_both_sides_and_rollback_mode_leaves_nothing() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let dir = tempfile::tempdir().unwrap();
    let setup = input(dir.path(), "setup.sql", "CREATE TABLE t (id int);\n");
    // The DO block's dynamic SQL takes ACCESS EXCLUSIVE on `t`; lint cannot see inside it.
    let file = input(
        dir.path(),
        "0003_do.sql",
        "DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN b int'; END $$;\n\
         ALTER TABLE t ADD COLUMN a int;\n",
    );
    let steps = trace(
        &cluster,
        "mm",
        std::slice::from_ref(&file),
        Some(&setup),
        Mode::Commit,
    );
    assert_eq!(steps[1].verdict, Verdict::Confirmed, "{:?}", steps[1]);
    let d = &steps[0];
    assert_eq!(d.verdict, Verdict::Mismatch);
    assert_eq!(locks(d), [("t".into(), LockMode::AccessExclusive)]);
    assert!(d.predicted.as_ref().is_some_and(|p| p.locks.is_empty()));

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
