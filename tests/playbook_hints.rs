//! Findings with a safe online alternative name the playbook kind that does it
//! (`lockstep plan`/`lockstep run`): in the help, in the rule's docs, and in `lint --diff`
//! before each file's diff, where `patch` and `git apply` skip text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use lockstep::lint::fix::{apply, unified_diff};
use lockstep::lint::rules::{self, RULES};
use lockstep::lint::{lint_source, Diagnostic, LintOptions, Severity};

/// Every rule on (some, like `prefer-bigint-id`, are off by default), at `pg_version`.
fn all_rules(pg_version: u32) -> LintOptions {
    LintOptions {
        pg_version,
        severities: RULES
            .iter()
            .map(|r| r.default_severity.or(Some(Severity::Warning)))
            .collect(),
        ..LintOptions::default()
    }
}

fn findings(rule: &str, sql: &str, pg_version: u32) -> Vec<Diagnostic> {
    lint_source(sql, &all_rules(pg_version))
        .diagnostics
        .into_iter()
        .filter(|d| d.rule == rule)
        .collect()
}

/// `(rule, SQL, target version, playbook kind its finding must name)`.
const NAMED: &[(&str, &str, u32, &str)] = &[
    (
        "create-index-non-concurrently",
        "CREATE INDEX orders_a_idx ON orders (a);",
        15,
        "index",
    ),
    (
        "create-index-non-concurrently",
        "CREATE UNIQUE INDEX orders_a_key ON orders (a);",
        15,
        "index",
    ),
    (
        "drop-index-non-concurrently",
        "DROP INDEX orders_a_idx;",
        15,
        "drop-index",
    ),
    (
        "drop-index-non-concurrently",
        "DROP INDEX a_idx, b_idx CASCADE;",
        15,
        "drop-index",
    ),
    (
        "reindex-non-concurrently",
        "REINDEX TABLE orders;",
        15,
        "reindex",
    ),
    (
        "reindex-non-concurrently",
        "REINDEX INDEX orders_a_idx;",
        11,
        "reindex",
    ),
    (
        "alter-column-type-rewrite",
        "ALTER TABLE orders ALTER COLUMN id TYPE bigint;",
        15,
        "column-type",
    ),
    (
        "alter-column-type-rewrite",
        "ALTER TABLE orders ADD COLUMN note varchar(200);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(50);",
        15,
        "column-type",
    ),
    (
        "set-not-null-scan",
        "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;",
        15,
        "not-null",
    ),
    (
        "add-check-validating",
        "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);",
        15,
        "check",
    ),
    (
        "add-check-validating",
        "ALTER TABLE orders ADD COLUMN qty int CHECK (qty > 0);",
        15,
        "check",
    ),
    (
        "add-foreign-key-validating",
        "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);",
        15,
        "foreign-key",
    ),
    (
        "add-foreign-key-validating",
        "ALTER TABLE orders ADD COLUMN customer_id bigint REFERENCES customers (id);",
        15,
        "foreign-key",
    ),
    (
        "add-unique-constraint-locking",
        "ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (ref);",
        15,
        "unique",
    ),
    (
        "add-unique-constraint-locking",
        "ALTER TABLE orders ADD COLUMN code text UNIQUE;",
        15,
        "unique",
    ),
    (
        "add-unique-constraint-locking",
        "ALTER TABLE orders ADD PRIMARY KEY (id);",
        15,
        "primary-key",
    ),
    (
        "add-unique-constraint-locking",
        "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);",
        15,
        "primary-key",
    ),
    (
        "unbatched-data-migration",
        "UPDATE orders SET status_code = 0;",
        15,
        "backfill",
    ),
    (
        "unbatched-data-migration",
        "BEGIN;\nALTER TABLE orders ADD COLUMN code int;\nUPDATE orders SET code = 0 WHERE id < 100;\nCOMMIT;",
        15,
        "backfill",
    ),
    (
        "add-column-volatile-default",
        "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        15,
        "backfill",
    ),
    (
        "add-column-not-null-without-default",
        "ALTER TABLE orders ADD COLUMN currency char(3) NOT NULL;",
        15,
        "not-null",
    ),
    (
        "prefer-bigint-id",
        "ALTER TABLE tags ADD COLUMN id int NOT NULL;\nALTER TABLE tags ADD PRIMARY KEY (id);",
        15,
        "column-type",
    ),
];

fn names_kind(help: &str, kind: &str) -> bool {
    help.contains(&format!("`{kind}` playbook (`lockstep run`)"))
}

