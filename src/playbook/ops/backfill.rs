//! `backfill`: an `UPDATE … SET … WHERE …` run in primary-key batches, each its own short
//! transaction (row locks on that batch only), throttled and resumable from its high-water
//! mark. With `keep_undo` (the default), each batch also records the rows' old and new
//! versions in an undo table, so `lockstep rollback` restores the old values of every row
//! that still holds what the backfill wrote (rows the application changed since are left as
//! they are). `lockstep finalize` drops the undo table.

use super::{definition, Action, Batches, OpPlan, Step};
use crate::playbook::facts::Facts;
use crate::playbook::keyset::Keyset;
use crate::playbook::plan::fit;
use crate::playbook::spec::{Op, OpPlaybook};
use crate::sql::ir::quote_ident;

/// Batches of `UPDATE table SET <set> WHERE <predicate>` in key order; with `undo`, the old
/// and new rows go to that table.
pub(crate) fn update_batches(
    facts: &Facts,
    set: &str,
    predicate: Option<&str>,
    undo: Option<&str>,
    label: &str,
) -> Batches {
    let ks = Keyset::primary(facts);
    let table = facts.qualified();
    let pred = predicate.map_or(String::new(), |p| format!(" AND ({p})"));
    let me = quote_ident(&facts.name);
    let sql = |from_start: bool| -> String {
        let ctes = ks.batch_ctes(&table, from_start);
        let cond = ks.batch_cond(from_start);
        match undo {
            None => format!(
                "WITH {ctes},
lockstep_upd AS (UPDATE {table} SET {set} WHERE {cond}{pred} RETURNING 1)
SELECT (SELECT count(*) FROM lockstep_upd)::bigint, {last}",
                last = ks.batch_last()
            ),
            Some(u) => format!(
                "WITH {ctes},
lockstep_old AS (SELECT {keys}, to_jsonb({me}.*) AS lockstep_row FROM {table} WHERE {cond}{pred} FOR UPDATE),
lockstep_upd AS (UPDATE {table} SET {set} WHERE {key} IN (SELECT {keys} FROM lockstep_old)
    RETURNING {arr} AS lockstep_key, to_jsonb({me}.*) AS lockstep_row),
lockstep_undo AS (INSERT INTO {u} (lockstep_key, lockstep_old, lockstep_new)
    SELECT u.lockstep_key, o.lockstep_row, u.lockstep_row FROM lockstep_upd u
    JOIN lockstep_old o ON u.lockstep_key = {oarr})
SELECT (SELECT count(*) FROM lockstep_upd)::bigint, {last}",
                keys = ks.list(),
                key = ks.row(""),
                arr = ks.text_array(&format!("{me}.")),
                oarr = ks.text_array("o."),
                last = ks.batch_last()
            ),
        }
    };
    Batches {
        label: label.to_string(),
        max_key_sql: ks.max_key_sql(&table),
        first_sql: sql(true),
        next_sql: sql(false),
    }
}

/// The undo table of a run.
pub(crate) fn undo_table(run_id: &str) -> String {
    format!("lockstep.{}", quote_ident(&fit(&format!("undo_{run_id}"))))
}

pub fn plan(
    pb: &OpPlaybook,
    facts: &Facts,
    run_id: &str,
    p: &mut OpPlan,
    refusals: &mut Vec<String>,
) {
    let Op::Backfill {
        set,
        predicate,
        keep_undo,
    } = &pb.op
    else {
        return;
    };
    if facts.pk_columns.is_empty() {
        refusals.push(format!(
            "{} has no primary key: batches need one to walk the table",
            facts.qualified()
        ));
        return;
    }
    let table = facts.qualified();
    let ks = Keyset::primary(facts);
    let undo = keep_undo.then(|| undo_table(run_id));
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
            pb.backfill.target_batch_ms
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
