use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "add-column-serial",
    default_severity: Some(Severity::Error),
    summary: "adding a serial or identity column rewrites the table under ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
