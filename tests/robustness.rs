//! Random and mutated SQL never panics or hangs the splitter or the linter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use lockstep::lint::{lint_source, LintOptions};
use lockstep::sql::split;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "CREATE INDEX i ON t (a);",
    "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid(), ALTER COLUMN b SET NOT NULL;",
    "DO $$ BEGIN PERFORM 1; END $$;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
    "COPY t FROM stdin;\n1\t2\n\\.\n",
    "SELECT E'a\\'b', \"q\"\"x\", $tag$ ; $tag$; /* a /* b */ c */ -- d\n",
    "ALTER TABLE p ATTACH PARTITION c FOR VALUES FROM (1) TO (2);",
    "-- lockstep: ignore create-index-non-concurrently\nCREATE INDEX CONCURRENTLY i ON t (a);",
    "BEGIN; ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES u (id); COMMIT;",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SEEDS).prop_map(str::to_string),
        prop::sample::select(vec![
            "'", "\"", "$$", "$a$", "/*", "*/", "--", "\n", ";", "(", ")", "\\", "E'", "BEGIN",
            "ATOMIC", "END", "CASE", "COPY", "FROM", "stdin", "\\.", "é", "\u{0}", ",",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,20}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn splitter_spans_are_in_bounds_and_ordered(parts in prop::collection::vec(fragment(), 0..12)) {
        let src = parts.concat();
        let s = split(&src);
        let mut prev_end = 0;
        for st in &s.statements {
            prop_assert!(st.span.start >= prev_end);
            prop_assert!(st.span.start < st.span.end && st.span.end <= src.len());
            prop_assert!(src.is_char_boundary(st.span.start) && src.is_char_boundary(st.span.end));
            prev_end = st.span.end;
        }
    }

    #[test]
    fn linter_never_panics(parts in prop::collection::vec(fragment(), 0..12), v in 9u32..=19, tx: bool) {
        let src = parts.concat();
        let opts = LintOptions { pg_version: v, assume_in_transaction: tx, ..LintOptions::default() };
        let r = lint_source(&src, &opts);
        for d in &r.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1);
            prop_assert!(d.span.end <= src.len());
        }
    }

    #[test]
    fn mutated_seeds_never_panic(seed in prop::sample::select(SEEDS), cut in 0usize..200, insert in fragment()) {
        let mut src = seed.to_string();
        let mut at = cut.min(src.len());
        while !src.is_char_boundary(at) { at -= 1; }
        src.insert_str(at, &insert);
        let r = lint_source(&src, &LintOptions::default());
        // Whatever the damage, findings point inside the file and the seed's statements are
        // still seen, unless the insert made a psql meta-command of a line (`\.CREATE …` is a
        // backslash command up to the end of the line, as psql reads it, not SQL) or a
        // comment of the rest (`--SELECT …` on a one-line seed is no statement at all).
        if !insert.contains('\\') && !insert.contains("--") && !insert.contains("/*") {
            prop_assert!(r.statements >= 1);
        }
        for d in &r.diagnostics {
            prop_assert!(d.span.start <= d.span.end && d.span.end <= src.len(), "{:?}", d.span);
            prop_assert!(d.line >= 1 && d.column >= 1 && d.end_line >= d.line);
        }
    }
}

#[test]
fn deep_nesting_is_reported_not_a_stack_overflow() {
    let depth = 50_000;
    let src = format!(
        "SELECT {}1{};\nCREATE INDEX i ON t (a);",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let r = lint_source(&src, &LintOptions::default());
    assert_eq!(r.statements, 2);
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.rule == "create-index-non-concurrently"));
}

#[test]
fn a_bad_statement_never_hides_the_rest_of_the_file() {
    let src = "ALTER TABLE t FROBNICATE;\nSELECT 'unterminated;\n";
    let r = lint_source(src, &LintOptions::default());
    assert!(r.diagnostics.iter().all(|d| d.rule == "unparsed-statement"));
    let src = "ALTER TABLE t FROBNICATE;\nCREATE INDEX i ON t (a);\nSELECT 'x";
    let r = lint_source(src, &LintOptions::default());
    let rules: Vec<_> = r.diagnostics.iter().map(|d| d.rule).collect();
    assert!(
        rules.contains(&"create-index-non-concurrently"),
        "{rules:?}"
    );
    assert_eq!(
        rules.iter().filter(|r| **r == "unparsed-statement").count(),
        2,
        "{rules:?}"
    );
}

#[test]
fn commit_prepared_does_not_end_the_open_transaction() {
    use lockstep::sql::ir::StmtKind;
    use lockstep::sql::parse::analyze;
    for sql in ["COMMIT PREPARED 'x';", "ROLLBACK PREPARED 'x';"] {
        let st = analyze(sql, 0..sql.len());
        assert!(
            matches!(st.kind, StmtKind::Other { .. }),
            "{sql}: {:?}",
            st.kind
        );
    }
    let src = "BEGIN;\nCOMMIT PREPARED 'x';\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n";
    let r = lint_source(src, &LintOptions::default());
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.rule == "concurrently-in-transaction"));
}
