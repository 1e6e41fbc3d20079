//! Safe rewrites: applying every fix to every rule's bad fixture leaves SQL that still
//! parses and on which the fixed findings no longer fire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::PathBuf;

use lockstep::lint::fix::apply;
use lockstep::lint::rules::RULES;
use lockstep::lint::{lint_source, LintOptions};

/// A rule's bad fixture (tests/rules.rs asserts every rule has one).
fn fixture(rule: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(rule)
        .join("bad.sql");
    std::fs::read_to_string(p).unwrap_or_default()
}

fn count(src: &str, rule: &str) -> usize {
    lint_source(src, &LintOptions::default())
        .diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .count()
}

#[test]
fn fixed_fixtures_parse_and_the_fixed_findings_are_gone() {
    let mut fixed_rules = Vec::new();
    for r in RULES {
        let src = fixture(r.name);
        let before = lint_source(&src, &LintOptions::default());
        let fixes: Vec<_> = before
            .diagnostics
            .iter()
            .filter_map(|d| d.fix.as_ref())
            .collect();
        if fixes.is_empty() {
            continue;
        }
        let (fixed, applied) = apply(&src, fixes.iter().copied());
        assert_eq!(applied, fixes.len(), "{}: some fixes clashed", r.name);
        assert_ne!(fixed, src);
        let unfixable = before
            .diagnostics
            .iter()
            .filter(|d| d.rule == r.name && d.fix.is_none())
            .count();
        assert_eq!(
            count(&fixed, r.name),
            unfixable,
            "{}: still fires after fixing:\n{fixed}",
            r.name
        );
        assert_eq!(
            count(&fixed, "unparsed-statement"),
            count(&src, "unparsed-statement"),
            "{}: the fixed SQL no longer parses:\n{fixed}",
            r.name
        );
        // Fixing twice changes nothing more for this rule.
        let again = lint_source(&fixed, &LintOptions::default());
        assert!(again
            .diagnostics
            .iter()
            .filter(|d| d.rule == r.name)
            .all(|d| d.fix.is_none()));
        fixed_rules.push(r.name);
    }
    for rule in [
        "create-index-non-concurrently",
        "add-check-validating",
        "add-foreign-key-validating",
        "set-not-null-scan",
        "missing-lock-timeout",
        "concurrently-in-transaction",
        "add-unique-constraint-locking",
    ] {
        assert!(
            fixed_rules.contains(&rule),
            "{rule} has no fix in its fixture"
        );
    }
}

#[test]
fn concurrently_moves_out_of_the_transaction() {
    let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE t ADD COLUMN c int;\nCREATE INDEX t_c_idx ON t (c);\nCOMMIT;\n";
    let r = lint_source(src, &LintOptions::default());
    let (fixed, n) = apply(src, r.diagnostics.iter().filter_map(|d| d.fix.as_ref()));
    assert_eq!(n, 1);
    assert_eq!(
        fixed,
        "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_c_idx ON t (c);\n"
    );
}

#[test]
fn not_valid_and_validate_after_commit() {
    let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE \"Order Items\" ADD CONSTRAINT \"Qty Positive\" CHECK (qty > 0);\nCOMMIT;";
    let r = lint_source(src, &LintOptions::default());
    let (fixed, _) = apply(src, r.diagnostics.iter().filter_map(|d| d.fix.as_ref()));
    assert_eq!(
        fixed,
        "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE \"Order Items\" ADD CONSTRAINT \"Qty Positive\" CHECK (qty > 0) NOT VALID;\nCOMMIT;\nALTER TABLE \"Order Items\" VALIDATE CONSTRAINT \"Qty Positive\";\n"
    );
}

#[test]
fn four_step_not_null_quotes_identifiers() {
    let src =
        "SET lock_timeout = '2s';\nALTER TABLE \"Select\" ALTER COLUMN \"User Id\" SET NOT NULL;\n";
    let r = lint_source(src, &LintOptions::default());
    let (fixed, _) = apply(src, r.diagnostics.iter().filter_map(|d| d.fix.as_ref()));
    assert_eq!(
        fixed,
        "SET lock_timeout = '2s';\n\
         ALTER TABLE \"Select\" ADD CONSTRAINT \"Select_User Id_not_null\" CHECK (\"User Id\" IS NOT NULL) NOT VALID;\n\
         ALTER TABLE \"Select\" VALIDATE CONSTRAINT \"Select_User Id_not_null\";\n\
         ALTER TABLE \"Select\" ALTER COLUMN \"User Id\" SET NOT NULL;\n\
         ALTER TABLE \"Select\" DROP CONSTRAINT \"Select_User Id_not_null\";\n"
    );
    // No fix where the steps would share one transaction.
    let r = lint_source(
        src,
        &LintOptions {
            assume_in_transaction: true,
            ..LintOptions::default()
        },
    );
    assert!(r.diagnostics.iter().all(|d| d.fix.is_none()));
}

