use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "reindex-non-concurrently",
    default_severity: Some(Severity::Error),
    summary: "`REINDEX` without `CONCURRENTLY` blocks writes, and reads that use the index",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
