use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "lock-table",
    default_severity: Some(Severity::Error),
    summary: "an explicit `LOCK TABLE` blocks traffic until the transaction ends",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
