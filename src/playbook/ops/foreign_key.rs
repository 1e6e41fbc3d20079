//! `foreign-key`: an index on the referencing columns first when none covers them (built
//! concurrently), then `ADD CONSTRAINT … NOT VALID` (SHARE ROW EXCLUSIVE on both tables for
//! milliseconds, no scan), then `VALIDATE` in its own transaction (SHARE UPDATE EXCLUSIVE on
//! the table, ROW SHARE on the referenced one: writes go on).

use super::{
    constraint_free, default_name, definition, list, missing_columns, not_valid_then_validate,
    Action, Extra, OpPlan, Step,
};
use crate::playbook::facts::Facts;
use crate::playbook::spec::{Op, OpPlaybook};
use crate::sql::ir::quote_ident;

/// The index built on the referencing columns when none covers them.
pub(crate) fn index_name(facts: &Facts, columns: &[String]) -> String {
    default_name(facts, columns, "idx")
}

/// Whether an index of the table starts with `columns` (in any order) and so serves the
/// foreign key's lookups.
pub(crate) fn covered(facts: &Facts, columns: &[String]) -> bool {
    let starts = |ix: &[String]| {
        ix.len() >= columns.len() && columns.iter().all(|c| ix[..columns.len()].contains(c))
    };
    starts(&facts.pk_columns)
        || facts
            .indexes
            .iter()
            .any(|i| !i.tail.contains(" WHERE ") && starts(&i.columns))
}

pub fn plan(
    pb: &OpPlaybook,
    facts: &Facts,
    extra: &Extra,
    p: &mut OpPlan,
    refusals: &mut Vec<String>,
) {
    let Op::ForeignKey {
        name,
        columns,
        referenced_columns,
        on_delete,
        on_update,
        create_index,
        references,
    } = &pb.op
    else {
        return;
    };
    missing_columns(facts, columns, refusals);
    let Some((ref_table, ref_pk)) = &extra.referenced else {
        refusals.push(format!("the referenced table {references} does not exist"));
        return;
    };
    let ref_cols = if referenced_columns.is_empty() {
        if ref_pk.is_empty() {
            refusals.push(format!(
                "{ref_table} has no primary key: name its unique columns in foreign_key.referenced_columns"
            ));
        }
        ref_pk.clone()
    } else {
        referenced_columns.clone()
    };
    if !ref_cols.is_empty() && ref_cols.len() != columns.len() {
        refusals.push(format!(
            "foreign_key.columns names {} column(s) but {ref_table}'s key has {}",
            columns.len(),
            ref_cols.len()
        ));
    }
    let name = name
        .clone()
        .unwrap_or_else(|| default_name(facts, columns, "fkey"));
    constraint_free(extra, &name, refusals);
    p.tables.push(ref_table.clone());
    let table = facts.qualified();
    if *create_index && !covered(facts, columns) {
        let ix = index_name(facts, columns);
        let qix = super::rel(facts, &ix);
        p.steps.push(Step {
            name: "index".into(),
            what: format!(
                "no index covers ({}): CREATE INDEX CONCURRENTLY first (SHARE UPDATE EXCLUSIVE, writes go on), so deletes and key updates on {ref_table} do not scan {table}",
                list(columns)
            ),
            actions: vec![Action::BuildIndex {
                index: qix.clone(),
                sql: format!(
                    "CREATE INDEX CONCURRENTLY {} ON {table} ({})",
                    quote_ident(&ix),
                    list(columns)
                ),
            }],
            undo: vec![Action::Concurrent(format!("DROP INDEX CONCURRENTLY IF EXISTS {qix}"))],
            swap: false,
            kept: None,
        });
    }
    let mut def = format!(
        "FOREIGN KEY ({}) REFERENCES {ref_table} ({})",
        list(columns),
        list(&ref_cols)
    );
    if let Some(a) = on_update {
        def.push_str(&format!(" ON UPDATE {a}"));
    }
    if let Some(a) = on_delete {
        def.push_str(&format!(" ON DELETE {a}"));
    }
    not_valid_then_validate(
        &table,
        &name,
        &def,
        &format!("SHARE ROW EXCLUSIVE on {table} and {ref_table}"),
        &mut p.steps,
    );
    p.before = definition(facts, &[]);
    p.after = definition(
        facts,
        &[format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} {def};",
            quote_ident(&name)
        )],
    );
}
