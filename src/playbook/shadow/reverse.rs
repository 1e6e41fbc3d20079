//! The deferred reverse syncs. After the swap, until `finalize`, the keys of the new table's
//! changed rows go to a bare log (`lockstep.rlog_<run>`), as the forward capture's do, and
//! `lockstep rollback` applies the log to the old table first, outside any lock, in batches
//! (each one `REPEATABLE READ` transaction, resumable after a crash: a batch deletes the
//! entries it applied), then the last entries under the swap back's lock.
//!
//! - `[swap] reverse = "logical"` (the default with logical capture): nothing on the
//!   writers' path; a replication slot keeps the changes, and the rollback (or `lockstep
//!   sync-back`) moves their keys into the log first (reverse_slot.rs).
//! - `[swap] reverse = "deferred"`: a row trigger logs each key, and nothing else: the
//!   writers pay for one small insert per change instead of a write to the old table with
//!   its indexes.
//!
//! A row whose values the old table's column types cannot hold stops the rollback before the
//! swap back, naming it: swapping back would lose it.

use tokio_postgres::Client;

use super::swap::Attempt;
use super::ShadowPlan;
use crate::playbook::exec::{
    dberr, hold_point, in_transaction, is_unique_violation, BatchError, Batching, Conn,
    EngineError, Outcome, Pacing, Sizing,
};
use crate::playbook::names::{fit, list, quote_ident as q};

/// Fewer entries than this per batch would fall behind a busy application.
const MIN_BATCH: u32 = 1_000;

/// At most this many refused rows are named in the message.
const NAMED: usize = 10;

impl ShadowPlan {
    /// The reverse log (qualified and quoted).
    pub(super) fn reverse_log(&self) -> String {
        format!(
            "lockstep.{}",
            q(&fit(&format!("rlog_{}", self.names.run_id)))
        )
    }

    /// The old table's key columns with their types in the new table (a key column may
    /// change type): what the reverse log holds.
    pub(super) fn reverse_keys(&self) -> Vec<(String, String)> {
        self.keys()
            .columns
            .into_iter()
            .map(|(c, t)| {
                let t = self.change(&c).map_or(t, |x| x.new_type.clone());
                (c, t)
            })
            .collect()
    }

