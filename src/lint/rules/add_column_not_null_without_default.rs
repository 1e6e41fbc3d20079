use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-column-not-null-without-default",
    default_severity: Some(Severity::Error),
    summary: "`ADD COLUMN … NOT NULL` without a default fails on a table that has rows",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD COLUMN c … NOT NULL` (or `PRIMARY KEY`) without a default, or with
`DEFAULT NULL`, on an existing table (one not created earlier in the same file). Columns whose
rows get a value anyway are left alone: `serial` types, identity and generated columns.

## Why is this bad?
Every existing row gets the column's default, and without one that is NULL, which the
`NOT NULL` constraint rejects: on any table that has a row the statement fails with
`column "c" … contains null values`. The migration passes on an empty development or CI
database and fails in production, after taking ACCESS EXCLUSIVE and scanning the table for
the NULL it finds.

(A column of a domain type that has a default of its own gets that default; lockstep does not
know domain defaults and reports such a column too.)

## Example
```sql
ALTER TABLE orders ADD COLUMN currency char(3) NOT NULL;
```

## Use instead
Give existing rows a value with a constant default, which is instant since PostgreSQL 11 (the
default is stored once; no row is rewritten or read), and drop the default afterwards if new
rows must always set the column:
```sql
ALTER TABLE orders ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR';
ALTER TABLE orders ALTER COLUMN currency DROP DEFAULT;
```
When existing rows need computed values, add the column nullable, fill it in batches, then
make it `NOT NULL` without a long lock (a validated `CHECK (currency IS NOT NULL)` before
`SET NOT NULL`).

Online: a playbook of kind `not-null` with a `backfill` expression fills the existing rows in
batches and then makes the column `NOT NULL` without scanning under ACCESS EXCLUSIVE
(`lockstep plan FILE`, then `lockstep run FILE`; example: `playbooks/not-null-*.toml`).
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
        let ActionKind::AddColumn { column, .. } = &a.kind else {
            continue;
        };
        let no_default = column
            .default
            .as_deref()
            .is_none_or(|d| d.trim().eq_ignore_ascii_case("null"));
        let filled = column.is_serial() || column.identity || column.generated.is_some();
        if !column.not_null || !no_default || filled {
            continue;
        }
        let col = quote_ident(&column.name);
        let what = if column.primary_key {
            "a primary key"
        } else {
            "`NOT NULL`"
        };
        let instant = if cx.ctx.pg_version >= 11 {
            "instant since PostgreSQL 11"
        } else {
            "before PostgreSQL 11 this rewrites the table, but it does not fail"
        };
        cx.report(
            a.span.clone(),
            format!(
                "adding `{col}` as {what} without a default fails if `{table}` has any row: existing rows get NULL"
            ),
            format!(
                "give it a constant default (`ADD COLUMN {col} {} NOT NULL DEFAULT …`, {instant}) and drop the default afterwards if new rows must set it",
                column.data_type,
            ),
        );
        cx.online(
            "not-null",
            "add it nullable, then fill it in batches and make it `NOT NULL`",
        );
    }
}

#[cfg(test)]
mod tests {
    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("add-column-not-null-without-default", src, pg_version)
    }

    #[test]
    fn not_null_without_a_default_on_an_existing_table() {
        let got = findings(
            "ALTER TABLE orders ADD COLUMN currency char(3) NOT NULL;",
            15,
        );
        assert_eq!(
            got[0].0,
            "adding `currency` as `NOT NULL` without a default fails if `orders` has any row: existing rows get NULL"
        );
        assert!(got[0]
            .1
            .contains("NOT NULL DEFAULT …`, instant since PostgreSQL 11"));
        let got = findings("ALTER TABLE orders ADD COLUMN id uuid PRIMARY KEY;", 10);
        assert!(got[0].0.contains("as a primary key"), "{got:?}");
        assert!(got[0].1.contains("before PostgreSQL 11"), "{got:?}");
        // Several actions: only the one without a default.
        let got = findings(
            "ALTER TABLE orders ADD COLUMN a int NOT NULL DEFAULT 0, ADD COLUMN b int NOT NULL;",
            15,
        );
        assert_eq!(got.len(), 1);
        assert!(got[0].0.starts_with("adding `b`"));
    }

    #[test]
    fn columns_that_get_values_are_fine() {
        for src in [
            "ALTER TABLE orders ADD COLUMN a int NOT NULL DEFAULT 0;",
            "ALTER TABLE orders ADD COLUMN a int;",
            "ALTER TABLE orders ADD COLUMN a bigserial NOT NULL;",
            "ALTER TABLE orders ADD COLUMN a int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY;",
            "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN a int NOT NULL;",
        ] {
            assert!(findings(src, 15).is_empty(), "{src}");
        }
    }
}
