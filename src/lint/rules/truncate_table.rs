use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "truncate-table",
    default_severity: Some(Severity::Warning),
    summary: "`TRUNCATE` loses data and takes ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
