use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "attach-partition-scan",
    default_severity: Some(Severity::Error),
    summary: "`ATTACH PARTITION` without a matching validated CHECK scans the partition under lock",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
