//! Bounded memory for long files: a parsed statement is mostly its tokens (two strings per
//! word), which only the rules of that statement read. Once a file is parsed, every
//! statement keeps its kind and span (what the rules of *other* statements, the transaction
//! facts and the suppressions read) and sheds its tokens; checking a statement tokenizes
//! its text again, and sheds the tokens once its rules have run. A file of many small
//! statements then holds one statement's tokens at a time instead of all of them.
//!
//! Statements over [`LARGE_STATEMENT`] keep what they have: they were tokenized a piece
//! at a time and hold a bounded head of tokens already (see
//! [`crate::sql::parse::analyze`]).

use std::borrow::Cow;

use crate::sql::parse::{Statement, LARGE_STATEMENT};
use crate::sql::tokens::{self, Tok};

/// Which statements of a file shed their tokens.
#[derive(Debug, Default)]
pub struct Shed {
    shed: Vec<bool>,
}

/// Whether `st`'s tokens are exactly what [`tokens::tokenize`] of its text gives, so that
/// they can be dropped and rebuilt.
fn rebuildable(st: &Statement) -> bool {
    !st.toks.is_empty() && st.span.len() <= LARGE_STATEMENT
}

impl Shed {
    /// Records the next statement of the file, in order, and drops its tokens when they
    /// can be rebuilt.
    pub fn push(&mut self, st: &mut Statement) {
        let r = rebuildable(st);
        if r {
            st.toks = Vec::new();
        }
        self.shed.push(r);
    }

    /// Gives statement `i` its tokens back (from its text in `src`).
    pub fn restore(&self, src: &str, i: usize, st: &mut Statement) {
        if self.shed.get(i).copied().unwrap_or(false) && st.toks.is_empty() {
            st.toks = retokenize(src, st);
        }
    }

    /// Drops statement `i`'s tokens again once its rules have run.
    pub fn drop_tokens(&self, i: usize, st: &mut Statement) {
        if self.shed.get(i).copied().unwrap_or(false) {
            st.toks = Vec::new();
        }
    }
}

fn retokenize(src: &str, st: &Statement) -> Vec<Tok> {
    src.get(st.span.clone())
        .and_then(|text| tokens::tokenize(text, st.span.start).ok())
        .map(|t| t.toks)
        .unwrap_or_default()
}

/// The tokens of another statement of the file (a rule looking before or after the one it
/// checks): its own when it holds them, else tokenized again from its text (none when
/// the text does not tokenize: then it had none when it was parsed either).
pub fn tokens_of<'a>(src: &str, st: &'a Statement) -> Cow<'a, [Tok]> {
    if st.toks.is_empty() && st.span.len() <= LARGE_STATEMENT {
        Cow::Owned(retokenize(src, st))
    } else {
        Cow::Borrowed(&st.toks)
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::catalog::Catalog;
    use crate::lint::{check, prepare, prepare_with, FileResult, LintOptions, SHED_TOKENS_ABOVE};

    fn lint(src: &str, shed: bool, opts: &LintOptions) -> FileResult {
        check(src, prepare_with(src, shed), opts, Catalog::default()).0
    }

    fn assert_same(src: &str, opts: &LintOptions, what: &str) {
        let full = lint(src, false, opts);
        let shed = lint(src, true, opts);
        assert_eq!(shed.diagnostics, full.diagnostics, "findings of {what}");
        assert_eq!(shed.locks, full.locks, "lock report of {what}");
        assert_eq!(shed.statements, full.statements, "statements of {what}");
    }

    #[test]
    fn shedding_tokens_changes_no_finding_of_any_rule_fixture() {
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
    fn a_later_use_of_an_added_enum_value_is_found_in_shed_statements() {
        let src = "BEGIN;\nALTER TYPE status ADD VALUE 'refunded';\nSELECT 1;\nUPDATE orders SET status = 'refunded';\nCOMMIT;\n";
        let opts = LintOptions::default();
        let shed = lint(src, true, &opts);
        assert!(
            shed.diagnostics
                .iter()
                .any(|d| d.rule == "add-enum-value-in-transaction" && d.message.contains("line 4")),
            "{:?}",
            shed.diagnostics
        );
        assert_same(src, &opts, "an enum value used later");
    }

    #[test]
    fn a_long_file_keeps_no_statement_tokens_once_prepared() {
        let one = "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX i ON orders (note);\n";
        let long = one.repeat(SHED_TOKENS_ABOVE / one.len() + 1);
        let prepared = prepare(&long);
        assert!(prepared.statement_count() > 1000);
        assert!(prepared.statements().iter().all(|s| s.toks.is_empty()));
        let short = prepare(one);
        assert!(short.statements().iter().all(|s| !s.toks.is_empty()));
        // Checking gives every statement its tokens back: the findings are those of the
        // file checked with all its tokens, each pointing at its own words.
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
}