    /// Before the swap (idempotent): the reverse log, a bare heap like the forward capture's.
    pub(super) fn reverse_log_table_sql(&self) -> String {
        let cols: Vec<String> = self
            .reverse_keys()
            .iter()
            .map(|(c, t)| format!("{} {t} NOT NULL", q(c)))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)",
            self.reverse_log(),
            cols.join(", ")
        )
    }

    /// The function that writes the reverse log, which the swap attaches to the new table as
    /// `lockstep_reverse` (the forward capture's kind of function,
    /// [`super::capture::key_log_function_sql`]). A `TRUNCATE` of the new table truncates
    /// the old table and the log.
    pub(super) fn reverse_log_function_sql(&self) -> String {
        let names: Vec<String> = self.reverse_keys().into_iter().map(|(c, _)| c).collect();
        super::capture::key_log_function_sql(
            &self.names.reverse_fn,
            &self.reverse_log(),
            &names,
            &self.old(),
        )
    }

    /// Applying the reverse log to the old table: the statements of one batch, in one
    /// transaction after [`Self::reverse_begin_sql`]. Every logged key's row is deleted from
    /// the old table and inserted again as the new table has it now, converted back to the
    /// old types (or not, if it is gone); the entries go. With `bounded`, the batch is the
    /// entries whose `ctid` is in `$1` (a `tid[]` as text); otherwise every entry.
    ///
    /// A `rebuild` that dropped columns: the old table keeps their values for the rows
    /// whose key stays (they are deleted and inserted in one statement, the dropped columns'
    /// values carried over); a row with a new key takes their defaults.
    fn reverse_replay_sql(&self, bounded: bool) -> Vec<String> {
        let log = self.reverse_log();
        let cond = if bounded {
            " WHERE ctid = ANY ($1::text::tid[])"
        } else {
            ""
        };
        let and = if bounded {
            " AND l.ctid = ANY ($1::text::tid[])"
        } else {
            ""
        };
        let names: Vec<String> = self.keys().columns.into_iter().map(|(c, _)| c).collect();
        let key_list = list(&names);
        let table = q(&self.facts.name);
        // A key of the new table (or of the log) in the old table's type.
        let back = |row: &str, c: &str| match self.change(c) {
            Some(x) => format!("({row}.{})::{}", q(c), x.old_type),
            None => format!("{row}.{}", q(c)),
        };
        let old_match = |row: &str| {
            names
                .iter()
                .map(|c| format!("o.{} = {}", q(c), back(row, c)))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let logged = names
            .iter()
            .map(|c| format!("{table}.{0} = l.{0}", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let cols = self.cols();
        let converted = cols
            .iter()
            .map(|c| match self.change(c) {
                Some(x) => format!("({})::{}", x.back, x.old_type),
                None => format!("{table}.{}", q(c)),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let ovr = self.overriding_into(false);
        let old = self.old();
        let new = self.source();
        let in_log = format!("EXISTS (SELECT 1 FROM {log} l WHERE {logged}{and})");
        let delete = format!(
            "DELETE FROM {old} o USING (SELECT DISTINCT {key_list} FROM {log}{cond}) l WHERE {}",
            old_match("l")
        );
        let kept = self.dropped_kept();
        let write = if kept.is_empty() {
            vec![
                delete,
                format!(
                    "INSERT INTO {old} ({}){ovr} SELECT {converted} FROM {new} WHERE {in_log}",
                    list(&cols)
                ),
            ]
        } else {
            // The deleted rows' columns under names of their own: a conversion back written
            // with unqualified column names must not find them.
            let g_match = names
                .iter()
                .enumerate()
                .map(|(i, c)| format!("g.lockstep_k{i} = {}", back(&table, c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let returning: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, c)| format!("o.{} AS lockstep_k{i}", q(c)))
                .chain(
                    kept.iter()
                        .enumerate()
                        .map(|(i, c)| format!("o.{} AS lockstep_d{i}", q(c))),
                )
                .collect();
            let carried: Vec<String> = (0..kept.len())
                .map(|i| format!("g.lockstep_d{i}"))
                .collect();
            let mut all_cols = cols.clone();
            all_cols.extend(kept.iter().cloned());
            vec![format!(
                "WITH gone AS ({delete} RETURNING {}),
  kept AS (INSERT INTO {old} ({}){ovr} SELECT {converted}, {} FROM {new} JOIN gone g ON {g_match} WHERE {in_log})
INSERT INTO {old} ({}){ovr} SELECT {converted} FROM {new} WHERE {in_log} AND NOT EXISTS (SELECT 1 FROM gone g WHERE {g_match})",
                returning.join(", "),
                list(&all_cols),
                carried.join(", "),
                list(&cols),
            )]
        };
        let mut out = write;
        out.push(format!("DELETE FROM {log}{cond}"));
        out
    }

    /// The columns of the old table a `rebuild` dropped that an insert can set.
    fn dropped_kept(&self) -> Vec<String> {
        self.facts
            .insert_columns()
            .iter()
            .filter(|c| self.dropped(&c.name))
            .map(|c| c.name.clone())
            .collect()
    }

    /// The first statements of a reverse batch: the new table locked (ACCESS SHARE) before
    /// the log and the old table, in the order a `TRUNCATE` of the new table takes its locks
    /// (its trigger truncates both), so the two cannot deadlock; key lookups, whatever the
    /// log's statistics say.
    fn reverse_begin_sql(&self) -> String {
        format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
            self.source()
        )
    }

    /// Whether the new table has a row of a key logged in the entries whose `ctid` is in
    /// `$1`.
    fn reverse_row_exists_sql(&self) -> String {
        let table = q(&self.facts.name);
        let logged = self
            .keys()
            .columns
            .iter()
            .map(|(c, _)| format!("{table}.{0} = l.{0}", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE EXISTS (SELECT 1 FROM {} l WHERE {logged} AND l.ctid = ANY ($1::text::tid[])))",
            self.source(),
            self.reverse_log()
        )
    }

    /// Up to `limit` entries of the reverse log, as a `tid[]` in text, and how many.
    fn reverse_batch_sql(&self, limit: u32) -> String {
        format!(
            "SELECT array_agg(ctid)::text, count(*) FROM (SELECT ctid FROM {} LIMIT {limit}) l",
            self.reverse_log()
        )
    }

    /// The reverse log's entries grouped by key (of the first `limit` entries, or all): the
    /// entries' `ctid`s as a `tid[]` in text, and the key as `(a, b)=(1, 2)`.
    fn reverse_keys_sql(&self, limit: Option<u32>) -> String {
        let names: Vec<String> = self.keys().columns.into_iter().map(|(c, _)| c).collect();
        let values = names
            .iter()
            .map(|c| format!("{}::text", q(c)))
            .collect::<Vec<_>>()
            .join(", ', ', ");
        let from = match limit {
            Some(n) => format!("(SELECT ctid, * FROM {} LIMIT {n}) l", self.reverse_log()),
            None => self.reverse_log(),
        };
        format!(
            "SELECT array_agg(ctid)::text, concat({}, '=(', {values}, ')') FROM {from} GROUP BY {}",
            crate::playbook::names::lit(&format!("({})", names.join(", "))),
            list(&names)
        )
    }
}

/// How many changes since the swap wait to be applied to the old table (`None` without a
/// reverse log: before the swap, with `reverse = "sync"`, after finalize or a swap back).
pub(crate) async fn backlog(client: &Client, plan: &ShadowPlan) -> Option<i64> {
    super::capture::log_backlog(client, &plan.reverse_log()).await
}

/// Applies the reverse log to the old table in batches until a batch finds fewer entries
/// than it may take (that one takes all it sees). Batches adapt to the target batch time;
/// the test hook `reverse` holds after the first. Returns the entries applied.
pub(super) async fn catch_up(conn: Conn<'_, '_>, plan: &ShadowPlan) -> Result<u64, EngineError> {
    let mut applied = 0u64;
    let mut first = true;
    let mut noted = std::time::Instant::now();
    let how = Batching {
        step: "reverse replay",
        sizing: Sizing::Adaptive {
            first: conn.exec.backfill().batch_size,
            min: MIN_BATCH,
        },
        pause: false,
        give_way: true,
        pacing: Pacing::None,
    };
    conn.drive(how, async |limit| {
        let r = match batch(conn, plan, Some(limit)).await {
            // Rows applied piecemeal may briefly share a unique value: a batch of every
            // entry matches the new table at one moment.
            Err(e) if is_unique_violation(&e) => batch(conn, plan, None).await,
            r => r,
        };
        let (n, all) = match r {
            Err(e) if refusable(&e) => {
                refusal(conn.client, plan, Some(limit), e).await?;
                (0, false)
            }
            r => r?,
        };
        applied += n;
        if noted.elapsed().as_secs() >= 5 {
            noted = std::time::Instant::now();
            conn.note(&format!(
                "reverse replay: {applied} changes applied to the old table so far"
            ));
        }
        if first {
            hold_point("reverse").await;
        }
        first = false;
        Ok::<_, BatchError>(Outcome {
            rows: n as i64,
            more: !all,
            paused: false,
        })
    })
    .await?;
    Ok(applied)
}

/// One batch of at most `limit` entries (all with `None`) in one `REPEATABLE READ`
/// transaction: the entries applied and whether it took every entry it saw.
async fn batch(
    conn: Conn<'_, '_>,
    plan: &ShadowPlan,
    limit: Option<u32>,
) -> Result<(u64, bool), tokio_postgres::Error> {
    let c = conn.client;
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = '{}ms'",
        conn.exec.swap.lock_timeout_ms
    );
    in_transaction(c, &begin, async {
        c.batch_execute(&plan.reverse_begin_sql()).await?;
        let ids: Option<String> = match limit {
            Some(n) => {
                let row = c.query_one(&plan.reverse_batch_sql(n), &[]).await?;
                let count: i64 = row.get(1);
                (count >= i64::from(n)).then(|| row.get(0))
            }
            None => None,
        };
        let mut applied = 0;
        for sql in plan.reverse_replay_sql(ids.is_some()) {
            applied = match &ids {
                Some(b) => c.execute(sql.as_str(), &[b]).await?,
                None => c.execute(sql.as_str(), &[]).await?,
            };
        }
        // The last statement deletes the applied entries.
        Ok((applied, ids.is_none()))
    })
    .await
}

/// The rest of the reverse log, applied under the swap back's lock (nothing is logged
/// meanwhile). A row the old table cannot hold stops the swap back, named.
pub(super) async fn finish(client: &Client, plan: &ShadowPlan) -> Result<(), Attempt> {
    client
        .batch_execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        .await?;
    'again: loop {
        client.batch_execute("SAVEPOINT lockstep_reverse").await?;
        for sql in plan.reverse_replay_sql(false) {
            if let Err(e) = client.execute(sql.as_str(), &[]).await {
                if !refusable(&e) {
                    return Err(Attempt::Db(e));
                }
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT lockstep_reverse")
                    .await?;
                refusal(client, plan, None, e)
                    .await
                    .map_err(Attempt::Stop)?;
                continue 'again;
            }
        }
        break;
    }
    client
        .batch_execute("RESET enable_hashjoin; RESET enable_mergejoin")
        .await?;
    Ok(())
}

/// A failure that rows the old table cannot hold explain: a data exception (a value out
/// of the old type's range, …) or an integrity violation (a constraint only the old table
/// has).
fn refusable(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// After a batch failed with `cause`: each key of the first `limit` entries (or all) is
/// applied alone, in a savepoint that is rolled back. A key that fails while the new table
/// has no row of it (a row the old type could not hold, since deleted) has nothing to lose:
/// its entries go, and `Ok` says to go on. A key that fails with a row is named with its
/// error, and the rollback stops. With `limit`, outside any transaction (it uses one of
/// its own); without, inside the swap back's.
async fn refusal(
    client: &Client,
    plan: &ShadowPlan,
    limit: Option<u32>,
    cause: tokio_postgres::Error,
) -> Result<(), EngineError> {
    let own = limit.is_some();
    if own {
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(dberr("reverse replay"))?;
    }
    let r = refused_keys(client, plan, limit).await;
    let end = match &r {
        Ok(_) if own => client.batch_execute("COMMIT").await,
        Err(_) if own => client.batch_execute("ROLLBACK").await,
        _ => Ok(()),
    };
    let (found, obsolete) = r.map_err(dberr("reverse replay"))?;
    end.map_err(dberr("reverse replay"))?;
    if found.is_empty() {
        return if obsolete > 0 {
            Ok(())
        } else {
            Err(dberr("reverse replay")(cause))
        };
    }
    let shown: Vec<&str> = found.iter().take(NAMED).map(String::as_str).collect();
    let more = if found.len() > NAMED {
        format!(" and {} more", found.len() - NAMED)
    } else {
        String::new()
    };
    Err(EngineError::State(format!(
        "{} row(s) written to {} since the swap cannot be written back to {}: {}{more}. Swapping back would lose them: fix or delete them, then run the rollback again",
        found.len(),
        plan.source(),
        plan.old(),
        shown.join("; "),
    )))
}

/// Keys of the reverse log whose rows the old table refuses, with the reason; and how many
/// keys failed with no row in the new table (their entries deleted).
async fn refused_keys(
    client: &Client,
    plan: &ShadowPlan,
    limit: Option<u32>,
) -> Result<(Vec<String>, usize), tokio_postgres::Error> {
    let groups = client.query(&plan.reverse_keys_sql(limit), &[]).await?;
    let mut found = Vec::new();
    let mut obsolete = Vec::new();
    for g in groups {
        let ids: String = g.get(0);
        let key: String = g.get(1);
        client.batch_execute("SAVEPOINT lockstep_key").await?;
        let mut failed = None;
        for sql in plan.reverse_replay_sql(true) {
            if let Err(e) = client.execute(sql.as_str(), &[&ids]).await {
                failed = Some(
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string()),
                );
                break;
            }
        }
        client
            .batch_execute("ROLLBACK TO SAVEPOINT lockstep_key")
            .await?;
        if let Some(why) = failed {
            let row: bool = client
                .query_one(&plan.reverse_row_exists_sql(), &[&ids])
                .await?
                .get(0);
            if row {
                found.push(format!("{key}: {why}"));
            } else {
                obsolete.push(ids);
            }
        }
    }
    for ids in &obsolete {
        client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE ctid = ANY ($1::text::tid[])",
                    plan.reverse_log()
                ),
                &[ids],
            )
            .await?;
    }
    Ok((found, obsolete.len()))
}
