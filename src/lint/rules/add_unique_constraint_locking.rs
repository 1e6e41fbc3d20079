use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "add-unique-constraint-locking",
    default_severity: Some(Severity::Error),
    summary: "`ADD UNIQUE` / `PRIMARY KEY` builds an index under ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
