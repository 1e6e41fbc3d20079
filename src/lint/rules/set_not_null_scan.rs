use super::{Checker, Rule};
use crate::lint::fix::{constraint_name, not_valid_then_validate, statement_lines, Edit, Fix};
use crate::lint::locks::{default_volatility, Volatility};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, Action, ActionKind, Constraint, ObjName, StmtKind};

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

A column added earlier in the same migration needs none of this: add it `NOT NULL` with a
constant default in the first place, which is instant since PostgreSQL 11 (the default is
stored once, no row is read or written):
```sql
ALTER TABLE orders ADD COLUMN priority int DEFAULT 0 NOT NULL;
```

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
                if v >= 11 {
                    if let Some(added) = added_in_this_file(cx, table, column) {
                        report_new_column(cx, a, table, column, added, actions.len() == 1);
                        continue;
                    }
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

/// The `ADD COLUMN` earlier in this file that created `table.column`, when the column is
/// new in this migration.
fn added_in_this_file<'a>(cx: &Checker<'a>, table: &ObjName, column: &str) -> Option<&'a Action> {
    cx.others.added_column(table, column)
}

/// `SET NOT NULL` on a column added earlier in the same migration: adding it `NOT NULL
/// DEFAULT x` in the first place is instant (PostgreSQL 11+) and needs no scan. When the
/// `ADD COLUMN` already has a constant default and the `SET NOT NULL` stands alone, the fix
/// moves the `NOT NULL` into the `ADD COLUMN`.
fn report_new_column(
    cx: &mut Checker,
    set: &Action,
    table: &ObjName,
    column: &str,
    added: &Action,
    alone: bool,
) {
    let ActionKind::AddColumn { column: def, .. } = &added.kind else {
        return;
    };
    let col = quote_ident(column);
    let constant_default = def.default.as_deref().is_some_and(|d| {
        !d.trim().eq_ignore_ascii_case("null")
            && default_volatility(d, &cx.ctx.catalog) == Volatility::Safe
    });
    let fix = (alone && constant_default && !def.not_null)
        .then(|| statement_lines(cx.src, &cx.stmt.span))
        .flatten()
        .map(|stmt| {
            Fix::new(vec![
                Fix::insert(added.span.end, " NOT NULL"),
                Edit {
                    span: stmt,
                    text: String::new(),
                },
            ])
        });
    let example = match def.default.as_deref().filter(|_| constant_default) {
        Some(d) => format!("ADD COLUMN {col} {} DEFAULT {d} NOT NULL", def.data_type),
        None => format!(
            "ADD COLUMN {col} {} NOT NULL DEFAULT <value>",
            def.data_type
        ),
    };
    cx.report_fix(
        set.span.clone(),
        format!("`SET NOT NULL` on `{table}.{column}` scans the whole table under ACCESS EXCLUSIVE"),
        format!(
            "`{column}` is added earlier in this migration: add it with `{example}` in one statement instead (NOT NULL DEFAULT with a constant is instant since PostgreSQL 11: no rewrite, no scan), and drop the default afterwards if new rows must not get it"
        ),
        fix,
    );
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
