use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "validate-in-same-transaction",
    default_severity: Some(Severity::Error),
    summary: "`VALIDATE CONSTRAINT` in the transaction that added it `NOT VALID` gains nothing",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
