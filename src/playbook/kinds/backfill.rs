//! `backfill`: an `UPDATE … SET … WHERE …` run in primary-key batches, each its own short
//! transaction (row locks on that batch only), throttled and resumable from its high-water
//! mark. With `keep_undo` (the default), each batch also records the rows' old and new
//! versions in an undo table, so `lockstep rollback` restores the old values of every row
//! that still holds what the backfill wrote (rows the application changed since are left as
//! they are). `lockstep finalize` drops the undo table.
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
use crate::playbook::keyset::Keyset;
use crate::playbook::kind::Kind;
use crate::playbook::names::quote_ident;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, definition, undo_table, update_batches, Action, InPlace, PlanCx, Probe, Step, StepPlan,
};

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
        let ks = Keyset::primary(facts);
        let undo = keep_undo.then(|| undo_table(cx.run_id));
        if let Some(u) = &undo {
            p.steps.push(Step {
            name: "undo table".into(),
            what: "create the undo table that keeps each updated row's old and new version (no lock on the table)".into(),
            actions: vec![Action::Tx(vec![
                "CREATE SCHEMA IF NOT EXISTS lockstep".into(),
                format!(
                "CREATE TABLE IF NOT EXISTS {u} (lockstep_id bigserial PRIMARY KEY, lockstep_key text[] NOT NULL, lockstep_old jsonb NOT NULL, lockstep_new jsonb NOT NULL)"
            )])],
            undo: vec![Action::Tx(vec![format!("DROP TABLE IF EXISTS {u}")])],
            swap: false,
            kept: None,
        });
            p.finalize
                .push(Action::Tx(vec![format!("DROP TABLE IF EXISTS {u}")]));
        } else {
            p.notes
                .push("keep_undo = false: a rollback cannot restore the old values".into());
        }
        // Restore: newest first, only rows that still hold what the backfill wrote.
        let restore_cols: Vec<String> = facts
            .insert_columns()
            .iter()
            .filter(|c| !facts.pk_columns.contains(&c.name) && c.identity != "a")
            .map(|c| quote_ident(&c.name))
            .collect();
        let undo_actions = match &undo {
        Some(u) if !restore_cols.is_empty() => vec![Action::Drain(format!(
            "WITH d AS (DELETE FROM {u} WHERE lockstep_id IN (SELECT lockstep_id FROM {u} ORDER BY lockstep_id DESC LIMIT 5000) RETURNING *),
r AS (UPDATE {table} SET ({cols}) = (SELECT {cols} FROM jsonb_populate_record(NULL::{table}, d.lockstep_old))
    FROM d WHERE {key} = {from} AND to_jsonb({me}.*) = d.lockstep_new RETURNING 1)
SELECT (SELECT count(*) FROM d)::bigint, (SELECT count(*) FROM r)::bigint",
            cols = restore_cols.join(", "),
            key = ks.row(&format!("{table}.")),
            from = ks.from_array("d.lockstep_key"),
            me = quote_ident(&facts.name),
        ))],
        _ => Vec::new(),
    };
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
            undo.as_deref(),
            "update",
        ))],
        kept: undo_actions.is_empty().then(|| {
            format!("rows updated with `SET {set}` keep their new values (no undo data was kept)")
        }),
        undo: undo_actions,
        swap: false,
    });
        p.before = definition(facts, &[]);
        p.after = p.before.clone();
        p.notes.push(format!(
            "the table's definition does not change; rows are updated with `SET {set}`"
        ));
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
