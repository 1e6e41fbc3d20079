use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "statements-after-access-exclusive",
    default_severity: Some(Severity::Warning),
    summary: "more statements run while an ACCESS EXCLUSIVE lock is held",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
