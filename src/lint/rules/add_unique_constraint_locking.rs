use super::{Checker, Rule};
use crate::lint::fix::{constraint_name, Edit, Fix};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, Constraint, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-unique-constraint-locking",
    default_severity: Some(Severity::Error),
    summary: "`ADD UNIQUE` / `PRIMARY KEY` builds an index under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD [CONSTRAINT …] UNIQUE (…)` and `… PRIMARY KEY (…)` on an existing
table (but not `… USING INDEX`), and `ADD COLUMN … UNIQUE` / `PRIMARY KEY`.

## Why is this bad?
The constraint needs a unique index, and PostgreSQL builds it while holding ACCESS EXCLUSIVE
on the table: every read and write waits for the whole index build, on every version.
`NOT VALID` does not help: PostgreSQL rejects it for `UNIQUE` and `PRIMARY KEY`.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_reference_key UNIQUE (reference);
ALTER TABLE orders ADD PRIMARY KEY (id);
```

## Use instead
Build the index concurrently, then attach it as the constraint (instant):
```sql
-- in its own migration, outside a transaction block
CREATE UNIQUE INDEX CONCURRENTLY orders_reference_key ON orders (reference);
-- then
ALTER TABLE orders ADD CONSTRAINT orders_reference_key UNIQUE USING INDEX orders_reference_key;
```
For a primary key the columns must already be `NOT NULL`; otherwise
`ADD PRIMARY KEY USING INDEX` runs an implicit `SET NOT NULL`, which scans the table under
ACCESS EXCLUSIVE. Make them `NOT NULL` first without a scan (PostgreSQL 12+: a validated
`CHECK (id IS NOT NULL)` constraint, then `SET NOT NULL`):
```sql
CREATE UNIQUE INDEX CONCURRENTLY orders_pkey ON orders (id);
ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey;
```
On a partitioned table (no `CONCURRENTLY`, no `USING INDEX` on the parent): create the unique
index concurrently on each partition and attach it there as a constraint with `USING INDEX`;
the `ADD CONSTRAINT` on the parent then adopts those instead of building new indexes.

Online: a playbook of kind `unique` (or `primary-key` for a primary key) runs these steps
against the live database, with `lock_timeout` retries, progress and resume (`lockstep plan
FILE`, then `lockstep run FILE`; examples: `playbooks/unique-*.toml`,
`playbooks/primary-key-*.toml`).
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
        let (name, columns, primary, inline) = match &a.kind {
            ActionKind::AddConstraint {
                name,
                constraint:
                    Constraint::Unique {
                        columns,
                        using_index: None,
                    },
                ..
            } => (name.clone(), columns.clone(), false, false),
            ActionKind::AddConstraint {
                name,
                constraint:
                    Constraint::PrimaryKey {
                        columns,
                        using_index: None,
                    },
                ..
            } => (name.clone(), columns.clone(), true, false),
            ActionKind::AddColumn { column, .. } if column.primary_key || column.unique => {
                (None, vec![column.name.clone()], column.primary_key, true)
            }
            _ => continue,
        };
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let cols = cols.join(", ");
        let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
        let index = name.unwrap_or_else(|| {
            if primary {
                let mut base = table.name.clone();
                while base.len() > 63 - "_pkey".len() {
                    base.pop();
                }
                format!("{base}_pkey")
            } else {
                constraint_name(&table.name, &columns.join("_"), "key")
            }
        });
        let index = quote_ident(&index);
        let what = match (inline, primary) {
            (true, true) => format!("adding column `{cols}` as `PRIMARY KEY`"),
            (true, false) => format!("adding column `{cols}` with `UNIQUE`"),
            (false, true) => format!("adding a primary key on `{table} ({cols})`"),
            (false, false) => format!("adding unique constraint `{index}` on `{table} ({cols})`"),
        };
        let message = format!(
            "{what} builds a unique index under ACCESS EXCLUSIVE on `{table}`: reads and writes wait for the whole build"
        );
        let partitioned = cx.ctx.catalog.table(table).is_some_and(|t| t.partitioned);
        let mut help = String::new();
        if inline {
            help.push_str(&format!("add the column without `{kind}`, then "));
        }
        if partitioned {
            help.push_str(&format!(
                "`{table}` is partitioned (no `CONCURRENTLY` or `USING INDEX` on the parent): create a unique index `CONCURRENTLY` on each partition and attach it there with `ADD CONSTRAINT … {kind} USING INDEX`; `ADD CONSTRAINT … {kind} ({cols})` on the parent then adopts them instead of building new indexes"
            ));
        } else if let Some(reason) = cx.ctx.alone_reason() {
            help.push_str(&format!(
                "in two migrations: `CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} ({cols})` alone in the first ({reason}), then `ALTER TABLE {table} ADD CONSTRAINT {index} {kind} USING INDEX {index}` (instant) in the next"
            ));
        } else {
            help.push_str(&format!(
                "`CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} ({cols})` in a migration outside a transaction, then `ALTER TABLE {table} ADD CONSTRAINT {index} {kind} USING INDEX {index}` (instant)"
            ));
        }
        let columns_not_null = !primary
            || cx.ctx.catalog.table(table).is_some_and(|t| {
                columns
                    .iter()
                    .all(|c| t.column(c).is_some_and(|col| col.not_null))
            });
        if primary {
            help.push_str(&not_null_note(cx, table, &columns, inline));
        }
        // The safe form as a rewrite: only for a lone constraint outside any transaction
        // (CONCURRENTLY cannot run in one), for a primary key only on NOT NULL columns, and
        // not where the index build must be alone in its file (it needs two migrations).
        let fix = (!inline
            && !partitioned
            && actions.len() == 1
            && !cx.ctx.in_transaction()
            && cx.ctx.alone_reason().is_none()
            && columns_not_null)
            .then(|| {
                Fix::new(vec![Edit {
                    span: cx.stmt.span.clone(),
                    text: format!(
                        "CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} ({cols});\n\
                         ALTER TABLE {table} ADD CONSTRAINT {index} {kind} USING INDEX {index};"
                    ),
                }])
            });
        cx.report_fix(a.span.clone(), message, help, fix);
        cx.online(
            if primary { "primary-key" } else { "unique" },
            if inline {
                "add the constraint"
            } else {
                "run it"
            },
        );
    }
}

/// What the help must say about NOT NULL for a primary key: `USING INDEX` on nullable
/// columns runs an implicit `SET NOT NULL`, which scans under ACCESS EXCLUSIVE.
fn not_null_note(cx: &Checker, table: &ObjName, columns: &[String], inline: bool) -> String {
    let scan = "otherwise the `PRIMARY KEY` step runs an implicit `SET NOT NULL` that scans the table under ACCESS EXCLUSIVE";
    if inline {
        return format!("; the new column must be `NOT NULL` (backfill it first): {scan}");
    }
    let v = cx.ctx.pg_version;
    let t = cx.ctx.catalog.table(table);
    let mut nullable = Vec::new();
    let mut unknown = Vec::new();
    for c in columns {
        match t.and_then(|t| t.column(c)) {
            Some(col) if col.not_null => {}
            // A validated `CHECK (c IS NOT NULL)` lets the implicit SET NOT NULL skip the scan.
            Some(_) if v >= 12 && cx.ctx.has_valid_not_null_check(table, c) => {}
            Some(_) => nullable.push(format!("`{}`", quote_ident(c))),
            None => unknown.push(format!("`{}`", quote_ident(c))),
        }
    }
    let how = if v >= 12 {
        "(`CHECK (… IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT`, then `SET NOT NULL`)"
    } else {
        "(before PostgreSQL 12 `SET NOT NULL` always scans: do it in a quiet period)"
    };
    if !nullable.is_empty() {
        format!(
            "; {} nullable: make it `NOT NULL` first without a scan {how}, {scan}",
            if nullable.len() == 1 {
                format!("{} is", nullable[0])
            } else {
                format!("{} are", nullable.join(", "))
            }
        )
    } else if !unknown.is_empty() {
        format!(
            "; the columns must already be `NOT NULL` (lockstep does not know whether {} {}), {scan}",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        )
    } else {
        "; the columns are already `NOT NULL`, so attaching the index is instant".to_string()
    }
}

#[cfg(test)]
mod tests {

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("add-unique-constraint-locking", src, pg_version)
    }

    #[test]
    fn unique_suggests_concurrent_index_then_using_index() {
        let f = findings(
            "ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (ref);",
            15,
        );
        assert_eq!(
            f,
            [(
                "adding unique constraint `orders_ref_key` on `orders (ref)` builds a unique index under ACCESS EXCLUSIVE on `orders`: reads and writes wait for the whole build".to_string(),
                "`CREATE UNIQUE INDEX CONCURRENTLY orders_ref_key ON orders (ref)` in a migration outside a transaction, then `ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE USING INDEX orders_ref_key` (instant); or run it online with a `unique` playbook (`lockstep run`)".to_string()
            )]
        );
        assert!(!f[0].1.contains("NOT VALID"));
    }

    #[test]
    fn primary_key_help_uses_the_catalog_for_not_null() {
        let known = "ALTER TABLE orders ADD COLUMN id bigint NOT NULL;\nALTER TABLE orders ADD PRIMARY KEY (id);";
        let f = findings(known, 15);
        assert!(f[0]
            .1
            .contains("`CREATE UNIQUE INDEX CONCURRENTLY orders_pkey ON orders (id)`"));
        assert!(f[0].1.ends_with(
            "the columns are already `NOT NULL`, so attaching the index is instant; or run it online with a `primary-key` playbook (`lockstep run`)"
        ));

        let nullable =
            "ALTER TABLE orders ADD COLUMN id bigint;\nALTER TABLE orders ADD PRIMARY KEY (id);";
        let f = findings(nullable, 15);
        assert!(f[0]
            .1
            .contains("; `id` is nullable: make it `NOT NULL` first without a scan (`CHECK"));
        let f = findings(nullable, 11);
        assert!(f[0]
            .1
            .contains("before PostgreSQL 12 `SET NOT NULL` always scans"));

        let f = findings("ALTER TABLE orders ADD PRIMARY KEY (id);", 15);
        assert!(f[0].1.contains("lockstep does not know whether `id` is"));
    }

    #[test]
    fn using_index_and_new_tables_are_not_flagged() {
        for src in [
            "ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE USING INDEX orders_ref_key;",
            "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey;",
            "CREATE TABLE t (a int);\nALTER TABLE t ADD UNIQUE (a);",
        ] {
            assert!(findings(src, 15).is_empty(), "{src}");
        }
    }
}
