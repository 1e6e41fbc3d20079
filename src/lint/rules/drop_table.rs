use std::ops::Range;

use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{DropKind, ObjName, StmtKind};
use crate::sql::parse::Statement;

pub const RULE: Rule = Rule {
    name: "drop-table",
    default_severity: Some(Severity::Warning),
    summary: "dropping a table, schema or database loses data",
    docs: r#"## What it does
Flags `DROP TABLE` (of a table not created earlier in the same file), `DROP SCHEMA …
CASCADE` and `DROP DATABASE`. A down (undo, revert, rollback) section that drops a table or
schema its own migration's up part created only undoes that migration: it is not flagged.

## Why is this bad?
The data is gone; rolling the deploy back cannot restore it. Application code still running
during the deploy fails with `relation does not exist`. And the drop is not as cheap as it
looks: it takes ACCESS EXCLUSIVE on the table, and when the table has foreign keys, on every
table it references too (their foreign key triggers are removed), so a drop of a forgotten
table can queue all traffic on a busy `users` table behind it.

## Example
```sql
DROP TABLE legacy_orders;
```

## Use instead
First make sure nothing uses the table (deploy the code that stopped using it; if unsure,
rename it away and wait a release), keep a backup, then drop it in its own migration with a
short lock timeout:
```sql
SET lock_timeout = '2s';
DROP TABLE legacy_orders;
```
"#,
    check,
};

/// The span of `name` after `DROP <kind>`, including its schema, or the statement's head.
fn name_span(stmt: &Statement, name: &ObjName) -> Range<usize> {
    let toks = &stmt.toks;
    let found = (2..toks.len()).find(|&i| {
        toks[i].ident() == Some(name.name.as_str())
            && match &name.schema {
                Some(s) => i >= 2 && toks[i - 1].is_punct(".") && toks[i - 2].ident() == Some(s),
                None => !toks[i - 1].is_punct("."),
            }
    });
    match found {
        Some(i) if name.schema.is_some() => toks[i - 2].span.start..toks[i].span.end,
        Some(i) => toks[i].span.clone(),
        None => stmt.head_span(),
    }
}

fn list(tables: &[ObjName]) -> String {
    tables
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(cx: &mut Checker) {
    let StmtKind::Drop {
        kind,
        names,
        cascade,
    } = &cx.stmt.kind
    else {
        return;
    };
    match kind {
        DropKind::Table => {
            for t in names {
                if cx.ctx.is_new_table(t) || cx.ctx.undoes_table(t) {
                    continue;
                }
                let mut message = format!(
                    "dropping table `{t}` deletes its data and breaks code that still uses it"
                );
                let mut referenced: Vec<ObjName> = Vec::new();
                if let Some(table) = cx.ctx.catalog.table(t) {
                    for fk in &table.foreign_keys {
                        if !fk.references.matches(t) && !referenced.contains(&fk.references) {
                            referenced.push(fk.references.clone());
                        }
                    }
                }
                if !referenced.is_empty() {
                    message.push_str(&format!(
                        "; it also takes ACCESS EXCLUSIVE on {}, which it references by foreign key",
                        list(&referenced)
                    ));
                }
                if *cascade {
                    let referencing: Vec<ObjName> = cx
                        .ctx
                        .catalog
                        .referencing(t)
                        .into_iter()
                        .map(|(r, _)| r)
                        .filter(|r| !r.matches(t))
                        .fold(Vec::new(), |mut v, r| {
                            if !v.contains(&r) {
                                v.push(r);
                            }
                            v
                        });
                    if !referencing.is_empty() {
                        message.push_str(&format!(
                            "; `CASCADE` also drops the foreign keys of {} that point at it",
                            list(&referencing)
                        ));
                    }
                }
                let help = if referenced.is_empty() {
                    format!("make sure no deployed code uses `{t}` and a backup exists, then drop it in its own migration")
                } else {
                    format!("make sure no deployed code uses `{t}` and a backup exists, then drop it in its own migration with a short `lock_timeout`: the referenced tables are locked too")
                };
                cx.report(name_span(cx.stmt, t), message, help);
            }
        }
        DropKind::Schema if *cascade => {
            for s in names {
                if cx.ctx.up_created.as_ref().is_some_and(|c| c.schema(s)) {
                    continue;
                }
                cx.report(
                    name_span(cx.stmt, s),
                    format!("`DROP SCHEMA {s} CASCADE` drops every table, view and function in `{s}` with their data"),
                    format!("drop the objects in `{s}` one by one (each after the code using it is gone), then `DROP SCHEMA {s}` without `CASCADE`"),
                );
            }
        }
        DropKind::Database => {
            for d in names {
                cx.report(
                    name_span(cx.stmt, d),
                    format!("dropping database `{d}` deletes all of its data"),
                    "drop databases by hand after taking a backup, not in a migration",
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str) -> Vec<(String, String)> {
        lint_source(src, &LintOptions::default())
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "drop-table")
            .map(|d| (src[d.span.clone()].to_string(), d.message))
            .collect()
    }

    #[test]
    fn names_the_referenced_tables_it_locks() {
        let src = "CREATE TABLE users (id bigint PRIMARY KEY);\n\
                   CREATE TABLE shops (id bigint PRIMARY KEY);\n\
                   CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users, shop_id bigint);\n\
                   ALTER TABLE orders ADD CONSTRAINT orders_shop_fk FOREIGN KEY (shop_id) REFERENCES public.shops (id);\n\
                   CREATE TABLE refunds (order_id bigint REFERENCES orders);";
        let (prepared, catalog) = (
            crate::lint::prepare(src),
            crate::lint::catalog::Catalog::default(),
        );
        let (_, catalog) = crate::lint::check(src, prepared, &LintOptions::default(), catalog);
        let later = "DROP TABLE orders CASCADE;";
        let d = crate::lint::check(
            later,
            crate::lint::prepare(later),
            &LintOptions::default(),
            catalog,
        )
        .0
        .diagnostics;
        let d: Vec<_> = d.iter().filter(|d| d.rule == "drop-table").collect();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].message,
            "dropping table `orders` deletes its data and breaks code that still uses it; it also takes ACCESS EXCLUSIVE on `users`, `public.shops`, which it references by foreign key; `CASCADE` also drops the foreign keys of `refunds` that point at it"
        );
    }

    #[test]
    fn spans_point_at_each_dropped_name() {
        assert_eq!(
            lint("DROP TABLE IF EXISTS audit.\"Old Logs\", orders;"),
            vec![
                (
                    "audit.\"Old Logs\"".to_string(),
                    "dropping table `audit.\"Old Logs\"` deletes its data and breaks code that still uses it".to_string()
                ),
                (
                    "orders".to_string(),
                    "dropping table `orders` deletes its data and breaks code that still uses it".to_string()
                ),
            ]
        );
    }

    #[test]
    fn tables_created_in_the_file_and_plain_drop_schema_are_fine() {
        assert!(lint(
            "CREATE TABLE tmp_import (id int);\nDROP TABLE tmp_import;\nDROP SCHEMA staging;"
        )
        .is_empty());
    }
}
