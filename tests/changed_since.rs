//! `lint --changed-since REF` against temporary git repositories, and the framework flags.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::fs;
use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;
use tempfile::TempDir;

fn git(dir: &Path, args: &[&str]) {
    let out = Std::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lint(dir: &Path, args: &[&str]) -> Out {
    let out = Command::cargo_bin("lockstep")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["lint", "--no-config"])
        .args(args)
        .output()
        .unwrap();
    let o = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

/// A repository with two committed migrations on `main`, then a branch `feature`.
fn repo() -> TempDir {
    let d = tempfile::tempdir().unwrap();
    git(d.path(), &["init", "-q", "-b", "main"]);
    write(
        d.path(),
        "migrations/0001_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);\n",
    );
    // Already merged, and full of findings: must not be reported on the branch.
    write(
        d.path(),
        "migrations/0002_old_index.sql",
        "CREATE INDEX orders_note_idx ON orders (note);\n",
    );
    git(d.path(), &["add", "."]);
    git(d.path(), &["commit", "-q", "-m", "base"]);
    git(d.path(), &["checkout", "-q", "-b", "feature"]);
    d
}

fn locations(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> "))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn reports_committed_staged_and_untracked_changes_only() {
    let d = repo();
    // Committed on the branch.
    write(
        d.path(),
        "migrations/0003_committed.sql",
        "SET lock_timeout = '1s';\nALTER TABLE orders ADD COLUMN a int;\nCREATE INDEX orders_a_idx ON orders (a);\n",
    );
    git(d.path(), &["add", "."]);
    git(d.path(), &["commit", "-q", "-m", "three"]);
    // Staged, not committed.
    write(
        d.path(),
        "migrations/0004_staged.sql",
        "SET lock_timeout = '1s';\nCREATE INDEX orders_id_idx ON orders (id);\n",
    );
    git(d.path(), &["add", "migrations/0004_staged.sql"]);
    // Untracked.
    write(
        d.path(),
        "migrations/0005 untracked.sql",
        "SET lock_timeout = '1s';\nCREATE INDEX orders_id2_idx ON orders (id);\n",
    );
    let o = lint(d.path(), &["--changed-since", "main", "migrations"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        locations(&o.stdout),
        vec![
            "migrations/0003_committed.sql:3:1",
            "migrations/0004_staged.sql:2:1",
            "migrations/0005 untracked.sql:2:1",
        ]
    );
    assert!(o.stdout.contains("checked 3 files"), "{}", o.stdout);
    assert!(
        o.stderr.contains(
            "3 of 5 migration files changed since main; 2 earlier ones read for schema replay"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn earlier_files_still_feed_schema_replay() {
    let d = repo();
    // `orders` exists (created in 0001), so this index is on an existing table and flagged;
    // a table created in this same file would not be.
    write(
        d.path(),
        "migrations/0003_new.sql",
        "SET lock_timeout = '1s';\nCREATE TABLE items (id int);\nCREATE INDEX items_id_idx ON items (id);\nCREATE INDEX orders_note2_idx ON orders (note);\n",
    );
    let o = lint(d.path(), &["--changed-since", "main", "migrations"]);
    assert_eq!(locations(&o.stdout), vec!["migrations/0003_new.sql:4:1"]);
}

#[test]
fn nothing_changed_gives_empty_reports_and_exit_0() {
    let d = repo();
    let o = lint(
        d.path(),
        &[
            "--changed-since",
            "main",
            "--output",
            "gitlab=cq.json",
            "migrations",
        ],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("checked 0 files"), "{}", o.stdout);
    assert!(o
        .stderr
        .contains("0 of 2 migration files changed since main"));
    let cq = fs::read_to_string(d.path().join("cq.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&cq).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn modified_and_renamed_files_count_as_changed_deleted_do_not() {
    let d = repo();
    write(
        d.path(),
        "migrations/0002_old_index.sql",
        "CREATE INDEX orders_note_idx ON orders (note);\n-- reviewed\n",
    );
    git(
        d.path(),
        &[
            "mv",
            "migrations/0001_orders.sql",
            "migrations/0001_orders_renamed.sql",
        ],
    );
    let o = lint(d.path(), &["--changed-since", "main", "migrations"]);
    assert!(o.stdout.contains("checked 2 files"), "{}", o.stdout);
    assert!(locations(&o.stdout)
        .iter()
        .all(|l| l.starts_with("migrations/0002_old_index.sql:")));
}

#[test]
fn works_from_a_subdirectory_and_with_a_commit_sha() {
    let d = repo();
    write(
        d.path(),
        "migrations/0003_x.sql",
        "CREATE INDEX orders_x_idx ON orders (note);\n",
    );
    let sha = Std::new("git")
        .current_dir(d.path())
        .args(["rev-parse", "main"])
        .output()
        .unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap();
    let o = lint(
        &d.path().join("migrations"),
        &["--changed-since", sha.trim(), "."],
    );
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("checked 1 file,"), "{}", o.stdout);
}

#[test]
fn unknown_ref_and_no_repository_are_clear_errors() {
    let d = repo();
    let o = lint(
        d.path(),
        &["--changed-since", "no-such-branch", "migrations"],
    );
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("--changed-since no-such-branch: unknown revision `no-such-branch`"),
        "{}",
        o.stderr
    );
    let plain = tempfile::tempdir().unwrap();
    write(plain.path(), "m/1.sql", "SELECT 1;\n");
    let o = lint(plain.path(), &["--changed-since", "main", "m"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("is not inside a git repository"),
        "{}",
        o.stderr
    );
}

#[test]
fn framework_flag_and_config() {
    let d = tempfile::tempdir().unwrap();
    // A goose-style file with a concurrent index and no NO TRANSACTION marker.
    write(
        d.path(),
        "m/001_idx.sql",
        "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\n",
    );
    let auto = lint(d.path(), &["--format", "json", "m"]);
    let v: serde_json::Value = serde_json::from_str(&auto.stdout).unwrap();
    assert_eq!(v["files"][0]["framework"], "goose");
    assert_eq!(v["files"][0]["sections"][1]["direction"], "down");
    assert_eq!(v["files"][0]["sections"][1]["transaction"], true);
    let rules: Vec<&str> = v["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .filter(|r| *r == "concurrently-in-transaction")
        .collect();
    assert_eq!(rules.len(), 2, "up and down both flagged");

    let no_down = lint(d.path(), &["--format", "json", "--lint-down=false", "m"]);
    let v: serde_json::Value = serde_json::from_str(&no_down.stdout).unwrap();
    assert_eq!(v["files"][0]["sections"][1]["linted"], false);
    assert_eq!(
        v["files"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "concurrently-in-transaction")
            .count(),
        1
    );

    let plain = lint(d.path(), &["--framework", "none", "--format", "json", "m"]);
    let v: serde_json::Value = serde_json::from_str(&plain.stdout).unwrap();
    assert_eq!(v["files"][0]["framework"], "none");
    assert!(v["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] != "concurrently-in-transaction"));

    let bad = lint(d.path(), &["--framework", "gose", "m"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("--framework: unknown framework `gose` (did you mean `goose`?)"),
        "{}",
        bad.stderr
    );

    write(d.path(), "lockstep.toml", "framework = \"flyway\"\n");
    let cfg = Command::cargo_bin("lockstep")
        .unwrap()
        .current_dir(d.path())
        .args(["lint", "--format", "json", "m"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
    assert_eq!(v["files"][0]["framework"], "flyway");
    write(d.path(), "lockstep.toml", "framework = \"rails\"\n");
    let cfg = Command::cargo_bin("lockstep")
        .unwrap()
        .current_dir(d.path())
        .args(["lint", "m"])
        .output()
        .unwrap();
    assert_eq!(cfg.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cfg.stderr).contains("framework"));
}

#[test]
fn explicit_format_goes_to_stdout_when_every_output_names_its_format() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "m/1.sql", "CREATE INDEX i ON t (a);\n");
    let o = lint(
        d.path(),
        &["--format", "github", "--output", "sarif=r.sarif", "m"],
    );
    assert!(
        o.stdout.starts_with("::error file=m/1.sql,"),
        "{}",
        o.stdout
    );
    assert!(d.path().join("r.sarif").is_file());
    // Without a format on the --output, --format is the file's and stdout shows text.
    let o = lint(
        d.path(),
        &["--format", "sarif", "--output", "r2.sarif", "m"],
    );
    assert!(o.stdout.contains("--> m/1.sql:1:1"), "{}", o.stdout);
    let sarif = fs::read_to_string(d.path().join("r2.sarif")).unwrap();
    assert!(sarif.contains("\"version\": \"2.1.0\""));
}

#[test]
fn the_repository_is_found_from_the_linted_paths() {
    let d = repo();
    write(
        d.path(),
        "migrations/0003_new_index.sql",
        "CREATE INDEX orders_id_idx ON orders (id);\n",
    );
    // Run from outside any repository, naming the migrations by absolute path.
    let outside = tempfile::tempdir().unwrap();
    let migrations = d.path().join("migrations");
    let o = lint(
        outside.path(),
        &["--changed-since", "main", &migrations.to_string_lossy()],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let found = locations(&o.stdout);
    assert!(!found.is_empty(), "{}", o.stdout);
    assert!(
        found.iter().all(|l| l.contains("0003_new_index.sql")),
        "{found:?}"
    );
    // A single file names its repository too.
    let file = migrations.join("0003_new_index.sql");
    let o = lint(
        outside.path(),
        &["--changed-since", "main", &file.to_string_lossy()],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("1 of 1 migration file changed since main"),
        "{}",
        o.stderr
    );
}
