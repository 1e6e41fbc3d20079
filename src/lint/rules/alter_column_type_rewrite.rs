use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "alter-column-type-rewrite",
    default_severity: Some(Severity::Error),
    summary: "`ALTER COLUMN … TYPE` that is not binary-coercible rewrites the table under ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
