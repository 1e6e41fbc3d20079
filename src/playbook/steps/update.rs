//! Batched `UPDATE`s in primary-key order, the work of `backfill`, of `not-null`'s fill and
//! of `column-type`'s copy: each batch one statement that updates a key range and returns
//! the rows it changed and the range's last key; with undo data ([`Undo`]), each updated
//! row's key and the old and new values of the columns the update writes are kept for a
//! rollback, which restores them per column in batches ([`Restore`]).

use serde::{Deserialize, Serialize};

use super::{Action, Batches};
use crate::playbook::facts::Facts;
use crate::playbook::keyset::Keyset;
use crate::playbook::names::{fit, lit, quote_ident};

/// Batches of `UPDATE table SET <set> WHERE <predicate>` in key order; with `undo`, the
/// updated rows' keys and the old and new values of its columns go to its table.
pub(crate) fn update_batches(
    facts: &Facts,
    set: &str,
    predicate: Option<&str>,
    undo: Option<&Undo>,
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
            Some(u) => {
                let keys = u.key_names(&ks);
                let olds = u.old_names();
                let news = u.new_names();
                // The rows are locked and read first: their values as they are now, which
                // the update then changes.
                let old_select: Vec<String> = ks
                    .columns
                    .iter()
                    .map(|(c, _)| quote_ident(c))
                    .zip(&keys)
                    .chain(u.columns.iter().map(|c| quote_ident(c)).zip(&olds))
                    .map(|(c, a)| format!("{c} AS {a}"))
                    .collect();
                let returning: Vec<String> = ks
                    .columns
                    .iter()
                    .map(|(c, _)| format!("{me}.{}", quote_ident(c)))
                    .zip(&keys)
                    .chain(
                        u.columns
                            .iter()
                            .map(|c| format!("{me}.{}", quote_ident(c)))
                            .zip(&news),
                    )
                    .map(|(c, a)| format!("{c} AS {a}"))
                    .collect();
                let on: Vec<String> = keys.iter().map(|k| format!("n.{k} = o.{k}")).collect();
                let insert_cols: Vec<&String> = keys.iter().chain(&olds).chain(&news).collect();
                let from_cols: Vec<String> = keys
                    .iter()
                    .chain(&olds)
                    .map(|c| format!("o.{c}"))
                    .chain(news.iter().map(|c| format!("n.{c}")))
                    .collect();
                format!(
                    "WITH {ctes},
lockstep_old AS (SELECT {old_select} FROM {table} WHERE {cond}{pred} FOR UPDATE),
lockstep_upd AS (UPDATE {table} SET {set} WHERE {key} IN (SELECT {key_list} FROM lockstep_old)
    RETURNING {returning}),
lockstep_undo AS (INSERT INTO {undo} ({insert_cols})
    SELECT {from_cols} FROM lockstep_upd n JOIN lockstep_old o ON {on})
SELECT (SELECT count(*) FROM lockstep_upd)::bigint, {last}",
                    old_select = old_select.join(", "),
                    key = ks.row(""),
                    key_list = keys.join(", "),
                    returning = returning.join(", "),
                    undo = u.table,
                    insert_cols = insert_cols
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    from_cols = from_cols.join(", "),
                    on = on.join(" AND "),
                    last = ks.batch_last()
                )
            }
        }
    };
    Batches {
        label: label.to_string(),
        max_key_sql: ks.max_key_sql(&table),
        first_sql: sql(true),
        next_sql: sql(false),
    }
}

/// The undo data of a run that updates a table in place: one row per updated row, with its
/// primary key (`key1` …) and, for each column the update writes, the value before
/// (`old1` …) and after (`new1` …), in the table's own types (so that NaN, infinities,
/// bytea, arrays, domains and enums come back exactly); `lockstep_id` orders them. A
/// rollback keeps its place in a small cursor table next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undo {
    /// `lockstep."undo_<run>"`.
    pub table: String,
    /// `lockstep."undo_<run>_rollback"`: where a rollback is and what it did.
    pub cursor: String,
    /// The columns the update writes (and a rollback restores), in the order of the undo
    /// table's `old`/`new` columns.
    pub columns: Vec<String>,
}

impl Undo {
    /// The undo data of the run `run_id` for `columns`.
    pub(crate) fn new(run_id: &str, columns: Vec<String>) -> Undo {
        Undo {
            table: undo_table(run_id),
            cursor: format!(
                "lockstep.{}",
                quote_ident(&fit(&format!("undo_{run_id}_rollback")))
            ),
            columns,
        }
    }

    fn key_names(&self, ks: &Keyset) -> Vec<String> {
        (1..=ks.len()).map(|i| format!("key{i}")).collect()
    }

    fn old_names(&self) -> Vec<String> {
        (1..=self.columns.len())
            .map(|i| format!("old{i}"))
            .collect()
    }

