use std::ops::Range;

use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, ActionKind, ColumnDef, StmtKind};
use crate::sql::parse::Statement;
use crate::sql::tokens::TokKind;

pub const RULE: Rule = Rule {
    name: "json-column",
    default_severity: Some(Severity::Warning),
    summary: "a `json` column has no equality operator; use `jsonb`",
    docs: r#"## What it does
Flags columns of type `json` (or `json[]`): in `CREATE TABLE`, `ALTER TABLE … ADD COLUMN` and
`ALTER COLUMN … TYPE json`. `jsonb` is not flagged.

## Why is this bad?
`json` stores the text as written and has no equality operator, so any query that needs to
compare values fails with `could not identify an equality operator for type json`: `SELECT
DISTINCT`, `GROUP BY`, `UNION` (without `ALL`), `IN (…)` and many ORM-generated queries. It also
cannot be indexed with GIN, and every access re-parses the text. Changing the type later
rewrites the table under ACCESS EXCLUSIVE.

## Example
```sql
CREATE TABLE webhooks (id bigint PRIMARY KEY, payload json NOT NULL);
```

## Use instead
```sql
CREATE TABLE webhooks (id bigint PRIMARY KEY, payload jsonb NOT NULL);
```
Keep `json` only when you must preserve the exact input text (key order, duplicate keys,
whitespace), and say so in an ignore comment.
"#,
    check,
};

fn check(cx: &mut Checker) {
    for (span, col, table, how) in typed_columns(cx) {
        if type_name(&col.data_type).base != "json" {
            continue;
        }
        cx.report(
            span,
            format!(
                "column `{}` of `{table}` {how} `{}`, which has no equality operator: `DISTINCT`, `GROUP BY` and `UNION` on it fail",
                quote_ident(&col.name),
                col.data_type
            ),
            format!(
                "use `{}` instead: it compares, indexes (GIN) and is faster to query",
                col.data_type.replacen("json", "jsonb", 1)
            ),
        );
    }
}

