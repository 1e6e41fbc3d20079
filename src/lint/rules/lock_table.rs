use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{LockMode, StmtKind};

pub const RULE: Rule = Rule {
    name: "lock-table",
    default_severity: Some(Severity::Error),
    summary: "an explicit `LOCK TABLE` blocks traffic until the transaction ends",
    docs: r#"## What it does
Flags every explicit `LOCK [TABLE]` on an existing table.

## Why is this bad?
`LOCK TABLE t` without `IN … MODE` takes ACCESS EXCLUSIVE, the strongest lock: every read
and write of `t` waits until the transaction commits, and while the `LOCK` itself waits for
running queries, every new query on `t` queues behind it. Weaker modes still block whatever
conflicts with them (`SHARE` and `SHARE ROW EXCLUSIVE` block all writes) for the rest of the
transaction. A migration rarely needs an explicit lock: each statement takes the lock it
needs, for as long as it needs it.

## Example
```sql
BEGIN;
LOCK TABLE orders;
UPDATE orders SET status = 'archived' WHERE created_at < '2020-01-01';
COMMIT;
```

## Use instead
Drop the `LOCK`. If the migration truly needs one, bound the wait and take the weakest mode
that suffices:
```sql
BEGIN;
SET LOCAL lock_timeout = '2s';
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;  -- blocks writes, not reads
-- …
COMMIT;
```
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::Lock { tables, mode } = &cx.stmt.kind else {
        return;
    };
    let existing: Vec<String> = tables
        .iter()
        .filter(|t| !cx.ctx.is_new_table(t))
        .map(|t| format!("`{t}`"))
        .collect();
    if existing.is_empty() {
        return;
    }
    let effect = if mode.blocks_reads() {
        "every read and write waits".to_string()
    } else if mode.blocks_writes() {
        "every write waits".to_string()
    } else {
        let conflicts: Vec<&str> = LockMode::ALL
            .iter()
            .filter(|m| mode.conflicts_with(**m))
            .map(|m| m.sql_name())
            .collect();
        format!(
            "statements that need {} wait (schema changes among them)",
            conflicts.join(", ")
        )
    };
    let toks = &cx.stmt.toks;
    let span = match (toks.first(), toks.get(1)) {
        (Some(a), Some(b)) if b.is("TABLE") => a.span.start..b.span.end,
        (Some(a), _) => a.span.clone(),
        _ => cx.stmt.head_span(),
    };
    let mut help = if mode.blocks_writes() {
        "remove it: each statement takes the lock it needs; if the migration truly needs one, set `lock_timeout` first and use the weakest mode that suffices (`SHARE ROW EXCLUSIVE` blocks writes but not reads)".to_string()
    } else {
        "remove it if nothing relies on it; otherwise set `lock_timeout` first so the lock request cannot queue traffic behind it".to_string()
    };
    if !cx.ctx.in_transaction() {
        help.push_str("; note that outside a transaction block PostgreSQL rejects `LOCK TABLE`");
    }
    cx.report(
        span,
        format!(
            "`LOCK TABLE` takes {mode} on {} until the transaction ends: {effect}",
            existing.join(", ")
        ),
        help,
    );
}

#[cfg(test)]
mod tests {

    fn findings(src: &str) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("lock-table", src, 15)
    }

    #[test]
    fn message_follows_the_mode() {
        let f = findings("BEGIN;\nLOCK TABLE orders;\nCOMMIT;");
        assert_eq!(
            f[0].0,
            "`LOCK TABLE` takes ACCESS EXCLUSIVE on `orders` until the transaction ends: every read and write waits"
        );
        assert!(!f[0].1.contains("outside a transaction block"));
        let f = findings("BEGIN;\nLOCK orders, \"select\" IN SHARE MODE;\nCOMMIT;");
        assert_eq!(
            f[0].0,
            "`LOCK TABLE` takes SHARE on `orders`, `\"select\"` until the transaction ends: every write waits"
        );
        let f = findings("LOCK TABLE orders IN ACCESS SHARE MODE;");
        assert_eq!(
            f[0].0,
            "`LOCK TABLE` takes ACCESS SHARE on `orders` until the transaction ends: statements that need ACCESS EXCLUSIVE wait (schema changes among them)"
        );
        assert!(f[0]
            .1
            .ends_with("outside a transaction block PostgreSQL rejects `LOCK TABLE`"));
    }

    #[test]
    fn new_tables_are_not_flagged() {
        assert!(findings("BEGIN;\nCREATE TABLE t (a int);\nLOCK TABLE t;\nCOMMIT;").is_empty());
    }
}
