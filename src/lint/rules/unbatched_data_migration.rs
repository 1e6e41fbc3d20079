use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "unbatched-data-migration",
    default_severity: Some(Severity::Error),
    summary: "`UPDATE`/`DELETE` of a whole existing table in one statement",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
