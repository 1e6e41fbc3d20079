use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;
use crate::sql::plpgsql::{self, PieceKind};

pub const RULE: Rule = Rule {
    name: "unchecked-dynamic-sql",
    default_severity: Some(Severity::Note),
    summary: "a DO block runs SQL built at run time (`EXECUTE format(…)`), which no rule checked",
    docs: r#"## What it does
Reports an `EXECUTE` in a `DO` block whose SQL is built while the block runs (with
`format()`, `||` or variables). lockstep reads the statements of a `DO` block that are
written out, and lints them like any other (their locks are the block's); SQL built at run
time it cannot see.

## Why is this bad?
It is not bad in itself, and it never fails a run on its own. But no rule looked at that
SQL, and the block's lock report leaves out what it locks: an `ALTER TABLE` built with
`format()` takes ACCESS EXCLUSIVE like any other.

## Example
```sql
DO $$
BEGIN
  EXECUTE format('ALTER TABLE %I ADD COLUMN note text', 'orders');
END $$;
```

## Use instead
Write the statement out where the table is known, so that it is checked:
```sql
ALTER TABLE orders ADD COLUMN note text;
```
Where the SQL must be built at run time, review its locks by hand (or with `lockstep trace`)
and silence the note with `-- lockstep: ignore unchecked-dynamic-sql`.
"#,
    check,
};

fn check(cx: &mut Checker) {
    if !matches!(cx.stmt.kind, StmtKind::Do) {
        return;
    }
    let Some((body, Some(lang))) = plpgsql::do_body(cx.src, &cx.stmt.toks) else {
        return;
    };
    let Some(text) = cx.src.get(body.clone()) else {
        return;
    };
    for p in &plpgsql::read_body(text, lang).pieces {
        if p.piece.kind == PieceKind::Dynamic {
            let span = &p.piece.span;
            cx.report(
                span.start + body.start..span.end + body.start,
                "`EXECUTE` runs SQL built at run time: lockstep could not check what it locks",
                "write the statement out so that it is checked, or review its locks by hand (`lockstep trace`)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::test_findings;

    #[test]
    fn only_sql_built_at_run_time_is_reported() {
        let src = "SET lock_timeout = '2s';\nDO $$ BEGIN\n  EXECUTE 'ALTER TABLE a ADD COLUMN b int';\n  EXECUTE format('ALTER TABLE %I ADD COLUMN c int', 'a');\nEND $$;\n";
        let f = test_findings("unchecked-dynamic-sql", src, 15);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].0.contains("built at run time"));
    }
}
