use super::drop_index_non_concurrently::insert_concurrently;
use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{ReindexTarget, StmtKind};

pub const RULE: Rule = Rule {
    name: "reindex-non-concurrently",
    default_severity: Some(Severity::Error),
    summary: "`REINDEX` without `CONCURRENTLY` blocks writes, and reads that use the index",
    docs: r#"## What it does
Flags `REINDEX INDEX`, `REINDEX TABLE`, `REINDEX SCHEMA` and `REINDEX DATABASE` without
`CONCURRENTLY` (tables created earlier in the same file are not flagged).

## Why is this bad?
A plain `REINDEX` rebuilds each index from scratch while holding a SHARE lock on its table
(every `INSERT`, `UPDATE` and `DELETE` waits) and an ACCESS EXCLUSIVE lock on the index
itself (every query that would use the index waits, even plain reads). On a large table
that is minutes of blocked traffic, per index.

`REINDEX … CONCURRENTLY` exists from PostgreSQL 12. Before 12 the same result is reached by
building a replacement index concurrently and dropping the old one concurrently.

## Example
```sql
REINDEX INDEX orders_created_at_idx;
REINDEX TABLE orders;
```

## Use instead
PostgreSQL 12 and later, in a migration that does not run in a transaction:
```sql
REINDEX INDEX CONCURRENTLY orders_created_at_idx;
REINDEX TABLE CONCURRENTLY orders;
```
Before PostgreSQL 12:
```sql
CREATE INDEX CONCURRENTLY orders_created_at_idx_new ON orders (created_at);
DROP INDEX CONCURRENTLY orders_created_at_idx;
ALTER INDEX orders_created_at_idx_new RENAME TO orders_created_at_idx;
```
A concurrent rebuild takes SHARE UPDATE EXCLUSIVE, so reads and writes continue. If it fails
it leaves an invalid `_ccnew` index behind: drop it and retry.

Online: a playbook of kind `reindex` rebuilds an index or a table's indexes against the live
database, with `lock_timeout` retries, progress and resume (`lockstep plan FILE`, then
`lockstep run FILE`; examples: `playbooks/reindex-*.toml`).
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::Reindex {
        target,
        name,
        concurrently: false,
    } = &cx.stmt.kind
    else {
        return;
    };
    let v = cx.ctx.pg_version;
    let (keyword, what) = match target {
        // Catalogs cannot be reindexed concurrently: nothing better to suggest.
        ReindexTarget::System => return,
        ReindexTarget::Index => {
            let table = cx.ctx.catalog.table_of_index(name);
            if table.as_ref().is_some_and(|t| cx.ctx.is_new_table(t)) {
                return;
            }
            let on = table.map_or("its table".to_string(), |t| format!("`{t}`"));
            (
                "INDEX",
                format!("locks {on} SHARE (writes wait) and the index `{name}` ACCESS EXCLUSIVE (reads that use it wait) while the index is rebuilt"),
            )
        }
        ReindexTarget::Table => {
            if cx.ctx.is_new_table(name) {
                return;
            }
            (
                "TABLE",
                format!("locks `{name}` SHARE (writes wait) and each of its indexes ACCESS EXCLUSIVE (reads that use them wait) while they are rebuilt"),
            )
        }
        ReindexTarget::Schema => (
            "SCHEMA",
            format!("rebuilds every index in schema `{name}`, locking each table SHARE (writes wait) and each index ACCESS EXCLUSIVE (reads that use it wait) in turn"),
        ),
        ReindexTarget::Database => (
            "DATABASE",
            "rebuilds every index in the database, locking each table SHARE (writes wait) and each index ACCESS EXCLUSIVE (reads that use it wait) in turn".to_string(),
        ),
    };
    let shown = if name.name.is_empty() {
        String::new()
    } else {
        format!(" {name}")
    };
    let message = format!("`REINDEX {keyword}{shown}` without `CONCURRENTLY` {what}");
    let kw_tok = cx.stmt.toks.iter().find(|t| t.is(keyword));
    let span = match (cx.stmt.toks.first(), kw_tok) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => cx.stmt.head_span(),
    };
    if v >= 12 {
        let fix = kw_tok.and_then(|t| insert_concurrently(cx, t.span.end));
        cx.report_fix(
            span,
            message,
            format!("use `REINDEX {keyword} CONCURRENTLY{shown}` in a migration that does not run in a transaction"),
            fix,
        );
    } else {
        let each = match target {
            ReindexTarget::Index => "",
            _ => "for each index: ",
        };
        cx.report(
            span,
            message,
            format!("`REINDEX … CONCURRENTLY` needs PostgreSQL 12 (target: {v}): {each}build a replacement with `CREATE INDEX CONCURRENTLY`, then `DROP INDEX CONCURRENTLY` the old index and rename the new one"),
        );
    }
    // The playbook rebuilds one index or one table's indexes, not a schema or a database.
    if matches!(target, ReindexTarget::Index | ReindexTarget::Table) {
        cx.online("reindex", "run it");
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("reindex-non-concurrently", src, pg_version)
    }

    #[test]
    fn suggests_concurrently_from_12_and_a_replacement_index_before() {
        let src = "REINDEX TABLE orders;";
        let at12 = findings(src, 12);
        assert_eq!(at12.len(), 1);
        assert_eq!(
            at12[0].1,
            "use `REINDEX TABLE CONCURRENTLY orders` in a migration that does not run in a transaction; or run it online with a `reindex` playbook (`lockstep run`)"
        );
        let at11 = findings(src, 11);
        assert_eq!(at11.len(), 1);
        assert_eq!(at11[0].0, at12[0].0);
        assert!(at11[0].1.starts_with(
            "`REINDEX … CONCURRENTLY` needs PostgreSQL 12 (target: 11): for each index: build a replacement with `CREATE INDEX CONCURRENTLY`"
        ));
        assert!(!at11[0].1.contains("use `REINDEX"));
        assert!(at11[0]
            .1
            .ends_with("; or run it online with a `reindex` playbook (`lockstep run`)"));
        let schema = findings("REINDEX SCHEMA public;", 15);
        assert!(!schema[0].1.contains("playbook"), "{}", schema[0].1);
    }

    #[test]
    fn fix_only_from_12() {
        let fixed = |v: u32| {
            let opts = LintOptions {
                pg_version: v,
                ..LintOptions::default()
            };
            let src = "REINDEX (VERBOSE) TABLE orders;";
            let r = lint_source(src, &opts);
            crate::lint::fix::apply(
                src,
                r.diagnostics
                    .iter()
                    .filter(|d| d.rule == "reindex-non-concurrently")
                    .filter_map(|d| d.fix.as_ref()),
            )
            .0
        };
        assert_eq!(fixed(12), "REINDEX (VERBOSE) TABLE CONCURRENTLY orders;");
        assert_eq!(fixed(11), "REINDEX (VERBOSE) TABLE orders;");
    }

    #[test]
    fn concurrently_and_new_tables_and_system_are_not_flagged() {
        for src in [
            "REINDEX TABLE CONCURRENTLY orders;",
            "REINDEX (VERBOSE) INDEX CONCURRENTLY orders_pkey;",
            "CREATE TABLE t (a int);\nREINDEX TABLE t;",
            "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nREINDEX INDEX t_a;",
            "REINDEX SYSTEM;",
        ] {
            assert!(findings(src, 15).is_empty(), "{src}");
        }
    }

    #[test]
    fn index_message_names_the_table() {
        let src =
            "CREATE INDEX CONCURRENTLY orders_at_idx ON orders (at);\nREINDEX INDEX orders_at_idx;";
        let f = findings(src, 15);
        assert_eq!(
            f[0].0,
            "`REINDEX INDEX orders_at_idx` without `CONCURRENTLY` locks `orders` SHARE (writes wait) and the index `orders_at_idx` ACCESS EXCLUSIVE (reads that use it wait) while the index is rebuilt"
        );
    }
}
