use super::{Checker, Rule};

pub const RULE: Rule = Rule {
    name: "prefer-text",
    default_severity: None,
    summary: "`varchar(n)`; prefer `text` with a CHECK if a limit is needed",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
