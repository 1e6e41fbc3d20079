use super::json_column::{type_name, typed_columns};
use super::{Checker, Rule};
use crate::sql::ir::quote_ident;

pub const RULE: Rule = Rule {
    name: "prefer-text",
    default_severity: None,
    summary: "`varchar(n)`; prefer `text` with a CHECK if a limit is needed",
    docs: r#"## What it does
Flags columns of type `varchar(n)` / `character varying(n)` (also arrays) in `CREATE TABLE`,
`ADD COLUMN` and `ALTER COLUMN … TYPE`. `varchar` without a length is the same as `text`
and is not flagged. Off by default; enable it with `--select prefer-text` or in
`lockstep.toml`.

## Why is this bad?
In PostgreSQL `varchar(n)` is stored exactly like `text`: the length limit buys no space or
speed. But the limit is part of the column type, so changing it is DDL under ACCESS
EXCLUSIVE, and shortening it rewrites the whole table. Limits picked up front (`varchar(255)`)
tend to be arbitrary and end up being raised in a hurry when real data does not fit.

## Example
```sql
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(255) NOT NULL);
```

## Use instead
```sql
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    CONSTRAINT customers_email_length CHECK (char_length(email) <= 255)
);
```
A CHECK constraint can later be replaced without a rewrite: add the new one `NOT VALID`,
validate it in a separate transaction, drop the old one.
"#,
    check,
};

fn check(cx: &mut Checker) {
    for (span, col, table, how) in typed_columns(cx) {
        let t = type_name(&col.data_type);
        if !matches!(
            t.base.as_str(),
            "varchar" | "character varying" | "char varying"
        ) {
            continue;
        }
        let Some(n) = t.modifiers else {
            continue;
        };
        let column = quote_ident(&col.name);
        cx.report(
            span,
            format!(
                "column `{column}` of `{table}` {how} `{}`: the length limit saves nothing over `text` and changing it later takes ACCESS EXCLUSIVE",
                col.data_type
            ),
            if t.array {
                "use `text[]`".to_string()
            } else {
                format!(
                    "use `text`, with `CHECK (char_length({column}) <= {n})` if the limit is a business rule"
                )
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::index_of;
    use crate::lint::{lint_source, LintOptions, Severity};

    fn lint(src: &str) -> Vec<String> {
        let mut opts = LintOptions::default();
        if let Some(i) = index_of("prefer-text") {
            opts.severities[i] = Some(Severity::Warning);
        }
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "prefer-text")
            .map(|d| d.help.unwrap_or_default())
            .collect()
    }

    #[test]
    fn suggests_a_check_with_the_same_limit() {
        assert_eq!(
            lint("CREATE TABLE customers (\"E-mail\" CHARACTER VARYING(320), note varchar);"),
            vec![
                "use `text`, with `CHECK (char_length(\"E-mail\") <= 320)` if the limit is a business rule"
                    .to_string()
            ]
        );
    }

    #[test]
    fn off_by_default() {
        let src = "CREATE TABLE customers (email varchar(320));";
        assert!(lint_source(src, &LintOptions::default())
            .diagnostics
            .iter()
            .all(|d| d.rule != "prefer-text"));
    }
}
