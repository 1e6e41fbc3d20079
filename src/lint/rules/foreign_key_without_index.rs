use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "foreign-key-without-index",
    default_severity: Some(Severity::Warning),
    summary: "a foreign key whose referencing columns have no index",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
