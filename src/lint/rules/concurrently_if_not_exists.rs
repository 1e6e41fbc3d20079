use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "concurrently-if-not-exists",
    default_severity: Some(Severity::Warning),
    summary: "`CREATE INDEX CONCURRENTLY IF NOT EXISTS` silently keeps an INVALID index",
    docs: r#"## What it does
Flags `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`.

## Why is this bad?
When a concurrent index build fails (a lock timeout, a deadlock, a duplicate key for a unique
index, a cancelled deploy), PostgreSQL leaves the half-built index behind, marked INVALID: it
is maintained on every write but never used by queries. On the retry, `IF NOT EXISTS` sees an
index with that name and skips the build, with only a notice. The migration "succeeds", and
the index the queries need never exists.

## Example
```sql
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at);
```

## Use instead
```sql
-- drops a leftover invalid index from a failed run (and a valid one, which is rebuilt below)
DROP INDEX CONCURRENTLY IF EXISTS orders_created_at_idx;
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
```
Or check `pg_index.indisvalid` for the index before deciding to skip the build.
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::CreateIndex {
        name,
        table,
        concurrently: true,
        if_not_exists: true,
        ..
    } = &cx.stmt.kind
    else {
        return;
    };
    let index = name.as_deref().map_or_else(
        || "<index>".to_string(),
        |n| {
            ObjName {
                schema: table.schema.clone(),
                name: n.to_string(),
            }
            .to_string()
        },
    );
    let shown = name
        .as_deref()
        .map_or_else(String::new, |n| format!(" `{}`", quote_ident(n)));
    cx.report(
        cx.stmt.span_of(&["IF", "NOT", "EXISTS"]),
        format!(
            "`CREATE INDEX CONCURRENTLY IF NOT EXISTS` keeps an existing index{shown} on `{table}` even when a failed earlier run left it INVALID (never used by queries)"
        ),
        format!(
            "run `DROP INDEX CONCURRENTLY IF EXISTS {index};` first and create the index without `IF NOT EXISTS`, or check `pg_index.indisvalid` before skipping the build"
        ),
    );
}
