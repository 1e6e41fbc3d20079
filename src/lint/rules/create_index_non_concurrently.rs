use super::{Checker, Rule};
use crate::lint::fix::{
    can_run_outside_transaction, outside_transaction, place_after, statement_lines, Edit, Fix,
};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;

pub const RULE: Rule = Rule {
    name: "create-index-non-concurrently",
    default_severity: Some(Severity::Error),
    summary: "`CREATE INDEX` without `CONCURRENTLY` blocks writes for the whole build",
    docs: r#"## What it does
Flags `CREATE [UNIQUE] INDEX` on an existing table without `CONCURRENTLY`.

## Why is this bad?
A plain `CREATE INDEX` takes a SHARE lock on the table and holds it until the index is built.
SHARE conflicts with ROW EXCLUSIVE, so every `INSERT`, `UPDATE` and `DELETE` on the table waits
for the whole build: minutes to hours on a large table.

Indexes on a table created earlier in the same file are not flagged: that table is empty.

## Example
```sql
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
```

## Use instead
```sql
-- in its own migration, outside a transaction block
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);
```
A concurrent build takes SHARE UPDATE EXCLUSIVE, which lets reads and writes continue. It
cannot run inside a transaction block, so mark the migration non-transactional. If it fails it
leaves an INVALID index behind: drop it (`DROP INDEX CONCURRENTLY`) and retry.

On a partitioned table, where `CONCURRENTLY` is not accepted: `CREATE INDEX … ON ONLY parent`,
then `CREATE INDEX CONCURRENTLY` on each partition, then `ALTER INDEX parent_idx ATTACH
PARTITION part_idx` for each.

Online: a playbook of kind `index` builds the index against the live database, with
`lock_timeout` retries, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`;
examples: `playbooks/index-*.toml`).
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::CreateIndex {
        table,
        concurrently: false,
        only,
        unique,
        ..
    } = &cx.stmt.kind
    else {
        return;
    };
    if *only || cx.ctx.is_new_table(table) {
        return;
    }
    let what = if *unique {
        "CREATE UNIQUE INDEX"
    } else {
        "CREATE INDEX"
    };
    let span = cx.stmt.span_of(&["INDEX"]);
    let span = cx
        .stmt
        .toks
        .first()
        .map_or(span.clone(), |t| t.span.start..span.end);
    let partitioned = cx.ctx.catalog.table(table).is_some_and(|t| t.partitioned);
    let fix = if partitioned {
        None
    } else {
        concurrently_fix(cx)
    };
    cx.report_fix(
        span,
        format!("`{what}` without `CONCURRENTLY` blocks writes to `{table}` while the index builds (SHARE lock)"),
        if partitioned {
            format!("`{table}` is partitioned: `CREATE INDEX … ON ONLY {table}`, then `CREATE INDEX CONCURRENTLY` on each partition and `ALTER INDEX … ATTACH PARTITION`")
        } else {
            format!("use `{what} CONCURRENTLY` {}", outside_transaction(cx))
        },
        fix,
    );
    cx.online("index", "run it");
}

/// Adds `CONCURRENTLY` after `INDEX`; inside an explicit transaction the statement also
/// moves after its `COMMIT`. No fix when the whole file is one transaction.
fn concurrently_fix(cx: &Checker) -> Option<Fix> {
    if !can_run_outside_transaction(cx) {
        return None;
    }
    let index_kw = cx.stmt.toks.iter().find(|t| t.is("INDEX"))?;
    let at = index_kw.span.end;
    if !cx.ctx.explicit_transaction {
        return Some(Fix::new(vec![Fix::insert(at, " CONCURRENTLY")]));
    }
    let lines = statement_lines(cx.src, &cx.stmt.span)?;
    let text = format!(
        "{} CONCURRENTLY{}",
        &cx.src[cx.stmt.span.start..at],
        &cx.src[at..cx.stmt.span.end]
    );
    let moved = place_after(cx, &text)?;
    Some(Fix::new(vec![
        Edit {
            span: lines,
            text: String::new(),
        },
        moved,
    ]))
}
