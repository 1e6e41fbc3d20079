use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;
use crate::sql::parse::Statement;
use crate::sql::tokens::TokKind;

pub const RULE: Rule = Rule {
    name: "add-enum-value-in-transaction",
    default_severity: Some(Severity::Warning),
    summary:
        "`ALTER TYPE … ADD VALUE` in a transaction that uses the value (any, before PostgreSQL 12)",
    docs: r#"## What it does
Flags `ALTER TYPE … ADD VALUE` inside a transaction block (after an explicit `BEGIN`, or
anywhere in a file the migration tool wraps in a transaction): before PostgreSQL 12 always;
from 12 when a later statement of the same transaction uses the new value (a string literal
equal to it).

## Why is this bad?
Before PostgreSQL 12 the statement refuses to run in a transaction block (`ALTER TYPE … ADD
cannot run inside a transaction block`): the migration fails at deploy time. From 12 it runs,
but the new value cannot be used until the transaction commits: a later statement of the
same migration that inserts or compares it fails with `unsafe use of new value`.

## Example
```sql
BEGIN;
ALTER TYPE order_status ADD VALUE 'refunded';
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```

## Use instead
```sql
-- migration 1 (before PostgreSQL 12: marked non-transactional)
ALTER TYPE order_status ADD VALUE 'refunded';
-- migration 2
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
```
"#,
    check,
};

/// The label an `ALTER TYPE … ADD VALUE` statement adds: the string after `ADD VALUE [IF
/// NOT EXISTS]`.
pub fn added_label(st: &Statement) -> Option<String> {
    let toks = &st.toks;
    let at = (1..toks.len()).find(|&i| toks[i - 1].is("ADD") && toks[i].is("VALUE"))?;
    toks[at + 1..].iter().find_map(|t| match &t.kind {
        TokKind::Str(s) => Some(s.to_string()),
        _ => None,
    })
}

fn check(cx: &mut Checker) {
    let StmtKind::AlterTypeAddValue { name } = &cx.stmt.kind else {
        return;
    };
    if !cx.ctx.in_transaction() {
        return;
    }
    let context = if cx.ctx.explicit_transaction {
        "after `BEGIN`".to_string()
    } else {
        format!(
            "in a file that runs in a transaction ({})",
            cx.ctx.tx_reason()
        )
    };
    let span = cx.stmt.span_of(&["ADD", "VALUE"]);
    if cx.ctx.pg_version < 12 {
        cx.report(
            span,
            format!(
                "`ALTER TYPE {name} ADD VALUE` cannot run inside a transaction block before PostgreSQL 12, and this statement is {context}"
            ),
            cx.ctx.no_transaction_hint(),
        );
        return;
    }
    // A later statement of the same transaction that uses the new label fails.
    let label = added_label(cx.stmt);
    let user = label
        .as_deref()
        .and_then(|l| cx.others.label_used_before_end(l))
        .map(|start| 1 + cx.src[..start].matches('\n').count());
    // PostgreSQL 12+ runs it in a transaction; only a later use in the same one fails.
    let Some(line) = user else {
        return;
    };
    let value = label.map_or_else(|| "the new value".to_string(), |l| format!("`'{l}'`"));
    cx.report(
        span,
        format!(
            "{value} added to `{name}` {context} cannot be used until the transaction commits, and line {line} uses it: that statement fails with `unsafe use of new value`"
        ),
        format!("move `ALTER TYPE {name} ADD VALUE` to its own migration, committed before the one that uses the value"),
    );
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str, pg_version: u32, assume_in_transaction: bool) -> Vec<String> {
        let opts = LintOptions {
            pg_version,
            assume_in_transaction,
            ..LintOptions::default()
        };
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "add-enum-value-in-transaction")
            .map(|d| d.message)
            .collect()
    }

    const SRC: &str = "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';\n\
        UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;";

    #[test]
    fn before_12_it_is_an_error() {
        assert_eq!(
            lint(SRC, 11, true),
            vec!["`ALTER TYPE order_status ADD VALUE` cannot run inside a transaction block before PostgreSQL 12, and this statement is in a file that runs in a transaction (`assume_in_transaction`)".to_string()]
        );
    }

    #[test]
    fn from_12_a_later_use_fails() {
        assert_eq!(
            lint(SRC, 12, true),
            vec!["`'refunded'` added to `order_status` in a file that runs in a transaction (`assume_in_transaction`) cannot be used until the transaction commits, and line 2 uses it: that statement fails with `unsafe use of new value`".to_string()]
        );
    }

    #[test]
    fn from_12_a_value_unused_in_the_transaction_is_fine() {
        // Used only after COMMIT, or not at all: PostgreSQL 12+ runs it in a transaction.
        let src = "BEGIN;\nALTER TYPE \"Mood\" ADD VALUE 'meh';\nCOMMIT;\nSELECT 'meh'::\"Mood\";";
        assert!(lint(src, 16, false).is_empty());
        let src = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE t SET note = 'other';";
        assert!(lint(src, 12, true).is_empty());
        // Before 12 the statement itself fails in a transaction block.
        assert_eq!(lint(src, 11, true).len(), 1);
    }

    #[test]
    fn autocommit_is_fine() {
        assert!(lint(SRC, 11, false).is_empty());
        assert!(lint(SRC, 15, false).is_empty());
    }
}
