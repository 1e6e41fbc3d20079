use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "rename-table",
    default_severity: Some(Severity::Warning),
    summary: "renaming a table breaks running application code",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
