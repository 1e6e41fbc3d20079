use super::{Checker, Rule};

pub const RULE: Rule = Rule {
    name: "char-column",
    default_severity: None,
    summary: "`char(n)` pads with spaces; prefer `text`",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
