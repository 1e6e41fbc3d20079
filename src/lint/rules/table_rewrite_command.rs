use super::{Checker, Rule};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "table-rewrite-command",
    default_severity: Some(Severity::Error),
    summary: "`VACUUM FULL`, `CLUSTER`, `SET TABLESPACE`, `SET LOGGED/UNLOGGED` rewrite the table under ACCESS EXCLUSIVE",
    docs: "",
    check,
};

fn check(_cx: &mut Checker) {}
