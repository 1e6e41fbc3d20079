use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, ObjName, StmtKind};

pub const RULE: Rule = Rule {
    name: "table-rewrite-command",
    default_severity: Some(Severity::Error),
    summary: "`VACUUM FULL`, `CLUSTER`, `SET TABLESPACE`, `SET LOGGED/UNLOGGED` rewrite the table under ACCESS EXCLUSIVE",
    docs: r#"## What it does
Flags the commands whose whole purpose is to rewrite a table: `VACUUM FULL` (also
`VACUUM (FULL)`), `CLUSTER`, and `ALTER TABLE … SET TABLESPACE`, `SET ACCESS METHOD`,
`SET LOGGED`, `SET UNLOGGED`, on existing tables.

## Why is this bad?
Each copies the table (and, except `SET TABLESPACE`, rebuilds all its indexes) while holding
an ACCESS EXCLUSIVE lock: no reads and no writes until the copy finishes, which on a large
table means minutes to hours of downtime, on every PostgreSQL version.

## Example
```sql
VACUUM FULL orders;
CLUSTER orders USING orders_created_at_idx;
ALTER TABLE orders SET TABLESPACE fast_ssd;
ALTER TABLE events SET LOGGED;
```

## Use instead
- Instead of `VACUUM FULL`: a plain `VACUUM` (takes SHARE UPDATE EXCLUSIVE; reads and writes
  continue; the space is reused rather than returned to the operating system).
- To compact, re-order, move or change the persistence of a large table online: copy it into a
  new table (trigger to keep it in sync, batched copy, swap in one short transaction), or use
  a tool that does so, such as pg_repack.
- On PostgreSQL 19 and later, `REPACK … CONCURRENTLY` compacts and re-orders a table online.
```sql
VACUUM (ANALYZE) orders;
```
"#,
    check,
};

fn check(cx: &mut Checker) {
    let v = cx.ctx.pg_version;
    let repack = if v >= 19 {
        "; on PostgreSQL 19+ `REPACK … CONCURRENTLY` does this online"
    } else {
        ""
    };
    match &cx.stmt.kind {
        StmtKind::Vacuum { full: true, tables } => {
            let Some(on) = targets(cx, tables, "every table in the database") else {
                return;
            };
            let span = match (
                cx.stmt.toks.first(),
                cx.stmt.toks.iter().find(|t| t.is("FULL")),
            ) {
                (Some(a), Some(b)) => a.span.start..b.span.end,
                _ => cx.stmt.head_span(),
            };
            cx.report(
                span,
                format!("`VACUUM FULL` rewrites {on} and all indexes under ACCESS EXCLUSIVE: reads and writes wait until it finishes"),
                format!("use a plain `VACUUM` (reads and writes continue; space is reused, not returned to the OS), or compact online with a table copy and swap, e.g. pg_repack{repack}"),
            );
        }
        StmtKind::Cluster { table } => {
            let tables: Vec<ObjName> = table.iter().cloned().collect();
            let Some(on) = targets(cx, &tables, "every previously clustered table") else {
                return;
            };
            cx.report(
                cx.stmt.span_of(&["CLUSTER"]),
                format!("`CLUSTER` rewrites {on} and all indexes under ACCESS EXCLUSIVE: reads and writes wait until it finishes"),
                format!("re-order online with a table copy and swap, e.g. pg_repack with `--order-by`, or rely on an index instead of physical order{repack}"),
            );
        }
        StmtKind::AlterTable { table, actions } => {
            if cx.ctx.is_new_table(table) {
                return;
            }
            for a in actions {
                let (what, indexes, help) = match &a.kind {
                    ActionKind::SetTablespace => {
                        let text = cx.src.get(a.span.clone()).unwrap_or("").to_ascii_uppercase();
                        if text.contains("ACCESS METHOD") {
                            (
                                "SET ACCESS METHOD",
                                " and all its indexes",
                                "change the access method online with a table copy and swap",
                            )
                        } else {
                            (
                                "SET TABLESPACE",
                                "",
                                "move the data online with a table copy in the new tablespace and a swap, e.g. pg_repack with `--tablespace`",
                            )
                        }
                    }
                    ActionKind::SetLogged => (
                        "SET LOGGED",
                        " and all its indexes",
                        "there is no online form: copy into a new logged table and swap, or run it in a maintenance window",
                    ),
                    ActionKind::SetUnlogged => (
                        "SET UNLOGGED",
                        " and all its indexes",
                        "there is no online form: copy into a new unlogged table and swap, or run it in a maintenance window",
                    ),
                    _ => continue,
                };
                cx.report(
                    a.span.clone(),
                    format!("`{what}` rewrites `{table}`{indexes} under ACCESS EXCLUSIVE: reads and writes wait until it finishes"),
                    help,
                );
            }
        }
        _ => {}
    }
}

/// The existing tables among `tables`, for a message (`all` when none are named); `None`
/// when every named table is new.
fn targets(cx: &Checker, tables: &[ObjName], all: &str) -> Option<String> {
    if tables.is_empty() {
        return Some(all.to_string());
    }
    let existing: Vec<String> = tables
        .iter()
        .filter(|t| !cx.ctx.is_new_table(t))
        .map(|t| format!("`{t}`"))
        .collect();
    (!existing.is_empty()).then(|| existing.join(", "))
}

#[cfg(test)]
mod tests {

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("table-rewrite-command", src, pg_version)
    }

    #[test]
    fn repack_is_suggested_only_from_19() {
        let src = "VACUUM FULL orders;";
        let at19 = findings(src, 19);
        assert_eq!(at19.len(), 1);
        assert!(at19[0]
            .1
            .ends_with("; on PostgreSQL 19+ `REPACK … CONCURRENTLY` does this online"));
        let at18 = findings(src, 18);
        assert_eq!(at18.len(), 1);
        assert!(!at18[0].1.contains("REPACK"));
        assert_eq!(
            at18[0].0,
            "`VACUUM FULL` rewrites `orders` and all indexes under ACCESS EXCLUSIVE: reads and writes wait until it finishes"
        );
    }

    #[test]
    fn every_form() {
        for (src, n) in [
            ("VACUUM (FULL, ANALYZE) orders;", 1),
            ("VACUUM FULL;", 1),
            ("VACUUM orders;", 0),
            ("VACUUM (FULL false) orders;", 0),
            ("CLUSTER orders USING orders_pkey;", 1),
            ("CLUSTER;", 1),
            ("ALTER TABLE orders SET TABLESPACE fast;", 1),
            ("ALTER TABLE orders SET LOGGED, SET UNLOGGED;", 2),
            ("ALTER TABLE orders SET (fillfactor = 70);", 0),
            ("ALTER TABLE orders CLUSTER ON orders_pkey;", 0),
            (
                "CREATE TABLE t (a int);\nVACUUM FULL t;\nCLUSTER t;\nALTER TABLE t SET UNLOGGED;",
                0,
            ),
        ] {
            assert_eq!(findings(src, 15).len(), n, "{src}");
        }
        let f = findings("ALTER TABLE orders SET ACCESS METHOD heap2;", 15);
        assert!(f[0]
            .0
            .starts_with("`SET ACCESS METHOD` rewrites `orders` and all its indexes"));
    }
}
