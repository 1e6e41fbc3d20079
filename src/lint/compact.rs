//! Bounded memory for long files: memory in proportion to the largest statement, not to
//! the file.
//!
//! A parsed statement (its tokens, its recognized kind) costs far more than its text. A
//! file over [`STREAM_ABOVE`](super::STREAM_ABOVE) bytes is parsed once to gather what
//! the rules of other statements need to know about each ([`Facts`](super::neighbours::Facts):
//! a few bytes per statement, and only where it can matter), and the parsed statements are
//! dropped; checking parses each again, runs its rules, and drops it before the next. What
//! stays per statement is its span (8 bytes per end) and, when the chosen report prints
//! them ([`LintOptions::lock_reports`](super::LintOptions::lock_reports)), its lock report.
//! The second parse costs about what rebuilding each statement's tokens cost before (the
//! 10 MB file of small statements in `bench/lint_speed.py --sets hostile` takes 1.7 to
//! 1.8 s of CPU either way); shorter files keep their statements parsed between the two steps.
//!
//! Statements over [`LARGE_STATEMENT`](crate::sql::parse::LARGE_STATEMENT) are tokenized a
//! piece at a time and hold a bounded head of tokens (see [`crate::sql::parse::analyze`]):
//! a streamed file holds those parsed instead of parsing them twice.

#[cfg(test)]
mod tests {
    use crate::lint::catalog::Catalog;
    use crate::lint::{check, prepare, prepare_with, FileResult, LintOptions, STREAM_ABOVE};

    fn lint(src: &str, stream: bool, opts: &LintOptions) -> FileResult {
        check(src, prepare_with(src, stream), opts, Catalog::default()).0
    }

    fn assert_same(src: &str, opts: &LintOptions, what: &str) {
        let held = lint(src, false, opts);
        let streamed = lint(src, true, opts);
        assert_eq!(streamed.diagnostics, held.diagnostics, "findings of {what}");
        assert_eq!(streamed.locks, held.locks, "lock report of {what}");
        assert_eq!(streamed.statements, held.statements, "statements of {what}");
    }

    #[test]
    fn streaming_changes_no_finding_of_any_rule_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
        let mut seen = 0;
        for rule in std::fs::read_dir(&dir).unwrap() {
            for file in std::fs::read_dir(rule.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let Ok(src) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for in_tx in [false, true] {
                    let opts = LintOptions {
                        assume_in_transaction: in_tx,
                        ..LintOptions::default()
                    };
                    assert_same(&src, &opts, &path.display().to_string());
                }
                seen += 1;
            }
        }
        assert!(seen >= 40, "rule fixtures found: {seen}");
    }

    #[test]
    fn a_later_use_of_an_added_enum_value_is_found_in_a_streamed_file() {
        let src = "BEGIN;\nALTER TYPE status ADD VALUE 'refunded';\nSELECT 1;\nUPDATE orders SET status = 'refunded';\nCOMMIT;\n";
        let opts = LintOptions::default();
        let streamed = lint(src, true, &opts);
        assert!(
            streamed
                .diagnostics
                .iter()
                .any(|d| d.rule == "add-enum-value-in-transaction" && d.message.contains("line 4")),
            "{:?}",
            streamed.diagnostics
        );
        assert_same(src, &opts, "an enum value used later");
        // After the `COMMIT` the value may be used.
        let committed = "BEGIN;\nALTER TYPE status ADD VALUE 'refunded';\nCOMMIT;\nUPDATE orders SET status = 'refunded';\n";
        assert!(lint(committed, true, &opts)
            .diagnostics
            .iter()
            .all(|d| d.rule != "add-enum-value-in-transaction"));
    }

    #[test]
    fn look_back_and_look_ahead_rules_agree_when_streamed() {
        // The latest `ADD COLUMN` of a column wins; a later index covers a foreign key; a
        // `BEGIN` finds its `COMMIT`.
        let src = "\
ALTER TABLE a ADD COLUMN c int DEFAULT 1;
ALTER TABLE a ADD COLUMN c int;
ALTER TABLE a ALTER COLUMN c SET NOT NULL;
CREATE TABLE b (id bigint PRIMARY KEY, a_id bigint REFERENCES a (id));
CREATE TABLE d (id bigint PRIMARY KEY, a_id bigint REFERENCES a (id));
CREATE INDEX b_a_id_idx ON b (a_id);
BEGIN;
ALTER TABLE b ADD CONSTRAINT b_fk FOREIGN KEY (a_id) REFERENCES d (id);
COMMIT;
BEGIN;
CREATE INDEX CONCURRENTLY e ON b (id);
";
        for in_tx in [false, true] {
            let opts = LintOptions {
                assume_in_transaction: in_tx,
                ..LintOptions::default()
            };
            assert_same(src, &opts, "look-back and look-ahead");
        }
        let found = lint(src, true, &LintOptions::default());
        let rules: Vec<&str> = found.diagnostics.iter().map(|d| d.rule).collect();
        assert_eq!(
            rules
                .iter()
                .filter(|r| **r == "foreign-key-without-index")
                .count(),
            1,
            "{rules:?}"
        );
        assert!(rules.contains(&"transaction-nesting"), "{rules:?}");
    }

    #[test]
    fn a_long_file_holds_no_parsed_statement_once_prepared() {
        let one = "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX i ON orders (note);\n";
        let long = one.repeat(STREAM_ABOVE / one.len() + 1);
        let prepared = prepare(&long);
        assert!(prepared.statement_count() > 1000);
        assert_eq!(prepared.held(), 0);
        assert_eq!(prepare(one).held(), 2);
        // Checking parses every statement again: the findings are those of the file
        // checked with all its statements held, each pointing at its own words.
        let opts = LintOptions::default();
        let found = check(&long, prepared, &opts, Catalog::default()).0;
        let full = lint(&long, false, &opts);
        assert_eq!(found.diagnostics, full.diagnostics);
        assert_eq!(found.locks, full.locks);
        let indexes: Vec<_> = found
            .diagnostics
            .iter()
            .filter(|d| d.rule == "create-index-non-concurrently")
            .collect();
        assert_eq!(indexes.len(), long.matches("CREATE INDEX").count());
        assert!(indexes
            .iter()
            .all(|d| &long[d.span.clone()] == "CREATE INDEX"));
    }

    #[test]
    fn a_streamed_file_holds_its_statements_over_a_megabyte_instead_of_parsing_them_twice() {
        let rows: Vec<String> = (0..80_000).map(|i| format!("({i}, 'row {i}')")).collect();
        let src = format!(
            "CREATE TABLE t (id int, note text);\nINSERT INTO t VALUES {};\nSELECT 1;\n",
            rows.join(", ")
        );
        assert!(src.len() > crate::sql::parse::LARGE_STATEMENT);
        let prepared = prepare(&src);
        assert_eq!(prepared.statement_count(), 3);
        assert_eq!(prepared.held(), 1);
        assert_same(&src, &LintOptions::default(), "a large INSERT");
    }

    #[test]
    fn lock_reports_are_kept_only_when_asked_for() {
        let src = "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX i ON orders (note);\n";
        let with = lint(src, true, &LintOptions::default());
        assert_eq!(with.locks.len(), 2);
        let opts = LintOptions {
            lock_reports: false,
            ..LintOptions::default()
        };
        let without = lint(src, true, &opts);
        assert!(without.locks.is_empty());
        assert_eq!(without.diagnostics, with.diagnostics);
    }
}
