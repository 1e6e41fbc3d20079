use super::{Checker, Rule};
use crate::lint::fix::{not_valid_then_validate, Fix};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, Constraint, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-check-validating",
    default_severity: Some(Severity::Error),
    summary: "`ADD CHECK` without `NOT VALID` scans the table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD [CONSTRAINT …] CHECK (…)` on an existing table without `NOT VALID`,
and `ADD COLUMN … CHECK (…)`.

## Why is this bad?
Adding a validated check constraint reads every row to prove the condition while holding
ACCESS EXCLUSIVE on the table: all reads and writes wait for the full scan.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);
```

## Use instead
```sql
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
-- in a separate transaction (takes only SHARE UPDATE EXCLUSIVE; reads and writes continue)
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;
```
`NOT VALID` enforces the constraint for new and updated rows at once; `VALIDATE` checks the old
rows without blocking traffic.

Online: a playbook of kind `check` runs both steps against the live database, with
`lock_timeout` retries, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`;
examples: `playbooks/check-*.toml`).
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
                constraint: Constraint::Check { .. },
                not_valid: false,
            } => {
                let shown = name.as_deref().map_or(String::new(), |n| format!(" `{n}`"));
                let validate = name.as_deref().unwrap_or("<name>");
                let fix: Option<Fix> = name
                    .as_deref()
                    .and_then(|n| not_valid_then_validate(cx, a, table, n));
                cx.report_fix(
                    a.span.clone(),
                    format!("adding check constraint{shown} validates every row of `{table}` under ACCESS EXCLUSIVE"),
                    format!("add it with `NOT VALID`, then run `ALTER TABLE {table} VALIDATE CONSTRAINT {validate}` in a separate transaction"),
                    fix,
                );
                cx.online("check", "run it");
            }
            ActionKind::AddColumn { column, .. } if column.check.is_some() => {
                cx.report(
                    a.span.clone(),
                    format!("adding column `{}` with a `CHECK` validates every row of `{table}` under ACCESS EXCLUSIVE", column.name),
                    "add the column first, then the check as a named constraint with `NOT VALID`, and validate it in a separate transaction",
                );
                cx.online("check", "add the check");
            }
            _ => {}
        }
    }
}