    fn new_names(&self) -> Vec<String> {
        (1..=self.columns.len())
            .map(|i| format!("new{i}"))
            .collect()
    }

    /// Creates the undo table (empty, its columns of the table's types) in one transaction.
    pub(crate) fn create_sql(&self, facts: &Facts) -> Vec<String> {
        let ks = Keyset::primary(facts);
        let table = facts.qualified();
        let u = &self.table;
        let mut cols: Vec<(String, String)> = ks
            .columns
            .iter()
            .zip(self.key_names(&ks))
            .map(|((c, _), k)| (c.clone(), k))
            .collect();
        cols.extend(self.columns.iter().cloned().zip(self.old_names()));
        cols.extend(self.columns.iter().cloned().zip(self.new_names()));
        let select: Vec<String> = cols
            .iter()
            .map(|(c, a)| format!("lockstep_t.{} AS {a}", quote_ident(c)))
            .collect();
        let mut sql = vec![
            "CREATE SCHEMA IF NOT EXISTS lockstep".to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS {u} AS SELECT {} FROM {table} AS lockstep_t WITH NO DATA",
                select.join(", ")
            ),
            format!(
                "ALTER TABLE {u} ADD COLUMN IF NOT EXISTS lockstep_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
            ),
            format!(
                "COMMENT ON TABLE {u} IS {}",
                lit(&format!(
                    "undo data of a backfill of {table}: the rows' keys and the old and new values of the columns it writes; `lockstep finalize` drops it"
                ))
            ),
        ];
        let n_keys = ks.len();
        for (i, (c, a)) in cols.iter().enumerate() {
            let what = if i < n_keys {
                "key column"
            } else if i < n_keys + self.columns.len() {
                "value before the backfill of"
            } else {
                "value the backfill wrote to"
            };
            sql.push(format!(
                "COMMENT ON COLUMN {u}.{a} IS {}",
                lit(&format!("{what} {}", quote_ident(c)))
            ));
        }
        sql
    }

    /// Drops the undo data and the rollback's cursor.
    pub(crate) fn drop_sql(&self) -> Vec<String> {
        vec![
            format!("DROP TABLE IF EXISTS {}", self.table),
            format!("DROP TABLE IF EXISTS {}", self.cursor),
        ]
    }

    /// The rollback: every backfilled column of every row restored unless that column
    /// changed since the backfill wrote it.
    pub(crate) fn restore(&self, facts: &Facts) -> Action {
        let ks = Keyset::primary(facts);
        let table = facts.qualified();
        let (u, cur) = (&self.table, &self.cursor);
        let keys = self.key_names(&ks);
        let m = self.columns.len();
        // Whether the column still holds what the backfill wrote, and whether it holds the
        // old value (after the restore). Compared in their text form under fixed output
        // settings: total (json, point and arrays of them have no `=`), and exact (a value's
        // text is a function of the value, and equal text means an equal value), so a
        // change that `=` would call no change (`citext` case, numeric scale, -0) also
        // counts as a change of the application's, which the rollback keeps.
        let same = |i: usize, col: &str| {
            format!(
                "lockstep_t.{}::text IS NOT DISTINCT FROM lockstep_b.{col}{i}::text",
                quote_ident(&self.columns[i - 1])
            )
        };
        let sets: Vec<String> = (1..=m)
            .map(|i| {
                let c = quote_ident(&self.columns[i - 1]);
                if m == 1 {
                    format!("{c} = lockstep_b.old1")
                } else {
                    format!(
                        "{c} = CASE WHEN {} THEN lockstep_b.old{i} ELSE lockstep_t.{c} END",
                        same(i, "new")
                    )
                }
            })
            .collect();
        let any_same: Vec<String> = (1..=m).map(|i| same(i, "new")).collect();
        let back: Vec<String> = (1..=m)
            .map(|i| format!("{} AS back{i}", same(i, "old")))
            .collect();
        let all_back = (1..=m)
            .map(|i| format!("back{i}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let t_key = ks.row("lockstep_t.");
        let b_key: Vec<String> = keys.iter().map(|k| format!("lockstep_b.{k}")).collect();
        let b_key = if b_key.len() == 1 {
            b_key[0].clone()
        } else {
            format!("({})", b_key.join(", "))
        };
        let kept: Vec<String> = (1..=m)
            .map(|i| {
                format!(
                    "kept_columns[{i}] + (SELECT n FROM lockstep_found) - (SELECT count(*) FROM lockstep_done WHERE back{i})"
                )
            })
            .collect();
        // The rows still there are counted under their row locks, as the restore sees them
        // (those it restores, and those whose every column the application changed, locked
        // here): a row the application deletes while the batch runs is gone, not kept.
        let batch = format!(
            "WITH lockstep_next AS (SELECT * FROM {u} WHERE lockstep_id < (SELECT next_id FROM {cur}) ORDER BY lockstep_id DESC LIMIT {{limit}}),
lockstep_twins AS (SELECT lockstep_id, row_number() OVER (PARTITION BY {key_list} ORDER BY lockstep_id DESC) AS lockstep_n FROM lockstep_next),
lockstep_batch AS (SELECT * FROM lockstep_next WHERE lockstep_id > coalesce((SELECT max(lockstep_id) FROM lockstep_twins WHERE lockstep_n > 1), 0)),
lockstep_done AS (UPDATE {table} AS lockstep_t SET {sets} FROM lockstep_batch lockstep_b
    WHERE {t_key} = {b_key} AND ({any_same})
    RETURNING {back}),
lockstep_found AS (SELECT (SELECT count(*) FROM lockstep_done) + (SELECT count(*) FROM (SELECT FROM {table} lockstep_t JOIN lockstep_batch lockstep_b ON {t_key} = {b_key} WHERE NOT ({any_same}) FOR UPDATE OF lockstep_t) lockstep_f) AS n),
lockstep_cursor AS (UPDATE {cur} SET next_id = (SELECT min(lockstep_id) FROM lockstep_batch),
    entries = entries + (SELECT count(*) FROM lockstep_batch),
    restored = restored + (SELECT count(*) FROM lockstep_done WHERE {all_back}),
    kept = kept + (SELECT n FROM lockstep_found) - (SELECT count(*) FROM lockstep_done WHERE {all_back}),
    gone = gone + (SELECT count(*) FROM lockstep_batch) - (SELECT n FROM lockstep_found),
    kept_columns = ARRAY[{kept}]::bigint[]
    WHERE EXISTS (SELECT FROM lockstep_batch))
SELECT (SELECT count(*) FROM lockstep_batch)::bigint",
            key_list = keys.join(", "),
            sets = sets.join(", "),
            any_same = any_same.join(" OR "),
            back = back.join(", "),
            kept = kept.join(", "),
        );
        let zeros = vec!["0"; m].join(", ");
        Action::Restore(Restore {
            label: format!("restore {table}"),
            undo: u.clone(),
            start: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {cur} (next_id bigint NOT NULL, entries bigint NOT NULL, restored bigint NOT NULL, kept bigint NOT NULL, gone bigint NOT NULL, kept_columns bigint[] NOT NULL)"
                ),
                format!(
                    "INSERT INTO {cur} SELECT (SELECT coalesce(max(lockstep_id), 0) + 1 FROM {u}), 0, 0, 0, 0, ARRAY[{zeros}]::bigint[] WHERE NOT EXISTS (SELECT FROM {cur})"
                ),
            ],
            count_sql: format!(
                "SELECT (SELECT count(*) FROM {u})::bigint, (SELECT entries FROM {cur})::bigint"
            ),
            settings: [
                "SET LOCAL enable_hashjoin = off",
                "SET LOCAL enable_mergejoin = off",
                "SET LOCAL extra_float_digits = 3",
            ]
            .join("; "),
            batch_sql: batch,
            summary_sql: format!(
                "SELECT restored, kept, gone, kept_columns FROM {cur}"
            ),
            columns: self.columns.clone(),
        })
    }
}