#[test]
fn help_names_the_playbook_kind_of_the_online_alternative() {
    for &(rule, sql, v, kind) in NAMED {
        let f = findings(rule, sql, v);
        assert_eq!(f.len(), 1, "{rule} on {sql:?} (PG {v}): {f:#?}");
        let help = f[0].help.as_deref().unwrap_or("");
        assert!(names_kind(help, kind), "{rule} on {sql:?}: {help}");
        for other in lockstep::playbook::kinds::KindName::all()
            .iter()
            .map(|k| k.name())
            .filter(|k| *k != kind)
        {
            assert!(!names_kind(help, other), "{rule} on {sql:?}: {help}");
        }
        assert_eq!(f[0].playbook, Some(kind), "{rule} on {sql:?}");
        // House style, and still one sentence.
        assert!(
            !help.starts_with(|c: char| c.is_uppercase()) && !help.ends_with('.'),
            "{rule}: {help}"
        );
        assert!(
            !help.contains(". "),
            "{rule}: more than one sentence: {help}"
        );
    }
}

#[test]
fn no_kind_where_the_help_is_about_something_else() {
    for (rule, sql, v) in [
        // A playbook rebuilds one index or one table's indexes.
        ("reindex-non-concurrently", "REINDEX SCHEMA public;", 15),
        // Before 12 every `SET NOT NULL` scans: nothing online to offer.
        (
            "set-not-null-scan",
            "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;",
            11,
        ),
        // Batches of deletes are not a backfill.
        ("unbatched-data-migration", "DELETE FROM orders;", 15),
        // A new key is declared `bigint`, not converted.
        (
            "prefer-bigint-id",
            "CREATE TABLE tags (id serial PRIMARY KEY);",
            15,
        ),
        (
            "prefer-bigint-id",
            "CREATE TABLE tags (id int NOT NULL);\nALTER TABLE tags ADD PRIMARY KEY (id);",
            15,
        ),
    ] {
        let f = findings(rule, sql, v);
        assert_eq!(f.len(), 1, "{rule} on {sql:?}: {f:#?}");
        let help = f[0].help.as_deref().unwrap_or("");
        assert!(!help.contains("playbook"), "{rule} on {sql:?}: {help}");
        assert_eq!(f[0].playbook, None, "{rule} on {sql:?}");
    }
}

