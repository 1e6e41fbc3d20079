//! Change capture: how the changes the application makes while the copy runs reach the new
//! table. [`TriggerLog`] is the one mechanism today: a row trigger on the table logs the key
//! of every changed row to a bare table, and the runner replays the logged keys later (the
//! row as the table has it then, or its absence). Another mechanism (logical decoding) would
//! provide the same operations: install, replay in batches, replay the rest under the swap's
//! lock, leave out what is pending from a comparison, remove.

use std::cell::Cell;
use std::time::Instant;

use tokio_postgres::Client;

use super::logical::PumpError;
use super::ShadowPlan;
use crate::playbook::exec::{
    self, dberr, hold_point, in_transaction, is_lock_timeout, is_serialization_failure,
    is_unique_violation, BatchError, Batching, Conn, EngineError, Outcome, Pacing, Sizing,
};
use crate::playbook::names::{fit, list, quote_ident as q};

/// The change log of shadow run `run_id` (qualified and quoted).
pub fn log_table(run_id: &str) -> String {
    format!("lockstep.{}", q(&fit(&format!("log_{run_id}"))))
}

/// Fewer than this many entries per replay batch could fall behind the application: a batch
/// has a fixed cost of a few statements.
const MIN_REPLAY_BATCH: u32 = 1_000;

/// The key log of a run: a trigger on the table logs keys, the runner replays them.
pub(crate) struct TriggerLog<'p> {
    pub plan: &'p ShadowPlan,
    /// Log entries replayed since the log was last vacuumed.
    pub unvacuumed: Cell<u64>,
    /// Logical capture: the stream of the run's slot, once started.
    pub(super) decoder: std::cell::RefCell<Option<std::rc::Rc<super::stream::Decoder>>>,
    /// One start of the stream at a time.
    pub(super) starting: tokio::sync::Mutex<()>,
}

impl<'p> TriggerLog<'p> {
    pub(crate) fn new(plan: &'p ShadowPlan) -> TriggerLog<'p> {
        TriggerLog {
            plan,
            unvacuumed: Cell::new(0),
            decoder: std::cell::RefCell::new(None),
            starting: tokio::sync::Mutex::new(()),
        }
    }
}

impl TriggerLog<'_> {
    /// The change log: the key of every row the application changes, in the `lockstep` schema.
    pub(crate) fn log(&self) -> String {
        log_table(&self.plan.names.run_id)
    }

    /// Change capture: a trigger on the source logs the key of each changed row (the old and
    /// the new key when an update changes it); the runner replays the log later
    /// ([`TriggerLog::replay_sql`]). Logging a key costs the application's writes much less than
    /// applying the change to the partitioned copy in the same transaction, and the copy
    /// needs no index while it is filled. The log is a bare heap: no sequence and no index
    /// to maintain on every write (`sh bench/trigger_overhead.sh`).
    ///
    /// The function runs with its owner's rights (the runner's), so that an application role
    /// allowed to write the table needs no right on the log. It sets no `search_path` (that
    /// cost the writers another 7 % to 19 % of their throughput in two runs of
    /// `sh bench/trigger_overhead.sh`): instead every
    /// name and operator in it is schema-qualified, so the caller's `search_path` cannot
    /// change what it runs.
    pub(crate) fn install_sql(&self) -> Vec<String> {
        let ks = self.plan.keys();
        let log = self.log();
        let cols: Vec<String> = ks
            .columns
            .iter()
            .map(|(c, t)| format!("{} {t} NOT NULL", q(c)))
            .collect();
        let fname = q(&self.plan.names.forward_fn);
        let table = format!(
            "CREATE TABLE {log} ({}) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)",
            cols.join(", ")
        );
        if let Some(l) = &self.plan.logical {
            // No trigger: the slot made next is read into the log (logical.rs).
            return self.logical_install_sql(l, table);
        }
        vec![
            table,
            key_log_function_sql(
                &self.plan.names.forward_fn,
                &log,
                &ks.columns.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
                &self.plan.shadow(),
            ),
            format!("REVOKE ALL ON FUNCTION lockstep.{fname}() FROM PUBLIC"),
            format!(
                "CREATE TRIGGER lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION lockstep.{fname}()",
                self.plan.source(),
            ),
            format!(
                "CREATE TRIGGER lockstep_capture_truncate AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION lockstep.{fname}()",
                self.plan.source(),
            ),
        ]
    }

