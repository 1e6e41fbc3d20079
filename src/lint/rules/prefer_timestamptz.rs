use super::{Checker, Rule};

pub const RULE: Rule = Rule {
    name: "prefer-timestamptz",
    default_severity: None,
    summary: "`timestamp` without time zone; prefer `timestamptz`",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
