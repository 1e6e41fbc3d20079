//! A down section that drops what its own up part created only undoes the migration:
//! `drop-table` and `drop-column` stay quiet there, and still speak for anything else.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;

use lockstep::files::{discover, exclude_set, lint_all};
use lockstep::lint::LintOptions;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// `(file name, line, rule)` of every drop finding, in lint order.
fn drops(dir: &Path) -> Vec<(String, usize, &'static str)> {
    let (inputs, errors) = discover(
        &[dir.to_path_buf()],
        dir,
        dir,
        &exclude_set(&[]).expect("globs"),
        None,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let mut out = Vec::new();
    for r in lint_all(&inputs, &LintOptions::default()) {
        let rel = Path::new(&r.path)
            .strip_prefix(dir)
            .expect("relative")
            .to_string_lossy()
            .replace('\\', "/");
        for d in r.diagnostics {
            if d.rule == "drop-table" || d.rule == "drop-column" {
                out.push((rel.clone(), d.line, d.rule));
            }
        }
    }
    out
}

const EXISTING: &str = "CREATE TABLE users (id int PRIMARY KEY, name text, legacy text);\n\
                        CREATE TABLE audit (id int);\n";

/// The down part undoes: drops the table and the column its up part added. It also drops
/// a column and a table that existed before: those are reported.
const DOWN: &str = "DROP TABLE posts;\nALTER TABLE users DROP COLUMN nickname;\nALTER TABLE users DROP COLUMN legacy;\nDROP TABLE audit;\n";
const UP: &str = "CREATE TABLE posts (id int PRIMARY KEY, user_id int);\nALTER TABLE users ADD COLUMN nickname text;\n";

fn expected(file: &str) -> Vec<(String, usize, &'static str)> {
    vec![
        (file.to_string(), 3, "drop-column"),
        (file.to_string(), 4, "drop-table"),
    ]
}

#[test]
fn diesel_down_sql_undoing_its_up_sql() {
    let d = tempfile::tempdir().expect("tmp");
    write(d.path(), "migrations/00000000000000_init/up.sql", EXISTING);
    write(d.path(), "migrations/2024-01-02-000000_posts/up.sql", UP);
    write(
        d.path(),
        "migrations/2024-01-02-000000_posts/down.sql",
        DOWN,
    );
    assert_eq!(
        drops(d.path()),
        expected("migrations/2024-01-02-000000_posts/down.sql")
    );
}

#[test]
fn golang_migrate_down_file_undoing_its_up_file() {
    let d = tempfile::tempdir().expect("tmp");
    write(d.path(), "db/1_init.up.sql", EXISTING);
    write(d.path(), "db/2_posts.up.sql", UP);
    write(d.path(), "db/2_posts.down.sql", DOWN);
    // Another migration's down file drops what migration 2 created: not its own undo.
    write(d.path(), "db/3_other.up.sql", "SELECT 1;\n");
    write(d.path(), "db/3_other.down.sql", "DROP TABLE posts;\n");
    let mut want = expected("db/2_posts.down.sql");
    want.push(("db/3_other.down.sql".into(), 1, "drop-table"));
    assert_eq!(drops(d.path()), want);
}

#[test]
fn goose_down_section_undoing_its_up_section() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "m/00001_init.sql",
        &format!("-- +goose Up\n{EXISTING}"),
    );
    write(
        d.path(),
        "m/00002_posts.sql",
        &format!("-- +goose Up\n{UP}-- +goose Down\n{DOWN}"),
    );
    let got = drops(d.path());
    // The down part starts at line 5 of the file.
    let want: Vec<(String, usize, &str)> = expected("m/00002_posts.sql")
        .into_iter()
        .map(|(f, l, r)| (f, l + 4, r))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn liquibase_rollback_undoes_its_own_changeset_only() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "changelog.sql",
        "--liquibase formatted sql\n\
         --changeset a:1\n\
         CREATE TABLE posts (id int);\n\
         --rollback DROP TABLE posts;\n\
         --changeset a:2\n\
         CREATE TABLE tags (id int);\n\
         --rollback DROP TABLE posts;\n",
    );
    assert_eq!(
        drops(d.path()),
        [("changelog.sql".to_string(), 7, "drop-table")]
    );
}

#[test]
fn a_down_file_linted_without_its_up_file_is_still_reported() {
    let d = tempfile::tempdir().expect("tmp");
    write(d.path(), "db/2_posts.down.sql", "DROP TABLE posts;\n");
    assert_eq!(
        drops(d.path()),
        [("db/2_posts.down.sql".to_string(), 1, "drop-table")]
    );
}
