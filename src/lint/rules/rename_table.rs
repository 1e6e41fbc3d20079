use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "rename-table",
    default_severity: Some(Severity::Warning),
    summary: "renaming a table breaks running application code",
    docs: r#"## What it does
Flags `ALTER TABLE a RENAME TO b` on a table that was not created earlier in the same file.

## Why is this bad?
During a deploy the old version of the application keeps running next to the migration.
From the moment the rename commits, every query it sends to the old name fails with
`relation "a" does not exist`.

## Example
```sql
ALTER TABLE customers RENAME TO clients;
```

## Use instead
Bridge the deploy with a view under the old name, in the same transaction:
```sql
BEGIN;
ALTER TABLE customers RENAME TO clients;
CREATE VIEW customers AS SELECT * FROM clients;
COMMIT;
-- later, once no deployed code uses the old name:
DROP VIEW customers;
```
A simple view like this is updatable, so old code can keep inserting, updating and
deleting through it.
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
        if let ActionKind::RenameTable { to } = &a.kind {
            let new = ObjName {
                schema: table.schema.clone(),
                name: to.clone(),
            };
            cx.report(
                a.span.clone(),
                format!(
                    "renaming table `{table}` to `{}` breaks every running query that still uses `{table}`",
                    quote_ident(to)
                ),
                format!(
                    "in the same transaction, add `CREATE VIEW {table} AS SELECT * FROM {new};` so old code keeps working, and drop the view once no deployed code uses the old name"
                ),
            );
        }
    }
}
