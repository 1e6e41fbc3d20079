use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;

pub const RULE: Rule = Rule {
    name: "unbatched-data-migration",
    default_severity: Some(Severity::Error),
    summary: "`UPDATE`/`DELETE` of a whole existing table in one statement",
    docs: r#"## What it does
Flags `UPDATE` and `DELETE` without `WHERE` on an existing table, and any `UPDATE` or `DELETE`
on a table that was changed by DDL earlier in the same transaction.

## Why is this bad?
One statement over the whole table locks every row it touches until the transaction ends
(concurrent updates of those rows wait), writes a burst of WAL that replicas must replay,
leaves a dead copy of every row behind (bloat, a long autovacuum), and keeps a long transaction
open that holds back vacuum everywhere.

In the same transaction as DDL on the table it is worse: the DDL's lock (usually ACCESS
EXCLUSIVE) is held until `COMMIT`, so reads and writes of the table wait for the whole data
change.

## Example
```sql
ALTER TABLE orders ADD COLUMN status_code int;
UPDATE orders SET status_code = 0;
```

## Use instead
Run the DDL in its own short migration, then backfill in batches, each in its own transaction:
```sql
ALTER TABLE orders ADD COLUMN status_code int;
-- separate migration, repeated until no rows are left:
UPDATE orders SET status_code = 0
WHERE id IN (SELECT id FROM orders WHERE status_code IS NULL LIMIT 5000);
```
Online: a playbook of kind `backfill` runs the batched `UPDATE` against the live database, with
throttling, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`; examples:
`playbooks/backfill-*.toml`).
"#,
    check,
};

fn check(cx: &mut Checker) {
    let (verb, table, has_where) = match &cx.stmt.kind {
        StmtKind::Update { table, has_where } => ("UPDATE", table, *has_where),
        StmtKind::Delete { table, has_where } => ("DELETE", table, *has_where),
        _ => return,
    };
    if cx.ctx.is_new_table(table) {
        return;
    }
    let after_ddl = cx.ctx.tx.ddl_tables.contains(&table.name);
    if has_where && !after_ddl {
        return;
    }
    let what = if has_where {
        format!("`{verb}` on `{table}`")
    } else {
        format!("`{verb}` of every row of `{table}`")
    };
    let (message, help) = if after_ddl {
        let lock = match &cx.ctx.tx.access_exclusive {
            Some((t, line)) if t.name == table.name => {
                format!("the ACCESS EXCLUSIVE lock taken on line {line}")
            }
            _ => "the lock taken by that DDL".to_string(),
        };
        (
            format!("{what} runs in the same transaction as DDL on it: {lock} is held until the data change commits, so traffic on `{table}` waits for it"),
            format!("commit the DDL first, then change the data in a separate migration, in batches (`{verb} … WHERE id IN (SELECT id … LIMIT 5000)`), each batch in its own transaction"),
        )
    } else {
        (
            format!("{what} in one statement: every row stays locked until commit, with a burst of WAL and a dead copy of every row"),
            format!("process `{table}` in batches (`{verb} … WHERE id IN (SELECT id … LIMIT 5000)`), each batch in its own transaction, outside any DDL transaction"),
        )
    };
    let span = match (
        cx.stmt.toks.first(),
        cx.stmt.toks.get(1),
        cx.stmt.toks.get(2),
    ) {
        (Some(a), Some(b), Some(c)) if verb == "DELETE" && b.is("FROM") => a.span.start..c.span.end,
        (Some(a), Some(b), _) => a.span.start..b.span.end,
        _ => cx.stmt.head_span(),
    };
    cx.report(span, message, help);
    // A backfill playbook updates rows in batches; it does not delete them.
    if verb == "UPDATE" {
        cx.online(
            "backfill",
            if after_ddl {
                "run the batches"
            } else {
                "run it"
            },
        );
    }
}

#[cfg(test)]
mod tests {
    fn findings(src: &str) -> Vec<String> {
        crate::lint::rules::test_findings("unbatched-data-migration", src, 15)
            .into_iter()
            .map(|(message, _)| message)
            .collect()
    }

    #[test]
    fn whole_table_and_same_transaction_as_ddl() {
        assert_eq!(
            findings("UPDATE orders SET total = 0;"),
            ["`UPDATE` of every row of `orders` in one statement: every row stays locked until commit, with a burst of WAL and a dead copy of every row"]
        );
        assert!(findings("DELETE FROM orders WHERE id = 1;").is_empty());
        let src = "BEGIN;\nALTER TABLE orders ADD COLUMN code int;\nUPDATE orders SET code = 0 WHERE id < 100;\nCOMMIT;";
        assert_eq!(
            findings(src),
            ["`UPDATE` on `orders` runs in the same transaction as DDL on it: the ACCESS EXCLUSIVE lock taken on line 2 is held until the data change commits, so traffic on `orders` waits for it"]
        );
        // Autocommit: the DDL committed on its own.
        assert!(findings(
            "ALTER TABLE orders ADD COLUMN code int;\nUPDATE orders SET code = 0 WHERE id < 100;"
        )
        .is_empty());
        assert!(
            findings("CREATE TABLE t (a int);\nUPDATE t SET a = 1;\nDELETE FROM t;").is_empty()
        );
    }

    #[test]
    fn only_names_the_real_table() {
        assert_eq!(
            findings("DELETE FROM ONLY orders;"),
            ["`DELETE` of every row of `orders` in one statement: every row stays locked until commit, with a burst of WAL and a dead copy of every row"]
        );
        assert!(findings("UPDATE ONLY orders SET total = 0 WHERE id = 1;").is_empty());
        let src = "BEGIN;\nALTER TABLE orders ADD COLUMN code int;\nUPDATE ONLY orders SET code = 0 WHERE id < 100;\nCOMMIT;";
        assert_eq!(findings(src).len(), 1);
    }
}
