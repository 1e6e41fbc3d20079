//! Linting a directory of thousands of migration files: no panic, every file linted in
//! migration order, and statements lockstep does not understand are notes only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::PathBuf;

use lockstep::files::{discover, exclude_set, lint_all, Input};
use lockstep::lint::{LintOptions, Severity};
use lockstep::sql::split;

/// Statements from every fixture and example migration, plus awkward shapes.
fn statement_pool() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests/fixtures/rules", "migrations"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("fixture dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "sql") {
                    files.push(std::fs::read_to_string(&p).expect("fixture"));
                }
            }
        }
    }
    let mut pool: Vec<String> = Vec::new();
    for f in &files {
        for s in split(f).statements {
            pool.push(f[s.span].to_string());
        }
    }
    pool.extend(
        [
            "COPY t (a) FROM stdin;\n1\n2\n\\.\n",
            "\\set ON_ERROR_STOP on\n",
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN NEW.x := 1; RETURN NEW; END $fn$;",
            "ALTER TABLE t ADD COLUMN x int, FROBNICATE;",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;",
            "INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING;",
        ]
        .map(str::to_string),
    );
    pool
}

#[test]
fn thousands_of_files_lint_without_panics_in_migration_order() {
    let pool = statement_pool();
    assert!(pool.len() > 50, "pool too small: {}", pool.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 3000;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 1..=n {
        let k = 1 + next() % 8;
        let body: Vec<&str> = (0..k)
            .map(|_| pool[(next() % pool.len() as u64) as usize].as_str())
            .collect();
        let sub = dir.path().join(format!("batch{}", i % 3));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("V{i}__m.sql")), body.join("\n")).expect("write");
    }
    let excludes = exclude_set(&[]).expect("globs");
    let (inputs, errors) = discover(
        &[dir.path().to_path_buf()],
        dir.path(),
        dir.path(),
        &excludes,
        None,
    );
    assert!(errors.is_empty());
    assert_eq!(inputs.len(), n);
    // Natural order within each directory: V1 < V4 < V7 < V10 …
    let names: Vec<&str> = inputs.iter().map(Input::display).collect();
    let batch1: Vec<&str> = names
        .iter()
        .copied()
        .filter(|p| p.contains("batch1/"))
        .collect();
    assert!(batch1[0].ends_with("/V1__m.sql") && batch1[1].ends_with("/V4__m.sql"));
    assert!(batch1[3].ends_with("/V10__m.sql"), "{:?}", &batch1[..4]);

    let reports = lint_all(&inputs, &LintOptions::default());
    assert_eq!(reports.len(), n);
    let mut unparsed = 0;
    let mut findings = 0;
    for (r, i) in reports.iter().zip(&inputs) {
        assert_eq!(r.path, i.display(), "reports keep input order");
        assert!(r.problem.is_none(), "{}: {:?}", r.path, r.problem);
        for d in &r.diagnostics {
            findings += 1;
            if d.rule == "unparsed-statement" {
                unparsed += 1;
                assert_eq!(d.severity, Severity::Note);
            }
        }
    }
    let statements: usize = reports.iter().map(|r| r.statements).sum();
    assert!(statements > 3 * n, "only {statements} statements");
    assert!(
        findings > n,
        "the corpus is full of hazards; got {findings} findings"
    );
    assert!(unparsed > 0, "the pool holds unparseable statements");
}
