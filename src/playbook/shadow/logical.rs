//! Logical capture: instead of a trigger on the application's write path, the run reads the
//! table's changes from a logical replication slot (the built-in `pgoutput` plugin and a
//! publication of the table alone) and writes their keys to the same key log the trigger
//! would have filled; the replay does not know the difference.
//!
//! - The slot is made at the capture step, before the copy's first snapshot: every change
//!   the copy does not see commits after the slot's consistent point and is decoded.
//! - The slot is streamed over a replication connection ([`super::stream`]): the server
//!   decodes each change once, as it is written. [`TriggerLog::pump`] writes the keys of the
//!   whole transactions decoded so far and commits, and only then lets the slot move on: a
//!   runner killed at any point reads the same changes again, and a key logged twice costs a
//!   replay.
//! - Under the swap's lock the last changes are written in the swap's own transaction, up to
//!   a token committed after the lock was granted, and the decoder keeps them: a failed swap
//!   loses nothing.
//! - The slot holds back WAL until it is moved on. Past 80 % of `max_retained_wal` the copy
//!   waits; past the limit the run stops and drops the slot and its publication.
//! - The publication and the slot go with the run: at the swap, a rollback, finalize.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::capture::TriggerLog;
use super::pgoutput;
use super::stream::{Batch, Decoder, Patience, PREFIX, STREAM_PATIENCE};
use super::ShadowPlan;
use crate::db::connect::ConnectOptions;
use crate::playbook::exec::{dberr, Conn, EngineError, Exec};
use crate::playbook::facts::Facts;
use crate::playbook::keyset::Keyset;
use crate::playbook::names::{fit, lit, quote_ident as q};
use crate::playbook::settings::{CaptureMode, Common, ReverseSync};

/// How long a transaction waits for the stream to reach its snapshot.
pub(super) const LOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the swap, holding its lock, waits for the stream to reach it.
pub(super) const SWAP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends `token` through the stream: committed by `c`, or when `c` is in a transaction
/// (`in_tx`), by the run's flusher connection (or emitted outside any transaction and
/// waited for until the server has it on disk).
pub(super) async fn send_token(
    c: &Client,
    exec: &Exec<'_>,
    in_tx: bool,
    token: &str,
) -> Result<(), tokio_postgres::Error> {
    match (in_tx, exec.flusher()) {
        (false, _) => c.batch_execute(&sync_sql(token)).await,
        (true, Some(f)) => f.batch_execute(&sync_sql(token)).await,
        (true, None) => emit_flushed(c, token).await,
    }
}

/// A transaction that emits `token` as a logical decoding message and commits
/// synchronously: the WAL before it is then on disk, and when the token comes out of the
/// stream, every transaction that committed before it has too.
fn sync_sql(token: &str) -> String {
    format!(
        "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, {}, {}); COMMIT",
        lit(PREFIX),
        lit(token)
    )
}

/// Emits `token` outside any transaction and waits (a little) until the server has it on
/// disk: the WAL writer flushes on its own, but not always a record that ends inside a page.
async fn emit_flushed(c: &Client, token: &str) -> Result<(), tokio_postgres::Error> {
    let at: String = c
        .query_one(
            "SELECT pg_logical_emit_message(false, $1, $2)::text",
            &[&PREFIX, &token],
        )
        .await?
        .get(0);
    for _ in 0..100 {
        let flushed: bool = c
            .query_one(
                "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                &[&at],
            )
            .await?
            .get(0);
        if flushed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

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
        let name = slot_name("lockstep", run_id);
        Logical {
            slot: name.clone(),
            publication: name,
            max_retained_wal,
        }
    }
}

