use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "domain-constraint-validating",
    default_severity: Some(Severity::Error),
    summary: "`ALTER DOMAIN … ADD CONSTRAINT` without `NOT VALID` scans every column of the domain",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
