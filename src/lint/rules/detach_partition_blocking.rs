use super::drop_index_non_concurrently::insert_concurrently;
use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, StmtKind};

pub const RULE: Rule = Rule {
    name: "detach-partition-blocking",
    default_severity: Some(Severity::Error),
    summary:
        "`DETACH PARTITION` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on parent and partition",
    docs: r#"## What it does
Flags `ALTER TABLE parent DETACH PARTITION p` without `CONCURRENTLY` (and without `FINALIZE`)
when the parent is an existing table.

## Why is this bad?
A plain detach takes ACCESS EXCLUSIVE on both the partitioned table and the partition. The
detach itself is quick, but the lock request waits for every running query on any partition
of the table, and meanwhile every new read and write on the whole partitioned table queues
behind it.

`DETACH PARTITION … CONCURRENTLY` (PostgreSQL 14+) takes only SHARE UPDATE EXCLUSIVE on the
parent and waits for running queries in two transactions instead of blocking them. Before 14
there is no concurrent form.

## Example
```sql
ALTER TABLE measurements DETACH PARTITION measurements_2019;
```

## Use instead
PostgreSQL 14 and later, in a migration that does not run in a transaction:
```sql
ALTER TABLE measurements DETACH PARTITION measurements_2019 CONCURRENTLY;
```
It must be the only action of its `ALTER TABLE` and is not allowed when the parent has a
`DEFAULT` partition. If it is interrupted, finish it with
`ALTER TABLE measurements DETACH PARTITION measurements_2019 FINALIZE`.
Before PostgreSQL 14: set a short `lock_timeout`, keep the transaction short, and retry on
timeout.
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
        let ActionKind::DetachPartition {
            partition,
            concurrently: false,
            finalize: false,
        } = &a.kind
        else {
            continue;
        };
        let message = format!(
            "`DETACH PARTITION` takes ACCESS EXCLUSIVE on `{table}` and `{partition}`: reads and writes on the whole partitioned table wait, also while the detach waits for running queries"
        );
        if v >= 14 {
            let alone = if actions.len() > 1 {
                ", as the only action of its `ALTER TABLE`"
            } else {
                ""
            };
            let fix = if actions.len() == 1 {
                insert_concurrently(cx, a.span.end)
            } else {
                None
            };
            cx.report_fix(
                a.span.clone(),
                message,
                format!(
                    "use `ALTER TABLE {table} DETACH PARTITION {partition} CONCURRENTLY` in a migration that does not run in a transaction{alone}; it is not allowed when `{table}` has a DEFAULT partition"
                ),
                fix,
            );
        } else {
            cx.report(
                a.span.clone(),
                message,
                format!(
                    "there is no concurrent form before PostgreSQL 14 (target: {v}): set a short `lock_timeout`, keep the transaction short and retry on timeout"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("detach-partition-blocking", src, pg_version)
    }

    const DETACH: &str = "ALTER TABLE measurements DETACH PARTITION m2019;";

    #[test]
    fn concurrently_is_suggested_from_14() {
        let at14 = findings(DETACH, 14);
        assert_eq!(at14.len(), 1);
        assert_eq!(
            at14[0].0,
            "`DETACH PARTITION` takes ACCESS EXCLUSIVE on `measurements` and `m2019`: reads and writes on the whole partitioned table wait, also while the detach waits for running queries"
        );
        assert!(at14[0].1.starts_with(
            "use `ALTER TABLE measurements DETACH PARTITION m2019 CONCURRENTLY` in a migration"
        ));
        let at13 = findings(DETACH, 13);
        assert_eq!(at13.len(), 1);
        assert!(at13[0]
            .1
            .starts_with("there is no concurrent form before PostgreSQL 14 (target: 13)"));
        assert!(!at13[0].1.contains("CONCURRENTLY"));
    }

    #[test]
    fn fix_only_from_14_and_alone() {
        let fixed = |src: &str, v: u32| {
            let opts = LintOptions {
                pg_version: v,
                ..LintOptions::default()
            };
            let r = lint_source(src, &opts);
            crate::lint::fix::apply(
                src,
                r.diagnostics
                    .iter()
                    .filter(|d| d.rule == "detach-partition-blocking")
                    .filter_map(|d| d.fix.as_ref()),
            )
            .0
        };
        assert_eq!(
            fixed(DETACH, 14),
            "ALTER TABLE measurements DETACH PARTITION m2019 CONCURRENTLY;"
        );
        assert_eq!(fixed(DETACH, 13), DETACH);
        let two = "ALTER TABLE measurements DETACH PARTITION m2019, DETACH PARTITION m2020;";
        assert_eq!(fixed(two, 15), two);
        assert!(findings(two, 15)[0]
            .1
            .contains("as the only action of its `ALTER TABLE`"));
    }

    #[test]
    fn concurrently_finalize_and_new_parents_are_not_flagged() {
        for src in [
            "ALTER TABLE measurements DETACH PARTITION m2019 CONCURRENTLY;",
            "ALTER TABLE measurements DETACH PARTITION m2019 FINALIZE;",
            "CREATE TABLE measurements (at date) PARTITION BY RANGE (at);\nALTER TABLE measurements DETACH PARTITION m2019;",
        ] {
            assert!(findings(src, 15).is_empty(), "{src}");
        }
    }
}
