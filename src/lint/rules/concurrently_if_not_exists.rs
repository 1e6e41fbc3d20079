use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "concurrently-if-not-exists",
    default_severity: Some(Severity::Warning),
    summary: "`CREATE INDEX CONCURRENTLY IF NOT EXISTS` silently keeps an INVALID index",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
