use super::json_column::{type_name, typed_columns};
use super::{Checker, Rule};
use crate::sql::ir::quote_ident;

pub const RULE: Rule = Rule {
    name: "prefer-timestamptz",
    default_severity: None,
    summary: "`timestamp` without time zone; prefer `timestamptz`",
    docs: r#"## What it does
Flags columns of type `timestamp`, `timestamp(n)` or `timestamp without time zone` (also
arrays), in `CREATE TABLE`, `ADD COLUMN` and `ALTER COLUMN … TYPE`. Off by default; enable it
with `--select prefer-timestamptz` or in `lockstep.toml`.

## Why is this bad?
A `timestamp` is a wall-clock reading with no time zone: PostgreSQL cannot tell which instant
it means. Values written by servers or sessions in different time zones silently disagree, a
daylight-saving change makes an hour ambiguous, and comparisons with `now()` (a
`timestamptz`) depend on the session's `TimeZone` setting. `timestamptz` takes the same 8
bytes and stores an absolute instant.

## Example
```sql
CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp NOT NULL);
```

## Use instead
```sql
CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamptz NOT NULL);
```
Converting an existing column later rewrites the table unless the session time zone is UTC
(PostgreSQL 12+), so choose `timestamptz` when the column is created.
"#,
    check,
};

fn check(cx: &mut Checker) {
    for (span, col, table, how) in typed_columns(cx) {
        let t = type_name(&col.data_type);
        if !matches!(t.base.as_str(), "timestamp" | "timestamp without time zone") {
            continue;
        }
        let better = format!(
            "timestamptz{}{}",
            t.modifiers.map_or(String::new(), |m| format!("({m})")),
            if t.array { "[]" } else { "" }
        );
        cx.report(
            span,
            format!(
                "column `{}` of `{table}` {how} `{}`, which stores no time zone: the same value means different instants in different sessions",
                quote_ident(&col.name),
                col.data_type
            ),
            format!("use `{better}`: it stores an absolute instant in the same 8 bytes"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::{index_of, RULES};
    use crate::lint::{lint_source, LintOptions};

    fn lint(src: &str) -> Vec<(String, String)> {
        let mut opts = LintOptions::default();
        if let Some(i) = index_of("prefer-timestamptz") {
            opts.severities[i] = Some(crate::lint::Severity::Warning);
        }
        assert_eq!(opts.severities.len(), RULES.len());
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "prefer-timestamptz")
            .map(|d| (src[d.span.clone()].to_string(), d.help.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn off_by_default() {
        let src = "CREATE TABLE events (at timestamp);";
        assert!(lint_source(src, &LintOptions::default())
            .diagnostics
            .iter()
            .all(|d| d.rule != "prefer-timestamptz"));
    }

    #[test]
    fn keeps_precision_in_the_suggestion() {
        assert_eq!(
            lint("CREATE TABLE events (at TIMESTAMP(3) WITHOUT TIME ZONE, t timestamptz);"),
            vec![(
                "at TIMESTAMP(3) WITHOUT TIME ZONE".to_string(),
                "use `timestamptz(3)`: it stores an absolute instant in the same 8 bytes"
                    .to_string()
            )]
        );
    }
}
