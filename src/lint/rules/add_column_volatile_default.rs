use super::{playbook_ref, Checker, Rule};
use crate::lint::locks::{default_volatility, Volatility};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-column-volatile-default",
    default_severity: Some(Severity::Error),
    summary:
        "`ADD COLUMN … DEFAULT` with a volatile default rewrites the table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD COLUMN … DEFAULT expr` on an existing table when `expr` is volatile
(`random()`, `gen_random_uuid()`, `uuid_generate_v4()`, `clock_timestamp()`, `nextval()`, …) or a
function whose volatility lockstep cannot know (a user function it has not seen created). A
function created earlier in the migration set has the volatility its `CREATE FUNCTION`
declares (`VOLATILE` when it declares none). Before PostgreSQL 11 any non-null default is
flagged.

## Why is this bad?
Since PostgreSQL 11 a constant or stable default (`0`, `'x'`, `now()`, `CURRENT_TIMESTAMP`) is
stored once in the catalog and the `ADD COLUMN` is instant. A volatile default must be evaluated
for every row, so PostgreSQL rewrites the whole table and all its indexes while holding an
ACCESS EXCLUSIVE lock: no reads, no writes until it finishes.

## Example
```sql
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
```

## Use instead
```sql
ALTER TABLE orders ADD COLUMN token uuid;
ALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();
-- then fill existing rows in batches, outside the DDL transaction
UPDATE orders SET token = gen_random_uuid() WHERE id BETWEEN 1 AND 10000 AND token IS NULL;
```
New rows get the default from the second statement on; old rows are filled in small batches
that each hold row locks only briefly.

Online: a playbook of kind `backfill` fills the existing rows in batches against the live
database, with throttling, progress and resume (`lockstep plan FILE`, then `lockstep run
FILE`; examples: `playbooks/backfill-*.toml`).
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
        let Some(default) = column.default.as_deref() else {
            continue;
        };
        if default.trim().eq_ignore_ascii_case("null") {
            continue;
        }
        let why = if cx.ctx.pg_version < 11 {
            format!(
                "before PostgreSQL 11 (target: {}), any non-null default rewrites the table",
                cx.ctx.pg_version
            )
        } else {
            match default_volatility(default, &cx.ctx.catalog) {
                Volatility::Safe => continue,
                Volatility::Volatile(f) => format!("`{f}()` is volatile, so every row gets its own value"),
                Volatility::Unknown(f) => format!(
                    "`{f}()` may be volatile (lockstep cannot tell); if it is, every row gets its own value"
                ),
            }
        };
        cx.report(
            a.span.clone(),
            format!(
                "adding column `{}` with default `{default}` rewrites `{table}` and its indexes under ACCESS EXCLUSIVE: {why}",
                column.name
            ),
            format!(
                "add the column without a default, then `ALTER COLUMN {} SET DEFAULT {default}` in a second statement, and backfill existing rows in batches, for example online with {}",
                column.name,
                playbook_ref("backfill")
            ),
        );
        cx.playbook("backfill");
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::test_findings;

    fn messages(src: &str) -> Vec<String> {
        test_findings("add-column-volatile-default", src, 15)
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    #[test]
    fn a_replayed_function_has_a_known_volatility() {
        let add = "ALTER TABLE orders ADD COLUMN c text DEFAULT f();\n";
        // Unknown: it may be volatile.
        let unknown = messages(add);
        assert!(unknown[0].contains("`f()` may be volatile"), "{unknown:?}");
        // Declared STABLE (in an earlier statement or file): no rewrite, no finding.
        let stable = format!(
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'x' $$;\n{add}"
        );
        assert!(messages(&stable).is_empty());
        // Declared without a volatility: VOLATILE, and certain.
        let volatile =
            format!("CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;\n{add}");
        let got = messages(&volatile);
        assert!(got[0].contains("`f()` is volatile"), "{got:?}");
        // The lock model agrees: no rewrite for the STABLE one.
        let r = crate::lint::lint_source(&stable, &crate::lint::LintOptions::default());
        assert!(r.locks[1].report.rewrites.is_empty());
        let r = crate::lint::lint_source(&volatile, &crate::lint::LintOptions::default());
        assert_eq!(r.locks[1].report.rewrites.len(), 1);
    }

    #[test]
    fn words_inside_an_atomic_body_are_not_its_volatility() {
        let src = "CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT stable FROM t; END;\n\
                   ALTER TABLE orders ADD COLUMN c text DEFAULT f();\n";
        let got = messages(src);
        assert!(got[0].contains("`f()` is volatile"), "{got:?}");
    }
}
