use super::{Checker, Rule};
use crate::lint::fix::{place_after, Fix};
use crate::lint::Severity;
use crate::sql::ir::{quote_ident, StmtKind};

pub const RULE: Rule = Rule {
    name: "domain-constraint-validating",
    default_severity: Some(Severity::Error),
    summary: "`ALTER DOMAIN … ADD CONSTRAINT` without `NOT VALID` scans every column of the domain",
    docs: r#"## What it does
Flags `ALTER DOMAIN … ADD [CONSTRAINT …] CHECK (…)` and `… NOT NULL` without `NOT VALID`.

## Why is this bad?
PostgreSQL checks the new constraint against every stored value of the domain: it scans every
column of that type in every table, holding a SHARE lock on each of those tables (all writes
wait) for the whole scan, on every version. A domain used across many or large tables turns
into a long write outage.

## Example
```sql
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
```

## Use instead
```sql
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%') NOT VALID; -- instant
-- in a separate transaction
ALTER DOMAIN email VALIDATE CONSTRAINT email_has_at;
```
`NOT VALID` enforces the constraint for new and updated values at once. `VALIDATE CONSTRAINT`
still scans those columns under the same SHARE locks (measured on PostgreSQL 15), but it runs
on its own, outside the migration's other locks, and can be scheduled for a quiet period and
retried. `NOT VALID` applies to `CHECK` constraints only (`ADD NOT NULL NOT VALID` is a syntax
error): express a `NOT NULL` constraint as `CHECK (VALUE IS NOT NULL)`.
"#,
    check,
};

fn check(cx: &mut Checker) {
    let StmtKind::AlterDomainAddConstraint {
        name: domain,
        not_valid: false,
    } = &cx.stmt.kind
    else {
        return;
    };
    let toks = &cx.stmt.toks;
    let Some(add) = toks.iter().position(|t| t.is("ADD")) else {
        return;
    };
    let mut body = add + 1;
    let constraint = if toks.get(body).is_some_and(|t| t.is("CONSTRAINT")) {
        body += 2;
        toks.get(add + 2)
            .and_then(|t| t.ident())
            .map(str::to_string)
    } else {
        None
    };
    let is_check = toks.get(body).is_some_and(|t| t.is("CHECK"));
    let last = toks
        .iter()
        .rev()
        .find(|t| !t.is_punct(";"))
        .map_or(toks[add].span.end, |t| t.span.end);
    let span = toks[add].span.start..last;
    let shown = constraint
        .as_deref()
        .map_or(String::new(), |c| format!(" `{}`", quote_ident(c)));
    let message = format!(
        "adding constraint{shown} to domain `{domain}` without `NOT VALID` scans every column of that type in every table, holding SHARE locks (writes wait) on those tables"
    );
    if !is_check {
        cx.report(
            span,
            message,
            "add it as `CHECK (VALUE IS NOT NULL) NOT VALID` instead, then `VALIDATE CONSTRAINT` it in a separate transaction",
        );
        return;
    }
    let validate_name = constraint
        .as_deref()
        .map_or("<name>".to_string(), quote_ident);
    let fix = constraint.as_deref().and_then(|c| {
        let validate = format!(
            "ALTER DOMAIN {domain} VALIDATE CONSTRAINT {};",
            quote_ident(c)
        );
        Some(Fix::new(vec![
            Fix::insert(last, " NOT VALID"),
            place_after(cx, &validate)?,
        ]))
    });
    cx.report_fix(
        span,
        message,
        format!(
            "add it with `NOT VALID`, then run `ALTER DOMAIN {domain} VALIDATE CONSTRAINT {validate_name}` in a separate transaction"
        ),
        fix,
    );
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint_source, LintOptions};

    fn findings(src: &str) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("domain-constraint-validating", src, 15)
    }

    #[test]
    fn check_and_not_null() {
        let f = findings("ALTER DOMAIN email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%');");
        assert_eq!(
            f,
            [(
                "adding constraint `email_at` to domain `email` without `NOT VALID` scans every column of that type in every table, holding SHARE locks (writes wait) on those tables".to_string(),
                "add it with `NOT VALID`, then run `ALTER DOMAIN email VALIDATE CONSTRAINT email_at` in a separate transaction".to_string()
            )]
        );
        let f = findings("ALTER DOMAIN email ADD NOT NULL;");
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .1
            .starts_with("add it as `CHECK (VALUE IS NOT NULL) NOT VALID` instead"));
        assert!(findings("ALTER DOMAIN email ADD CHECK (VALUE <> '') NOT VALID;").is_empty());
        assert!(findings("ALTER DOMAIN email VALIDATE CONSTRAINT email_at;").is_empty());
    }

    #[test]
    fn fix_adds_not_valid_and_validates_afterwards() {
        let src = "ALTER DOMAIN public.\"Postal Code\" ADD CONSTRAINT \"Has Digits\" CHECK (VALUE ~ '[0-9]');\n";
        let r = lint_source(src, &LintOptions::default());
        let (fixed, n) = crate::lint::fix::apply(
            src,
            r.diagnostics
                .iter()
                .filter(|d| d.rule == "domain-constraint-validating")
                .filter_map(|d| d.fix.as_ref()),
        );
        assert_eq!(n, 1);
        assert_eq!(
            fixed,
            "ALTER DOMAIN public.\"Postal Code\" ADD CONSTRAINT \"Has Digits\" CHECK (VALUE ~ '[0-9]') NOT VALID;\nALTER DOMAIN public.\"Postal Code\" VALIDATE CONSTRAINT \"Has Digits\";\n"
        );
        // Without a name there is nothing to validate by name: help only.
        let r = lint_source(
            "ALTER DOMAIN d ADD CHECK (VALUE > 0);",
            &LintOptions::default(),
        );
        assert!(r
            .diagnostics
            .iter()
            .filter(|d| d.rule == "domain-constraint-validating")
            .all(|d| d.fix.is_none()));
    }
}
