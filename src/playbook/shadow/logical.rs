//! Logical capture: instead of a trigger on the application's write path, the run reads the
//! table's changes from a logical replication slot (the built-in `pgoutput` plugin and a
//! publication of the table alone) and writes their keys to the same key log the trigger
//! would have filled; the replay does not know the difference.
//!
//! - The slot is made at the capture step, before the copy's first snapshot: every change
//!   the copy does not see commits after the slot's consistent point and is decoded.
//! - [`TriggerLog::pump`] reads the slot without consuming it (`peek`), writes the keys and
//!   commits, and only then moves the slot on (`pg_replication_slot_advance`): a runner
//!   killed at any point reads the same changes again, and a key logged twice costs a replay.
//! - Under the swap's lock the last changes are read in the swap's own transaction, up to
//!   the position when the lock was granted (forced to disk first), and the slot is not moved:
//!   a failed swap loses nothing.
//! - The slot holds back WAL until it is moved on. Past 80 % of `max_retained_wal` the copy
//!   waits; past the limit the run stops and drops the slot and its publication.
//! - The publication and the slot go with the run: at the swap, a rollback, finalize.

use std::collections::HashMap;

use futures_util::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::capture::TriggerLog;
use super::pgoutput::{self, Message, Value};
use super::ShadowPlan;
use crate::playbook::exec::{dberr, Conn, EngineError};
use crate::playbook::facts::Facts;
use crate::playbook::names::{fit, lit, quote_ident as q};
use crate::playbook::settings::{CaptureMode, Common};

/// Changes read per slot read; a transaction is never split, so a read may return more.
const PUMP_CHANGES: i32 = 20_000;
/// A transaction that writes WAL (a logical decoding message, which pgoutput leaves out),
/// committed synchronously: the WAL before it is then on disk. (A transaction that only took
/// an id writes no WAL of its own and commits without flushing.)
const FLUSH: &str = "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'lockstep', 'flush'); COMMIT";

/// Keys per insert into the log.
const PUMP_INSERT: usize = 10_000;

/// The slot and publication of a run that captures by logical decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logical {
    pub slot: String,
    pub publication: String,
    /// `[capture] max_retained_wal`, in bytes.
    pub max_retained_wal: u64,
}

impl Logical {
    pub fn new(run_id: &str, max_retained_wal: u64) -> Logical {
        // Slot names allow lower-case letters, digits and `_`.
        let id: String = run_id
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = fit(&format!("lockstep_{id}"));
        Logical {
            slot: name.clone(),
            publication: name,
            max_retained_wal,
        }
    }
}

/// Why logical capture is not possible for the table here (`None`: it is).
pub(crate) async fn unavailable(
    client: &Client,
    facts: &Facts,
) -> Result<Option<String>, EngineError> {
    let r = client
        .query_one(
            "SELECT current_setting('wal_level'),
                    (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user),
                    has_database_privilege(current_database(), 'CREATE'),
                    pg_has_role((SELECT relowner FROM pg_class WHERE oid = $1::text::regclass), 'USAGE'),
                    (SELECT count(*) FROM pg_replication_slots) < current_setting('max_replication_slots')::int,
                    current_setting('server_version_num')::int",
            &[&facts.qualified()],
        )
        .await
        .map_err(dberr("preflight"))?;
    let wal_level: String = r.get(0);
    if wal_level != "logical" {
        return Ok(Some(format!(
            "wal_level is {wal_level}, not logical (a server restart changes it)"
        )));
    }
    if !r.get::<_, Option<bool>>(1).unwrap_or(false) {
        return Ok(Some(
            "the role has no REPLICATION attribute (ALTER ROLE … REPLICATION)".into(),
        ));
    }
    if !r.get::<_, bool>(2) {
        return Ok(Some(
            "the role may not create a publication (no CREATE on the database)".into(),
        ));
    }
    if !r.get::<_, bool>(3) {
        return Ok(Some(
            "the role does not own the table (a publication of it needs the owner)".into(),
        ));
    }
    if !r.get::<_, bool>(4) {
        return Ok(Some(
            "every replication slot is taken (max_replication_slots)".into(),
        ));
    }
    // Deletes and key changes are decoded with the replica identity: it must hold the key.
    match facts.replica_identity.as_str() {
        "d" => {}
        "i" if facts.replica_index.as_deref() == Some(facts.pk_name.as_str()) => {}
        "f" => {
            let version: i32 = r.get(5);
            if version >= 180_000 && facts.columns.iter().any(|c| c.generated) {
                return Ok(Some(
                    "REPLICA IDENTITY FULL with a stored generated column needs the publication to publish generated columns".into(),
                ));
            }
        }
        "n" => {
            return Ok(Some(
                "REPLICA IDENTITY NOTHING: deletes would be decoded without their key".into(),
            ))
        }
        _ => {
            return Ok(Some(
                "the replica identity is an index other than the primary key".into(),
            ))
        }
    }
    Ok(None)
}

