use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "drop-table",
    default_severity: Some(Severity::Warning),
    summary: "dropping a table, schema or database loses data",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
