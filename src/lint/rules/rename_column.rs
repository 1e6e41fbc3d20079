use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "rename-column",
    default_severity: Some(Severity::Warning),
    summary: "renaming a column breaks running application code",
    docs: r#"## What it does
Flags `ALTER TABLE … RENAME [COLUMN] a TO b` on a table that was not created earlier in the
same file.

## Why is this bad?
During a deploy the old version of the application keeps running next to the migration (and
often for minutes after it, on instances not yet replaced). Every query it sends that names
the old column fails with `column "a" does not exist` from the moment the rename commits. ORMs
that cache column lists break the same way.

## Example
```sql
ALTER TABLE customers RENAME COLUMN fullname TO display_name;
```

## Use instead
Expand and contract over several deploys:
```sql
-- 1. expand: add the new column and keep both in sync
ALTER TABLE customers ADD COLUMN display_name text;
-- (a trigger, or application code, writes both columns; backfill old rows in batches)
-- 2. deploy code that reads and writes only display_name
-- 3. contract, in a later migration:
ALTER TABLE customers DROP COLUMN fullname;
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
        if let ActionKind::RenameColumn { from, to } = &a.kind {
            let (from, to) = (quote_ident(from), quote_ident(to));
            cx.report(
                a.span.clone(),
                format!(
                    "renaming column `{from}` of `{table}` to `{to}` breaks every running query that still uses `{from}`"
                ),
                format!(
                    "expand and contract instead: add `{to}`, write both columns and backfill, deploy code that uses only `{to}`, then drop `{from}` in a later migration"
                ),
            );
        }
    }
}
