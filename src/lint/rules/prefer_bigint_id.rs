use std::ops::Range;

use super::json_column::{column_span, type_name};
use super::{playbook_ref, Checker, Rule};
use crate::sql::ir::{quote_ident, ActionKind, Constraint, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "prefer-bigint-id",
    default_severity: None,
    summary: "an `int`/`serial` primary key overflows at 2^31",
    docs: r#"## What it does
Flags a single-column primary key of type `integer` (`int`, `int4`), `smallint` (`int2`),
`serial` (`serial4`) or `smallserial` (`serial2`): declared inline (`id int PRIMARY KEY`), as a
table constraint (`PRIMARY KEY (id)`) in `CREATE TABLE`, with `ADD COLUMN`, or added with
`ALTER TABLE … ADD PRIMARY KEY (id)` when the column's type is known. Off by default; enable
it with `--select prefer-bigint-id` or in `lockstep.toml`.

## Why is this bad?
An `integer` id runs out at 2,147,483,647 (a `smallint` at 32,767); sequences also skip
values on rollbacks and failed inserts, so busy tables get there sooner than their row count
suggests. When it happens, inserts fail. Widening the column then rewrites the table and
its indexes under ACCESS EXCLUSIVE, and every foreign key column that references it must be
widened too: an emergency migration on the largest tables. `bigint` costs 4 more bytes per
row.

## Example
```sql
CREATE TABLE orders (id serial PRIMARY KEY, total numeric NOT NULL);
```

## Use instead
```sql
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    total numeric NOT NULL
);
```
An existing `integer` key is converted online by a playbook of kind `column-type`: a `bigint`
shadow column kept in sync by a trigger, backfilled in batches, then swapped in one short
transaction (`lockstep plan FILE`, then `lockstep run FILE`; examples:
`playbooks/column-type-*.toml`).
"#,
    check,
};

/// `(limit, bigger type)` for the integer types that overflow too early.
fn small_int(data_type: &str) -> Option<(&'static str, &'static str)> {
    let t = type_name(data_type);
    if t.array {
        return None;
    }
    Some(match t.base.as_str() {
        "int" | "integer" | "int4" => ("2,147,483,647", "bigint"),
        "smallint" | "int2" => ("32,767", "bigint"),
        "serial" | "serial4" => ("2,147,483,647", "bigserial"),
        "smallserial" | "serial2" => ("32,767", "bigserial"),
        _ => return None,
    })
}

