//! `check`: add a CHECK constraint without blocking writes: `NOT VALID` (no scan, a brief
//! ACCESS EXCLUSIVE), then `VALIDATE` in its own transaction (a scan under SHARE UPDATE
//! EXCLUSIVE, which lets reads and writes go on).

use super::{constraint_free, definition, not_valid_then_validate, Extra, OpPlan};
use crate::playbook::facts::Facts;
use crate::playbook::plan::fit;
use crate::playbook::spec::{Op, OpPlaybook};

pub fn plan(
    pb: &OpPlaybook,
    facts: &Facts,
    extra: &Extra,
    p: &mut OpPlan,
    refusals: &mut Vec<String>,
) {
    let Op::Check { name, expression } = &pb.op else {
        return;
    };
    let name = name
        .clone()
        .unwrap_or_else(|| fit(&format!("{}_lockstep_check", facts.name)));
    constraint_free(extra, &name, refusals);
    let def = format!("CHECK ({expression})");
    not_valid_then_validate(
        &facts.qualified(),
        &name,
        &def,
        "ACCESS EXCLUSIVE",
        &mut p.steps,
    );
    p.before = definition(facts, &[]);
    p.after = definition(
        facts,
        &[format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {def};",
            facts.qualified(),
            crate::sql::ir::quote_ident(&name)
        )],
    );
}
