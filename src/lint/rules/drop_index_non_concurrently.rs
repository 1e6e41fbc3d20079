use super::{playbook_ref, Checker, Rule};
use crate::lint::fix::{
    can_run_outside_transaction, outside_transaction, place_after, statement_lines, Edit, Fix,
};
use crate::lint::Severity;
use crate::sql::ir::{ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "drop-index-non-concurrently",
    default_severity: Some(Severity::Error),
    summary: "`DROP INDEX` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on the table",
    docs: r#"## What it does
Flags `DROP INDEX` without `CONCURRENTLY` when the index belongs to an existing table (or to a
table lockstep does not know).

## Why is this bad?
A plain `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the index's table, on every PostgreSQL
version. The drop itself is quick, but the lock request must wait for every running query on
the table to finish, and while it waits every new read and write queues behind it: one long
report query turns an instant drop into an outage.

Indexes on a table created earlier in the same file are not flagged: nobody uses that table yet.

## Example
```sql
DROP INDEX orders_created_at_idx;
```

## Use instead
```sql
-- in its own migration, outside a transaction block
DROP INDEX CONCURRENTLY orders_created_at_idx;
```
`DROP INDEX CONCURRENTLY` takes only SHARE UPDATE EXCLUSIVE on the table and waits for running
queries without blocking new ones. It accepts a single index and no `CASCADE`, and cannot run
inside a transaction block, so mark the migration non-transactional.

Online: a playbook of kind `drop-index` drops the index against the live database, with
`lock_timeout` retries, progress and resume (`lockstep plan FILE`, then `lockstep run FILE`;
examples: `playbooks/drop-index-*.toml`).
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::DropIndex {
        names,
        concurrently: false,
    } = &cx.stmt.kind
    else {
        return;
    };
    // (index, its table when the catalog knows it), for indexes not on a new table.
    let targets: Vec<(&ObjName, Option<ObjName>)> = names
        .iter()
        .map(|n| (n, cx.ctx.catalog.table_of_index(n)))
        .filter(|(_, t)| t.as_ref().is_none_or(|t| !cx.ctx.is_new_table(t)))
        .collect();
    if targets.is_empty() {
        return;
    }
    let on: Vec<String> = targets
        .iter()
        .map(|(i, t)| match t {
            Some(t) => format!("`{t}` (table of `{i}`)"),
            None => format!("the table of `{i}`"),
        })
        .collect();
    let cascade = cx.stmt.toks.iter().any(|t| t.is("CASCADE"));
    let mut help = if names.len() == 1 {
        format!(
            "use `DROP INDEX CONCURRENTLY {}` {}",
            names[0],
            outside_transaction(cx)
        )
    } else {
        format!(
            "use one `DROP INDEX CONCURRENTLY` statement per index (it accepts only one), {}",
            outside_transaction(cx)
        )
    };
    let how = if names.len() == 1 {
        "run it"
    } else {
        "drop each"
    };
    help.push_str(&format!(
        "; or {how} online with {}",
        playbook_ref("drop-index")
    ));
    if cascade {
        help.push_str(
            "; `CONCURRENTLY` does not accept `CASCADE`, so drop the dependent objects first",
        );
    }
    let fix = if names.len() == 1 && !cascade {
        cx.stmt
            .toks
            .iter()
            .find(|t| t.is("INDEX"))
            .and_then(|t| insert_concurrently(cx, t.span.end))
    } else {
        None
    };
    cx.report_fix(
        cx.stmt.span_of(&["DROP", "INDEX"]),
        format!(
            "`DROP INDEX` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on {}: reads and writes wait, also while the drop waits for running queries",
            on.join(", ")
        ),
        help,
        fix,
    );
    cx.playbook("drop-index");
}

/// Inserts ` CONCURRENTLY` at byte `at` of the statement. Outside a transaction block the
/// statement is edited in place; inside an explicit `BEGIN … COMMIT` it also moves after the
/// `COMMIT`; no fix when the migration tool runs the whole file in one transaction.
pub(super) fn insert_concurrently(cx: &Checker, at: usize) -> Option<Fix> {
    if !can_run_outside_transaction(cx) {
        return None;
    }
    // Follow the statement's keyword case (`drop index` → `concurrently`).
    let lower = cx
        .stmt
        .toks
        .first()
        .and_then(|t| cx.src.get(t.span.clone()))
        .is_some_and(|w| w.chars().all(|c| c.is_ascii_lowercase()));
    let kw = if lower {
        " concurrently"
    } else {
        " CONCURRENTLY"
    };
    if !cx.ctx.explicit_transaction {
        return Some(Fix::new(vec![Fix::insert(at, kw)]));
    }
    let lines = statement_lines(cx.src, &cx.stmt.span)?;
    let text = format!(
        "{}{kw}{}",
        cx.src.get(cx.stmt.span.start..at)?,
        cx.src.get(at..cx.stmt.span.end)?
    );
    let moved = place_after(cx, &text)?;
    Some(Fix::new(vec![
        Edit {
            span: lines,
            text: String::new(),
        },
        moved,
    ]))
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn findings(src: &str) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("drop-index-non-concurrently", src, 15)
    }

    #[test]
    fn names_the_table_when_the_catalog_knows_it() {
        let src =
            "CREATE INDEX CONCURRENTLY orders_at_idx ON orders (at);\nDROP INDEX orders_at_idx;\n";
        let f = findings(src);
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .0
            .contains("ACCESS EXCLUSIVE on `orders` (table of `orders_at_idx`)"));
        assert_eq!(
            f[0].1,
            "use `DROP INDEX CONCURRENTLY orders_at_idx` in a migration that does not run in a transaction; or run it online with a `drop-index` playbook (`lockstep run`)"
        );
    }

    #[test]
    fn index_of_a_new_table_is_not_flagged() {
        let src = "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;\n";
        assert!(findings(src).is_empty());
        assert!(findings("DROP INDEX CONCURRENTLY t_a;").is_empty());
    }

    fn fixed(src: &str, opts: &LintOptions) -> String {
        let r = lint_source(src, opts);
        crate::lint::fix::apply(
            src,
            r.diagnostics
                .iter()
                .filter(|d| d.rule == "drop-index-non-concurrently")
                .filter_map(|d| d.fix.as_ref()),
        )
        .0
    }

    #[test]
    fn fix_adds_concurrently_and_moves_out_of_the_transaction() {
        let opts = LintOptions::default();
        assert_eq!(
            fixed("drop index orders_at_idx;\n", &opts),
            "drop index concurrently orders_at_idx;\n"
        );
        let src = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE t ADD COLUMN c int;\nDROP INDEX IF EXISTS t_c_idx;\nCOMMIT;\n";
        assert_eq!(
            fixed(src, &opts),
            "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;\nDROP INDEX CONCURRENTLY IF EXISTS t_c_idx;\n"
        );
        let wrapped = LintOptions {
            assume_in_transaction: true,
            ..LintOptions::default()
        };
        assert_eq!(fixed(src, &wrapped), src);
        assert_eq!(fixed("DROP INDEX a, b;", &opts), "DROP INDEX a, b;");
    }

    #[test]
    fn several_indexes_and_cascade() {
        let f = findings("DROP INDEX a_idx, b_idx CASCADE;");
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .1
            .contains("one `DROP INDEX CONCURRENTLY` statement per index"));
        assert!(f[0].1.contains("does not accept `CASCADE`"));
        assert!(f[0]
            .1
            .contains("; or drop each online with a `drop-index` playbook (`lockstep run`); "));
    }
}
