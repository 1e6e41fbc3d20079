//! The deferred reverse syncs. After the swap, until `finalize`, the keys of the new table's
//! changed rows go to a bare log (`lockstep.rlog_<run>`), as the forward capture's do, and
//! `lockstep rollback` applies the log to the old table first, outside any lock, in batches
//! (each one `REPEATABLE READ` transaction, resumable after a crash: a batch deletes the
//! entries it applied), then the last entries under the swap back's lock.
//!
//! - `[swap] reverse = "logical"` (the default with logical capture): nothing on the
//!   writers' path. A publication of the new table and a slot, made before the swap, keep
//!   its changes; the rollback (or `lockstep sync-back`) streams them from the slot into the
//!   log. The slot also keeps the keys the runner itself replayed into the new table before
//!   the swap: applying a key copies the new table's row as it is, so an extra key costs a
//!   write and nothing else. The slot holds back WAL until it is read.
//! - `[swap] reverse = "deferred"`: a row trigger logs each key, and nothing else: the
//!   writers pay for one small insert per change instead of a write to the old table with
//!   its indexes.
//!
//! A row whose values the old table's column types cannot hold stops the rollback before the
//! swap back, naming it: swapping back would lose it.

use std::cell::RefCell;
use std::rc::Rc;

use tokio_postgres::Client;

use super::logical::{
    discard_sql, open_decoder, retained_by, send_token, slot_name, write_keys, SWAP_WAIT,
};
use super::stream::Decoder;
use super::swap::Attempt;
use super::ShadowPlan;
use crate::playbook::exec::{
    dberr, hold_point, in_transaction, is_unique_violation, BatchError, Batching, Conn,
    EngineError, Exec, Outcome, Pacing, Sizing,
};
use crate::playbook::names::{fit, list, quote_ident as q};
use crate::playbook::settings::ReverseSync;

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

    /// The slot and the publication (one name) that keep the new table's changes after the
    /// swap, with `reverse = "logical"`.
    pub(super) fn reverse_slot(&self) -> Option<String> {
        (self.reverse == ReverseSync::Logical).then(|| slot_name("lockstep_r", &self.names.run_id))
    }

    /// The reverse slot and its publication gone (idempotent; a stream still open ends).
    pub(super) fn reverse_discard_sql(&self) -> Vec<String> {
        self.reverse_slot()
            .map(|n| discard_sql(&n, &n))
            .unwrap_or_default()
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
    /// `lockstep_reverse`. It runs with its owner's rights (an application role allowed to
    /// write the table needs none on the log) and, like the forward capture's, sets no
    /// search_path: every name and operator in it is schema-qualified. A `TRUNCATE` of the
    /// new table truncates the old table and the log.
    pub(super) fn reverse_log_function_sql(&self) -> String {
        let keys = self.reverse_keys();
        let log = self.reverse_log();
        let names: Vec<String> = keys.iter().map(|(c, _)| c.clone()).collect();
        let key_list = list(&names);
        let vals = |row: &str| {
            names
                .iter()
                .map(|c| format!("{row}.{}", q(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Compared as text, as in the forward capture: a key that prints differently but
        // compares equal is logged twice, which costs a replay and nothing else.
        let same_key = names
            .iter()
            .map(|c| {
                format!(
                    "NEW.{0}::pg_catalog.text OPERATOR(pg_catalog.=) OLD.{0}::pg_catalog.text",
                    q(c)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let fname = q(&self.names.reverse_fn);
        format!(
            "CREATE OR REPLACE FUNCTION lockstep.{fname}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $lockstep$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    TRUNCATE {old}, {log};
    RETURN NULL;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
    RETURN NULL;
  END IF;
  INSERT INTO {log} ({key_list}) VALUES ({old_key});
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT ({same_key}) THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
  END IF;
  RETURN NULL;
END
$lockstep$",
            old = self.old(),
            new = vals("NEW"),
            old_key = vals("OLD"),
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
    let log = plan.reverse_log();
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&log])
        .await
        .ok()?
        .get(0);
    if !exists {
        return None;
    }
    client
        .query_one(&format!("SELECT count(*) FROM {log}"), &[])
        .await
        .ok()
        .map(|r| r.get::<_, i64>(0))
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

/// With `reverse = "logical"`, before the swap and outside its lock: the publication of the
/// new table (its partitions' changes published as the table's own), then the slot, which
/// waits for the transactions running now to end. Both are made once: a slot must never
/// decode a change of a moment its publication did not exist.
pub(super) async fn install(conn: Conn<'_, '_>, plan: &ShadowPlan) -> Result<(), EngineError> {
    let Some(name) = plan.reverse_slot() else {
        return Ok(());
    };
    let c = conn.client;
    let err = dberr("swap");
    let published: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name],
        )
        .await
        .map_err(err)?
        .get(0);
    if !published {
        c.batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
            q(&name),
            plan.shadow()
        ))
        .await
        .map_err(dberr("swap"))?;
    }
    conn.note(&format!(
        "reverse sync: after the swap, slot {name} keeps the changes for a rollback, with no trigger (waiting for the transactions running now to end)"
    ));
    c.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        &[&name],
    )
    .await
    .map_err(dberr("swap"))?;
    Ok(())
}

/// Drops the reverse slot and its publication if they exist; whether they did.
pub(crate) async fn drop_reverse_slot(
    client: &Client,
    plan: &ShadowPlan,
) -> Result<bool, EngineError> {
    let Some(name) = plan.reverse_slot() else {
        return Ok(false);
    };
    let found: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) OR EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name],
        )
        .await
        .map_err(dberr("rollback"))?
        .get(0);
    if found {
        for s in plan.reverse_discard_sql() {
            client.batch_execute(&s).await.map_err(dberr("rollback"))?;
        }
    }
    Ok(found)
}

