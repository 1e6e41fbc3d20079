use super::{Checker, Rule};
use crate::lint::fix::{must_be_alone_but_is_not, place_after, statement_lines, Edit, Fix};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "concurrently-in-transaction",
    default_severity: Some(Severity::Error),
    summary: "a statement that cannot run in a transaction block is inside one",
    docs: r#"## What it does
Flags `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`,
`DETACH PARTITION … CONCURRENTLY`, `VACUUM` and `CREATE DATABASE` inside a transaction block:
after an explicit `BEGIN`, or anywhere in a file the migration tool wraps in a transaction
(`assume_in_transaction = true`). For tools that run such a statement only when it is the
only statement of its file, also when it shares its file with any other statement, even a
`SET` or one after `COMMIT`: golang-migrate and Prisma send the file as one multi-statement
query, which PostgreSQL runs as one implicit transaction, and Flyway refuses a script that
mixes it with other statements unless `mixed` is on.

## Why is this bad?
PostgreSQL refuses them: `ERROR: CREATE INDEX CONCURRENTLY cannot run inside a transaction
block`. The migration fails at deploy time, often after earlier statements already ran.

## Example
```sql
BEGIN;
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
COMMIT;
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
```
Put the statement in its own migration and mark that migration non-transactional with your
migration tool's marker (for example `-- +goose NO TRANSACTION`, `-- no-transaction` for sqlx,
`transaction:false` for dbmate).
"#,
    check,
};

fn check(cx: &mut Checker) {
    // golang-migrate, Prisma and Flyway fail such a statement unless it is alone in its file.
    let not_alone = cx
        .ctx
        .alone_reason()
        .filter(|_| must_be_alone_but_is_not(cx));
    if !cx.ctx.in_transaction() && not_alone.is_none() {
        return;
    }
    let Some(what) = cx.stmt.kind.cannot_run_in_transaction() else {
        return;
    };
    let span = match &cx.stmt.kind {
        StmtKind::Vacuum { .. } => cx.stmt.span_of(&["VACUUM"]),
        StmtKind::CreateDatabase => cx.stmt.span_of(&["CREATE", "DATABASE"]),
        StmtKind::AlterTable { actions, .. } => match actions.iter().find(|a| {
            matches!(
                a.kind,
                ActionKind::DetachPartition {
                    concurrently: true,
                    ..
                }
            )
        }) {
            Some(a) => a.span.clone(),
            None => return,
        },
        _ => cx.stmt.span_of(&["CONCURRENTLY"]),
    };
    if let Some(reason) = not_alone {
        cx.report(
            span,
            format!("`{what}` must be the only statement of its migration file: {reason}"),
            "move it to its own migration file, alone: no `SET lock_timeout` or other statement with it",
        );
        return;
    }
    let context = if cx.ctx.explicit_transaction {
        "after `BEGIN`".to_string()
    } else {
        format!(
            "in a file that runs in a transaction ({})",
            cx.ctx.tx_reason()
        )
    };
    let help = if cx.ctx.explicit_transaction {
        "move it after the `COMMIT`, or to its own migration that is not wrapped in a transaction"
    } else {
        cx.ctx.no_transaction_hint()
    };
    let fix = move_after_commit(cx);
    cx.report_fix(
        span,
        format!("`{what}` cannot run inside a transaction block, and this statement is {context}"),
        help,
        fix,
    );
}

/// Inside an explicit `BEGIN … COMMIT`, moves the statement after the `COMMIT`.
fn move_after_commit(cx: &Checker) -> Option<Fix> {
    if !cx.ctx.explicit_transaction {
        return None;
    }
    let lines = statement_lines(cx.src, &cx.stmt.span)?;
    let moved = place_after(cx, &cx.src[cx.stmt.span.clone()])?;
    Some(Fix::new(vec![
        Edit {
            span: lines,
            text: String::new(),
        },
        moved,
    ]))
}
