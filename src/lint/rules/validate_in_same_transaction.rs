use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, Constraint, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "validate-in-same-transaction",
    default_severity: Some(Severity::Error),
    summary: "`VALIDATE CONSTRAINT` in the transaction that added it `NOT VALID` gains nothing",
    docs: r#"## What it does
Flags `ALTER TABLE … VALIDATE CONSTRAINT c` when `c` was added with `NOT VALID` earlier in the
same transaction: after an explicit `BEGIN`, in a file the migration tool wraps in a
transaction (`assume_in_transaction`), or in the same `ALTER TABLE` statement. Tables created
earlier in the same file are empty, so validating them is instant and not flagged.

## Why is this bad?
`NOT VALID` exists to split a constraint in two: a brief `ADD … NOT VALID` under a strong lock
(ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE on both tables for a foreign key), then a
`VALIDATE` that scans the table under SHARE UPDATE EXCLUSIVE while reads and writes go on.
Locks are held until the transaction ends, so validating in the same transaction scans the
whole table while the strong lock from the `ADD` is still held: exactly the outage
`NOT VALID` was meant to avoid.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
COMMIT;
```

## Use instead
```sql
-- migration 1
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- migration 2 (a separate transaction)
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
```
"#,
    check,
};

/// What the `ADD … NOT VALID` of `name` on `table` locked, when known.
fn add_lock(cx: &Checker, table: &ObjName, name: &str, same: Option<&Constraint>) -> String {
    let fk_ref = match same {
        Some(Constraint::ForeignKey { references, .. }) => Some(Some(references.table.clone())),
        Some(_) => Some(None),
        None => cx.ctx.catalog.table(table).and_then(|t| {
            if let Some(fk) = t
                .foreign_keys
                .iter()
                .find(|f| f.name.as_deref() == Some(name))
            {
                Some(Some(fk.references.clone()))
            } else if t.checks.iter().any(|c| c.name.as_deref() == Some(name)) {
                Some(None)
            } else {
                None
            }
        }),
    };
    match fk_ref {
        Some(Some(r)) => {
            format!("SHARE ROW EXCLUSIVE on `{table}` and `{r}` (writes blocked on both)")
        }
        Some(None) => format!("ACCESS EXCLUSIVE on `{table}` (reads and writes blocked)"),
        None => "the lock taken by the `ADD CONSTRAINT`".to_string(),
    }
}

fn check(cx: &mut Checker) {
    let StmtKind::AlterTable { table, actions } = &cx.stmt.kind else {
        return;
    };
    // A table created in this file is empty: validating it is instant.
    if cx.ctx.is_new_table(table) {
        return;
    }
    for (i, a) in actions.iter().enumerate() {
        let ActionKind::ValidateConstraint { name } = &a.kind else {
            continue;
        };
        let same_statement = actions[..i].iter().find_map(|b| match &b.kind {
            ActionKind::AddConstraint {
                name: Some(n),
                constraint,
                not_valid: true,
            } if n == name => Some(constraint),
            _ => None,
        });
        let earlier = cx
            .ctx
            .tx
            .not_valid
            .contains(&(table.name.clone(), name.clone()));
        if same_statement.is_none() && !earlier {
            continue;
        }
        let lock = add_lock(cx, table, name, same_statement);
        let c = quote_ident(name);
        let where_ = if same_statement.is_some() {
            "statement that adds"
        } else {
            "transaction that added"
        };
        cx.report(
            a.span.clone(),
            format!(
                "`VALIDATE CONSTRAINT {c}` runs in the same {where_} `{c}` with `NOT VALID`: it scans `{table}` while still holding {lock}"
            ),
            format!(
                "commit after the `ADD CONSTRAINT … NOT VALID` and run `ALTER TABLE {table} VALIDATE CONSTRAINT {c};` in a separate migration, where it takes only SHARE UPDATE EXCLUSIVE"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str, assume_in_transaction: bool) -> Vec<String> {
        let opts = LintOptions {
            assume_in_transaction,
            ..LintOptions::default()
        };
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "validate-in-same-transaction")
            .map(|d| d.message)
            .collect()
    }

    const SRC: &str = "SET lock_timeout = '2s';\n\
        ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\n\
        ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;";

    #[test]
    fn a_file_the_tool_wraps_is_one_transaction() {
        assert_eq!(
            lint(SRC, true),
            vec!["`VALIDATE CONSTRAINT orders_total_check` runs in the same transaction that added `orders_total_check` with `NOT VALID`: it scans `orders` while still holding ACCESS EXCLUSIVE on `orders` (reads and writes blocked)".to_string()]
        );
    }

    #[test]
    fn autocommit_statements_are_separate_transactions() {
        assert!(lint(SRC, false).is_empty());
    }
}
