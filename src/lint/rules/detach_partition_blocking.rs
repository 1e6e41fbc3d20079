use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "detach-partition-blocking",
    default_severity: Some(Severity::Error),
    summary:
        "`DETACH PARTITION` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on parent and partition",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