impl ShadowPlan {
    /// What the plan learns from the database before a run: refusals for names it needs that
    /// are taken, and how it captures changes (`[capture] mode`; refused when "logical" is
    /// asked for and not possible, saying why).
    pub(crate) async fn settle(
        &mut self,
        client: &Client,
        common: &Common,
    ) -> Result<Vec<String>, EngineError> {
        let mut refusals = self.taken_refusals(client).await?;
        let capture = &common.capture;
        self.reverse = common.swap.reverse;
        self.logical = None;
        if capture.mode != CaptureMode::Trigger {
            match unavailable(client, &self.facts).await? {
                None => {
                    self.logical = Some(Logical::new(&self.names.run_id, capture.max_retained_wal))
                }
                Some(why) if capture.mode == CaptureMode::Logical => refusals.push(format!(
                    "[capture] mode = \"logical\" is not possible: {why} (mode = \"trigger\" captures with a trigger instead)"
                )),
                Some(_) => {}
            }
        }
        Ok(refusals)
    }
}

/// What a read of the slot found.
#[derive(Default)]
struct Read {
    /// Keys, as text, in the log's column order.
    keys: Vec<Vec<Option<String>>>,
    /// The table was truncated (the keys are those after the last truncate).
    truncated: bool,
    /// Rows the slot returned.
    rows: i64,
    /// The end of the last transaction read.
    last_commit: Option<u64>,
}