    /// Replaying the log: the statements of one batch, to run in one `REPEATABLE READ`
    /// transaction (or under the swap's lock), which sees the log and the source at the same
    /// moment, after [`TriggerLog::replay_begin_sql`]. Every logged key's row is deleted from the copy and copied again as
    /// the source has it now (or not, if it is gone); the log entries go. Entries logged
    /// later stay for the next batch, and replaying a key twice does no harm.
    ///
    /// With `bounded`, the batch is the log rows whose `ctid` is in `$1` (a `tid[]` as text,
    /// from [`TriggerLog::replay_batch_sql`]); otherwise every entry the transaction sees.
    pub(crate) fn replay_sql(&self, bounded: bool) -> Vec<String> {
        let ks = self.plan.keys();
        let log = self.log();
        let (cond, and) = if bounded {
            (
                " WHERE ctid = ANY ($1::text::tid[])".to_string(),
                " AND l.ctid = ANY ($1::text::tid[])".to_string(),
            )
        } else {
            (String::new(), String::new())
        };
        let keys = ks.list();
        // Rows of the copy by their logged key (in the copy's type), rows of the table by
        // theirs.
        let join = |shadow: bool| {
            ks.columns
                .iter()
                .map(|(c, _)| format!("t.{} = {}", q(c), self.plan.logged_key(c, "l", shadow)))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let cols = list(&self.plan.cols());
        vec![
            format!(
                "DELETE FROM {shadow} t USING (SELECT DISTINCT {keys} FROM {log}{cond}) l WHERE {}",
                join(true),
                shadow = self.plan.shadow()
            ),
            format!(
                "INSERT INTO {shadow} ({cols}){ovr} SELECT {select} FROM {src} t WHERE EXISTS (SELECT 1 FROM {log} l WHERE {}{and})",
                join(false),
                shadow = self.plan.shadow(),
                ovr = self.plan.overriding(),
                select = self.plan.source_cols(),
                src = self.plan.source(),
            ),
            format!("DELETE FROM {log}{cond}"),
        ]
    }

    /// Clears every logged key's rows from the copy, in one pass over it (a hash join with
    /// the log): a copy written in another order than the key's may hold a row twice when
    /// an update moved it during the copy, and every such row's key is in the log, to be
    /// copied again by the replay. Run before the key's index is built.
    pub(crate) fn purge_sql(&self) -> Vec<String> {
        let mut delete = self.replay_sql(false);
        delete.truncate(1);
        let mut out = vec!["SET LOCAL enable_nestloop = off".to_string()];
        out.extend(delete);
        out
    }

    /// The first statements of a replay transaction: the source locked (ACCESS SHARE) before
    /// the log and the copy, in the order a `TRUNCATE` of the source takes its locks (its
    /// trigger truncates the log and the copy), so the two cannot deadlock.
    ///
    /// Then the plan settings of the transaction: a replay looks keys up one by one in the
    /// copy's and the source's primary keys. The log's statistics say little about its size
    /// now (it grows during the copy, then shrinks to a few rows), and a plan made for a
    /// large log (a hash join reading every row of the copy) would read the whole table for
    /// a batch of a few keys.
    pub(crate) fn replay_begin_sql(&self) -> String {
        format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
            self.plan.source()
        )
    }

    /// The next replay batch: the `ctid`s of up to `limit` log entries, as a `tid[]` in text
    /// (NULL when the log is empty), and how many.
    pub(crate) fn replay_batch_sql(&self, limit: u32) -> String {
        format!(
            "SELECT array_agg(ctid)::text, count(*) FROM (SELECT ctid FROM {} LIMIT {limit}) l",
            self.log()
        )
    }

