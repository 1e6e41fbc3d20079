//! Batched `UPDATE`s in primary-key order, the work of `backfill`, of `not-null`'s fill and
//! of `column-type`'s copy: each batch one statement that updates a key range and returns
//! the rows it changed and the range's last key; with an undo table, the rows' old and new
//! versions are kept for a rollback.

use super::Batches;
use crate::playbook::facts::Facts;
use crate::playbook::keyset::Keyset;
use crate::playbook::names::{fit, quote_ident};

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