impl TriggerLog<'_> {
    fn logical(&self) -> Option<&Logical> {
        self.plan.logical.as_ref()
    }

    /// The publication, made before the slot (idempotent).
    pub(crate) fn publication_sql(l: &Logical, plan: &ShadowPlan) -> String {
        format!(
            "DO $lockstep$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = {name}) THEN CREATE PUBLICATION {id} FOR TABLE ONLY {table}; END IF; END $lockstep$",
            name = lit(&l.publication),
            id = q(&l.publication),
            table = plan.source(),
        )
    }

    /// The slot, made once (outside any transaction that wrote: PostgreSQL refuses that).
    /// It waits for the transactions running now to end.
    pub(crate) async fn create_slot(&self, conn: Conn<'_, '_>) -> Result<(), EngineError> {
        let Some(l) = self.logical() else {
            return Ok(());
        };
        conn.note(&format!(
            "capture: logical decoding through slot {} (waiting for the transactions running now to end)",
            l.slot
        ));
        conn.client
            .execute(
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                &[&l.slot],
            )
            .await
            .map_err(dberr("capture"))?;
        Ok(())
    }

    /// The slot and the publication gone (idempotent; the slot only if no one reads it).
    pub(crate) fn logical_discard_sql(&self) -> Vec<String> {
        self.logical()
            .map(|l| {
                vec![
                    format!("DROP PUBLICATION IF EXISTS {}", q(&l.publication)),
                    format!(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = {}",
                        lit(&l.slot)
                    ),
                ]
            })
            .unwrap_or_default()
    }

    /// Whether the run's slot exists.
    pub(crate) async fn slot_exists(&self, client: &Client) -> Result<bool, EngineError> {
        let Some(l) = self.logical() else {
            return Ok(true);
        };
        Ok(client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                &[&l.slot],
            )
            .await
            .map_err(dberr("capture"))?
            .get(0))
    }

    /// The WAL the slot holds back, in bytes (`None` without a slot).
    pub(crate) async fn retained(&self, client: &Client) -> Option<i64> {
        let l = self.logical()?;
        client
            .query_opt(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                &[&l.slot],
            )
            .await
            .ok()
            .flatten()
            .and_then(|r| r.get(0))
    }

    /// Reads the slot up to `upto` (an LSN in text), at most about `limit` changes (`None`:
    /// all), and collects the keys of the table's changed rows.
    async fn read(
        &self,
        client: &Client,
        upto: &str,
        limit: Option<i32>,
    ) -> Result<Read, PumpError> {
        let Some(l) = self.logical() else {
            return Ok(Read::default());
        };
        let ks = self.plan.keys();
        let stream = client
            .query_raw(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3, 'proto_version', '1', 'publication_names', $4)",
                [
                    &l.slot as &(dyn tokio_postgres::types::ToSql + Sync),
                    &upto,
                    &limit,
                    &q(&l.publication),
                ],
            )
            .await?;
        pin_mut!(stream);
        let mut read = Read::default();
        // Per relation id: where each key column is in its rows.
        let mut positions: HashMap<u32, Vec<usize>> = HashMap::new();
        while let Some(row) = stream.try_next().await? {
            read.rows += 1;
            let data: &[u8] = row.get(0);
            let msg = pgoutput::parse(data).map_err(|e| decode_error(&e.to_string()))?;
            match msg {
                Message::Relation { id, columns } => {
                    let pos: Option<Vec<usize>> = ks
                        .columns
                        .iter()
                        .map(|(k, _)| columns.iter().position(|c| c == k))
                        .collect();
                    let pos = pos.ok_or_else(|| {
                        decode_error("the table's description lacks a key column")
                    })?;
                    positions.insert(id, pos);
                }
                Message::Change { relation, rows } => {
                    let Some(pos) = positions.get(&relation) else {
                        return Err(decode_error("a change before its table's description"));
                    };
                    let mut key_of = |tuple: &[Value]| -> Result<(), PumpError> {
                        let mut key = Vec::with_capacity(pos.len());
                        for &p in pos {
                            match tuple.get(p) {
                                Some(Value::Text(t)) => key.push(Some(t.clone())),
                                // The old row of an update that kept its key: no key there.
                                Some(Value::Null) => return Ok(()),
                                _ => {
                                    return Err(decode_error(
                                        "a key value stored out of line was left out of a change; use [capture] mode = \"trigger\"",
                                    ))
                                }
                            }
                        }
                        read.keys.push(key);
                        Ok(())
                    };
                    for tuple in &rows {
                        key_of(tuple)?;
                    }
                }
                Message::Truncate { relations } => {
                    // The publication holds the table alone.
                    if !relations.is_empty() {
                        read.keys.clear();
                        read.truncated = true;
                    }
                }
                Message::Commit { end_lsn } => read.last_commit = Some(end_lsn),
                Message::Other => {}
            }
        }
        Ok(read)
    }

    /// Writes what a read found to the log (in the caller's transaction).
    async fn write(&self, client: &Client, read: &Read) -> Result<(), tokio_postgres::Error> {
        let ks = self.plan.keys();
        if read.truncated {
            client
                .batch_execute(&format!("TRUNCATE {}, {}", self.log(), self.plan.shadow()))
                .await?;
        }
        let n = ks.columns.len();
        let args: Vec<String> = (1..=n).map(|i| format!("${i}::text[]")).collect();
        let cols: Vec<String> = ks
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("u.c{i}::{t}"))
            .collect();
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({})",
            self.log(),
            ks.list(),
            cols.join(", "),
            args.join(", "),
            names.join(", ")
        );
        for chunk in read.keys.chunks(PUMP_INSERT) {
            let columns: Vec<Vec<Option<String>>> = (0..n)
                .map(|i| chunk.iter().map(|k| k[i].clone()).collect())
                .collect();
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = columns
                .iter()
                .map(|c| c as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client.execute(sql.as_str(), &params).await?;
        }
        Ok(())
    }

    /// Moves the changes decoded so far from the slot to the log: read, write and commit,
    /// then move the slot on. Returns the keys logged. Nothing without logical capture.
    pub(crate) async fn pump(&self, conn: Conn<'_, '_>) -> Result<u64, EngineError> {
        let Some(l) = self.logical() else {
            return Ok(0);
        };
        let c = conn.client;
        let mut logged = 0u64;
        loop {
            // The end of the WAL written so far (a record boundary), then on disk: the slot
            // reads only what is flushed, and moving the slot to a point inside a record
            // that is not on disk yet would skip the transaction it commits.
            let end: String = c
                .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
                .await
                .map_err(dberr("capture"))?
                .get(0);
            c.batch_execute(FLUSH).await.map_err(dberr("capture"))?;
            let read = self
                .read(c, &end, Some(PUMP_CHANGES))
                .await
                .map_err(PumpError::engine)?;
            let full = read.rows >= i64::from(PUMP_CHANGES);
            if !read.keys.is_empty() || read.truncated {
                crate::playbook::exec::in_transaction(c, "BEGIN", self.write(c, &read))
                    .await
                    .map_err(dberr("capture"))?;
            }
            logged += read.keys.len() as u64;
            // All of it read up to `end`: the slot moves there (or past the last transaction
            // when that ended later); a read cut short moves to the last transaction it read.
            let end = pgoutput::lsn_parse(&end).unwrap_or(0);
            let to = if full {
                read.last_commit
            } else {
                Some(read.last_commit.map_or(end, |lc| lc.max(end)))
            };
            if let Some(to) = to {
                c.execute(
                    "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn) FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn < $2::text::pg_lsn",
                    &[&l.slot, &pgoutput::lsn_text(to)],
                )
                .await
                .map_err(dberr("capture"))?;
            }
            if !full {
                break;
            }
        }
        Ok(logged)
    }

    /// Under the swap's lock, in its transaction: the changes committed before the lock
    /// was granted, into the log, without moving the slot. `flush` is another connection,
    /// which forces the WAL up to that point to disk (the slot reads only what is on disk).
    pub(crate) async fn pump_locked(
        &self,
        client: &Client,
        flush: Option<&Client>,
    ) -> Result<(), PumpError> {
        if self.logical().is_none() {
            return Ok(());
        }
        let upto: String = client
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await?
            .get(0);
        match flush {
            Some(f) => f.batch_execute(FLUSH).await?,
            None => {
                // The WAL writer flushes on its own, but not always a record that ends inside
                // a page: wait a little, then give up this attempt.
                let mut flushed = false;
                for _ in 0..50 {
                    flushed = client
                        .query_one(
                            "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                            &[&upto],
                        )
                        .await?
                        .get(0);
                    if flushed {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                if !flushed {
                    return Err(PumpError::Decode(
                        "the WAL up to the swap's lock was not on disk in time, and the run has no second connection to flush it".into(),
                    ));
                }
            }
        }
        let read = self.read(client, &upto, None).await?;
        Ok(self.write(client, &read).await?)
    }

    /// Stops the run when its slot holds back more WAL than allowed, and makes the copy wait
    /// while it holds back more than 80 % of that. Returns whether the copy may go on now.
    pub(crate) async fn check_retained(&self, conn: Conn<'_, '_>) -> Result<bool, EngineError> {
        let Some(l) = self.logical() else {
            return Ok(true);
        };
        let Some(held) = self.retained(conn.client).await else {
            return Ok(true);
        };
        let held = u64::try_from(held).unwrap_or(0);
        if held > l.max_retained_wal {
            for s in self.logical_discard_sql() {
                let _ = conn.client.batch_execute(&s).await;
            }
            return Err(EngineError::State(format!(
                "the capture's replication slot {} held back {} of WAL, more than [capture] max_retained_wal ({}): the slot is dropped so the server keeps its disk, and the changes since are lost to this run; roll it back (`lockstep rollback`) and run again (a long transaction holds the slot back; or raise max_retained_wal, or use mode = \"trigger\")",
                l.slot,
                crate::playbook::view::human_bytes(held as i64),
                crate::playbook::view::human_bytes(l.max_retained_wal as i64),
            )));
        }
        Ok(held * 10 <= l.max_retained_wal * 8)
    }
}

/// A read of the slot that failed.
#[derive(Debug)]
pub(crate) enum PumpError {
    Db(tokio_postgres::Error),
    /// What the slot returned cannot be read.
    Decode(String),
}

impl From<tokio_postgres::Error> for PumpError {
    fn from(e: tokio_postgres::Error) -> Self {
        PumpError::Db(e)
    }
}

impl PumpError {
    pub(crate) fn engine(self) -> EngineError {
        match self {
            PumpError::Db(e) => dberr("capture")(e),
            PumpError::Decode(message) => EngineError::Db {
                step: "capture".into(),
                message,
            },
        }
    }
}

fn decode_error(message: &str) -> PumpError {
    PumpError::Decode(message.to_string())
}
