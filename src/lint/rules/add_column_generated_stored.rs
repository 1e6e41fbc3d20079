use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, Generated, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-column-generated-stored",
    default_severity: Some(Severity::Error),
    summary: "adding a stored generated column rewrites the table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD COLUMN … GENERATED ALWAYS AS (expr) STORED` on an existing table.
Before PostgreSQL 18 every generated column is stored, so a column without `STORED` is flagged
too; from PostgreSQL 18 a generated column without `STORED` is virtual and is not flagged.

## Why is this bad?
A stored generated column (PostgreSQL 12+) is computed and written for every existing row:
PostgreSQL rewrites the whole table and all its indexes while holding an ACCESS EXCLUSIVE lock,
so reads and writes wait until the rewrite finishes. A virtual generated column (PostgreSQL
18+) is computed when read and is added without a rewrite.

## Example
```sql
ALTER TABLE orders ADD COLUMN total_cents bigint
    GENERATED ALWAYS AS (total * 100) STORED;
```

## Use instead
PostgreSQL 18 and later, when computing on read is acceptable:
```sql
ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS (total * 100) VIRTUAL;
```
Otherwise, a plain column kept up to date by a trigger, filled in batches:
```sql
ALTER TABLE orders ADD COLUMN total_cents bigint;               -- instant
CREATE FUNCTION orders_total_cents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.total_cents := NEW.total * 100; RETURN NEW; END $$;
CREATE TRIGGER orders_total_cents BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_total_cents();
-- then, outside the DDL transaction, in batches
UPDATE orders SET total_cents = total * 100 WHERE id BETWEEN 1 AND 10000;
```
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
        let ActionKind::AddColumn { column, .. } = &a.kind else {
            continue;
        };
        let col = quote_ident(&column.name);
        let what = match column.generated {
            Some(Generated::Stored) => format!("adding stored generated column `{col}`"),
            Some(Generated::Virtual) if v < 18 => format!(
                "adding generated column `{col}` (stored: virtual generated columns need PostgreSQL 18, target: {v})"
            ),
            _ => continue,
        };
        let plain = format!(
            "add a plain `{}` column kept up to date by a `BEFORE INSERT OR UPDATE` trigger, and backfill existing rows in batches",
            column.data_type
        );
        let help = if v >= 18 {
            format!("drop `STORED` to add a virtual generated column (computed on read, no rewrite), or {plain}")
        } else {
            plain
        };
        cx.report(
            a.span.clone(),
            format!(
                "{what} rewrites `{table}` and all its indexes under ACCESS EXCLUSIVE: the expression is computed and stored for every existing row"
            ),
            help,
        );
    }
}

#[cfg(test)]
mod tests {

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("add-column-generated-stored", src, pg_version)
    }

    const VIRTUAL: &str =
        "ALTER TABLE orders ADD COLUMN c bigint GENERATED ALWAYS AS (total * 100);";
    const STORED: &str =
        "ALTER TABLE orders ADD COLUMN c bigint GENERATED ALWAYS AS (total * 100) STORED;";

    #[test]
    fn without_stored_is_virtual_from_18() {
        assert!(findings(VIRTUAL, 18).is_empty());
        let at17 = findings(VIRTUAL, 17);
        assert_eq!(at17.len(), 1);
        assert_eq!(
            at17[0].0,
            "adding generated column `c` (stored: virtual generated columns need PostgreSQL 18, target: 17) rewrites `orders` and all its indexes under ACCESS EXCLUSIVE: the expression is computed and stored for every existing row"
        );
    }

    #[test]
    fn stored_always_fires_and_help_offers_virtual_only_from_18() {
        let at18 = findings(STORED, 18);
        assert_eq!(at18.len(), 1);
        assert!(at18[0]
            .1
            .starts_with("drop `STORED` to add a virtual generated column"));
        let at15 = findings(STORED, 15);
        assert_eq!(at15.len(), 1);
        assert!(at15[0].1.starts_with("add a plain `bigint` column"));
        assert!(!at15[0].1.contains("virtual"));
    }

    #[test]
    fn new_tables_are_not_flagged() {
        let src = format!("CREATE TABLE orders (total int);\n{STORED}");
        assert!(findings(&src, 15).is_empty());
    }
}
