//! `backfill`: an `UPDATE … SET … WHERE …` run in primary-key batches, each its own short
//! transaction (row locks on that batch only), throttled and resumable from its high-water
//! mark. With `keep_undo` (the default), each batch also records, for every row it updates,
//! the key and the old and new values of the columns the `set` writes (read from it with
//! the SQL parser) in an undo table. `lockstep rollback` restores each of those columns of
//! each row unless that column changed since the backfill wrote it, in batches, and keeps the
//! undo data; `lockstep finalize` drops it (after a completed run or after a rollback).
//!
//! ```toml
//! [update]
//! set = "status = 'archived'"
//! where = "created_at < '2020-01-01'"
//! keep_undo = true
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::names::{list, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, definition, update_batches, Action, InPlace, PlanCx, Probe, Step, StepPlan, Undo,
};
use crate::sql::parse::ident;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    set: String,
    #[serde(rename = "where")]
    predicate: Option<String>,
    keep_undo: Option<bool>,
}

/// A `backfill` playbook's `[update]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub set: String,
    pub predicate: Option<String>,
    /// Keep the old values so `lockstep rollback` can restore them.
    pub keep_undo: bool,
}

impl Kind for Backfill {
    const NAME: &'static str = "backfill";
    type Raw = RawUpdate;
    type Plan = StepPlan;

