use super::{playbook_ref, Checker, Rule};
use crate::lint::types::{classify, referencing_tables, TypeChange};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "alter-column-type-rewrite",
    default_severity: Some(Severity::Error),
    summary: "`ALTER COLUMN … TYPE` that is not binary-coercible rewrites the table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ALTER COLUMN … [SET DATA] TYPE` on an existing table unless the change is
binary-coercible, and always when `USING` is given. The column's current type comes from the
migration set (earlier files and earlier statements of this file); when lockstep does not know
it, the finding says the change *may* rewrite.

Binary-coercible (no rewrite, not flagged): `varchar(n)` → `varchar(m)` with m ≥ n,
`varchar(n)` → `varchar` or `text`, `text` → `varchar`, `numeric(p,s)` → `numeric(q,s)` with
q ≥ p, `numeric(p,s)` → `numeric`, `cidr` → `inet`, precision increases of `timestamp`,
`timestamptz`, `time` and `interval`, `varbit(n)` widening. `timestamp` ↔ `timestamptz`
skips the rewrite only when the session `TimeZone` is UTC (PostgreSQL 12+), which lockstep
cannot know, so it is flagged.

## Why is this bad?
Any other type change rewrites the whole table and rebuilds all its indexes while holding an
ACCESS EXCLUSIVE lock: no reads, no writes until it finishes, on every PostgreSQL version.
When other tables have foreign keys referencing the column, those foreign keys are rebuilt
too, which takes ACCESS EXCLUSIVE on every referencing table as well.

## Example
```sql
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
ALTER TABLE orders ALTER COLUMN note TYPE varchar(50);  -- was varchar(200)
```

## Use instead
A playbook of kind `column-type` converts the column online: a shadow column, kept in sync by
a trigger, backfilled in batches, then swapped in one short transaction (`lockstep plan FILE`,
then `lockstep run FILE`; examples: `playbooks/column-type-*.toml`). By hand, the steps are:
```sql
ALTER TABLE orders ADD COLUMN id_new bigint;                       -- instant
-- a trigger sets NEW.id_new := NEW.id on INSERT and UPDATE
-- backfill in batches, outside the DDL transaction:
UPDATE orders SET id_new = id WHERE id BETWEEN 1 AND 10000 AND id_new IS NULL;
-- then, in one short transaction: drop the trigger, rename id → id_old and id_new → id
```
When only the length limit matters, widen instead: `varchar(200)` → `varchar(400)` or `text`
is instant.
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
        let ActionKind::AlterColumnType {
            column,
            new_type,
            using,
        } = &a.kind
        else {
            continue;
        };
        let old = cx
            .ctx
            .catalog
            .table(table)
            .and_then(|t| t.column(column))
            .map(|c| c.data_type.clone());
        let change = classify(
            old.as_deref(),
            new_type,
            *using,
            cx.ctx.pg_version,
            cx.ctx.timezone.as_deref(),
        );
        let col = quote_ident(column);
        let from = old
            .as_deref()
            .map_or(String::new(), |o| format!(" from `{o}`"));
        let (verb, why) = match &change {
            TypeChange::NoRewrite => continue,
            TypeChange::Rewrite(why) => ("rewrites", why),
            TypeChange::MayRewrite(why) => ("may rewrite", why),
        };
        let mut message = format!(
            "changing `{table}.{col}`{from} to `{new_type}` {verb} `{table}` and all its indexes under ACCESS EXCLUSIVE: {why}"
        );
        let referencing = referencing_tables(&cx.ctx.catalog, table, column);
        if !referencing.is_empty() {
            let list: Vec<String> = referencing.iter().map(|t| format!("`{t}`")).collect();
            message.push_str(&format!(
                "; the foreign keys of {} that reference the column are rebuilt under ACCESS EXCLUSIVE too",
                list.join(", ")
            ));
        }
        let online = format!(
            "convert online instead with {}: it adds a new `{new_type}` column, keeps it in sync with a trigger, backfills it in batches, then swaps the columns in one short transaction",
            playbook_ref("column-type")
        );
        let help = if old.is_none() && !*using {
            format!("if the current type converts to `{new_type}` without a rewrite (for example a shorter `varchar` to a longer `varchar` or `text`) the change is instant; otherwise {online}")
        } else if is_timezone_change(&change, old.as_deref(), new_type) && cx.ctx.pg_version >= 12 {
            format!("if the stored values are UTC, `SET timezone = 'UTC'` in the same session makes this change instant (PostgreSQL 12+); otherwise {online}")
        } else {
            online
        };
        cx.report(a.span.clone(), message, help);
        cx.playbook("column-type");
    }
}

