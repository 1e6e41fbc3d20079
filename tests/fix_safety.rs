//! `lockstep lint --fix` never writes a file its migration tool cannot run: golang-migrate
//! and Prisma run a file of several statements in one transaction, Flyway refuses a script
//! that mixes `CREATE INDEX CONCURRENTLY` with other statements. Where the safe form needs
//! two migrations, the finding says so instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).expect("read")
}

struct Run {
    stdout: String,
    stderr: String,
}

fn lint(dir: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("lockstep")
        .expect("binary")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["lint", "--no-config"])
        .args(args)
        .output()
        .expect("run");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `(rule, line, help)` of every finding in `rel`.
fn findings(dir: &Path, rel: &str) -> Vec<(String, u64, String)> {
    let r = lint(dir, &["--format", "json", rel]);
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    v["files"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().expect("rule").to_string(),
                f["line"].as_u64().expect("line"),
                f["help"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn rules(dir: &Path, rel: &str) -> Vec<String> {
    findings(dir, rel).into_iter().map(|f| f.0).collect()
}

/// A single-statement index build in golang-migrate, Prisma and Flyway: `CONCURRENTLY` is
/// added, and no `SET lock_timeout` beside it (the file would then run in a transaction, or
/// Flyway would refuse it).
#[test]
fn a_lone_index_build_stays_alone() {
    let d = tempfile::tempdir().expect("tmp");
    let files = [
        "db/20240101000000_index.up.sql",
        "prisma/migrations/20240101000000_index/migration.sql",
        "sql/V2__index.sql",
    ];
    write(
        d.path(),
        "prisma/migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    for f in files {
        write(d.path(), f, "-- CreateIndex\nCREATE INDEX i ON t (a);\n");
    }
    let r = lint(d.path(), &["--fix", "db", "prisma", "sql"]);
    assert!(
        r.stderr.contains("fixed 3 findings in 3 files"),
        "{}",
        r.stderr
    );
    for f in files {
        assert_eq!(
            read(d.path(), f),
            "-- CreateIndex\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
            "{f}"
        );
        assert!(
            rules(d.path(), f).is_empty(),
            "{f}: {:?}",
            rules(d.path(), f)
        );
    }
}

/// Where a file runs as written, the fix adds both.
#[test]
fn goose_without_a_transaction_gets_both_fixes() {
    let d = tempfile::tempdir().expect("tmp");
    let f = "m/00002_index.sql";
    write(
        d.path(),
        f,
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX i ON t (a);\n",
    );
    lint(d.path(), &["--fix", "m"]);
    assert_eq!(
        read(d.path(), f),
        "-- +goose NO TRANSACTION\n-- +goose Up\nSET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
    );
}

/// A unique constraint's safe form is two statements, one of them `CONCURRENTLY`: for
/// golang-migrate that is two migrations. No rewrite; the help says so.
#[test]
fn a_unique_constraint_needs_two_golang_migrate_migrations() {
    let d = tempfile::tempdir().expect("tmp");
    let f = "db/3_unique.up.sql";
    let src = "ALTER TABLE orders ADD CONSTRAINT orders_code_key UNIQUE (code);\n";
    write(d.path(), f, src);
    let before = findings(d.path(), f);
    let unique = before
        .iter()
        .find(|x| x.0 == "add-unique-constraint-locking")
        .expect("finding");
    assert!(
        unique.2.contains("in two migrations: `CREATE UNIQUE INDEX CONCURRENTLY orders_code_key ON orders (code)` alone in the first"),
        "{}",
        unique.2
    );
    let diff = lint(d.path(), &["--diff", f]);
    assert!(!diff.stdout.contains("USING INDEX"), "{}", diff.stdout);
    lint(d.path(), &["--fix", f]);
    let fixed = read(d.path(), f);
    assert!(!fixed.contains("CONCURRENTLY"), "{fixed}");
    assert!(!rules(d.path(), f).contains(&"concurrently-in-transaction".to_string()));
}

/// Prisma writes `BEGIN … COMMIT` into some migrations; a `DROP INDEX` after the `COMMIT`
/// still runs in the script's implicit transaction.
#[test]
fn prisma_statements_after_commit_are_still_in_the_script_transaction() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    let f = "migrations/20230606122534_model/migration.sql";
    let src = "BEGIN;\nALTER TYPE \"Reason\" RENAME TO \"Reason_old\";\nCOMMIT;\n\n-- DropIndex\nDROP INDEX \"Run_number_key\";\n";
    write(d.path(), f, src);
    let before = findings(d.path(), f);
    let drop = before
        .iter()
        .find(|x| x.0 == "drop-index-non-concurrently")
        .expect("finding");
    assert!(
        drop.2
            .contains("alone in its own migration file (Prisma sends a file"),
        "{}",
        drop.2
    );
    let r = lint(d.path(), &["--fix", f]);
    let fixed = read(d.path(), f);
    assert!(!fixed.contains("CONCURRENTLY"), "{fixed}\n{}", r.stderr);
    // The same, already concurrent: a finding of its own.
    write(
        d.path(),
        f,
        &src.replace("DROP INDEX", "DROP INDEX CONCURRENTLY"),
    );
    assert!(rules(d.path(), f).contains(&"concurrently-in-transaction".to_string()));
}

/// A wrapped file (diesel) never gets `CONCURRENTLY`; `SET lock_timeout` is fine there.
#[test]
fn diesel_wrapped_files_get_no_concurrently() {
    let d = tempfile::tempdir().expect("tmp");
    let f = "migrations/2024-01-01-000000_index/up.sql";
    write(d.path(), f, "CREATE INDEX i ON t (a);\n");
    lint(d.path(), &["--fix", "migrations"]);
    assert_eq!(
        read(d.path(), f),
        "SET lock_timeout = '2s';\nCREATE INDEX i ON t (a);\n"
    );
}