    /// The next batch of replay lane `lane` of `lanes`: as [`TriggerLog::replay_batch_sql`],
    /// of the entries whose key hashes to the lane. A key's entries are all in one lane, so
    /// lanes replaying at once never touch the same row of the copy.
    pub(crate) fn replay_lane_batch_sql(&self, limit: u32, lane: u32, lanes: u32) -> String {
        let key = self
            .plan
            .keys()
            .columns
            .iter()
            .map(|(c, _)| format!("l.{}", q(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT array_agg(ctid)::text, count(*) FROM (SELECT ctid FROM {} l WHERE abs(mod(pg_catalog.hashtextextended(ROW({key})::text, 0), {lanes})) = {lane} LIMIT {limit}) l",
            self.log()
        )
    }

    /// The rest of the log, replayed under the swap's lock: with the table locked nothing is
    /// logged meanwhile (key lookups, as in [`TriggerLog::replay_begin_sql`]); then (the
    /// second list) the capture stops and the log goes.
    pub(crate) fn finish_sql(&self) -> (Vec<String>, Vec<String>) {
        let mut replay =
            vec!["SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off".to_string()];
        replay.extend(self.replay_sql(false));
        replay.push("RESET enable_hashjoin; RESET enable_mergejoin".into());
        let mut stop = vec![
            self.drop_triggers_sql(),
            format!("DROP TABLE {}", self.log()),
        ];
        if let Some(l) = &self.plan.logical {
            // The slot goes after the swap commits: dropping it is not undone by a rollback.
            stop.push(format!("DROP PUBLICATION IF EXISTS {}", q(&l.publication)));
        }
        (replay, stop)
    }

    /// Stops capturing (idempotent).
    fn drop_triggers_sql(&self) -> String {
        format!(
            "DROP TRIGGER IF EXISTS lockstep_capture ON {0}; DROP TRIGGER IF EXISTS lockstep_capture_truncate ON {0}",
            self.plan.source()
        )
    }

    /// Everything the capture made, gone (a rollback before the swap; idempotent).
    pub(crate) fn discard_sql(&self) -> Vec<String> {
        let mut out = vec![
            self.drop_triggers_sql(),
            format!("DROP TABLE IF EXISTS {}", self.log()),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.plan.names.forward_fn)
            ),
        ];
        out.extend(self.logical_discard_sql());
        out
    }