/// Under a lock the application waits behind (a swap, a swap back): the decoder `d` (of
/// `what`, for messages), once a token sent now has come out of it. The stream is not
/// opened again and is waited for [`SWAP_WAIT`] at most; either is [`PumpError::NotNow`]:
/// the lock goes, and the next attempt's catch-up opens it again.
pub(super) async fn reached_under_lock(
    d: Option<Rc<Decoder>>,
    client: &Client,
    exec: &Exec<'_>,
    what: &str,
) -> Result<Rc<Decoder>, PumpError> {
    let Some(d) = d else {
        return Err(PumpError::NotNow(format!("{what} is not open")));
    };
    if let Some(why) = d.failed() {
        return Err(PumpError::NotNow(format!("{what} stopped ({why})")));
    }
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
        Ok(Ok(())) => Ok(d),
        Ok(Err(why)) => Err(PumpError::NotNow(format!("{what} stopped ({why})"))),
        Err(None) => Err(PumpError::NotNow(format!(
            "{what} did not reach the lock within {} ms",
            SWAP_WAIT.as_millis()
        ))),
        Err(Some(e)) => Err(PumpError::Engine(e)),
    }
}

/// A slot (and publication) name for run `run_id`: slot names allow lower-case letters,
/// digits and `_`.
pub(super) fn slot_name(prefix: &str, run_id: &str) -> String {
    let id: String = run_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    fit(&format!("{prefix}_{id}"))
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
                    current_setting('server_version_num')::int,
                    (SELECT count(*) FROM pg_stat_replication) < current_setting('max_wal_senders')::int",
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
    if !r.get::<_, bool>(6) {
        return Ok(Some(
            "every replication connection is taken (max_wal_senders)".into(),
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
        self.logical = None;
        self.trigger_because = None;
        if capture.mode != CaptureMode::Trigger {
            self.logical = Some(Logical::new(&self.names.run_id, capture.max_retained_wal));
            if let Some(why) = unavailable(client, &self.facts).await? {
                self.without_logical(why, common, &mut refusals);
                return Ok(refusals);
            }
        }
        self.choose_reverse(common, None, &mut refusals);
        Ok(refusals)
    }

    /// `[swap] reverse` as this plan can have it: `auto` is logical with logical capture
    /// (the same rights and settings), the synchronous trigger otherwise; `logical` without
    /// logical capture is refused (`why` it is not possible, when known).
    fn choose_reverse(&mut self, common: &Common, why: Option<&str>, refusals: &mut Vec<String>) {
        self.reverse = match (common.swap.reverse, self.logical.is_some()) {
            (ReverseSync::Auto | ReverseSync::Logical, true) => ReverseSync::Logical,
            (ReverseSync::Auto, false) => ReverseSync::Sync,
            (ReverseSync::Logical, false) => {
                refusals.push(format!(
                    "[swap] reverse = \"logical\" needs logical capture, and the run captures with a trigger{} (reverse = \"sync\" or \"deferred\" keep the old table with a trigger)",
                    why.map(|w| format!(": {w}")).unwrap_or_default()
                ));
                ReverseSync::Sync
            }
            (r, _) => r,
        };
    }

    /// Logical capture is not possible, for `why`: refused when it was asked for, the
    /// trigger captures instead with `mode = "auto"`.
    pub(crate) fn without_logical(
        &mut self,
        why: String,
        common: &Common,
        refusals: &mut Vec<String>,
    ) {
        self.logical = None;
        self.choose_reverse(common, Some(&why), refusals);
        if common.capture.mode == CaptureMode::Logical {
            refusals.push(format!(
                "[capture] mode = \"logical\" is not possible: {why} (mode = \"trigger\" captures with a trigger instead)"
            ));
        } else {
            self.trigger_because = Some(why);
        }
    }
}

/// Why a replication connection for logical capture cannot be opened with `connect`
/// (`None`: it can). A pooler in front of the server, for one, may not pass it on.
pub(crate) async fn replication_unavailable(connect: Option<&ConnectOptions>) -> Option<String> {
    let Some(connect) = connect else {
        return Some("there is no way to open a replication connection here".into());
    };
    match connect.connect_replication().await {
        Err(e) => Some(format!("a replication connection failed ({e})")),
        Ok(mut conn) => {
            let asked = std::time::Duration::from_secs(10);
            match tokio::time::timeout(asked, conn.command("IDENTIFY_SYSTEM")).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("a replication connection failed ({e})")),
                Err(_) => Some(
                    "a replication connection did not answer IDENTIFY_SYSTEM within 10 s".into(),
                ),
            }
        }
    }
}

