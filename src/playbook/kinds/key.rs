//! What `unique` and `primary-key` share: `CREATE UNIQUE INDEX CONCURRENTLY` (writes go on),
//! then `ADD CONSTRAINT … USING INDEX` (ACCESS EXCLUSIVE for milliseconds, no scan). For a
//! primary key, nullable columns first get the `not-null` steps, so `ADD PRIMARY KEY` finds
//! them NOT NULL already and does not scan under its lock.

use serde::Deserialize;

use super::not_null::set_not_null_steps;
use crate::playbook::facts::Facts;
use crate::playbook::names::{fit, list, quote_ident};
use crate::playbook::settings::{Parse, SpecError};
use crate::playbook::steps::{
    constraint_free, default_name, definition, missing_columns, rel, Action, PlanCx, Step, StepPlan,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    name: Option<String>,
    columns: Vec<String>,
}

/// A `[unique]` or `[primary_key]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

impl Key {
    /// Parses the table `section`.
    pub(super) fn parse(raw: RawKey, section: &str, p: &Parse<'_>) -> Result<Key, SpecError> {
        Ok(Key {
            name: raw.name,
            columns: p.columns(&format!("{section}.columns"), &raw.columns)?,
        })
    }
}

/// The constraint's (and its index's) name.
pub(crate) fn index_name(name: &Option<String>, facts: &Facts, columns: &[String]) -> String {
    name.clone()
        .unwrap_or_else(|| default_name(facts, columns, "key"))
}

/// The constraint's (and its index's) name: as given, else `<table>_pkey` for a primary
/// key and `<table>_<columns>_key` for a unique constraint.
pub(super) fn constraint_name(key: &Key, primary: bool, facts: &Facts) -> String {
    if primary && key.name.is_none() {
        fit(&format!("{}_pkey", facts.name))
    } else {
        index_name(&key.name, facts, &key.columns)
    }
}

/// The steps of a unique constraint or (`primary`) a primary key.
pub(super) fn plan(
    key: &Key,
    primary: bool,
    cx: &PlanCx<'_>,
    p: &mut StepPlan,
    refusals: &mut Vec<String>,
) {
    let (facts, extra) = (cx.facts, cx.extra);
    let columns = &key.columns;
    missing_columns(facts, columns, refusals);
    let table = facts.qualified();
    let name = constraint_name(key, primary, facts);
    constraint_free(extra, &name, refusals);
    if primary && !facts.pk_columns.is_empty() {
        refusals.push(format!(
            "{table} already has a primary key ({})",
            list(&facts.pk_columns)
        ));
    }
    let nullable: Vec<String> = if primary {
        columns
            .iter()
            .filter(|c| facts.column(c).is_some_and(|c| !c.not_null))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if !nullable.is_empty() && extra.server_version < 120_000 {
        refusals.push("PostgreSQL before 12 would scan for NOT NULL under ACCESS EXCLUSIVE".into());
    }
    for c in &nullable {
        set_not_null_steps(facts, c, extra.server_version, &mut p.steps);
    }
    let ix = quote_ident(&name);
    let qix = rel(facts, &name);
    p.steps.push(Step {
        name: "index".into(),
        what: "CREATE UNIQUE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on; an INVALID leftover is dropped and built again".into(),
        actions: vec![Action::BuildIndex {
            index: qix.clone(),
            sql: format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {ix} ON {table} ({})",
                list(columns)
            ),
        }],
        undo: vec![Action::Concurrent(format!("DROP INDEX CONCURRENTLY IF EXISTS {qix}"))],
        swap: false,
        kept: None,
    });
    let what = if primary { "PRIMARY KEY" } else { "UNIQUE" };
    p.steps.push(Step {
        name: "constraint".into(),
        what: format!(
            "ADD CONSTRAINT … {what} USING INDEX: no scan, ACCESS EXCLUSIVE for milliseconds"
        ),
        actions: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT {ix} {what} USING INDEX {ix}"
        )])],
        undo: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {ix}"
        )])],
        swap: false,
        kept: None,
    });
    p.before = definition(facts, &[]);
    let mut after = facts.clone();
    for col in &mut after.columns {
        if nullable.contains(&col.name) {
            col.not_null = true;
        }
    }
    p.after = definition(
        &after,
        &[format!(
            "ALTER TABLE {table} ADD CONSTRAINT {ix} {what} ({});",
            list(columns)
        )],
    );
}