    /// `NOT EXISTS` a log entry for the row `t` (of the copy when `shadow`).
    pub(crate) fn not_logged(&self, shadow: bool) -> String {
        let join = self
            .plan
            .keys()
            .columns
            .iter()
            .map(|(c, _)| format!("{} = t.{}", self.plan.logged_key(c, "l", shadow), q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!("NOT EXISTS (SELECT 1 FROM {} l WHERE {join})", self.log())
    }

    /// How many changes wait to be replayed (`None` once the log is gone).
    pub(crate) async fn backlog(&self, client: &Client) -> Option<i64> {
        log_backlog(client, &self.log()).await
    }

    /// Replays the log in batches until a batch finds fewer entries than it may take; that
    /// batch takes all it sees, so the copy then matches the table as of its snapshot (a few
    /// milliseconds behind). Batches adapt to the target batch time and follow the backfill's
    /// throttling and `lockstep pause`; while the log grows faster than it is replayed, the
    /// replay is behind ([`TriggerLog::watch_backlog`]): it works without resting, in larger
    /// batches. With `hold`, the test hook `replay` holds after the first batch. Returns the
    /// entries replayed.
    pub(crate) async fn catch_up(
        &self,
        conn: Conn<'_, '_>,
        hold: bool,
        top_up: bool,
    ) -> Result<u64, EngineError> {
        let mut replayed = 0u64;
        let mut first = true;
        let mut topped_up = 0;
        conn.drive(replay_batching(conn), async |limit| {
            // What the stream decoded so far; a batch that takes every entry reads it up to
            // its own snapshot anyway.
            self.pump(conn, false).await?;
            let (n, all) = match self.replay_batch(conn, Some(limit)).await {
                // Rows caught up piecemeal may briefly share a unique value: a batch of every
                // logged change matches the table at one moment.
                Err(PumpError::Db(e)) if is_unique_violation(&e) => {
                    self.replay_batch(conn, None).await?
                }
                r => r?,
            };
            replayed += n;
            self.vacuum_log(conn, n).await?;
            // Logical capture, before a swap (`top_up`): what the stream decoded meanwhile is
            // not in the log yet. More than a quarter batch of it is another batch (a few
            // times at most: under writes that never stop, the rest waits for the lock).
            // Elsewhere each wait for the stream costs more than it saves.
            let mut all = all;
            if all && top_up && self.plan.logical.is_some() && topped_up < 8 {
                let pumped = self.pump(conn, true).await?;
                if pumped > u64::from(limit) / 4 {
                    all = false;
                    topped_up += 1;
                }
            }
            if all {
                self.caught_up(conn).await;
            } else {
                self.watch_backlog(conn, limit).await;
            }
            if hold && first {
                hold_point("replay").await;
            }
            first = false;
            Ok::<_, BatchError>(Outcome {
                rows: n as i64,
                more: !all,
                paused: true,
            })
        })
        .await?;
        Ok(replayed)
    }

    /// Replays lane `lane` of `lanes` (the log entries whose key hashes to it) in batches
    /// until a batch finds fewer entries than it may take or `quota` entries are replayed
    /// (its share of the log when the lanes began: entries logged later are left to the
    /// replay on one connection that follows, instead of being chased), on a connection of
    /// the crew, at the same time as the other lanes on theirs. With `pumps` (the main connection),
    /// the lane also watches the backlog for all of them (see [`TriggerLog::catch_up`]), and
    /// logical capture's stream is read into the log between batches; with `hold`, the test
    /// hook `replay` holds after the first batch. Two lanes that meet on one key (a key that
    /// prints differently but compares equal) stop every lane (`stop`): the replay on one
    /// connection that follows does the rest. Returns the entries replayed.
    pub(crate) async fn catch_up_lane(
        &self,
        conn: Conn<'_, '_>,
        (lane, lanes): (u32, u32),
        (pumps, hold): (bool, bool),
        quota: u64,
        stop: &Cell<bool>,
    ) -> Result<u64, EngineError> {
        let mut replayed = 0u64;
        let mut first = true;
        conn.drive(replay_batching(conn), async |limit| {
            if stop.get() {
                return Ok(Outcome {
                    rows: 0,
                    more: false,
                    paused: false,
                });
            }
            if pumps {
                self.pump(conn, false).await?;
            }
            let n = match self.replay_lane_batch(conn, limit, (lane, lanes)).await {
                Err(PumpError::Db(e))
                    if is_unique_violation(&e) || is_serialization_failure(&e) =>
                {
                    stop.set(true);
                    0
                }
                r => r?,
            };
            replayed += n;
            self.vacuum_log(conn, n).await?;
            // The watch of the backlog, shared by the lanes: while the log outgrows them,
            // none rests.
            if pumps && n >= u64::from(limit) {
                self.watch_backlog(conn, limit).await;
            }
            if hold && first {
                hold_point("replay").await;
            }
            first = false;
            Ok::<_, BatchError>(Outcome {
                rows: n as i64,
                more: n >= u64::from(limit) && replayed < quota && !stop.get(),
                paused: true,
            })
        })
        .await?;
        Ok(replayed)
    }

    /// One batch of a replay lane, in one `REPEATABLE READ` transaction: up to `limit` of
    /// the lane's entries, always bounded by their `ctid`s (the batch of every entry, which
    /// matches the table at one moment, is the replay on one connection's). Returns the
    /// entries replayed.
    async fn replay_lane_batch(
        &self,
        conn: Conn<'_, '_>,
        limit: u32,
        (lane, lanes): (u32, u32),
    ) -> Result<u64, PumpError> {
        let c = conn.client;
        in_transaction(c, &replay_begin(conn), async {
            c.batch_execute(&self.replay_begin_sql()).await?;
            let row = c
                .query_one(&self.replay_lane_batch_sql(limit, lane, lanes), &[])
                .await?;
            let Some(batch) = row.get::<_, Option<String>>(0) else {
                return Ok(0);
            };
            let mut replayed = 0;
            for sql in self.replay_sql(true) {
                replayed = c.execute(sql.as_str(), &[&batch]).await?;
            }
            Ok(replayed)
        })
        .await
    }

    /// After a batch that took `limit` entries and left more: reads the backlog (at most
    /// once a second) and its growth over the last seconds, records them for `lockstep
    /// status`, and decides whether the replay is behind. Says so, once, when it falls
    /// behind: from then on it does not rest, and the run's other connections wait.
    async fn watch_backlog(&self, conn: Conn<'_, '_>, limit: u32) {
        let now = Instant::now();
        let backlog = &conn.exec.backlog;
        if !backlog.due(now) {
            return;
        }
        let Some(n) = exec::backlog::read(conn.client, &self.log()).await else {
            return;
        };
        let reading = backlog.record(now, n);
        let was = backlog.behind();
        let behind = exec::backlog::next_behind(was, reading, limit);
        backlog.set_behind(behind);
        let reason = behind.then(|| {
            format!(
                "replay behind: the change log grows by {:.0} changes/s ({n} waiting)",
                reading.per_second.unwrap_or(0.0).max(0.0)
            )
        });
        if behind && !was {
            let settings = conn.exec.backfill();
            let limited = if settings.max_rows_per_second > 0 {
                format!(
                    " (max_rows_per_second = {} limits the replay too)",
                    settings.max_rows_per_second
                )
            } else {
                String::new()
            };
            conn.note(&format!(
                "replay: the change log grows faster than it is replayed ({:+.0} changes/s, {n} waiting): replaying without rest, in larger batches, and the run's other connections wait{limited}",
                reading.per_second.unwrap_or(0.0)
            ));
        }
        exec::backlog::publish(
            conn.client,
            &conn.exec.run_id,
            reading,
            (behind, reason.as_deref(), false),
        )
        .await;
    }

    /// After a batch that took every entry it saw: the replay is not behind any more.
    async fn caught_up(&self, conn: Conn<'_, '_>) {
        let backlog = &conn.exec.backlog;
        let due = backlog.caught_up(Instant::now());
        let was = backlog.set_behind(false);
        if was {
            conn.note("replay: caught up with the change log");
        }
        if due || was {
            let reading = exec::backlog::Reading {
                backlog: 0,
                per_second: None,
            };
            exec::backlog::publish(conn.client, &conn.exec.run_id, reading, (false, None, was))
                .await;
        }
    }

    /// Vacuums the log after every 10,000 replayed entries. Batches delete from the head of
    /// the log and read it from there, and autovacuum comes by once a minute at best: the
    /// dead entries it leaves would make every batch slower than the last. Under the
    /// playbook's lock_timeout: when an autovacuum of the log holds it, this one is skipped.
    async fn vacuum_log(&self, conn: Conn<'_, '_>, replayed: u64) -> Result<(), EngineError> {
        self.unvacuumed.set(self.unvacuumed.get() + replayed);
        if self.unvacuumed.get() >= 10_000 {
            let c = conn.client;
            let vacuum = async {
                c.batch_execute(&format!(
                    "SET lock_timeout = '{}ms'",
                    conn.exec.swap.lock_timeout_ms
                ))
                .await?;
                let r = c.batch_execute(&format!("VACUUM {}", self.log())).await;
                c.batch_execute("RESET lock_timeout").await?;
                r
            };
            match vacuum.await {
                Err(e) if !is_lock_timeout(&e) => return Err(dberr("replay")(e)),
                _ => self.unvacuumed.set(0),
            }
        }
        Ok(())
    }

    /// One replay batch of at most `limit` log entries (all of them with `None`), in one
    /// `REPEATABLE READ` transaction. Returns the entries replayed and whether the batch took
    /// every entry it saw.
    async fn replay_batch(
        &self,
        conn: Conn<'_, '_>,
        limit: Option<u32>,
    ) -> Result<(u64, bool), PumpError> {
        let c = conn.client;
        in_transaction(c, &replay_begin(conn), async {
            c.batch_execute(&self.replay_begin_sql()).await?;
            // The batch: up to `limit` entries, fixed for the transaction's statements.
            let batch: Option<String> = match limit {
                Some(n) => {
                    let row = c.query_one(&self.replay_batch_sql(n), &[]).await?;
                    let count: i64 = row.get(1);
                    (count >= i64::from(n)).then(|| row.get(0))
                }
                None => None,
            };
            // A batch of every entry matches the table at one moment only when every change
            // the snapshot sees is logged: with logical capture, the keys the stream holds up
            // to a token committed after the snapshot are logged in this transaction (and
            // stay held, in case it rolls back).
            if batch.is_none() {
                self.pump_locked(c, conn.exec).await?;
            }
            let mut replayed = 0;
            for sql in self.replay_sql(batch.is_some()) {
                replayed = match &batch {
                    Some(b) => c.execute(sql.as_str(), &[b]).await?,
                    None => c.execute(sql.as_str(), &[]).await?,
                };
            }
            // The last statement deletes the replayed entries.
            Ok((replayed, batch.is_none()))
        })
        .await
    }
}

/// How replay batches run: sized for the target batch time, at the duty cycle (without rest
/// while the replay is behind), waiting while the run is paused, giving way to locks.
fn replay_batching(conn: Conn<'_, '_>) -> Batching<'static> {
    Batching {
        step: "replay",
        sizing: Sizing::Adaptive {
            first: conn.exec.backfill().batch_size,
            min: MIN_REPLAY_BATCH,
        },
        pause: true,
        give_way: true,
        pacing: Pacing::Replay,
    }
}

/// The start of a replay batch's transaction: one snapshot for the log, the table and the
/// copy, under the playbook's lock_timeout.
fn replay_begin(conn: Conn<'_, '_>) -> String {
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = '{}ms'",
        conn.exec.swap.lock_timeout_ms
    )
}

