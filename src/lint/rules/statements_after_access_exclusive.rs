use std::ops::Range;

use super::{Checker, Rule};
use crate::lint::context::is_bookkeeping;
use crate::lint::Severity;
use crate::sql::ir::{ObjName, StmtKind};
use crate::sql::tokens::{Tok, TokKind};

pub const RULE: Rule = Rule {
    name: "statements-after-access-exclusive",
    default_severity: Some(Severity::Warning),
    summary: "more statements run while an ACCESS EXCLUSIVE lock is held",
    docs: r#"## What it does
Flags statements that run later in the same transaction as one that took ACCESS EXCLUSIVE on an
existing table (inside `BEGIN … COMMIT`, or in a file the migration tool wraps in a
transaction). The first such statement is reported, and every later one that scans or
rewrites a table or locks another table, with a stronger message. `SET`, `RESET`, `COMMIT`,
`ROLLBACK` and savepoints do not count. An `UPDATE` or `DELETE` of the locked table after DDL
on it is left to `unbatched-data-migration`, which reports it with the batched alternative.

## Why is this bad?
A lock is held until the transaction ends, not until the statement that took it ends. While
ACCESS EXCLUSIVE is held, every query on the table, even a plain `SELECT`, waits. An instant
`ALTER TABLE … ADD COLUMN` followed by an index build, a backfill or a validating constraint
keeps the table blocked for the whole duration of that slow statement. Locking a second table
while holding the first also makes deadlocks with application transactions likely (they lock
the same tables in another order), and the migration or the application's transactions get
killed.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
CREATE INDEX orders_shipped_at_idx ON orders (shipped_at);
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
COMMIT;
-- separately, without blocking writes (see `lockstep explain create-index-non-concurrently`)
CREATE INDEX CONCURRENTLY orders_shipped_at_idx ON orders (shipped_at);
```
One ACCESS EXCLUSIVE statement per transaction; several changes to the same table can be
combined into one `ALTER TABLE` with comma-separated actions.
"#,
    check,
};

/// The statement's kind as its leading keywords (`ALTER TABLE`, `CREATE UNIQUE INDEX`,
/// `UPDATE`; never a table name) and their span.
fn statement_kind(toks: &[Tok]) -> Option<(String, Range<usize>)> {
    let words: Vec<&str> = toks
        .iter()
        .take(4)
        .map_while(|t| match &t.kind {
            TokKind::Word { upper, .. } if !upper.is_empty() => Some(&**upper),
            _ => None,
        })
        .collect();
    let n = match *words.first()? {
        "CREATE" | "ALTER" | "DROP" | "INSERT" | "REFRESH" => {
            if matches!(words.get(1), Some(&"UNIQUE") | Some(&"MATERIALIZED")) {
                3
            } else {
                2
            }
        }
        _ => 1,
    };
    let n = n.min(words.len());
    Some((
        words[..n].join(" "),
        toks[0].span.start..toks[n - 1].span.end,
    ))
}

fn list(tables: &[&ObjName]) -> String {
    tables
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(cx: &mut Checker) {
    if !cx.ctx.in_transaction() || is_bookkeeping(&cx.stmt.kind) {
        return;
    }
    let Some((held, line)) = &cx.ctx.tx.access_exclusive else {
        return;
    };
    let existing = |t: &ObjName| !cx.ctx.is_new_table(t);
    let rewrites: Vec<&ObjName> = cx.locks.rewrites.iter().filter(|t| existing(t)).collect();
    let scans: Vec<&ObjName> = cx
        .locks
        .scans
        .iter()
        .filter(|t| existing(t) && !rewrites.contains(t))
        .collect();
    let others: Vec<String> = cx
        .locks
        .locks
        .iter()
        .filter(|l| !l.table.matches(held) && (l.via_index || existing(&l.table)))
        .map(|l| {
            if l.via_index {
                format!("the table of index `{}` ({})", l.table, l.mode)
            } else {
                format!("`{}` ({})", l.table, l.mode)
            }
        })
        .collect();
    // An `UPDATE`/`DELETE` of the locked table after DDL on it: `unbatched-data-migration`
    // reports that one.
    if let StmtKind::Update { table, .. } | StmtKind::Delete { table, .. } = &cx.stmt.kind {
        if others.is_empty() && table.matches(held) && cx.ctx.tx.ddl_tables.contains(&table.name) {
            return;
        }
    }
    let stronger = !rewrites.is_empty() || !scans.is_empty() || !others.is_empty();
    if !stronger && cx.ctx.tx.after_access_exclusive > 0 {
        return;
    }
    let (what, span) = match statement_kind(&cx.stmt.toks) {
        Some((kind, span)) => (format!("`{kind}`"), span),
        None => ("this statement".to_string(), cx.stmt.head_span()),
    };
    let held_since = format!("ACCESS EXCLUSIVE on `{held}` (taken on line {line}) is still held");
    let mut did = Vec::new();
    if !rewrites.is_empty() {
        did.push(format!("rewrites {}", list(&rewrites)));
    }
    if !scans.is_empty() {
        did.push(format!("scans {}", list(&scans)));
    }
    if !others.is_empty() {
        did.push(format!("locks {}", others.join(", ")));
    }
    let message = if !others.is_empty() {
        format!(
            "{what} {} while {held_since}: every query on `{held}` waits for it, and locking several tables in one transaction risks deadlocks",
            did.join(" and ")
        )
    } else if stronger {
        let work = if rewrites.is_empty() {
            "scan"
        } else {
            "rewrite"
        };
        format!(
            "{what} {} while {held_since}: every query on `{held}` waits for the whole {work}",
            did.join(" and ")
        )
    } else {
        format!("{what} runs while {held_since}: every query on `{held}` keeps waiting until the transaction ends")
    };
    let split = if cx.ctx.explicit_transaction {
        format!("`COMMIT` right after line {line} and run this statement in a separate transaction")
    } else {
        format!("split the migration after line {line} so this statement runs in a separate transaction")
    };
    let combine = match &cx.stmt.kind {
        StmtKind::AlterTable { table, .. } if table.matches(held) && !stronger => {
            format!(", or combine it with the statement on line {line} into one `ALTER TABLE`")
        }
        _ => String::new(),
    };
    cx.report(span, message, format!("{split}{combine}"));
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str, assume_in_transaction: bool) -> Vec<(usize, String, String)> {
        let opts = LintOptions {
            assume_in_transaction,
            ..LintOptions::default()
        };
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "statements-after-access-exclusive")
            .map(|d| (d.line, d.message, d.help.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_wrapped_file_is_one_transaction() {
        let src = "SET lock_timeout = '2s';\n\
                   ALTER TABLE orders ALTER COLUMN note SET DEFAULT '';\n\
                   SET statement_timeout = '5s';\n\
                   ALTER TABLE orders ALTER COLUMN memo DROP DEFAULT;\n\
                   ALTER TABLE orders ALTER COLUMN memo DROP NOT NULL;\n\
                   CREATE INDEX CONCURRENTLY orders_memo_idx ON orders (memo);";
        assert_eq!(
            lint(src, true),
            vec![
                (
                    4,
                    "`ALTER TABLE` runs while ACCESS EXCLUSIVE on `orders` (taken on line 2) is still held: every query on `orders` keeps waiting until the transaction ends".to_string(),
                    "split the migration after line 2 so this statement runs in a separate transaction, or combine it with the statement on line 2 into one `ALTER TABLE`".to_string()
                ),
                (
                    6,
                    "`CREATE INDEX` scans `orders` while ACCESS EXCLUSIVE on `orders` (taken on line 2) is still held: every query on `orders` waits for the whole scan".to_string(),
                    "split the migration after line 2 so this statement runs in a separate transaction".to_string()
                ),
            ]
        );
        assert!(lint(src, false).is_empty());
    }

    #[test]
    fn statement_kinds() {
        let kind = |src: &str| {
            super::statement_kind(&crate::sql::parse::analyze(src, 0..src.len()).toks).map(|k| k.0)
        };
        assert_eq!(kind("UPDATE orders SET a = 1;").as_deref(), Some("UPDATE"));
        assert_eq!(
            kind("CREATE UNIQUE INDEX i ON t (a);").as_deref(),
            Some("CREATE UNIQUE INDEX")
        );
        assert_eq!(
            kind("create index on t (a);").as_deref(),
            Some("CREATE INDEX")
        );
        assert_eq!(
            kind("ALTER TABLE \"T\" ADD COLUMN a int;").as_deref(),
            Some("ALTER TABLE")
        );
        assert_eq!(
            kind("REFRESH MATERIALIZED VIEW v;").as_deref(),
            Some("REFRESH MATERIALIZED VIEW")
        );
        assert_eq!(
            kind("INSERT INTO t VALUES (1);").as_deref(),
            Some("INSERT INTO")
        );
    }

    #[test]
    fn a_data_change_after_ddl_on_its_table_is_reported_once() {
        // unbatched-data-migration reports the UPDATE held up by its own table's DDL lock.
        let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE orders ADD COLUMN code int;\n\
                   UPDATE orders SET code = 0 WHERE id < 100;\nDELETE FROM orders WHERE code IS NULL;\nCOMMIT;";
        let r = lint_source(src, &LintOptions::default());
        for line in [4, 5] {
            let rules: Vec<&str> = r
                .diagnostics
                .iter()
                .filter(|d| d.line == line)
                .map(|d| d.rule)
                .collect();
            assert_eq!(rules, ["unbatched-data-migration"], "line {line}");
        }
        // A data change on another table still counts here.
        let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE orders ADD COLUMN code int;\n\
                   UPDATE customers SET code = 0 WHERE id < 100;\nCOMMIT;";
        assert_eq!(lint(src, false).len(), 1);
    }

    #[test]
    fn locking_a_second_table() {
        let src =
            "BEGIN;\nLOCK TABLE customers;\nINSERT INTO audit_log (what) VALUES ('x');\nCOMMIT;";
        assert_eq!(
            lint(src, false),
            vec![(
                3,
                "`INSERT INTO` locks `audit_log` (ROW EXCLUSIVE) while ACCESS EXCLUSIVE on `customers` (taken on line 2) is still held: every query on `customers` waits for it, and locking several tables in one transaction risks deadlocks".to_string(),
                "`COMMIT` right after line 2 and run this statement in a separate transaction".to_string()
            )]
        );
    }
}