fn fixture(rule: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(rule)
        .join("bad.sql");
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn rules_without_an_online_alternative_name_no_playbook() {
    let mapped: Vec<&str> = NAMED.iter().map(|(r, ..)| *r).collect();
    for r in RULES.iter().filter(|r| !mapped.contains(&r.name)) {
        for d in findings(r.name, &fixture(r.name), 15) {
            assert_eq!(d.playbook, None, "{}: {}", r.name, d.message);
            let help = d.help.as_deref().unwrap_or("");
            assert!(!help.contains("(`lockstep run`)"), "{}: {help}", r.name);
        }
    }
}

#[test]
fn docs_use_instead_names_the_playbook_kind() {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for &(rule, _, _, kind) in NAMED {
        if seen.contains(&(rule, kind)) {
            continue;
        }
        seen.push((rule, kind));
        let docs = rules::find(rule).map_or("", |r| r.docs);
        let use_instead = docs
            .split_once("## Use instead")
            .map_or("", |(_, rest)| rest);
        assert!(
            use_instead.contains(&format!("`{kind}`")) && use_instead.contains("lockstep run"),
            "{rule}: `Use instead` does not name the `{kind}` playbook kind:\n{use_instead}"
        );
    }
}

#[test]
fn explain_prints_the_playbook_kind() {
    let out = Command::cargo_bin("lockstep")
        .expect("binary")
        .args(["explain", "set-not-null-scan"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let use_instead = stdout.split_once("## Use instead").map_or("", |(_, r)| r);
    assert!(
        use_instead.contains("a playbook of kind `not-null`"),
        "{stdout}"
    );
}

// `lint --diff`

/// Two rewrites for `index` (one line) and one for `not-null`.
const ONE: &str = "SET lock_timeout = '2s';\n\
                   CREATE INDEX orders_a_idx ON orders (a);\n\
                   ALTER TABLE orders ALTER COLUMN b SET NOT NULL;\n\
                   CREATE INDEX orders_b_idx ON orders (b);\n";
/// `drop-index` and `check`, in that order; no newline at the end.
const TWO: &str = "SET lock_timeout = '2s';\n\
                   DROP INDEX items_old_idx;\n\
                   ALTER TABLE items ADD CONSTRAINT items_qty_positive CHECK (qty > 0);";
/// Only a rewrite without an online playbook (`SET lock_timeout` inserted).
const THREE: &str = "ALTER TABLE tags ADD COLUMN note text;\n";

const FILES: [(&str, &str); 3] = [("1.sql", ONE), ("2.sql", TWO), ("3.sql", THREE)];

fn online(kind: &str) -> String {
    format!("# online alternative: the `{kind}` playbook kind (lockstep plan/run)")
}

fn lockstep(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lockstep").expect("binary");
    c.current_dir(dir).args(["lint", "--no-config"]);
    c
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Std::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git")
}

fn write_files(dir: &Path) {
    for (name, text) in FILES {
        fs::write(dir.join(name), text).expect("write");
    }
}

/// What the library's fixes make of `src`.
fn fixed(src: &str) -> String {
    let r = lint_source(src, &LintOptions::default());
    apply(src, r.diagnostics.iter().filter_map(|d| d.fix.as_ref())).0
}

fn diff_output(dir: &Path) -> String {
    let out = lockstep(dir)
        .args(["--diff", "1.sql", "2.sql", "3.sql"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn diff_names_each_kind_once_before_the_files_header() {
    let d = tempfile::tempdir().expect("tmp");
    write_files(d.path());
    let stdout = diff_output(d.path());
    // The lines that come before each `---` header, since the previous file's diff.
    let mut before: Vec<(String, Vec<String>)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if let Some(path) = line.strip_prefix("--- a/") {
            before.push((path.to_string(), std::mem::take(&mut pending)));
        } else if line.starts_with("# ") {
            pending.push(line.to_string());
        }
    }
    assert!(pending.is_empty(), "text after the last diff:\n{stdout}");
    assert_eq!(
        before,
        [
            (
                "1.sql".to_string(),
                vec![online("index"), online("not-null")]
            ),
            (
                "2.sql".to_string(),
                vec![online("drop-index"), online("check")]
            ),
            ("3.sql".to_string(), vec![]),
        ],
        "{stdout}"
    );
    // Each file's lines sit right above its header.
    assert!(
        stdout.starts_with(&format!(
            "{}\n{}\n--- a/1.sql\n",
            online("index"),
            online("not-null")
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{}\n{}\n--- a/2.sql\n",
            online("drop-index"),
            online("check")
        )),
        "{stdout}"
    );
}

#[test]
fn diff_without_the_online_lines_is_the_plain_unified_diff() {
    let d = tempfile::tempdir().expect("tmp");
    write_files(d.path());
    let stdout = diff_output(d.path());
    let stripped: String = stdout
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("# online alternative: "))
        .collect();
    let expected: String = FILES
        .iter()
        .map(|(name, text)| unified_diff(name, text, &fixed(text)))
        .collect();
    assert_eq!(stripped, expected);
}

#[test]
fn diff_with_the_online_lines_still_applies_like_fix() {
    let d = tempfile::tempdir().expect("tmp");
    write_files(d.path());
    let patch = d.path().join("lockstep.diff");
    fs::write(&patch, diff_output(d.path())).expect("write patch");
    let repo = d.path().join("repo");
    fs::create_dir(&repo).expect("mkdir");
    write_files(&repo);
    let init = git(&repo, &["init", "-q"]);
    assert!(init.status.success(), "{init:?}");
    let p = patch.to_str().expect("utf-8 path");
    let check = git(&repo, &["apply", "--check", p]);
    assert!(
        check.status.success(),
        "git apply --check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // GNU patch, where installed, accepts it too.
    if let Ok(out) = Std::new("patch")
        .current_dir(&repo)
        .args(["-p1", "--dry-run", "--batch", "-i", p])
        .output()
    {
        assert!(
            out.status.success(),
            "patch --dry-run: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let applied = git(&repo, &["apply", p]);
    assert!(applied.status.success(), "{applied:?}");

    // `--fix` writes the same files, without any comment line.
    let fixdir = d.path().join("fix");
    fs::create_dir(&fixdir).expect("mkdir");
    write_files(&fixdir);
    let out = lockstep(&fixdir)
        .args(["--fix", "1.sql", "2.sql", "3.sql"])
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in 3 files"),
        "{out:?}"
    );
    for (name, text) in FILES {
        let by_fix = fs::read_to_string(fixdir.join(name)).expect("read");
        assert_eq!(by_fix, fixed(text), "{name}");
        assert!(!by_fix.contains("online alternative"), "{name}");
        let by_patch = fs::read_to_string(repo.join(name)).expect("read");
        assert_eq!(by_patch, by_fix, "{name}");
    }
}