/// A trigger function that logs the key (columns `keys`) of every row its table changes to
/// `log`, both keys when an update changes it; a `TRUNCATE` truncates `also` and the log.
/// It runs with its owner's rights (an application role allowed to write the table needs
/// none on the log) and sets no search_path: every name and operator in it is
/// schema-qualified. Key columns are NOT NULL, and compared as text: an operator found by
/// search_path could be anyone's; a key that prints differently but compares equal is
/// logged twice, which costs a replay and nothing else.
pub(super) fn key_log_function_sql(name: &str, log: &str, keys: &[String], also: &str) -> String {
    let vals = |row: &str| {
        keys.iter()
            .map(|c| format!("{row}.{}", q(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same_key = keys
        .iter()
        .map(|c| {
            format!(
                "NEW.{0}::pg_catalog.text OPERATOR(pg_catalog.=) OLD.{0}::pg_catalog.text",
                q(c)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let key_list = list(keys);
    format!(
        "CREATE OR REPLACE FUNCTION lockstep.{fname}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $lockstep$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    TRUNCATE {also}, {log};
    RETURN NULL;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
    RETURN NULL;
  END IF;
  INSERT INTO {log} ({key_list}) VALUES ({old});
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT ({same_key}) THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
  END IF;
  RETURN NULL;
END
$lockstep$",
        fname = q(name),
        new = vals("NEW"),
        old = vals("OLD"),
    )
}

/// How many entries a key log (qualified and quoted) holds (`None` when it does not exist).
pub(super) async fn log_backlog(client: &Client, log: &str) -> Option<i64> {
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
