use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "transaction-nesting",
    default_severity: Some(Severity::Error),
    summary: "nested, unterminated or unmatched transaction control",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