/// A rollback that restores the values a backfill wrote from its undo data, per column:
/// batches walk the undo table by `lockstep_id`, newest first (a row updated twice gets its
/// oldest value back), and join the table by its primary key; the cursor table holds where
/// the walk is and what it did, updated by each batch in its own statement, so a rollback
/// killed at any point continues where it was and counts every row once. The undo data is
/// kept (finalize drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// What the progress line calls it.
    pub label: String,
    /// The undo table, quoted and qualified.
    pub undo: String,
    /// One transaction that creates the cursor when missing.
    pub start: Vec<String>,
    /// (undo rows in all, undo rows handled so far).
    pub count_sql: String,
    /// Run first in each batch's transaction: nested-loop joins only, so that each batch
    /// reads the table through its primary key and never scans it whole (the planner, not
    /// knowing how few undo rows a batch holds, would hash the table); float output that
    /// tells every two values apart (the text comparison is exact).
    pub settings: String,
    /// One batch of at most `{limit}` undo rows; returns how many it handled (0: done). It
    /// holds no two rows of one key (the older one waits for the next batch).
    pub batch_sql: String,
    /// (rows restored, rows that kept a newer value in a column, rows deleted since, per
    /// column the rows that kept a newer value in it).
    pub summary_sql: String,
    /// The columns restored, in the order of the summary's per-column counts.
    pub columns: Vec<String>,
}

/// The undo table of a run.
fn undo_table(run_id: &str) -> String {
    format!("lockstep.{}", quote_ident(&fit(&format!("undo_{run_id}"))))
}
