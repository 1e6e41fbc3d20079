use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "drop-column",
    default_severity: Some(Severity::Warning),
    summary: "dropping a column breaks running code that still reads it",
    docs: r#"## What it does
Flags `ALTER TABLE … DROP [COLUMN] c` on a table that was not created earlier in the same
file. A down (undo, revert, rollback) section that drops a column its own migration's up
part added only undoes that migration: it is not flagged.

## Why is this bad?
The application version running during the deploy still selects, inserts or updates the
column, and fails with `column "c" does not exist` as soon as the drop commits. ORMs that
list every column of a model (Rails, Django, Hibernate) fail even on queries that never use
it. The data is gone: rolling the deploy back cannot bring it back.

## Example
```sql
ALTER TABLE customers DROP COLUMN legacy_code;
```

## Use instead
Contract in steps:
1. deploy code that no longer reads or writes the column (tell the ORM to ignore it, e.g.
   `ignored_columns` in Rails);
2. then, in a later migration:
```sql
ALTER TABLE customers DROP COLUMN legacy_code;
```
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::AlterTable { table, actions } = &cx.stmt.kind else {
        return;
    };
    if cx.ctx.is_new_table(table) {
        return;
    }
    for a in actions {
        if let ActionKind::DropColumn { names } = &a.kind {
            for name in names {
                if cx.ctx.undoes_column(table, name) {
                    continue;
                }
                let c = quote_ident(name);
                cx.report(
                    a.span.clone(),
                    format!(
                        "dropping column `{c}` of `{table}` deletes its data and breaks running code (and ORMs with cached column lists) that still use it"
                    ),
                    format!(
                        "first deploy code that no longer reads or writes `{c}` (tell the ORM to ignore it), then drop it in a later migration"
                    ),
                );
            }
        }
    }
}
