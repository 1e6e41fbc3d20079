use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "add-exclusion-constraint",
    default_severity: Some(Severity::Error),
    summary: "`ADD CONSTRAINT … EXCLUDE` builds an index and scans under ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