/// What a statement declares about column types: `(span, column, table, verb)` for every
/// column of a `CREATE TABLE`, `ADD COLUMN` and `ALTER COLUMN … TYPE` (whose column carries
/// only a name and the new type). The verb is `is`, or `becomes` for a type change.
/// Temporary tables are skipped. Shared by the type rules.
pub(crate) fn typed_columns(cx: &Checker) -> Vec<(Range<usize>, ColumnDef, String, &'static str)> {
    let mut out = Vec::new();
    match &cx.stmt.kind {
        StmtKind::CreateTable {
            name,
            columns,
            temporary: false,
            ..
        } => {
            for c in columns {
                out.push((
                    column_span(cx.stmt, &c.name),
                    c.clone(),
                    name.to_string(),
                    "is",
                ));
            }
        }
        StmtKind::AlterTable { table, actions } => {
            for a in actions {
                match &a.kind {
                    ActionKind::AddColumn { column, .. } => {
                        out.push((a.span.clone(), column.clone(), table.to_string(), "is"))
                    }
                    ActionKind::AlterColumnType {
                        column, new_type, ..
                    } => out.push((
                        a.span.clone(),
                        ColumnDef {
                            name: column.clone(),
                            data_type: new_type.clone(),
                            ..ColumnDef::default()
                        },
                        table.to_string(),
                        "becomes",
                    )),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

/// A column type as the type rules compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeName {
    /// Lower case, `pg_catalog.` prefix, quotes, modifiers and array bounds removed, single
    /// spaces: `timestamp without time zone` for `timestamp(3) without time zone[]`.
    pub base: String,
    /// The text inside the parentheses (`3`, `20`, `10,2`), if any.
    pub modifiers: Option<String>,
    /// Written as a quoted identifier (`"char"` is a different type from `char`).
    pub quoted: bool,
    pub array: bool,
}

/// Splits a normalized type string (see `normalize_type`) into its parts.
pub(crate) fn type_name(data_type: &str) -> TypeName {
    let mut s = data_type.trim().to_ascii_lowercase();
    let mut array = false;
    loop {
        let t = s.trim_end();
        if let Some(open) = t.strip_suffix(']').and_then(|x| x.rfind('[')) {
            s = t[..open].trim_end().to_string();
            array = true;
        } else if let Some(x) = t.strip_suffix(" array") {
            s = x.to_string();
            array = true;
        } else {
            s = t.to_string();
            break;
        }
    }
    for prefix in ["pg_catalog.", "\"pg_catalog\"."] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    let mut quoted = false;
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s = s[1..s.len() - 1].to_string();
        quoted = true;
    }
    let mut modifiers = None;
    if let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) {
        if open < close {
            modifiers = Some(s[open + 1..close].replace(' ', ""));
            s = format!("{} {}", &s[..open], &s[close + 1..]);
        }
    }
    TypeName {
        base: s.split_whitespace().collect::<Vec<_>>().join(" "),
        modifiers,
        quoted,
        array,
    }
}

/// The span of a column definition's name and type inside a `CREATE TABLE`: the first
/// `name type` pair right after `(` or `,`. Falls back to the statement's head.
pub(crate) fn column_span(stmt: &Statement, column: &str) -> Range<usize> {
    let toks = &stmt.toks;
    let start = (1..toks.len()).find(|&i| {
        (toks[i - 1].is_punct("(") || toks[i - 1].is_punct(","))
            && toks[i].ident() == Some(column)
            && toks
                .get(i + 1)
                .is_some_and(|t| matches!(t.kind, TokKind::Word { .. }))
    });
    let Some(start) = start else {
        return stmt.head_span();
    };
    let mut end = start + 1;
    let mut depth = 0i32;
    while let Some(t) = toks.get(end) {
        let take = match &t.kind {
            TokKind::Punct(p) if p == "(" || p == "[" => {
                depth += 1;
                true
            }
            TokKind::Punct(p) if p == ")" || p == "]" => {
                depth -= 1;
                depth >= 0
            }
            _ if depth > 0 => true,
            TokKind::Punct(p) => p == ".",
            TokKind::Word { .. } => !crate::sql::recognize::COLUMN_OPTION_STARTS
                .iter()
                .any(|k| t.is(k)),
            _ => false,
        };
        if !take {
            break;
        }
        end += 1;
    }
    toks[start].span.start..toks[end - 1].span.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{lint_source, LintOptions};

    #[test]
    fn type_names() {
        let t = type_name("timestamp(3) without time zone[]");
        assert_eq!(t.base, "timestamp without time zone");
        assert_eq!(t.modifiers.as_deref(), Some("3"));
        assert!(t.array && !t.quoted);
        let t = type_name("pg_catalog.varchar(20)");
        assert_eq!(
            (t.base.as_str(), t.modifiers.as_deref()),
            ("varchar", Some("20"))
        );
        let t = type_name("\"char\"");
        assert_eq!((t.base.as_str(), t.quoted), ("char", true));
        assert_eq!(type_name("json array").base, "json");
        assert_eq!(
            type_name("numeric(10,2)").modifiers.as_deref(),
            Some("10,2")
        );
        assert_eq!(type_name("character varying").base, "character varying");
    }

    #[test]
    fn column_span_covers_name_and_type() {
        let src = "CREATE TABLE t (\"Select\" int, created_at timestamp(3) without time zone NOT NULL, PRIMARY KEY (\"Select\"));";
        let st = &crate::sql::parse::analyze(src, 0..src.len());
        let span = column_span(st, "created_at");
        assert_eq!(&src[span], "created_at timestamp(3) without time zone");
        let span = column_span(st, "Select");
        assert_eq!(&src[span], "\"Select\" int");
    }

    #[test]
    fn finding_text() {
        let src = "CREATE TABLE webhooks (id bigint, \"Payload\" json NOT NULL);";
        let d = lint_source(src, &LintOptions::default()).diagnostics;
        let d: Vec<_> = d.iter().filter(|d| d.rule == "json-column").collect();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].message,
            "column `\"Payload\"` of `webhooks` is `json`, which has no equality operator: `DISTINCT`, `GROUP BY` and `UNION` on it fail"
        );
        assert_eq!(&src[d[0].span.clone()], "\"Payload\" json");
    }
}