/// `timestamp` ↔ `timestamptz`, which PostgreSQL 12+ applies without a rewrite when the
/// session time zone is UTC.
fn is_timezone_change(change: &TypeChange, old: Option<&str>, new: &str) -> bool {
    let tz = |t: &str| t.contains("with time zone") || t.starts_with("timestamptz");
    let ts = |t: &str| t.starts_with("timestamp");
    matches!(change, TypeChange::MayRewrite(_))
        && old.is_some_and(|o| ts(o) && ts(new) && tz(o) != tz(new))
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("alter-column-type-rewrite", src, pg_version)
    }

    #[test]
    fn old_type_from_an_earlier_file_statement() {
        let src = "ALTER TABLE orders ADD COLUMN note varchar(100);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(200);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(50);\n";
        let f = findings(src, 15);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].0,
            "changing `orders.note` from `varchar(200)` to `varchar(50)` rewrites `orders` and all its indexes under ACCESS EXCLUSIVE: shrinking the maximum length from `varchar(200)` to `varchar(50)` checks and rewrites every row"
        );
    }

    #[test]
    fn unknown_old_type_may_rewrite() {
        let f = findings("ALTER TABLE orders ALTER COLUMN note TYPE text;", 15);
        assert_eq!(f.len(), 1);
        assert!(f[0].0.starts_with(
            "changing `orders.note` to `text` may rewrite `orders` and all its indexes under ACCESS EXCLUSIVE: lockstep does not know"
        ));
        assert!(f[0]
            .1
            .starts_with("if the current type converts to `text` without a rewrite"));
        assert!(f[0].1.contains(
            "; otherwise convert online instead with a `column-type` playbook (`lockstep run`): "
        ));
    }

    #[test]
    fn using_an_expression_rewrites_using_the_column_does_not() {
        let src = "ALTER TABLE orders ADD COLUMN note varchar(100);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(200) USING note || '';\n";
        let f = findings(src, 15);
        assert_eq!(f.len(), 1);
        assert!(f[0].0.contains(" rewrites `orders`"), "{}", f[0].0);
        // Measured on PostgreSQL 15: `USING note` and `USING note::varchar(200)` convert
        // like no `USING` at all.
        for using in ["note", "note::varchar(200)", "(note)"] {
            let src = format!("ALTER TABLE orders ADD COLUMN note varchar(100);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(200) USING {using};\n");
            assert!(findings(&src, 15).is_empty(), "USING {using}");
        }
    }

    #[test]
    fn timestamptz_depends_on_version() {
        let src = "CREATE TABLE t (at timestamp);\nALTER TABLE t ADD COLUMN x int;\n";
        // New table: silent whatever the version.
        assert!(findings(
            &format!("{src}ALTER TABLE t ALTER COLUMN at TYPE timestamptz;"),
            15
        )
        .is_empty());
        let src = "ALTER TABLE events ADD COLUMN at timestamp;\nALTER TABLE events ALTER COLUMN at TYPE timestamptz;\n";
        let at12 = findings(src, 12);
        assert!(at12[0].0.contains(" may rewrite `events`"), "{}", at12[0].0);
        assert!(at12[0].1.starts_with("if the stored values are UTC"));
        let at11 = findings(src, 11);
        assert!(at11[0].0.contains(" rewrites `events`"), "{}", at11[0].0);
        assert!(at11[0].0.contains("before PostgreSQL 12"));
        assert!(!at11[0].1.contains("UTC"));
    }

    #[test]
    fn referencing_tables_are_named() {
        let src = "ALTER TABLE orders ADD COLUMN id int;\nALTER TABLE line_items ADD CONSTRAINT li_order_fk FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;\nALTER TABLE orders ALTER COLUMN id TYPE bigint;\n";
        let f = findings(src, 15);
        assert_eq!(f.len(), 1);
        assert!(f[0].0.ends_with(
            "; the foreign keys of `line_items` that reference the column are rebuilt under ACCESS EXCLUSIVE too"
        ));
        let locks = lint_source(src, &LintOptions::default()).locks;
        let last = &locks[2].report;
        assert!(last
            .locks
            .iter()
            .any(|l| l.table.name == "line_items"
                && l.mode == crate::sql::ir::LockMode::AccessExclusive));
        assert_eq!(last.rewrites.len(), 1);
    }

    #[test]
    fn binary_coercible_changes_are_silent_and_do_not_rewrite() {
        let src = "ALTER TABLE orders ADD COLUMN price numeric(10,2);\nALTER TABLE orders ALTER COLUMN price TYPE numeric(12,2);\n";
        assert!(findings(src, 15).is_empty());
        let locks = lint_source(src, &LintOptions::default()).locks;
        assert!(locks[1].report.rewrites.is_empty());
        assert!(locks[1].report.scans.is_empty());
    }
}