impl TriggerLog<'_> {
    fn logical(&self) -> Option<&Logical> {
        self.plan.logical.as_ref()
    }

    /// The log and the publication, made before the slot, in one transaction that can run
    /// again (after a crash before the checkpoint: nothing was copied yet).
    pub(crate) fn logical_install_sql(&self, l: &Logical, log: String) -> Vec<String> {
        vec![
            format!("DROP PUBLICATION IF EXISTS {}", q(&l.publication)),
            format!("DROP TABLE IF EXISTS {}", self.log()),
            log,
            format!(
                "CREATE PUBLICATION {} FOR TABLE ONLY {}",
                q(&l.publication),
                self.plan.source()
            ),
        ]
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
            .map(|l| discard_sql(&l.slot, &l.publication))
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
        retained_by(client, &self.logical()?.slot).await
    }

    /// Writes what a read found to the log (in the caller's transaction).
    async fn write(&self, client: &Client, read: &Batch) -> Result<(), tokio_postgres::Error> {
        let truncate = format!("TRUNCATE {}, {}", self.log(), self.plan.shadow());
        write_keys(client, &self.log(), &self.plan.keys(), read, &truncate).await
    }

    /// The run's decoder, started when first needed, and again after its stream failed
    /// (from the slot's confirmed position: keys not confirmed are read again). `c` runs the
    /// statements around it (it may be in a transaction).
    async fn decoder(&self, c: &Client, exec: &Exec<'_>) -> Result<Rc<Decoder>, EngineError> {
        let _starting = self.starting.lock().await;
        if let Some(d) = self.decoder.borrow().clone() {
            match d.failed() {
                None => return Ok(d),
                Some(why) => exec.note(&format!(
                    "capture: the replication stream stopped ({why}): reading the slot again from where it was confirmed"
                )),
            }
        }
        self.decoder.borrow_mut().take();
        let Some(l) = self.logical() else {
            return Err(EngineError::State("the run has no logical capture".into()));
        };
        let keys = self
            .plan
            .keys()
            .columns
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let d = open_decoder(c, exec, &l.slot, &l.publication, keys, "capture").await?;
        let d = Rc::new(d);
        *self.decoder.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// Ends the run's stream, if it has one (before its slot is dropped).
    pub(crate) async fn stop_stream(&self) {
        let d = self.decoder.borrow_mut().take();
        if let Some(d) = d.and_then(|d| Rc::try_unwrap(d).ok()) {
            d.stop().await;
        }
    }

    /// Moves the changes decoded so far from the stream to the log: writes and commits the
    /// keys of whole transactions, then lets the slot move past them. With `force`, first
    /// waits until every transaction committed before now has come out of the stream.
    /// Returns the keys logged (nothing without logical capture).
    pub(crate) async fn pump(&self, conn: Conn<'_, '_>, force: bool) -> Result<u64, EngineError> {
        if self.logical().is_none() {
            return Ok(0);
        }
        let c = conn.client;
        let d = if force {
            self.synced(c, conn.exec, false, || conn.check()).await?
        } else {
            self.decoder(c, conn.exec).await?
        };
        let (batch, _writing) = d.take().await;
        let n = batch.keys.len() as u64;
        if !batch.keys.is_empty() || batch.truncated {
            if let Err(e) =
                crate::playbook::exec::in_transaction(c, "BEGIN", self.write(c, &batch)).await
            {
                d.abandon("writing the keys to the log failed");
                return Err(dberr("capture")(e));
            }
        }
        if let Some(upto) = batch.upto {
            d.confirm(upto);
        }
        Ok(n)
    }

    /// The decoder, once every transaction committed before now has come out of it (a token
    /// through the stream, [`send_token`]). A stream that breaks meanwhile is started again
    /// (for [`STREAM_PATIENCE`]).
    async fn synced(
        &self,
        c: &Client,
        exec: &Exec<'_>,
        in_tx: bool,
        check: impl Fn() -> Result<(), EngineError>,
    ) -> Result<Rc<Decoder>, EngineError> {
        let lost = |why: String| EngineError::Db {
            step: "capture".into(),
            message: format!("logical capture: {why}"),
        };
        let mut patience = Patience::new();
        loop {
            let d = self.decoder(c, exec).await?;
            let (n, token) = d.token();
            send_token(c, exec, in_tx, &token)
                .await
                .map_err(dberr("capture"))?;
            match d.wait_for(n, &check).await? {
                Ok(()) => return Ok(d),
                Err(why) => match patience.after_failure() {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(lost(why)),
                },
            }
        }
    }

    /// In the caller's transaction (a replay of every logged change, a comparison): the
    /// changes committed before its snapshot (taken before this), into the log, and kept by
    /// the decoder too (the transaction may roll back).
    pub(crate) async fn pump_locked(
        &self,
        client: &Client,
        exec: &Exec<'_>,
    ) -> Result<(), PumpError> {
        if self.logical().is_none() {
            return Ok(());
        }
        let since = std::time::Instant::now();
        let d = self
            .synced(client, exec, true, || {
                if since.elapsed() > LOCKED_WAIT {
                    Err(EngineError::State(format!(
                        "the replication stream did not catch up within {} s",
                        LOCKED_WAIT.as_secs()
                    )))
                } else {
                    exec.check()
                }
            })
            .await
            .map_err(PumpError::Engine)?;
        self.write_held(client, &d).await
    }

    /// The same under the swap's lock, where the application waits: the stream is not
    /// started again and is waited for [`SWAP_WAIT`] at most; either is
    /// [`PumpError::NotNow`], and the swap lets go of its lock and tries again later.
    pub(crate) async fn pump_under_swap(
        &self,
        client: &Client,
        exec: &Exec<'_>,
    ) -> Result<(), PumpError> {
        if self.logical().is_none() {
            return Ok(());
        }
        let healthy = self.decoder.borrow().clone();
        if let Some(d) = &healthy {
            if crate::playbook::exec::fault_once("swap-stream") {
                d.abandon("broken by the test hook");
            }
        }
        let d =
            reached_under_lock(healthy, client, exec, "the capture's replication stream").await?;
        self.write_held(client, &d).await
    }

    /// Writes the keys `d` holds to the log in the caller's transaction; `d` keeps them.
    async fn write_held(&self, client: &Client, d: &Decoder) -> Result<(), PumpError> {
        let (batch, _writing) = d.peek().await;
        Ok(self.write(client, &batch).await?)
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
            let mut dropped = Ok(());
            for s in self.logical_discard_sql() {
                if let Err(e) = conn.client.batch_execute(&s).await {
                    dropped = Err(e);
                }
            }
            let what = match dropped {
                Ok(()) => "the slot is dropped so the server keeps its disk".to_string(),
                Err(e) => format!(
                    "dropping the slot failed ({}): drop it with `SELECT pg_drop_replication_slot('{}')` before the disk fills",
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string()),
                    l.slot
                ),
            };
            return Err(EngineError::State(format!(
                "the capture's replication slot {} held back {} of WAL, more than [capture] max_retained_wal ({}): {what}, and the changes since are lost to this run; roll it back (`lockstep rollback`) and run again (a long transaction holds the slot back; or raise max_retained_wal, or use mode = \"trigger\")",
                l.slot,
                crate::playbook::view::human_bytes(held as i64),
                crate::playbook::view::human_bytes(l.max_retained_wal as i64),
            )));
        }
        Ok(held * 10 <= l.max_retained_wal * 8)
    }
}

