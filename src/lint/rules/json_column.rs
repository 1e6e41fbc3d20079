use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "json-column",
    default_severity: Some(Severity::Warning),
    summary: "a `json` column has no equality operator; use `jsonb`",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
