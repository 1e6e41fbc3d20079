use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "unused-ignore",
    default_severity: Some(Severity::Note),
    summary: "a `-- lockstep: ignore` comment that suppresses nothing",
    docs: r#"## What it does
Reports a `-- lockstep: ignore <rule>` or `-- lockstep: ignore-file <rule>` comment that did not
suppress any finding, or that names a rule lockstep does not have.

## Why is this bad?
A stale suppression hides nothing today but will silently hide a real hazard if the statement
changes later; a misspelled rule name suppresses nothing at all.

## Example
```sql
-- lockstep: ignore create-index-non-concurrently
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);
```

## Use instead
Remove the comment, or fix the rule name:
```sql
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);
```
"#,
    check,
};

/// Findings of this rule come from the suppression pass, not from statements.
fn check(_cx: &mut Checker) {}