/// A slot and its publication gone (idempotent; the slot only if no one reads it).
pub(super) fn discard_sql(slot: &str, publication: &str) -> Vec<String> {
    vec![
        format!("DROP PUBLICATION IF EXISTS {}", q(publication)),
        // A stream still open (a runner that stopped) holds the slot.
        format!(
            "SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = {} AND active_pid IS NOT NULL",
            lit(slot)
        ),
        format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = {}",
            lit(slot)
        ),
    ]
}

/// The WAL `slot` holds back, in bytes (`None` without it).
pub(super) async fn retained_by(client: &Client, slot: &str) -> Option<i64> {
    client
        .query_opt(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get(0))
}

/// Writes the keys of `read` to `log` (key columns `ks`), in the caller's transaction; a
/// truncate in the batch runs `truncate` first.
pub(super) async fn write_keys(
    client: &Client,
    log: &str,
    ks: &Keyset,
    read: &Batch,
    truncate: &str,
) -> Result<(), tokio_postgres::Error> {
    if read.truncated {
        client.batch_execute(truncate).await?;
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
        "INSERT INTO {log} ({}) SELECT {} FROM unnest({}) AS u({})",
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

/// Streams `slot` from where it was confirmed, decoding the changes of `publication`
/// into the values of the columns `keys`. `c` runs the statements around it (it may be in
/// a transaction); `step` names the step in errors.
pub(super) async fn open_decoder(
    c: &Client,
    exec: &Exec<'_>,
    slot: &str,
    publication: &str,
    keys: Vec<String>,
    step: &str,
) -> Result<Decoder, EngineError> {
    let connect = exec.connect_options().ok_or_else(|| {
        EngineError::State(
            "logical decoding needs a way to open a replication connection, and this run has none"
                .into(),
        )
    })?;
    let mut patience = Patience::new();
    loop {
        // A stream left by a runner that stopped holds the slot until its server process
        // notices: end it (the run lock says there is no other runner).
        c.execute(
            "SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
            &[&slot],
        )
        .await
        .map_err(dberr(step))?;
        let confirmed: Option<String> = c
            .query_opt(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(dberr(step))?
            .and_then(|r| r.get(0));
        let Some(confirmed) = confirmed else {
            return Err(EngineError::State(format!(
                "the replication slot {slot} is gone: the changes it kept are lost to this run; roll it back (`lockstep rollback`) and run it again",
            )));
        };
        let e = match Decoder::start(
            connect,
            slot,
            publication,
            pgoutput::lsn_parse(&confirmed).unwrap_or(0),
            keys.clone(),
        )
        .await
        {
            Ok(d) => return Ok(d),
            Err(e) => e,
        };
        if e.transient {
            if let Some(wait) = patience.after_failure() {
                exec.note(&format!(
                    "{step}: the replication stream could not start ({e}): trying again in {} ms",
                    wait.as_millis()
                ));
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        let message = if e.transient {
            format!(
                "logical decoding: {e} ({} attempts in {} s). The slot {slot} keeps its changes: run the command again when the server takes replication connections",
                patience.failures,
                STREAM_PATIENCE.as_secs()
            )
        } else {
            format!(
                "logical decoding: {e}. Reading the slot {slot} needs a replication connection to the server itself: through a pooler (pgbouncer, for one, does not pass replication connections on), run the command again with --database-url naming the server. The slot keeps its changes meanwhile"
            )
        };
        return Err(EngineError::Db {
            step: step.into(),
            message,
        });
    }
}

/// A read of the slot that failed.
#[derive(Debug)]
pub(crate) enum PumpError {
    Db(tokio_postgres::Error),
    /// The capture failed otherwise (its stream, the run's stop).
    Engine(EngineError),
    /// Under the swap's lock, the stream was not ready in time: why.
    NotNow(String),
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
            PumpError::Engine(e) => e,
            PumpError::NotNow(why) => EngineError::Db {
                step: "capture".into(),
                message: format!("logical capture: {why}"),
            },
        }
    }
}

impl From<PumpError> for crate::playbook::exec::BatchError {
    fn from(e: PumpError) -> Self {
        match e {
            PumpError::Db(e) => Self::Db(e),
            e => Self::Run(e.engine()),
        }
    }
}
