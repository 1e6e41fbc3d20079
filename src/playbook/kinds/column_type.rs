//! `column-type`: change a column's type online, above all `int` → `bigint` on a primary key
//! that other tables reference, as a shadow rebuild whose target is the same table with the
//! column of the new type: the columns keep their order (a new column at the end would
//! change what `SELECT *` and an `INSERT` without a column list mean), and everything the
//! table is comes along (see `shadow/carry.rs`). The copy converts the column (`using`,
//! default a cast); after the swap the reverse sync converts it back (`reverse_using`) to
//! keep the old table current until `finalize`, noting the rows whose value the old type
//! cannot hold, and a rollback refuses while there are any. A serial column's sequence
//! takes the new type at the swap, and its old type back at a swap back.
//!
//! ```toml
//! [column_type]
//! column = "id"
//! type = "bigint"
//! using = "id::bigint"               # optional: the new value from the row
//! reverse_using = "id::integer"      # optional: the way back, for the reverse sync
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Facts};
use crate::playbook::kind::Kind;
use crate::playbook::names::quote_ident as q;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::shadow::{ColumnChange, Names, ShadowPlan, Target};
use crate::playbook::steps::{try_probes, Probe};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumnType {
    column: String,
    #[serde(rename = "type")]
    new_type: String,
    using: Option<String>,
    reverse_using: Option<String>,
}

/// A `column-type` playbook's `[column_type]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub column: String,
    pub new_type: String,
    /// An expression over the row's columns giving the new value (default: a cast).
    pub using: Option<String>,
    /// The way back, for the reverse sync after the swap (default: a cast).
    pub reverse_using: Option<String>,
}

impl Kind for ColumnType {
    const NAME: &'static str = "column-type";
    const WORKERS: bool = true;
    const DEPENDENTS: bool = true;
    const SWAPS: bool = true;
    type Raw = RawColumnType;
    type Plan = ShadowPlan;

    fn parse(c: RawColumnType, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(ColumnType {
            column: p.nonempty("column_type.column", &c.column)?,
            new_type: p.nonempty("column_type.type", &c.new_type)?,
            using: p.optional("column_type.using", c.using.as_deref())?,
            reverse_using: p.optional("column_type.reverse_using", c.reverse_using.as_deref())?,
        })
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(ShadowPlan, Vec<String>), EngineError> {
        let f = facts::read(client, &pb.table).await?;
        let views = facts::column_views(client, &f, &self.column).await?;
        let mut refusals = self.refusals(&f, &views);
        let names = Names::new(&f, run_id, Vec::new());
        let mut plan = self.plan(f, names);
        refusals.extend(plan.definition_refusals(&pb.dependents));
        refusals.extend(plan.settle(client, pb).await?);
        if refusals.is_empty() {
            let probes = self.probes(&plan.facts);
            refusals.extend(try_probes(client, pb.swap.lock_timeout_ms, &plan.facts, probes).await);
        }
        Ok((plan, refusals))
    }
}

/// Whether values of `old` sort the same way as their conversions to `new`: what a key
/// column's conversion must keep, since the copy and the verification walk the key.
fn order_preserving(old: &str, new: &str) -> bool {
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        "numeric" => Some(4),
        _ => None,
    };
    let text = |t: &str| t == "text" || t.starts_with("character varying");
    match (rank(old), rank(new)) {
        (Some(a), Some(b)) => a <= b,
        _ => text(old) && text(new),
    }
}

impl ColumnType {
    /// The rebuild: the table with the column of the new type.
    pub fn plan(&self, facts: Facts, names: Names) -> ShadowPlan {
        let c = q(&self.column);
        let old_type = facts
            .column(&self.column)
            .map_or_else(|| "text".to_string(), |c| c.type_sql.clone());
        let change = ColumnChange {
            column: self.column.clone(),
            using: self
                .using
                .clone()
                .unwrap_or_else(|| format!("{c}::{}", self.new_type)),
            back: self
                .reverse_using
                .clone()
                .unwrap_or_else(|| format!("{c}::{old_type}")),
            new_type: self.new_type.clone(),
            old_type,
        };
        ShadowPlan {
            key: facts.pk_columns.clone(),
            target: Target::Rebuilt {
                changes: vec![change],
            },
            facts,
            names,
            shape: None,
            logical: None,
            trigger_because: None,
            reverse: crate::playbook::settings::ReverseSync::default(),
        }
    }

