use super::{Checker, Rule};

pub const RULE: Rule = Rule {
    name: "prefer-bigint-id",
    default_severity: None,
    summary: "an `int`/`serial` primary key overflows at 2^31",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