/// The WAL the reverse slot holds back, in bytes (`None` without one).
pub(crate) async fn retained(client: &Client, plan: &ShadowPlan) -> Option<(String, i64)> {
    let slot = plan.reverse_slot()?;
    let held = retained_by(client, &slot).await?;
    Some((slot, held))
}

/// The stream of the reverse slot (`reverse = "logical"`), opened when first needed and
/// again after it broke.
pub(super) struct Reverse<'p> {
    plan: &'p ShadowPlan,
    slot: Option<String>,
    decoder: RefCell<Option<Rc<Decoder>>>,
}

impl<'p> Reverse<'p> {
    pub(super) fn new(plan: &'p ShadowPlan) -> Self {
        Reverse {
            plan,
            slot: plan.reverse_slot(),
            decoder: RefCell::new(None),
        }
    }

    async fn decoder(
        &self,
        c: &Client,
        exec: &Exec<'_>,
        slot: &str,
    ) -> Result<Rc<Decoder>, EngineError> {
        if let Some(d) = self.decoder.borrow().clone() {
            match d.failed() {
                None => return Ok(d),
                Some(why) => exec.note(&format!(
                    "reverse replay: the replication stream stopped ({why}): reading the slot again from where it was confirmed"
                )),
            }
        }
        self.decoder.borrow_mut().take();
        let keys = self
            .plan
            .reverse_keys()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let d = Rc::new(open_decoder(c, exec, slot, slot, keys, "reverse replay").await?);
        *self.decoder.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// Moves the keys the slot holds for changes committed up to now into the reverse
    /// log, a transaction at a time (the slot moves on only past keys committed to the
    /// log). Returns the keys logged.
    pub(super) async fn pump(&self, conn: Conn<'_, '_>) -> Result<u64, EngineError> {
        let Some(slot) = &self.slot else {
            return Ok(0);
        };
        let c = conn.client;
        let mut logged = 0;
        let mut broke = 0;
        'start: loop {
            let d = self.decoder(c, conn.exec, slot).await?;
            let (n, token) = d.token();
            send_token(c, conn.exec, false, &token)
                .await
                .map_err(dberr("reverse replay"))?;
            loop {
                // A second at a time: the keys read meanwhile are written before the wait
                // goes on (a week of changes does not wait in memory).
                let since = std::time::Instant::now();
                let waited = d
                    .wait_for(n, || {
                        conn.check().map_err(Some)?;
                        if since.elapsed() > std::time::Duration::from_secs(1) {
                            Err(None)
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                logged += self.flush(c, &d).await?;
                match waited {
                    Ok(Ok(())) => return Ok(logged),
                    Ok(Err(why)) => {
                        broke += 1;
                        if broke > 1 {
                            return Err(EngineError::Db {
                                step: "reverse replay".into(),
                                message: format!("logical decoding: {why}"),
                            });
                        }
                        continue 'start;
                    }
                    Err(None) => {}
                    Err(Some(e)) => return Err(e),
                }
            }
        }
    }

    /// Writes the keys `d` holds to the reverse log and commits, then lets the slot move
    /// past them.
    async fn flush(&self, c: &Client, d: &Decoder) -> Result<u64, EngineError> {
        let (batch, _writing) = d.take().await;
        let n = batch.keys.len() as u64;
        if !batch.keys.is_empty() || batch.truncated {
            let write = self.write(c, &batch);
            if let Err(e) = in_transaction(c, "BEGIN", write).await {
                d.abandon("writing the keys to the reverse log failed");
                return Err(dberr("reverse replay")(e));
            }
        }
        if let Some(upto) = batch.upto {
            d.confirm(upto);
        }
        Ok(n)
    }

    async fn write(
        &self,
        c: &Client,
        batch: &super::stream::Batch,
    ) -> Result<(), tokio_postgres::Error> {
        let plan = self.plan;
        let ks = crate::playbook::keyset::Keyset {
            columns: plan.reverse_keys(),
        };
        // The new table emptied: so is the old one, and the keys before go.
        let truncate = format!("TRUNCATE {}, {}", plan.old(), plan.reverse_log());
        write_keys(c, &plan.reverse_log(), &ks, batch, &truncate).await
    }

    /// Under the swap back's lock (nothing writes the new table now): the keys of every
    /// change committed before, into the reverse log in the swap back's transaction. The
    /// stream is not opened again and is waited for [`SWAP_WAIT`] at most; either is
    /// [`Attempt::Again`]: the lock goes, and the next attempt's catch-up opens it again.
    pub(super) async fn under_lock(&self, client: &Client, exec: &Exec<'_>) -> Result<(), Attempt> {
        if self.slot.is_none() {
            return Ok(());
        }
        let healthy = self.decoder.borrow().clone();
        let Some(d) = healthy.filter(|d| d.failed().is_none()) else {
            return Err(Attempt::Again(
                "the reverse slot's replication stream is not open".into(),
            ));
        };
        let (n, token) = d.token();
        send_token(client, exec, true, &token).await?;
        let since = std::time::Instant::now();
        let waited = d
            .wait_for(n, || {
                if since.elapsed() > SWAP_WAIT {
                    Err(None)
                } else {
                    exec.check().map_err(Some)
                }
            })
            .await;
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return Err(Attempt::Again(format!(
                    "the reverse slot's replication stream stopped ({why})"
                )))
            }
            Err(None) => {
                return Err(Attempt::Again(format!(
                    "the reverse slot's replication stream did not reach the lock within {} ms",
                    SWAP_WAIT.as_millis()
                )))
            }
            Err(Some(e)) => return Err(Attempt::Stop(e)),
        }
        let (batch, _writing) = d.peek().await;
        self.write(client, &batch).await?;
        Ok(())
    }

    /// Ends the stream (before the slot is dropped).
    pub(super) async fn stop(&self) {
        let d = self.decoder.borrow_mut().take();
        if let Some(d) = d.and_then(|d| Rc::try_unwrap(d).ok()) {
            d.stop().await;
        }
    }
}
