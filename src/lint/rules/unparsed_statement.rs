use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::StmtKind;

pub const RULE: Rule = Rule {
    name: "unparsed-statement",
    default_severity: Some(Severity::Note),
    summary: "a statement lockstep could not understand, so no rule checked it",
    docs: r#"## What it does
Reports a statement that neither the SQL parser nor lockstep's statement recognizer could
understand, for instance a syntax error, an unterminated quote, or syntax of an extension.

## Why is this bad?
It is not bad in itself, and it never fails a run on its own. But no rule looked at the
statement, so a hazard in it would go unreported. The rest of the file is still linted.

## Example
```sql
ALTER TABLE orders FROBNICATE COLUMN total;
```

## Use instead
Check the statement for typos. If it is valid PostgreSQL, review its locking by hand (or with
`lockstep trace`) and silence the note with `-- lockstep: ignore unparsed-statement`.
"#,
    check,
};

fn check(cx: &mut Checker) {
    if let StmtKind::Unparsed { reason } = &cx.stmt.kind {
        cx.report(
            cx.stmt.head_span(),
            format!("lockstep could not understand this statement ({reason}); no rule checked it"),
            "check it for typos; if it is valid, review its locks by hand",
        );
    }
}
