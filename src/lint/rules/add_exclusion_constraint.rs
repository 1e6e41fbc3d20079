use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, Constraint, StmtKind};

pub const RULE: Rule = Rule {
    name: "add-exclusion-constraint",
    default_severity: Some(Severity::Error),
    summary: "`ADD CONSTRAINT … EXCLUDE` builds an index and scans under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags `ALTER TABLE … ADD [CONSTRAINT …] EXCLUDE …` on an existing table.

## Why is this bad?
Adding an exclusion constraint builds its index and checks every row against every other
while holding ACCESS EXCLUSIVE on the table: all reads and writes wait until it finishes, on
every PostgreSQL version. Unlike `CHECK` and `FOREIGN KEY`, there is no online form:
PostgreSQL rejects `NOT VALID` for `EXCLUDE`, and `USING INDEX` accepts only unique B-tree
indexes, so the index cannot be built concurrently beforehand.

## Example
```sql
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (room_id WITH =, during WITH &&);
```

## Use instead
There is no online form. For a small table, add it in a quiet period with a short
`lock_timeout`:
```sql
SET lock_timeout = '2s';
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (room_id WITH =, during WITH &&);
```
For a large table, use an online table copy: create a new table with the constraint, keep it
in sync with a trigger, copy the rows in batches, then swap the tables in one short
transaction.
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
        let ActionKind::AddConstraint {
            name,
            constraint: Constraint::Exclude,
            ..
        } = &a.kind
        else {
            continue;
        };
        let shown = name
            .as_deref()
            .map_or(String::new(), |n| format!(" `{}`", quote_ident(n)));
        cx.report(
            a.span.clone(),
            format!(
                "adding exclusion constraint{shown} builds its index and checks every row of `{table}` under ACCESS EXCLUSIVE: reads and writes wait until it finishes"
            ),
            format!(
                "there is no online form (`NOT VALID` and `USING INDEX` are not accepted for `EXCLUDE`): add it in a quiet period with a short `lock_timeout` if `{table}` is small, otherwise use an online table copy (new table with the constraint, trigger to keep it in sync, batched copy, swap)"
            ),
        );
    }
}

#[cfg(test)]
mod tests {

    fn findings(src: &str) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("add-exclusion-constraint", src, 15)
    }

    #[test]
    fn flags_exclude_on_existing_tables_only() {
        let f = findings(
            "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].0,
            "adding exclusion constraint `no_overlap` builds its index and checks every row of `bookings` under ACCESS EXCLUSIVE: reads and writes wait until it finishes"
        );
        assert!(f[0].1.starts_with("there is no online form"));
        assert!(findings(
            "CREATE TABLE bookings (room int, during tstzrange);\nALTER TABLE bookings ADD EXCLUDE USING gist (room WITH =, during WITH &&);"
        )
        .is_empty());
    }
}
