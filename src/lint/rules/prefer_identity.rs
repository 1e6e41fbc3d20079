use super::{Checker, Rule};

pub const RULE: Rule = Rule {
    name: "prefer-identity",
    default_severity: None,
    summary: "`serial` columns; prefer `GENERATED … AS IDENTITY`",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
