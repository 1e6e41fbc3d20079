use super::{Checker, Rule};
use crate::lint::fix::{not_valid_then_validate, Fix};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, Constraint, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-foreign-key-validating",
    default_severity: Some(Severity::Error),
    summary: "`ADD FOREIGN KEY` without `NOT VALID` blocks writes on both tables while it scans",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD [CONSTRAINT …] FOREIGN KEY … REFERENCES …` on an existing table without
`NOT VALID`, and `ADD COLUMN … REFERENCES …`.

## Why is this bad?
Adding a validated foreign key takes SHARE ROW EXCLUSIVE on **both** the referencing and the
referenced table, and scans the referencing table to check every row. Writes to both tables
wait for the whole scan.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id);
```

## Use instead
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- in a separate transaction: SHARE UPDATE EXCLUSIVE on orders, ROW SHARE on customers
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
```
For `ADD COLUMN … REFERENCES`, add the column first, then the constraint as above.

Online: a playbook of kind `foreign-key` runs both steps against the live database, with
`lock_timeout` retries, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`;
examples: `playbooks/foreign-key-*.toml`).
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
        match &a.kind {
            ActionKind::AddConstraint {
                name,
                constraint: Constraint::ForeignKey { references, .. },
                not_valid: false,
            } => {
                let validate = name.as_deref().unwrap_or("<name>");
                let fix: Option<Fix> = name
                    .as_deref()
                    .and_then(|n| not_valid_then_validate(cx, a, table, n));
                cx.report_fix(
                    a.span.clone(),
                    format!(
                        "adding a foreign key validates every row under SHARE ROW EXCLUSIVE on `{table}` and `{}`: writes to both wait",
                        references.table
                    ),
                    format!("add it with `NOT VALID`, then run `ALTER TABLE {table} VALIDATE CONSTRAINT {validate}` in a separate transaction"),
                    fix,
                );
                cx.online("foreign-key", "run it");
            }
            ActionKind::AddColumn { column, .. } => {
                if let Some(fk) = &column.references {
                    cx.report(
                        a.span.clone(),
                        format!(
                            "adding column `{}` with `REFERENCES {}` takes SHARE ROW EXCLUSIVE on `{table}` and `{}` and validates the key",
                            column.name, fk.table, fk.table
                        ),
                        "add the column without `REFERENCES`, then add the foreign key as a named constraint with `NOT VALID` and validate it in a separate transaction",
                    );
                    cx.online("foreign-key", "add the foreign key");
                }
            }
            _ => {}
        }
    }
}
