use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "refresh-matview-blocking",
    default_severity: Some(Severity::Error),
    summary: "`REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` blocks reads of the view",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