    /// What this conversion cannot do (`views`: those using the column).
    pub fn refusals(&self, f: &Facts, views: &[String]) -> Vec<String> {
        let mut out = type_change_refusals(f, &self.column, &self.new_type, views);
        if f.pk_columns.contains(&self.column) && self.using.is_some() {
            out.push(format!(
                "{} is part of the primary key: it is converted with a cast, `column_type.using` is for other columns",
                q(&self.column)
            ));
        }
        out
    }

    /// The playbook's expressions, tried against the table.
    fn probes(&self, f: &Facts) -> Vec<Probe> {
        let t = f.qualified();
        let c = q(&self.column);
        let new_type = &self.new_type;
        let old = f.column(&self.column).map_or("text", |c| c.type_sql.as_str());
        let value = self
            .using
            .clone()
            .unwrap_or_else(|| format!("{c}::{new_type}"));
        let mut probes = vec![Probe {
            key: "column_type.using",
            sql: format!("SELECT ({value})::{new_type} FROM {t} LIMIT 0"),
        }];
        if let Some(r) = &self.reverse_using {
            // The reverse expression reads the column with its new type.
            probes.push(Probe {
                key: "column_type.reverse_using",
                sql: format!(
                    "SELECT ({r})::{old} FROM (SELECT ({value})::{new_type} AS {c} FROM {t} LIMIT 0) AS {}",
                    q(&f.name)
                ),
            });
        }
        probes
    }
}

/// What a shadow rebuild cannot do when `column`'s type changes to `new_type` (`views`:
/// those using the column); for `column-type` and `rebuild`.
pub(crate) fn type_change_refusals(
    f: &Facts,
    column: &str,
    new_type: &str,
    views: &[String],
) -> Vec<String> {
    let t = f.qualified();
    let c = q(column);
    let mut out = Vec::new();
    let Some(col) = f.column(column) else {
        out.push(format!("{t} has no column {c}"));
        return out;
    };
    if f.pk_columns.is_empty() {
        out.push(format!(
            "{t} has no primary key: the copy walks the table by it"
        ));
    }
    if col.generated {
        out.push(format!(
            "{c} is a generated column: change its expression instead"
        ));
    }
    for v in views {
        out.push(format!(
            "view {v} uses {c}: drop it and recreate it after the conversion (a view cannot change a column's type)"
        ));
    }
    for g in f.columns.iter().filter(|g| g.generated) {
        if g.default_sql.as_deref().is_some_and(|d| mentions(d, &c)) {
            out.push(format!(
                "generated column {} is computed from {c}: drop it and add it back after the conversion",
                q(&g.name)
            ));
        }
    }
    for ix in &f.indexes {
        if !ix.columns.iter().any(|x| x == column) && mentions(&ix.tail, &c) {
            out.push(format!(
                "index {} uses {c} in an expression: drop it first and recreate it after the conversion",
                q(&ix.name)
            ));
        }
    }
if f.pk_columns.iter().any(|k| k == column) && !order_preserving(&col.type_sql, new_type) {
    out.push(format!(
        "{c} is part of the primary key: its type can change only to one that sorts its values the same way ({} to {new_type} may not; integer to bigint, varchar to text do)",
        col.type_sql
    ));
}
out
}


/// Whether `ident` (quoted as PostgreSQL prints it) occurs in `text` as a whole word.
pub(crate) fn mentions(text: &str, ident: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '"';
    let mut rest = text;
    while let Some(i) = rest.find(ident) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + ident.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word)
            || ident.starts_with('"') && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            return true;
        }
        rest = &rest[i + ident.len()..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_found_as_whole_words() {
        assert!(mentions("FOREIGN KEY (customer_id)", "customer_id"));
        assert!(!mentions("FOREIGN KEY (customer_id2)", "customer_id"));
        assert!(mentions(" USING btree (\"Id\") WHERE (\"Id\" > 0)", "\"Id\""));
    }

    #[test]
    fn key_columns_change_only_to_types_that_sort_the_same() {
        assert!(order_preserving("integer", "bigint"));
        assert!(order_preserving("smallint", "numeric"));
        assert!(order_preserving("character varying(20)", "text"));
        assert!(!order_preserving("bigint", "integer"));
        assert!(!order_preserving("text", "integer"));
        assert!(!order_preserving("integer", "text"));
    }
}
