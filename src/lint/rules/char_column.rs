use super::json_column::{type_name, typed_columns};
use super::{Checker, Rule};
use crate::sql::ir::quote_ident;

pub const RULE: Rule = Rule {
    name: "char-column",
    default_severity: None,
    summary: "`char(n)` pads with spaces; prefer `text`",
    docs: r#"## What it does
Flags columns of type `char(n)`, `character(n)`, `char`, `character`, `nchar(n)` and `bpchar`
(also arrays) in `CREATE TABLE`, `ADD COLUMN` and `ALTER COLUMN … TYPE`. The internal
one-byte type `"char"` (quoted) is a different type and is not flagged. Off by default;
enable it with `--select char-column` or in `lockstep.toml`.

## Why is this bad?
`char(n)` pads every value with spaces to `n` characters. PostgreSQL ignores the padding in
some places (comparing two `char` values, casting to `text`) but not in others: client
libraries receive the padded string, `octet_length()` counts the blanks, and application code
ends up comparing `'ab  '` with `'ab'`. The padding costs space and `char(n)` is not faster
than `text`. A bare `char` means `char(1)`.

## Example
```sql
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
```

## Use instead
```sql
CREATE TABLE countries (
    code text PRIMARY KEY CHECK (char_length(code) = 2),
    name text NOT NULL
);
```
"#,
    check,
};

fn check(cx: &mut Checker) {
    for (span, col, table, how) in typed_columns(cx) {
        let t = type_name(&col.data_type);
        if t.quoted || !matches!(t.base.as_str(), "char" | "character" | "bpchar" | "nchar") {
            continue;
        }
        let column = quote_ident(&col.name);
        // A bare `char`/`character` is `char(1)`; a bare `bpchar` has no length.
        let n = t
            .modifiers
            .or_else(|| (t.base != "bpchar").then(|| "1".to_string()));
        cx.report(
            span,
            format!(
                "column `{column}` of `{table}` {how} `{}`, which pads values with trailing spaces that application code then reads back",
                col.data_type
            ),
            match n {
                Some(n) if !t.array => format!(
                    "use `text`, with `CHECK (char_length({column}) = {n})` if the length is fixed"
                ),
                _ => format!("use `text{}`", if t.array { "[]" } else { "" }),
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
        if let Some(i) = index_of("char-column") {
            opts.severities[i] = Some(Severity::Warning);
        }
        lint_source(src, &opts)
            .diagnostics
            .into_iter()
            .filter(|d| d.rule == "char-column")
            .map(|d| d.help.unwrap_or_default())
            .collect()
    }

    #[test]
    fn bare_char_is_one_character() {
        assert_eq!(
            lint("CREATE TABLE flags (kind char, code CHARACTER(3), raw bpchar, k \"char\");"),
            vec![
                "use `text`, with `CHECK (char_length(kind) = 1)` if the length is fixed"
                    .to_string(),
                "use `text`, with `CHECK (char_length(code) = 3)` if the length is fixed"
                    .to_string(),
                "use `text`".to_string(),
            ]
        );
    }

    #[test]
    fn off_by_default() {
        let src = "CREATE TABLE countries (code char(2));";
        assert!(lint_source(src, &LintOptions::default())
            .diagnostics
            .iter()
            .all(|d| d.rule != "char-column"));
    }
}
