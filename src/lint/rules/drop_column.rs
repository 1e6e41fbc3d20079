use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "drop-column",
    default_severity: Some(Severity::Warning),
    summary: "dropping a column breaks running code that still reads it",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