#[test]
fn unique_constraint_becomes_concurrent_index_plus_using_index() {
    let src = "SET lock_timeout = '2s';\nALTER TABLE \"Order Items\" ADD CONSTRAINT \"Order Items_sku_key\" UNIQUE (sku);\n";
    let r = lint_source(src, &LintOptions::default());
    let (fixed, n) = apply(src, r.diagnostics.iter().filter_map(|d| d.fix.as_ref()));
    assert_eq!(n, 1);
    assert_eq!(
        fixed,
        "SET lock_timeout = '2s';\n\
         CREATE UNIQUE INDEX CONCURRENTLY \"Order Items_sku_key\" ON \"Order Items\" (sku);\n\
         ALTER TABLE \"Order Items\" ADD CONSTRAINT \"Order Items_sku_key\" UNIQUE USING INDEX \"Order Items_sku_key\";\n"
    );
    assert!(lint_source(&fixed, &LintOptions::default())
        .diagnostics
        .iter()
        .all(|d| d.rule != "add-unique-constraint-locking"));
}

mod cli {
    use assert_cmd::Command;
    use std::os::unix::fs::PermissionsExt;

    const BAD: &str = "SET lock_timeout = '2s';\nCREATE INDEX orders_at_idx ON orders (at);\n";

    fn lockstep(dir: &std::path::Path) -> Command {
        let mut c = Command::cargo_bin("lockstep").expect("binary");
        c.current_dir(dir).args(["lint", "--no-config"]);
        c
    }

    #[test]
    fn diff_prints_the_rewrite_and_leaves_the_file_alone() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("m.sql"), BAD).expect("write");
        let out = lockstep(d.path())
            .args(["--diff", "m.sql"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("--- a/m.sql\n+++ b/m.sql\n"), "{stdout}");
        assert!(stdout.contains("-CREATE INDEX orders_at_idx ON orders (at);\n+CREATE INDEX CONCURRENTLY orders_at_idx ON orders (at);\n"), "{stdout}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("m.sql")).expect("read"),
            BAD
        );
    }

    #[test]
    fn fix_rewrites_the_file_keeps_its_mode_and_reports_what_remains() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("m.sql");
        std::fs::write(&p, BAD).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let out = lockstep(d.path())
            .args(["--fix", "m.sql"])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("fixed 1 finding in 1 file"));
        assert_eq!(
            std::fs::read_to_string(&p).expect("read"),
            "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY orders_at_idx ON orders (at);\n"
        );
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
    }

    #[test]
    fn fix_on_stdin_prints_the_fixed_sql() {
        let d = tempfile::tempdir().expect("tmp");
        let out = lockstep(d.path())
            .args(["--fix", "-"])
            .write_stdin(BAD)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY orders_at_idx ON orders (at);\n"
        );
    }
}

#[test]
fn a_column_added_in_the_same_migration_gets_not_null_default_not_the_four_steps() {
    let help_and_fix = |src: &str, in_tx: bool| {
        let opts = LintOptions {
            assume_in_transaction: in_tx,
            ..LintOptions::default()
        };
        let r = lint_source(src, &opts);
        let d = r
            .diagnostics
            .iter()
            .find(|d| d.rule == "set-not-null-scan")
            .expect("a set-not-null-scan finding")
            .clone();
        let fixed = d.fix.as_ref().map(|f| apply(src, [f]).0);
        (d.help.unwrap_or_default(), fixed)
    };
    // Added with a default, then made NOT NULL: one statement does both, instantly.
    let src = "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN priority int DEFAULT 0;\nALTER TABLE orders ALTER COLUMN priority SET NOT NULL;\n";
    for in_tx in [false, true] {
        let (help, fixed) = help_and_fix(src, in_tx);
        assert!(help.contains("NOT NULL DEFAULT"), "{help}");
        assert!(!help.contains("VALIDATE"), "{help}");
        assert_eq!(
            fixed.as_deref(),
            Some("SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN priority int DEFAULT 0 NOT NULL;\n")
        );
    }
    // Filled by an UPDATE instead: the same advice, and no mechanical rewrite.
    let src = "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN priority int;\nUPDATE orders SET priority = 0;\nALTER TABLE orders ALTER COLUMN priority SET NOT NULL;\n";
    let (help, fixed) = help_and_fix(src, false);
    assert!(help.contains("NOT NULL DEFAULT"), "{help}");
    assert_eq!(fixed, None);
    // A column that existed before this migration keeps the four steps.
    let src = "SET lock_timeout = '2s';\nALTER TABLE orders ALTER COLUMN priority SET NOT NULL;\n";
    let (help, fixed) = help_and_fix(src, false);
    assert!(help.contains("VALIDATE"), "{help}");
    assert!(fixed.is_some_and(|f| f.contains("CHECK (priority IS NOT NULL) NOT VALID")));
}
