//! `column-type`: change a column's type without rewriting the table under ACCESS
//! EXCLUSIVE — above all `int` → `bigint` on a primary key that other tables reference.
//!
//! A new column of the new type; a BEFORE trigger that sets it from the old one on every
//! insert and update; a batched backfill of the existing rows; the new column's indexes
//! (the primary key's as a unique index) built concurrently; its NOT NULL proven by a
//! validated check; a verification pass; then one short swap transaction under
//! lock_timeout: the columns change names, `ADD PRIMARY KEY USING INDEX`, the default,
//! sequence (widened) or identity moves, foreign keys on the column (inbound and outbound)
//! are re-added `NOT VALID` and validated after, and a reverse trigger keeps the old column
//! current. Rollback before the swap drops what was added; after it (until finalize) it
//! swaps back, the old column's unique index being rebuilt concurrently first. The steps
//! are in `steps.rs`, one function each.
//!
//! ```toml
//! [column_type]
//! column = "id"
//! type = "bigint"
//! using = "id::bigint"               # optional: the new value from the row
//! reverse_using = "id::integer"      # optional: the way back, for the reverse sync
//! ```

mod steps;

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Extra, Facts, FactsError, Index};
use crate::playbook::kind::Kind;
use crate::playbook::names::{fit, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self as engine, InPlace, PlanCx, Probe, StepPlan};

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
    type Raw = RawColumnType;
    type Plan = StepPlan;

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
    ) -> Result<(StepPlan, Vec<String>), EngineError> {
        engine::prepare(self, Self::NAME, pb, client, run_id).await
    }
}

impl InPlace for ColumnType {
    async fn read(&self, client: &Client, f: &Facts, extra: &mut Extra) -> Result<(), FactsError> {
        extra.column_views = facts::column_views(client, f, &self.column).await?;
        extra.column_checks = facts::column_checks(client, f, &self.column).await?;
        extra.column_sequence = facts::column_sequence(client, f, &self.column).await?;
        Ok(())
    }

    fn wanted(&self, facts: &Facts) -> Vec<String> {
        new_index_names(facts, &self.column)
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        steps::plan(self, cx, p, refusals);
    }

    fn probes(&self, f: &Facts) -> Vec<Probe> {
        let t = f.qualified();
        let c = quote_ident(&self.column);
        let new_type = &self.new_type;
        let old = f
            .column(&self.column)
            .map_or("text", |c| c.type_sql.as_str());
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
                    quote_ident(&f.name)
                ),
            });
        }
        probes
    }
}

/// Whether `ident` (quoted as PostgreSQL prints it) occurs in `text` as a whole word.
pub(super) fn mentions(text: &str, ident: &str) -> bool {
    replace_ident(text, ident, "\u{0}") != text
}

/// `text` with every whole-word occurrence of the identifier `ident` replaced by `with`.
pub(super) fn replace_ident(text: &str, ident: &str, with: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '"';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(ident) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + ident.len()..].chars().next();
        let whole = !before.is_some_and(is_word) && !after.is_some_and(is_word)
            || ident.starts_with('"') && !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { ident });
        rest = &rest[i + ident.len()..];
    }
    out.push_str(rest);
    out
}

/// Indexes (not the primary key) on the column: they get a copy on the new column.
pub(super) fn column_indexes<'f>(facts: &'f Facts, column: &str) -> Vec<&'f Index> {
    facts
        .indexes
        .iter()
        .filter(|i| {
            i.columns.iter().any(|c| c == column) || mentions(&i.tail, &quote_ident(column))
        })
        .collect()
}

/// The names of the indexes built on the new column (checked free by the runner).
pub(crate) fn new_index_names(facts: &Facts, column: &str) -> Vec<String> {
    let mut out: Vec<String> = column_indexes(facts, column)
        .iter()
        .map(|i| fit(&format!("{}_lockstep_new", i.name)))
        .collect();
    if facts.pk_columns.iter().any(|c| c == column) {
        out.push(fit(&format!("{}_lockstep_new", facts.pk_name)));
    }
    out
}

/// Integer ranges, for a reverse cast that cannot fail.
pub(super) fn int_range(t: &str) -> Option<(&'static str, &'static str)> {
    match t {
        "smallint" => Some(("-32768", "32767")),
        "integer" => Some(("-2147483648", "2147483647")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_replaced_as_whole_words() {
        assert_eq!(
            replace_ident(" USING btree (id, id2)", "id", "x"),
            " USING btree (x, id2)"
        );
        assert_eq!(
            replace_ident(
                " USING btree (\"Id\") WHERE (\"Id\" > 0)",
                "\"Id\"",
                "\"n\""
            ),
            " USING btree (\"n\") WHERE (\"n\" > 0)"
        );
        assert!(mentions("FOREIGN KEY (customer_id)", "customer_id"));
        assert!(!mentions("FOREIGN KEY (customer_id2)", "customer_id"));
    }
}
