//! `foreign-key`: an index on the referencing columns first when none covers them (built
//! concurrently), then `ADD CONSTRAINT … NOT VALID` (SHARE ROW EXCLUSIVE on both tables for
//! milliseconds, no scan), then `VALIDATE` in its own transaction (SHARE UPDATE EXCLUSIVE on
//! the table, ROW SHARE on the referenced one: writes go on).
//!
//! ```toml
//! [foreign_key]
//! columns = ["customer_id"]
//! references = "customers"           # referenced_columns = [...] (default: its primary key)
//! on_delete = "cascade"              # on_update; no action | restrict | cascade | set null | set default
//! create_index = true                # build an index on the columns first if none covers them
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Extra, Facts, FactsError};
use crate::playbook::kind::Kind;
use crate::playbook::names::{list, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, constraint_free, default_name, definition, missing_columns, not_valid_then_validate, rel,
    Action, InPlace, PlanCx, Step, StepPlan,
};
use crate::sql::ir::ObjName;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForeignKey {
    name: Option<String>,
    columns: Vec<String>,
    references: String,
    referenced_columns: Option<Vec<String>>,
    on_delete: Option<String>,
    on_update: Option<String>,
    create_index: Option<bool>,
}

/// A `foreign-key` playbook's `[foreign_key]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub references: ObjName,
    /// Empty: the referenced table's primary key.
    pub referenced_columns: Vec<String>,
    pub on_delete: Option<String>,
    pub on_update: Option<String>,
    /// Build an index on the referencing columns first when none covers them.
    pub create_index: bool,
}

/// `ON DELETE`/`ON UPDATE` actions, upper case.
fn action(p: &Parse<'_>, key: &str, v: Option<&str>) -> Result<Option<String>, SpecError> {
    match v.map(|a| a.trim().to_ascii_uppercase()) {
        None => Ok(None),
        Some(a)
            if [
                "NO ACTION",
                "RESTRICT",
                "CASCADE",
                "SET NULL",
                "SET DEFAULT",
            ]
            .contains(&a.as_str()) =>
        {
            Ok(Some(a))
        }
        Some(a) => Err(p.bad(
            key,
            format!("expected no action, restrict, cascade, set null or set default, found `{a}`"),
        )),
    }
}

impl Kind for ForeignKey {
    const NAME: &'static str = "foreign-key";
    type Raw = RawForeignKey;
    type Plan = StepPlan;

    fn parse(c: RawForeignKey, p: &Parse<'_>) -> Result<Self, SpecError> {
        let cols = p.columns("foreign_key.columns", &c.columns)?;
        let referenced = match &c.referenced_columns {
            None => Vec::new(),
            Some(r) => {
                let r = p.columns("foreign_key.referenced_columns", r)?;
                if r.len() != cols.len() {
                    return Err(p.bad(
                        "foreign_key.referenced_columns",
                        format!(
                            "names {} column(s) but foreign_key.columns names {}",
                            r.len(),
                            cols.len()
                        ),
                    ));
                }
                r
            }
        };
        Ok(ForeignKey {
            name: c.name,
            columns: cols,
            references: p.table("foreign_key.references", &c.references)?,
            referenced_columns: referenced,
            on_delete: action(p, "foreign_key.on_delete", c.on_delete.as_deref())?,
            on_update: action(p, "foreign_key.on_update", c.on_update.as_deref())?,
            create_index: c.create_index.unwrap_or(true),
        })
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(StepPlan, Vec<String>), EngineError> {
        steps::prepare(self, Self::NAME, pb, client, run_id).await
    }
}

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

impl InPlace for ForeignKey {
    async fn read(&self, client: &Client, _: &Facts, extra: &mut Extra) -> Result<(), FactsError> {
        extra.referenced = facts::table_and_key(client, &self.references.to_string()).await?;
        Ok(())
    }

    fn wanted(&self, facts: &Facts) -> Vec<String> {
        if self.create_index && !covered(facts, &self.columns) {
            vec![index_name(facts, &self.columns)]
        } else {
            Vec::new()
        }
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        let (facts, extra) = (cx.facts, cx.extra);
        let ForeignKey {
            name,
            columns,
            referenced_columns,
            on_delete,
            on_update,
            create_index,
            references,
        } = self;
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
            let qix = rel(facts, &ix);
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
}
