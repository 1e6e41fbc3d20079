use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "add-enum-value-in-transaction",
    default_severity: Some(Severity::Warning),
    summary: "`ALTER TYPE … ADD VALUE` inside a transaction",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
