use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "truncate-table",
    default_severity: Some(Severity::Warning),
    summary: "`TRUNCATE` loses data and takes ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `TRUNCATE` of tables that were not created earlier in the same file, with a stronger
message for `TRUNCATE … CASCADE`.

## Why is this bad?
`TRUNCATE` deletes every row at once, with no `WHERE` and no way back after commit. It takes
ACCESS EXCLUSIVE on the table, so it waits for every running query on it and blocks all reads
and writes behind it. `CASCADE` goes further: it also empties every table that references
the truncated ones by foreign key, recursively, which may be far more data than intended.

## Example
```sql
TRUNCATE order_events CASCADE;
```

## Use instead
If the data really must go, delete it in batches so each transaction is short and only
row locks are taken:
```sql
DELETE FROM order_events
WHERE id IN (SELECT id FROM order_events ORDER BY id LIMIT 10000);
-- repeat until no rows are left
```
Or, for a table no code uses any more, drop it in its own migration.
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::Truncate { tables, cascade } = &cx.stmt.kind else {
        return;
    };
    let existing: Vec<&ObjName> = tables.iter().filter(|t| !cx.ctx.is_new_table(t)).collect();
    if existing.is_empty() {
        return;
    }
    let them = if existing.len() > 1 { "them" } else { "it" };
    let names = existing
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if *cascade {
        let mut referencing: Vec<ObjName> = Vec::new();
        for t in &existing {
            for (r, _) in cx.ctx.catalog.referencing(t) {
                if !tables.iter().any(|x| x.matches(&r)) && !referencing.contains(&r) {
                    referencing.push(r);
                }
            }
        }
        let which = if referencing.is_empty() {
            format!("every table that references {them} by foreign key, recursively")
        } else {
            format!(
                "every table that references {them} by foreign key, recursively (known: {})",
                referencing
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        cx.report(
            cx.stmt.span_of(&["CASCADE"]),
            format!("`TRUNCATE … CASCADE` deletes every row of {names} and also of {which}, under ACCESS EXCLUSIVE"),
            "list exactly the tables to empty without `CASCADE`, or delete the rows in batches with `DELETE … WHERE`",
        );
    } else {
        cx.report(
            cx.stmt.span_of(&["TRUNCATE"]),
            format!("`TRUNCATE` deletes every row of {names} and blocks all reads and writes on {them} with ACCESS EXCLUSIVE"),
            "delete the rows in batches with `DELETE … WHERE` instead, or drop the table in its own migration if nothing uses it any more",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    #[test]
    fn cascade_names_the_known_referencing_tables() {
        let src = "CREATE TABLE orders (id bigint PRIMARY KEY);\n\
                   CREATE TABLE order_lines (order_id bigint REFERENCES orders (id));\n\
                   CREATE TABLE payments (id bigint, CONSTRAINT payments_order_fk FOREIGN KEY (id) REFERENCES orders);";
        let (_, catalog) = crate::lint::check(
            src,
            crate::lint::prepare(src),
            &LintOptions::default(),
            Default::default(),
        );
        let later = "TRUNCATE orders, payments CASCADE;";
        let d = crate::lint::check(
            later,
            crate::lint::prepare(later),
            &LintOptions::default(),
            catalog,
        )
        .0
        .diagnostics;
        let msgs: Vec<_> = d
            .iter()
            .filter(|d| d.rule == "truncate-table")
            .map(|d| (later[d.span.clone()].to_string(), d.message.clone()))
            .collect();
        assert_eq!(
            msgs,
            vec![(
                "CASCADE".to_string(),
                "`TRUNCATE … CASCADE` deletes every row of `orders`, `payments` and also of every table that references them by foreign key, recursively (known: `order_lines`), under ACCESS EXCLUSIVE".to_string()
            )]
        );
    }

    #[test]
    fn a_table_created_in_the_file_is_fine() {
        let src = "CREATE TABLE import_rows (line text);\nTRUNCATE import_rows;";
        assert!(lint_source(src, &LintOptions::default())
            .diagnostics
            .iter()
            .all(|d| d.rule != "truncate-table"));
    }
}
