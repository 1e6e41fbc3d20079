use std::ops::Range;

use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;
use crate::sql::tokens::TokKind;

pub const RULE: Rule = Rule {
    name: "transaction-nesting",
    default_severity: Some(Severity::Error),
    summary: "nested, unterminated or unmatched transaction control",
    docs: r#"## What it does
Flags transaction control that does not do what it looks like:
- `BEGIN` while a transaction block is already open: after an earlier `BEGIN`, or anywhere in
  a file the migration tool wraps in a transaction (`assume_in_transaction`);
- `BEGIN` with no `COMMIT` or `ROLLBACK` after it in the file;
- `COMMIT` or `ROLLBACK` with no open transaction block to end (or, in a file the tool wraps,
  one that ends the tool's transaction).

## Why is this bad?
PostgreSQL has no nested transactions. A second `BEGIN` is ignored with a warning, so the
first `COMMIT` commits everything, including what the author meant to be an outer, still
open transaction; in a file the tool wraps, the statements after that `COMMIT` run in
autocommit and are no longer rolled back when a later one fails. A `BEGIN` that is never
committed is rolled back when the connection closes, or leaves a transaction open that holds
its locks. A `COMMIT` without `BEGIN` only warns, but means the statements before it ran one
by one, not atomically as the author expected.

## Example
```sql
-- the migration tool already runs this file in a transaction
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
COMMIT;
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN note text;
```
Let the migration tool manage the transaction, or mark the file non-transactional for the
tool and keep explicit `BEGIN … COMMIT` blocks that match up.
"#,
    check,
};

/// The transaction keyword(s): `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`.
fn keyword_span(cx: &Checker) -> Range<usize> {
    let toks = &cx.stmt.toks;
    match toks.first() {
        Some(first) => {
            let end = match toks.get(1) {
                Some(t)
                    if matches!(t.kind, TokKind::Word { .. })
                        && (t.is("TRANSACTION") || t.is("WORK")) =>
                {
                    t.span.end
                }
                _ => first.span.end,
            };
            first.span.start..end
        }
        None => cx.stmt.head_span(),
    }
}

fn tool(cx: &Checker) -> String {
    format!(
        "in a file the migration tool already runs in a transaction ({})",
        cx.ctx.tx_reason()
    )
}
const TOOL_HELP: &str = "remove the explicit transaction control, or mark the file non-transactional for your migration tool";

fn check(cx: &mut Checker) {
    // `COMMIT PREPARED` / `ROLLBACK PREPARED` finish a two-phase transaction; they do not
    // end the current one.
    if cx.stmt.toks.get(1).is_some_and(|t| t.is("PREPARED")) {
        return;
    }
    let span = keyword_span(cx);
    // As written: `BEGIN`, `START TRANSACTION`, `END`, `ABORT` …
    let kw = cx
        .src
        .get(span.clone())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    match &cx.stmt.kind {
        StmtKind::Begin => {
            if cx.ctx.explicit_transaction {
                let since = cx
                    .ctx
                    .explicit_begin_line
                    .map_or_else(String::new, |l| format!(" (since line {l})"));
                cx.report(
                    span,
                    format!("`{kw}` inside a transaction that is already open{since}: PostgreSQL ignores it, and the first `COMMIT` commits everything"),
                    "remove the inner `BEGIN` and its `COMMIT`; use `SAVEPOINT` if part of the work must be undoable on its own",
                );
            } else if cx.ctx.implicit_transaction {
                cx.report(
                    span,
                    format!("`{kw}` {}: PostgreSQL ignores it, and the matching `COMMIT` ends the tool's transaction early, so later statements are no longer rolled back on failure", tool(cx)),
                    TOOL_HELP,
                );
            } else if cx.others.end_of_transaction().is_none() {
                cx.report(
                    span,
                    format!("`{kw}` without a `COMMIT`: the transaction stays open to the end of the file, holding its locks, and is rolled back when the connection closes"),
                    "add `COMMIT;` after the last statement of the transaction",
                );
            }
        }
        StmtKind::Commit | StmtKind::Rollback if !cx.ctx.explicit_transaction => {
            let commit = matches!(cx.stmt.kind, StmtKind::Commit);
            if cx.ctx.implicit_transaction {
                let effect = if commit {
                    "ends the tool's transaction early: the statements after it run in autocommit and are not rolled back when one fails"
                } else {
                    "rolls back the statements before it, then the statements after it run in autocommit"
                };
                cx.report(span, format!("`{kw}` {} {effect}", tool(cx)), TOOL_HELP);
            } else {
                let effect = if commit {
                    "the statements before it already ran one by one, each in its own transaction"
                } else {
                    "it undoes nothing, the statements before it were already committed one by one"
                };
                cx.report(
                    span,
                    format!("`{kw}` without a matching `BEGIN`: {effect}"),
                    format!(
                        "add `BEGIN;` where the transaction should start, or remove the `{kw}`"
                    ),
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str, assume_in_transaction: bool) -> Vec<(usize, String)> {
        let opts = LintOptions {
            assume_in_transaction,
            ..LintOptions::default()
        };
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "transaction-nesting")
            .map(|d| (d.line, src[d.span.clone()].to_string()))
            .collect()
    }

    #[test]
    fn explicit_transaction_control_in_a_wrapped_file() {
        let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\nEND;";
        assert_eq!(
            lint(src, true),
            vec![(2, "BEGIN".to_string()), (5, "END".to_string())]
        );
        // Without the wrapper only the unmatched `END` is wrong.
        assert_eq!(lint(src, false), vec![(5, "END".to_string())]);
    }

    #[test]
    fn wrapped_file_messages() {
        let opts = LintOptions {
            assume_in_transaction: true,
            ..LintOptions::default()
        };
        let d = lint_source("SELECT 1;\nROLLBACK;", &opts).diagnostics;
        assert_eq!(
            d.iter()
                .filter(|d| d.rule == "transaction-nesting")
                .map(|d| d.message.as_str())
                .collect::<Vec<_>>(),
            vec!["`ROLLBACK` in a file the migration tool already runs in a transaction (`assume_in_transaction`) rolls back the statements before it, then the statements after it run in autocommit"]
        );
    }

    #[test]
    fn two_phase_commit_is_not_transaction_control() {
        assert!(lint("COMMIT PREPARED 'tx1';\nROLLBACK PREPARED 'tx2';", false).is_empty());
    }

    #[test]
    fn nested_begin_names_the_open_one() {
        let src = "START TRANSACTION;\nSELECT 1;\nBEGIN WORK;\nCOMMIT;";
        let d = lint_source(src, &LintOptions::default()).diagnostics;
        let d: Vec<_> = d
            .iter()
            .filter(|d| d.rule == "transaction-nesting")
            .collect();
        assert_eq!(d.len(), 1);
        assert_eq!(&src[d[0].span.clone()], "BEGIN WORK");
        assert_eq!(
            d[0].message,
            "`BEGIN WORK` inside a transaction that is already open (since line 1): PostgreSQL ignores it, and the first `COMMIT` commits everything"
        );
    }
}