    fn parse(c: RawUpdate, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(Backfill {
            set: p.nonempty("update.set", &c.set)?,
            predicate: p.optional("update.where", c.predicate.as_deref())?,
            keep_undo: c.keep_undo.unwrap_or(true),
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

impl InPlace for Backfill {
    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        let facts = cx.facts;
        let Backfill {
            set,
            predicate,
            keep_undo,
        } = self;
        if facts.pk_columns.is_empty() {
            refusals.push(format!(
                "{} has no primary key: batches need one to walk the table",
                facts.qualified()
            ));
            return;
        }
        let table = facts.qualified();
        let columns = match written_columns(facts, set) {
            Ok(c) => c,
            Err(why) if *keep_undo => {
                refusals.push(why);
                return;
            }
            // Without undo data the columns are not needed: the probe tries the `set`.
            Err(_) => Vec::new(),
        };
        for c in &columns {
            if facts.pk_columns.contains(c) {
                refusals.push(format!(
                    "`update.set` writes {}, a column of the primary key, which batches walk the table by: change the key with another method",
                    quote_ident(c)
                ));
            }
        }
        // Generated columns can only be set to DEFAULT: recomputed from the others, they
        // need no undo data.
        let restored: Vec<String> = columns
            .iter()
            .filter(|c| facts.column(c).is_some_and(|c| !c.generated))
            .cloned()
            .collect();
        if *keep_undo {
            for c in &restored {
                if facts.column(c).is_some_and(|c| c.identity == "a") {
                    refusals.push(format!(
                        "`update.set` writes {}, an identity column GENERATED ALWAYS, which a rollback cannot write back: set `keep_undo = false` to run it without a way back",
                        quote_ident(c)
                    ));
                }
            }
        }
        let undo = (*keep_undo && !restored.is_empty()).then(|| Undo::new(cx.run_id, restored));
        if let Some(u) = &undo {
            p.steps.push(Step {
                name: "undo table".into(),
                what: format!(
                    "create the undo table that keeps each updated row's key and the old and new values of {} (no lock on the table)",
                    list(&u.columns)
                ),
                actions: vec![Action::Tx(u.create_sql(facts))],
                // A rollback keeps the undo data; finalize drops it.
                undo: Vec::new(),
                swap: false,
                kept: None,
            });
            p.discard.push(Action::Tx(u.drop_sql()));
        } else if *keep_undo {
            p.notes.push(format!(
                "`SET {set}` writes only generated columns: there is nothing to restore"
            ));
        } else {
            p.notes
                .push("keep_undo = false: a rollback cannot restore the old values".into());
        }
        p.steps.push(Step {
            name: "update".into(),
            what: format!(
                "UPDATE {table} SET {set}{} in primary-key batches of about {} ms each, each its own transaction (row locks on the batch only), checkpointed per batch",
                predicate.as_ref().map_or(String::new(), |w| format!(" WHERE {w}")),
                cx.pb.backfill.target_batch_ms
            ),
            actions: vec![Action::Batches(update_batches(
                facts,
                set,
                predicate.as_deref(),
                undo.as_ref(),
                "update",
            ))],
            kept: (undo.is_none() && !*keep_undo).then(|| {
                format!("rows updated with `SET {set}` keep their new values (no undo data was kept)")
            }),
            undo: undo.iter().map(|u| u.restore(facts)).collect(),
            swap: false,
        });
        p.before = definition(facts, &[]);
        p.after = p.before.clone();
        p.notes.push(format!(
            "the table's definition does not change; rows are updated with `SET {set}`"
        ));
        if let Some(u) = &undo {
            p.notes.push(format!(
                "a rollback restores {} of each updated row unless that column changed since the backfill wrote it; it keeps the undo data in {} until `lockstep finalize`",
                list(&u.columns),
                u.table
            ));
        }
    }

    fn probes(&self, facts: &Facts) -> Vec<Probe> {
        vec![Probe {
            key: "update",
            sql: format!(
                "EXPLAIN UPDATE {} SET {}{}",
                facts.qualified(),
                self.set,
                self.predicate
                    .as_ref()
                    .map_or(String::new(), |w| format!(" WHERE {w}"))
            ),
        }]
    }
}

/// The columns `UPDATE … SET <set>` writes, checked against the table: as PostgreSQL names
/// them (unquoted names folded to lower case); `col.field = …` and `col[i] = …` write
/// `col`, `(a, b) = (…)` writes both. The error is a refusal.
fn written_columns(facts: &Facts, set: &str) -> Result<Vec<String>, String> {
    let cols = set_columns(set).map_err(|why| {
        format!(
            "`update.set` could not be read as assignments (`col = expr, …`) to find the columns it writes, which the undo data keeps: {why} (or set `keep_undo = false` to run it without a way back)"
        )
    })?;
    let missing: Vec<&String> = cols.iter().filter(|c| facts.column(c).is_none()).collect();
    if let Some(c) = missing.first() {
        return Err(format!(
            "`update.set` writes {}, which {} does not have",
            quote_ident(c),
            facts.qualified()
        ));
    }
    Ok(cols)
}

/// The target columns of `SET <set>`, each once, in order.
fn set_columns(set: &str) -> Result<Vec<String>, String> {
    use sqlparser::ast::{AssignmentTarget, ObjectName, Statement};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    let sql = format!("UPDATE lockstep_t SET {set}");
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &sql).map_err(|e| {
        // The position is in the statement around `set`: leave it out.
        let m = e.to_string();
        m.split(" at Line: ").next().unwrap_or(&m).to_string()
    })?;
    let [Statement::Update(u)] = parsed.as_slice() else {
        return Err("it is not one list of assignments".into());
    };
    if u.from.is_some() || u.selection.is_some() || u.returning.is_some() || u.limit.is_some() {
        return Err("it holds more than assignments (`FROM`, `WHERE` or `RETURNING`: use `update.where` for the rows)".into());
    }
    let name = |n: &ObjectName| -> Result<String, String> {
        n.0.first()
            .and_then(|p| p.as_ident())
            .map(ident)
            .ok_or_else(|| format!("`{n}` is not a column"))
    };
    let mut out: Vec<String> = Vec::new();
    for a in &u.assignments {
        let names = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![name(n)?],
            AssignmentTarget::Tuple(ns) => ns.iter().map(name).collect::<Result<_, _>>()?,
        };
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::set_columns;

    #[test]
    fn the_columns_a_set_writes() {
        let ok = |s: &str| set_columns(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("flag = 'x'"), ["flag"]);
        assert_eq!(ok("Flag = 1, \"Odd Name\" = lower(\"Odd Name\")"), ["flag", "Odd Name"]);
        assert_eq!(ok("(a, \"B\") = (1, 2), c = DEFAULT"), ["a", "B", "c"]);
        assert_eq!(ok("(a, b) = (SELECT 1, 2)"), ["a", "b"]);
        assert_eq!(ok("\"order\" = 1, \"order\" = 2"), ["order"]);
        assert_eq!(ok("pos.x = 1"), ["pos"]);
        // sqlparser does not read subscripted targets: refused, with its reason.
        assert!(set_columns("tags[1] = 'a'").is_err_and(|e| e.contains("found: [")));
        assert!(set_columns("flag = ").is_err());
        assert!(set_columns("flag = 1 WHERE false").is_err());
        assert!(set_columns("flag = 1 RETURNING *").is_err());
        assert!(set_columns("flag = 1; DROP TABLE t").is_err());
    }
}
