use super::{Checker, Rule};
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
    cx.report(
        span,
        format!("`{what}` without `CONCURRENTLY` blocks writes to `{table}` while the index builds (SHARE lock)"),
        format!("use `{what} CONCURRENTLY` in a migration that does not run in a transaction"),
    );
}
