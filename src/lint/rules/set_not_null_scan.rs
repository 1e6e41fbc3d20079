use super::{Checker, Rule};
use crate::lint::fix::{constraint_name, not_valid_then_validate, Edit, Fix};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, Constraint, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "set-not-null-scan",
    default_severity: Some(Severity::Error),
    summary: "`SET NOT NULL` scans the whole table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ALTER COLUMN … SET NOT NULL` on an existing table when no validated
`CHECK (col IS NOT NULL)` constraint is known for that column, and (PostgreSQL 18) `ADD
CONSTRAINT c NOT NULL col` without `NOT VALID`.

## Why is this bad?
PostgreSQL must prove that no row holds a NULL, so it reads the whole table while holding
ACCESS EXCLUSIVE: reads and writes wait for the full scan. From PostgreSQL 12, the scan is
skipped when a valid `CHECK (col IS NOT NULL)` constraint already proves it.

## Example
```sql
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
```

## Use instead
PostgreSQL 12 and later:
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null
    CHECK (customer_id IS NOT NULL) NOT VALID;          -- instant
-- in a separate transaction: scans, but allows reads and writes
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL; -- instant, uses the check
ALTER TABLE orders DROP CONSTRAINT orders_customer_id_not_null;
```
PostgreSQL 18: `ADD CONSTRAINT c NOT NULL customer_id NOT VALID`, then `VALIDATE CONSTRAINT c`.

Online: a playbook of kind `not-null` runs these steps against the live database, with
`lock_timeout` retries, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`;
examples: `playbooks/not-null-*.toml`).
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
    let v = cx.ctx.pg_version;
    for a in actions {
        match &a.kind {
            ActionKind::SetNotNull { column } => {
                if v >= 12 && cx.ctx.has_valid_not_null_check(table, column) {
                    continue;
                }
                let help = if v >= 12 {
                    format!(
                        "add `CHECK ({column} IS NOT NULL) NOT VALID`, `VALIDATE` it in a separate transaction, then `SET NOT NULL` and drop the check"
                    )
                } else {
                    format!(
                        "before PostgreSQL 12 (target: {v}) `SET NOT NULL` always scans; keep a validated `CHECK ({column} IS NOT NULL) NOT VALID` constraint instead"
                    )
                };
                let fix = if v >= 12 && actions.len() == 1 {
                    four_step_fix(cx, table, column)
                } else {
                    None
                };
                cx.report_fix(
                    a.span.clone(),
                    format!("`SET NOT NULL` on `{table}.{column}` scans the whole table under ACCESS EXCLUSIVE"),
                    help,
                    fix,
                );
                // Before 12 every `SET NOT NULL` scans: no online way to offer.
                if v >= 12 {
                    cx.online("not-null", "run it");
                }
            }
            ActionKind::AddConstraint {
                constraint: Constraint::NotNull { column },
                not_valid: false,
                name,
            } => {
                let fix = name
                    .as_deref()
                    .and_then(|n| not_valid_then_validate(cx, a, table, n));
                let name = name.as_deref().unwrap_or("c");
                cx.report_fix(
                    a.span.clone(),
                    format!("adding a `NOT NULL` constraint on `{table}.{column}` scans the whole table under ACCESS EXCLUSIVE"),
                    format!("add it `NOT VALID`, then `VALIDATE CONSTRAINT {name}` in a separate transaction"),
                    fix,
                );
                cx.online("not-null", "run it");
            }
            _ => {}
        }
    }
}

/// Rewrites a lone `SET NOT NULL` statement into the four steps that avoid the scan
/// under ACCESS EXCLUSIVE. Only outside transactions: the validation must commit on its
/// own for the rest to gain anything.
fn four_step_fix(cx: &Checker, table: &ObjName, column: &str) -> Option<Fix> {
    if cx.ctx.in_transaction() {
        return None;
    }
    let c = quote_ident(&constraint_name(&table.name, column, "not_null"));
    let col = quote_ident(column);
    let text = format!(
        "ALTER TABLE {table} ADD CONSTRAINT {c} CHECK ({col} IS NOT NULL) NOT VALID;\n\
         ALTER TABLE {table} VALIDATE CONSTRAINT {c};\n\
         ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;\n\
         ALTER TABLE {table} DROP CONSTRAINT {c};"
    );
    Some(Fix::new(vec![Edit {
        span: cx.stmt.span.clone(),
        text,
    }]))
}
