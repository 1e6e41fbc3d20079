use std::ops::Range;

use super::json_column::column_span;
use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, ColumnDef, Constraint, ObjName, StmtKind};
use crate::sql::parse::Statement;

pub const RULE: Rule = Rule {
    name: "foreign-key-without-index",
    default_severity: Some(Severity::Warning),
    summary: "a foreign key whose referencing columns have no index",
    docs: r#"## What it does
Flags a new foreign key (`REFERENCES` on a column or `FOREIGN KEY (…)` in `CREATE TABLE`,
`ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY`, `ADD COLUMN … REFERENCES`) when no index has the
referencing columns as its leading columns: none known from earlier migrations, none created
by a primary key or unique constraint of the same statement, and none created later in the
same file.

## Why is this bad?
PostgreSQL indexes the referenced key (it must be unique) but not the referencing columns.
Every `DELETE` of a referenced row, and every update of its key, must find the referencing
rows: without an index that is a sequential scan of the whole referencing table, per row,
while holding locks. Deleting a customer then scans all orders; a batch delete becomes
quadratic. Joins from the parent to its children cannot use an index either.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
```
An index whose leading columns are the foreign key's columns (in any order), such as a
composite primary key starting with them, also counts.
"#,
    check,
};

/// True when an index on `index` columns serves lookups on `fk` columns: its leading
/// columns are exactly the foreign key's columns, in any order.
fn covers(index: &[String], fk: &[String]) -> bool {
    !fk.is_empty() && index.len() >= fk.len() && fk.iter().all(|c| index[..fk.len()].contains(c))
}

/// Columns of the indexes a column definition creates (`PRIMARY KEY`, `UNIQUE`).
fn column_index(c: &ColumnDef) -> Option<Vec<String>> {
    (c.primary_key || c.unique).then(|| vec![c.name.clone()])
}

/// Columns of the index a table constraint creates.
fn constraint_index(c: &Constraint) -> Option<Vec<String>> {
    match c {
        Constraint::PrimaryKey {
            columns,
            using_index: None,
        }
        | Constraint::Unique {
            columns,
            using_index: None,
        } => Some(columns.clone()),
        _ => None,
    }
}

/// The table a statement creates indexes on, and the columns of each (empty when it
/// creates none there).
pub fn indexes_of(st: &Statement) -> Option<(&ObjName, Vec<Vec<String>>)> {
    match &st.kind {
        StmtKind::CreateIndex { table, columns, .. } => Some((table, vec![columns.clone()])),
        StmtKind::CreateTable {
            name,
            columns,
            constraints,
            ..
        } => Some((
            name,
            columns
                .iter()
                .filter_map(column_index)
                .chain(constraints.iter().filter_map(|(_, c)| constraint_index(c)))
                .collect(),
        )),
        StmtKind::AlterTable { table, actions } => Some((
            table,
            actions
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::AddColumn { column, .. } => column_index(column),
                    ActionKind::AddConstraint { constraint, .. } => constraint_index(constraint),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
    .filter(|(_, columns)| !columns.is_empty())
}

/// Whether a statement adds a foreign key (the statements the rule looks at).
pub fn adds_foreign_key(st: &Statement) -> bool {
    match &st.kind {
        StmtKind::CreateTable {
            columns,
            constraints,
            ..
        } => {
            columns.iter().any(|c| c.references.is_some())
                || constraints
                    .iter()
                    .any(|(_, c)| matches!(c, Constraint::ForeignKey { .. }))
        }
        StmtKind::AlterTable { actions, .. } => actions.iter().any(|a| match &a.kind {
            ActionKind::AddColumn { column, .. } => column.references.is_some(),
            ActionKind::AddConstraint { constraint, .. } => {
                matches!(constraint, Constraint::ForeignKey { .. })
            }
            _ => false,
        }),
        _ => false,
    }
}

/// Indexes a statement creates on `table`.
fn indexes_created(st: &Statement, table: &ObjName) -> Vec<Vec<String>> {
    match indexes_of(st) {
        Some((t, columns)) if t.matches(table) => columns,
        _ => Vec::new(),
    }
}

/// The span of the `n`th (0-based) `FOREIGN KEY` of a statement.
fn nth_foreign_key(st: &Statement, n: usize) -> Range<usize> {
    let toks = &st.toks;
    (1..toks.len())
        .filter(|&i| toks[i - 1].is("FOREIGN") && toks[i].is("KEY"))
        .nth(n)
        .map_or_else(
            || st.head_span(),
            |i| toks[i - 1].span.start..toks[i].span.end,
        )
}

/// An index name in PostgreSQL's style: `orders_customer_id_idx`.
fn index_name(table: &ObjName, columns: &[String]) -> String {
    let raw = format!("{}_{}_idx", table.name, columns.join("_"));
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let mut cut = name.len().min(63);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name.truncate(cut);
    quote_ident(&name)
}

struct NewFk {
    span: Range<usize>,
    name: Option<String>,
    columns: Vec<String>,
    references: ObjName,
}

fn check(cx: &mut Checker) {
    let mut fks = Vec::new();
    let (table, new_table) = match &cx.stmt.kind {
        StmtKind::CreateTable {
            name,
            columns,
            constraints,
            temporary: false,
            ..
        } => {
            for c in columns {
                if let Some(r) = &c.references {
                    fks.push(NewFk {
                        span: column_span(cx.stmt, &c.name),
                        name: None,
                        columns: vec![c.name.clone()],
                        references: r.table.clone(),
                    });
                }
            }
            let mut nth = 0;
            for (cname, c) in constraints {
                if let Constraint::ForeignKey {
                    columns,
                    references,
                } = c
                {
                    fks.push(NewFk {
                        span: nth_foreign_key(cx.stmt, nth),
                        name: cname.clone(),
                        columns: columns.clone(),
                        references: references.table.clone(),
                    });
                    nth += 1;
                }
            }
            (name, true)
        }
        StmtKind::AlterTable { table, actions } => {
            for a in actions {
                match &a.kind {
                    ActionKind::AddColumn { column, .. } => {
                        if let Some(r) = &column.references {
                            fks.push(NewFk {
                                span: a.span.clone(),
                                name: None,
                                columns: vec![column.name.clone()],
                                references: r.table.clone(),
                            });
                        }
                    }
                    ActionKind::AddConstraint {
                        name,
                        constraint:
                            Constraint::ForeignKey {
                                columns,
                                references,
                            },
                        ..
                    } => fks.push(NewFk {
                        span: a.span.clone(),
                        name: name.clone(),
                        columns: columns.clone(),
                        references: references.table.clone(),
                    }),
                    _ => {}
                }
            }
            (table, cx.ctx.is_new_table(table))
        }
        _ => return,
    };
    // Indexes this statement creates itself (a primary key or unique constraint).
    let local = indexes_created(cx.stmt, table);
    let known = cx.ctx.catalog.table(table);
    for fk in fks {
        let indexed = local.iter().any(|i| covers(i, &fk.columns))
            || known.is_some_and(|t| t.has_index_leading_with(&fk.columns))
            || cx
                .others
                .later_indexes(table)
                .any(|i| covers(i, &fk.columns));
        if indexed {
            continue;
        }
        let cols = fk
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let name = fk
            .name
            .as_deref()
            .map_or_else(String::new, |n| format!(" `{}`", quote_ident(n)));
        let index = index_name(table, &fk.columns);
        let help = if new_table {
            format!("add `CREATE INDEX {index} ON {table} ({cols});` after it (the table is new, so the build is instant)")
        } else {
            format!("add `CREATE INDEX CONCURRENTLY {index} ON {table} ({cols});` (outside a transaction)")
        };
        cx.report(
            fk.span,
            format!(
                "no index on `{table} ({cols})` for foreign key{name} to `{}`: every delete or key update on `{}` scans all of `{table}`",
                fk.references, fk.references
            ),
            help,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{check, prepare, LintOptions};

    fn lint_after(earlier: &str, src: &str) -> Vec<(String, String)> {
        let opts = LintOptions::default();
        let (_, catalog) = check(earlier, prepare(earlier), &opts, Default::default());
        check(src, prepare(src), &opts, catalog)
            .0
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "foreign-key-without-index")
            .map(|d| (src[d.span.clone()].to_string(), d.help.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_index_from_an_earlier_migration_counts() {
        let earlier =
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, shop_id bigint);\n\
                       CREATE INDEX orders_customer_idx ON orders (customer_id, id);";
        let src = "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers NOT VALID;\n\
                   ALTER TABLE orders ADD CONSTRAINT orders_shop_fk FOREIGN KEY (shop_id) REFERENCES shops NOT VALID;";
        assert_eq!(
            lint_after(earlier, src),
            vec![(
                "ADD CONSTRAINT orders_shop_fk FOREIGN KEY (shop_id) REFERENCES shops NOT VALID".to_string(),
                "add `CREATE INDEX CONCURRENTLY orders_shop_id_idx ON orders (shop_id);` (outside a transaction)".to_string()
            )]
        );
    }

    #[test]
    fn spans_and_help_in_create_table() {
        let src = "CREATE TABLE \"Order Lines\" (\"Order\" bigint REFERENCES orders, sku text,\n\
                   CONSTRAINT lines_sku_fk FOREIGN KEY (sku) REFERENCES products (sku));";
        assert_eq!(
            lint_after("", src),
            vec![
                (
                    "\"Order\" bigint".to_string(),
                    "add `CREATE INDEX order_lines_order_idx ON \"Order Lines\" (\"Order\");` after it (the table is new, so the build is instant)".to_string()
                ),
                (
                    "FOREIGN KEY".to_string(),
                    "add `CREATE INDEX order_lines_sku_idx ON \"Order Lines\" (sku);` after it (the table is new, so the build is instant)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn leading_columns_in_any_order() {
        let idx = ["b".to_string(), "a".to_string(), "c".to_string()];
        assert!(covers(&idx, &["a".to_string(), "b".to_string()]));
        assert!(!covers(&idx, &["a".to_string()]));
        assert!(!covers(&idx, &["c".to_string()]));
    }
}
