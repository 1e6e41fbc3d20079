use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "drop-index-non-concurrently",
    default_severity: Some(Severity::Error),
    summary: "`DROP INDEX` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on the table",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
