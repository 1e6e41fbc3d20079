use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;

pub const RULE: Rule = Rule {
    name: "refresh-matview-blocking",
    default_severity: Some(Severity::Error),
    summary: "`REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` blocks reads of the view",
    docs: r#"## What it does
Flags `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY`, including `… WITH NO DATA`, which
empties the view (reads then fail until the next refresh).

## Why is this bad?
A plain refresh re-runs the view's query and replaces its contents while holding an ACCESS
EXCLUSIVE lock on the materialized view: every `SELECT` from the view waits until the refresh
finishes, which for a view worth materializing is usually a long time.

## Example
```sql
REFRESH MATERIALIZED VIEW sales_summary;
```

## Use instead
```sql
-- once: a unique index over all rows of the view (required by CONCURRENTLY)
CREATE UNIQUE INDEX CONCURRENTLY sales_summary_key ON sales_summary (region, month);
-- then
REFRESH MATERIALIZED VIEW CONCURRENTLY sales_summary;
```
A concurrent refresh takes EXCLUSIVE, which still allows reads: it computes the new contents
and applies only the differences. It needs a unique index (plain column list, no `WHERE`) on
the view, and the view must already be populated (not `WITH NO DATA`).
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::RefreshMatView {
        name,
        concurrently: false,
    } = &cx.stmt.kind
    else {
        return;
    };
    if cx.ctx.is_new_table(name) {
        return;
    }
    let span = cx.stmt.span_of(&["REFRESH", "MATERIALIZED", "VIEW"]);
    let with_no_data = cx
        .stmt
        .toks
        .windows(2)
        .any(|w| w[0].is("NO") && w[1].is("DATA"));
    if with_no_data {
        cx.report(
            span,
            format!("`REFRESH MATERIALIZED VIEW … WITH NO DATA` takes ACCESS EXCLUSIVE on `{name}` and empties it: every read of the view fails until it is refreshed again"),
            format!("drop the statement if the view is in use; to recompute it without blocking reads, use `REFRESH MATERIALIZED VIEW CONCURRENTLY {name}`"),
        );
        return;
    }
    cx.report(
        span,
        format!("`REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on `{name}`: every read of the view waits until the refresh finishes"),
        format!("use `REFRESH MATERIALIZED VIEW CONCURRENTLY {name}`; it needs a unique index on the view covering all rows, and the view must already be populated"),
    );
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn count(src: &str) -> usize {
        lint_source(src, &LintOptions::default())
            .diagnostics
            .iter()
            .filter(|d| d.rule == "refresh-matview-blocking")
            .count()
    }

    #[test]
    fn only_blocking_refreshes() {
        assert_eq!(count("REFRESH MATERIALIZED VIEW sales_summary;"), 1);
        assert_eq!(
            count("REFRESH MATERIALIZED VIEW CONCURRENTLY sales_summary;"),
            0
        );
        assert_eq!(
            count("REFRESH MATERIALIZED VIEW sales_summary WITH NO DATA;"),
            1
        );
        assert_eq!(
            count("REFRESH MATERIALIZED VIEW sales_summary WITH DATA;"),
            1
        );
    }
}