fn check(cx: &mut Checker) {
    // (span, table, column, type, whether the column already exists with data)
    let mut keys: Vec<(Range<usize>, &ObjName, String, String, bool)> = Vec::new();
    match &cx.stmt.kind {
        StmtKind::CreateTable {
            name,
            columns,
            constraints,
            temporary: false,
            ..
        } => {
            for c in columns.iter().filter(|c| c.primary_key) {
                keys.push((
                    column_span(cx.stmt, &c.name),
                    name,
                    c.name.clone(),
                    c.data_type.clone(),
                    false,
                ));
            }
            for (_, con) in constraints {
                if let Constraint::PrimaryKey { columns: pk, .. } = con {
                    if let [col] = pk.as_slice() {
                        if let Some(c) = columns.iter().find(|c| c.name == *col) {
                            keys.push((
                                column_span(cx.stmt, &c.name),
                                name,
                                c.name.clone(),
                                c.data_type.clone(),
                                false,
                            ));
                        }
                    }
                }
            }
        }
        StmtKind::AlterTable { table, actions } => {
            for a in actions {
                match &a.kind {
                    ActionKind::AddColumn { column, .. } if column.primary_key => keys.push((
                        a.span.clone(),
                        table,
                        column.name.clone(),
                        column.data_type.clone(),
                        false,
                    )),
                    ActionKind::AddConstraint {
                        constraint: Constraint::PrimaryKey { columns: pk, .. },
                        ..
                    } => {
                        let [col] = pk.as_slice() else { continue };
                        // The type from an `ADD COLUMN` of the same statement (a new column),
                        // else the catalog (a column that exists, with data unless its table
                        // was created in this file).
                        let added = actions.iter().find_map(|b| match &b.kind {
                            ActionKind::AddColumn { column, .. } if column.name == *col => {
                                Some(column.data_type.clone())
                            }
                            _ => None,
                        });
                        let data_type = match added {
                            Some(t) => Some((t, false)),
                            None => cx
                                .ctx
                                .catalog
                                .table(table)
                                .and_then(|t| t.column(col))
                                .map(|c| (c.data_type.clone(), !cx.ctx.is_new_table(table))),
                        };
                        if let Some((data_type, existing)) = data_type {
                            keys.push((a.span.clone(), table, col.clone(), data_type, existing));
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    for (span, table, column, data_type, existing) in keys {
        let Some((limit, bigger)) = small_int(&data_type) else {
            continue;
        };
        let fix = if bigger == "bigserial" {
            "`bigserial` (or `bigint GENERATED ALWAYS AS IDENTITY`)".to_string()
        } else {
            "`bigint`".to_string()
        };
        let help = if existing {
            format!(
                "convert it to `bigint` now, while the table is small, online with {}",
                playbook_ref("column-type")
            )
        } else {
            format!("declare it {fix} now, while the table is small")
        };
        cx.report(
            span,
            format!(
                "primary key `{}` of `{table}` is `{data_type}`: ids run out at {limit}, and widening it later rewrites the table and every referencing column under ACCESS EXCLUSIVE",
                quote_ident(&column)
            ),
            help,
        );
        if existing {
            cx.playbook("column-type");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::index_of;
    use crate::lint::{lint_source, LintOptions, Severity};

    fn lint_with_help(src: &str) -> Vec<(String, String)> {
        let mut opts = LintOptions::default();
        if let Some(i) = index_of("prefer-bigint-id") {
            opts.severities[i] = Some(Severity::Warning);
        }
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "prefer-bigint-id")
            .map(|d| (d.message, d.help.unwrap_or_default()))
            .collect()
    }

    fn lint(src: &str) -> Vec<String> {
        lint_with_help(src).into_iter().map(|(m, _)| m).collect()
    }

    #[test]
    fn an_existing_key_is_converted_online_a_new_one_declared() {
        let existing = "ALTER TABLE tags ADD COLUMN id int NOT NULL;\n\
                        ALTER TABLE tags ADD PRIMARY KEY (id);";
        assert_eq!(
            lint_with_help(existing)[0].1,
            "convert it to `bigint` now, while the table is small, online with a `column-type` playbook (`lockstep run`)"
        );
        for new in [
            "CREATE TABLE tags (id int NOT NULL);\nALTER TABLE tags ADD PRIMARY KEY (id);",
            "CREATE TABLE tags (id serial PRIMARY KEY);",
            "ALTER TABLE tags ADD COLUMN id int PRIMARY KEY;",
        ] {
            let f = lint_with_help(new);
            assert_eq!(f.len(), 1, "{new}");
            assert!(f[0].1.starts_with("declare it "), "{new}: {}", f[0].1);
            assert!(!f[0].1.contains("playbook"), "{new}: {}", f[0].1);
        }
    }

    #[test]
    fn type_of_a_later_primary_key_comes_from_the_catalog() {
        let src = "CREATE TABLE tags (id int NOT NULL, name text);\n\
                   ALTER TABLE tags ADD CONSTRAINT tags_pkey PRIMARY KEY (id);";
        assert_eq!(
            lint(src),
            vec!["primary key `id` of `tags` is `int`: ids run out at 2,147,483,647, and widening it later rewrites the table and every referencing column under ACCESS EXCLUSIVE".to_string()]
        );
    }

    #[test]
    fn composite_keys_and_unknown_types_are_left_alone() {
        let src =
            "CREATE TABLE post_tags (post_id int, tag_id int, PRIMARY KEY (post_id, tag_id));\n\
                   ALTER TABLE legacy ADD PRIMARY KEY (id);";
        assert!(lint(src).is_empty());
    }
}
