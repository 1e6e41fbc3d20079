//! The swap and what follows it: the renames, sequences, grants, foreign keys and views
//! carried over in one transaction; the reverse sync that keeps the old table for a swap
//! back (reverse.rs: the deferred ones, a slot or a trigger keeping the changed keys; here:
//! `reverse = "sync"`, a trigger that applies every change); the swap back (rollback after
//! the swap); dropping the copy (rollback before it); finalize.

use super::logical::PumpError;
use super::runner::{Runner, Step};
use super::{ShadowPlan, Side};
use crate::playbook::exec::{dberr, try_tx_timed, EngineError, Exec, Retry, Timed};
use crate::playbook::facts::{InboundFk, View};
use crate::playbook::names::{fit, list, lit, quote_ident as q};
use crate::playbook::settings::ReverseSync;
use crate::playbook::state::{self, Status, SwapAttempt};

impl Runner<'_, '_> {
    /// The swap. What needs no lock is done first ([`ShadowPlan::swap_prepare_sql`]); a log
    /// grown large meanwhile (a long verification under writers, a run resumed after a
    /// while) is replayed in lanes; then attempts with the retry policy, each right after a
    /// catch-up (what is left in the log is replayed under the lock, and a backlog grown
    /// during a backoff would otherwise hold the application up for its whole replay).
    pub(super) async fn swap(&mut self) -> Result<(), EngineError> {
        self.exec.step("swap", &self.plan.source());
        // A hook that must succeed (`required = true`) has had its say before the lock.
        self.exec.settle_hooks().await?;
        self.replay_in_lanes(false).await?;
        self.exec
            .main()
            .with_retry(&self.plan.swap_prepare_sql(), "swap")
            .await?;
        super::reverse_slot::install(self.exec.main(), self.plan).await?;
        let (head, mut rest) = self.plan.swap_parts();
        rest.push(state::set_step_sql(
            &self.exec.run_id,
            Step::Swapped.as_str(),
            Some(Status::Running),
        ));
        let locks = self.plan.swap_locks_sql();
        let client = self.exec.client;
        let this = &*self;
        locked(
            &self.exec,
            "swap",
            &locks,
            &rest,
            async || this.catch_up_before_swap().await,
            async || {
                this.capture
                    .pump_under_swap(client, &this.exec)
                    .await
                    .map_err(|e| match e {
                        PumpError::Db(e) => Attempt::Db(e),
                        PumpError::NotNow(why) => Attempt::Again(why),
                        e => Attempt::Stop(e.engine()),
                    })?;
                client.batch_execute(&head.join(";\n")).await?;
                this.check_settled(client).await
            },
        )
        .await?;
        self.exec.emit(
            crate::playbook::hooks::EventKind::Swapped,
            &self.plan.source(),
        );
        self.step = Step::Swapped;
        Ok(())
    }
}

/// Why an attempt at a locking transaction failed.
pub(super) enum Attempt {
    /// A statement failed (a lock not granted, …): the retry policy decides.
    Db(tokio_postgres::Error),
    /// The run cannot go on: no retry.
    Stop(EngineError),
    /// Not now (the capture's stream was not ready under the lock): the lock goes, and the
    /// attempt counts like one whose lock was not granted.
    Again(String),
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Self {
        Attempt::Db(e)
    }
}

/// Undoes a run: before the swap, drops what it created; after the swap (before finalize),
/// swaps back to the original table, brought up to date from the reverse log first (or kept
/// current by the reverse trigger with `[swap] reverse = "sync"`).
pub(crate) async fn rollback(
    exec: Exec<'_>,
    plan: &ShadowPlan,
    step: Step,
) -> Result<(), EngineError> {
    let conn = exec.main();
    if step >= Step::Swapped {
        // Rows the old table's types cannot hold would be lost.
        if let Some(t) = plan.unsynced_table() {
            if conn.exists(&t, "rollback").await? {
                let r = conn
                    .query_one(
                        &format!("SELECT count(*), max(lockstep_error) FROM {t}"),
                        &[],
                        "rollback",
                    )
                    .await?;
                let n: i64 = r.get(0);
                if n > 0 {
                    return Err(EngineError::State(format!(
                        "{n} row(s) written since the swap hold values the old table's column types cannot ({}): swapping back would lose them; fix or delete them, then empty {t}",
                        r.get::<_, Option<String>>(1).unwrap_or_default()
                    )));
                }
            }
        }
        // A slot left by a runner that stopped right after the swap.
        conn.with_retry(&plan.capture().logical_discard_sql(), "rollback")
            .await?;
        // The deferred reverse syncs: the old table catches up outside any lock first, and
        // before every attempt (a backlog grown during a backoff would otherwise be applied
        // while the application waits); the last entries under the lock. With
        // `reverse = "logical"` the keys come from the reverse slot into the log first.
        let deferred = conn.exists(&plan.reverse_log(), "rollback").await?;
        let slot = super::reverse_slot::Reverse::new(plan);
        if deferred {
            exec.step("reverse replay", &plan.old());
            slot.pump(conn).await?;
            let n = super::reverse::catch_up(conn, plan).await?;
            exec.note(&format!(
                "reverse replay: {n} changes since the swap applied to {}",
                plan.old()
            ));
        }
        exec.step("swap back", &plan.source());
        let mut sql = plan.swap_back_sql();
        sql.push(state::set_step_sql(
            &exec.run_id,
            Step::RolledBack.as_str(),
            Some(Status::RolledBack),
        ));
        let rest = sql.split_off(plan.swap_locks_sql().len());
        let client = exec.client;
        let (exec_ref, slot_ref) = (&exec, &slot);
        let swapped = locked(
            &exec,
            "swap back",
            &sql,
            &rest,
            async || {
                if deferred {
                    slot_ref.pump(conn).await?;
                    super::reverse::catch_up(conn, plan).await?;
                }
                Ok(())
            },
            async || {
                if deferred {
                    slot_ref.under_lock(client, exec_ref).await?;
                    super::reverse::finish(client, plan).await?;
                }
                Ok::<_, Attempt>(())
            },
        )
        .await;
        slot.stop().await;
        swapped?;
        crate::playbook::exec::hold_point("swapped-back").await;
        // The reverse slot, once the old table has every change it kept.
        conn.with_retry(&plan.reverse_discard_sql(), "rollback")
            .await?;
        for v in plan.validate_sql() {
            conn.with_retry(std::slice::from_ref(&v), "validate")
                .await?;
        }
    } else {
        exec.step("drop the copy", &plan.shadow());
        for s in plan.drop_shadow_sql() {
            conn.with_retry(std::slice::from_ref(&s), "rollback")
                .await?;
        }
        state::set_step(
            exec.client,
            &exec.run_id,
            Step::RolledBack.as_str(),
            Status::RolledBack,
            None,
        )
        .await
        .map_err(crate::playbook::exec::dberr("state"))?;
        state::drop_lanes(exec.client, &exec.run_id)
            .await
            .map_err(crate::playbook::exec::dberr("state"))?;
    }
    Ok(())
}

/// After the swap: applies the changes since to the old table (outside any lock), from the
/// reverse slot and log, as a rollback does first. Returns the changes applied (none with
/// `reverse = "sync"`, which keeps the old table current).
pub(crate) async fn sync_back(exec: Exec<'_>, plan: &ShadowPlan) -> Result<u64, EngineError> {
    let conn = exec.main();
    if !conn.exists(&plan.reverse_log(), "reverse replay").await? {
        return Ok(0);
    }
    exec.step("reverse replay", &plan.old());
    let slot = super::reverse_slot::Reverse::new(plan);
    let pumped = slot.pump(conn).await;
    slot.stop().await;
    pumped?;
    super::reverse::catch_up(conn, plan).await
}

/// After the swap: drops the reverse slot or trigger, its log and the old table.
pub(crate) async fn finalize(exec: Exec<'_>, plan: &ShadowPlan) -> Result<(), EngineError> {
    exec.step("finalize", &plan.old());
    let conn = exec.main();
    for s in plan.finalize_sql() {
        conn.with_retry(std::slice::from_ref(&s), "finalize")
            .await?;
    }
    state::set_step(
        exec.client,
        &exec.run_id,
        Step::Finalized.as_str(),
        Status::Finalized,
        None,
    )
    .await
    .map_err(crate::playbook::exec::dberr("state"))
}

/// Runs a transaction that begins by taking `locks` (the swap, the swap back) with the retry
/// policy, `before` ahead of every attempt and `inside` right after the locks are granted.
/// Each attempt's wait for the locks and the time it held them are noted and kept in the
/// run (`lockstep status`).
pub(super) async fn locked(
    exec: &Exec<'_>,
    what: &str,
    locks: &[String],
    rest: &[String],
    mut before: impl AsyncFnMut() -> Result<(), EngineError>,
    mut inside: impl AsyncFnMut() -> Result<(), Attempt>,
) -> Result<(), EngineError> {
    let conn = exec.main();
    let mut retry = Retry::new(&exec.swap);
    loop {
        before().await?;
        // An autovacuum worker on the tables would keep the lock waiting its lock_timeout,
        // with the application's writes queued behind the waiting lock: it goes first
        // (not a wraparound one, which must finish).
        let cancelled = crate::playbook::exec::cancel_autovacuum(conn.client, &exec.tables).await;
        if cancelled > 0 {
            exec.note(&format!(
                "{what}: cancelled {cancelled} autovacuum worker(s) working on the tables before taking the lock (they restart later)"
            ));
        }
        let (r, timed) = try_tx_timed(
            conn.client,
            locks,
            rest,
            exec.swap.lock_timeout_ms,
            async || inside().await,
        )
        .await;
        let error = match &r {
            Ok(()) => None,
            Err(Attempt::Db(e)) => Some(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string()),
            ),
            Err(Attempt::Stop(e)) => Some(e.to_string()),
            Err(Attempt::Again(why)) => Some(why.clone()),
        };
        let attempt = attempt(what, timed, error);
        if let Some(held) = attempt.held_ms {
            exec.note(&format!(
                "{what}: the lock was held {held:.0} ms (granted after {:.0} ms){}",
                attempt.waited_ms,
                if r.is_ok() {
                    ""
                } else {
                    ", then the attempt failed"
                }
            ));
        }
        state::add_swap_attempt(exec.client, &exec.run_id, &attempt)
            .await
            .map_err(dberr("state"))?;
        match r {
            Ok(()) => return Ok(()),
            Err(Attempt::Db(e)) => conn.retry_failed(&mut retry, e, what).await?,
            Err(Attempt::Stop(e)) => return Err(e),
            Err(Attempt::Again(why)) => {
                let note = |m: &str| exec.note(m);
                retry.again(&why, &note, &exec.swap, what).await?;
            }
        }
    }
}

/// An attempt as the run keeps it.
fn attempt(what: &str, timed: Timed, error: Option<String>) -> SwapAttempt {
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    SwapAttempt {
        what: what.to_string(),
        waited_ms: ms(timed.waited),
        held_ms: timed.held.map(ms),
        error,
    }
}

impl ShadowPlan {
    /// `=` for column `c`, qualified: the functions lockstep installs run with a pinned
    /// search_path, so an extension type's operator is named with its schema.
    fn eq(&self, c: &str) -> String {
        let schema = self
            .facts
            .column(c)
            .and_then(|c| c.eq_schema.as_deref())
            .unwrap_or("pg_catalog");
        format!("OPERATOR({schema}.=)")
    }

    /// The key of `target` (the old table) matching `row`'s (of the new table), its values
    /// back in the old table's types.
    fn key_match(&self, key: &[String], row: &str) -> String {
        key.iter()
            .map(|k| {
                let value = match self.change(k) {
                    Some(x) => format!("({row}.{})::{}", q(k), x.old_type),
                    None => format!("{row}.{}", q(k)),
                };
                format!("{} {} {value}", q(k), self.eq(k))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Rows the reverse sync could not write to the old table (a value its type cannot
    /// hold): their keys, for the rollback to refuse rather than lose them.
    pub(super) fn unsynced(&self) -> String {
        format!(
            "lockstep.{}",
            q(&fit(&format!("unsynced_{}", self.names.run_id)))
        )
    }

    /// A trigger function that applies each change of the table it is on to `target`,
    /// identifying rows by `key` (a `TRUNCATE` truncates `target`). It runs with its owner's
    /// rights (an application role allowed to write the table needs none on `target`) and a
    /// pinned search_path, every name in it qualified.
    fn sync_function(&self, name: &str, target: &str, key: &[String]) -> String {
        let cols = self.cols();
        let col_list = list(&cols);
        let changes = self.target.changes();
        // The new row's values, a column of another type converted back.
        let new_vals = if changes.is_empty() {
            format!(
                "VALUES ({})",
                cols.iter()
                    .map(|c| format!("NEW.{}", q(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "SELECT {} FROM (SELECT NEW.*) AS {}",
                cols.iter()
                    .map(|c| match self.change(c) {
                        Some(x) => format!("({})::{}", x.back, x.old_type),
                        None => q(c),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                q(&self.facts.name)
            )
        };
        let updates: Vec<String> = cols
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{} = EXCLUDED.{}", q(c), q(c)))
            .collect();
        let conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        // Key columns are NOT NULL.
        let same_key = key
            .iter()
            .map(|k| format!("NEW.{0} {1} OLD.{0}", q(k), self.eq(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        // The columns an update sets, a column of another type converted back (read from
        // the new row as a table of the table's name, as the expressions are written).
        let non_key: Vec<String> = cols.iter().filter(|c| !key.contains(c)).cloned().collect();
        let set_new: Vec<String> = if changes.is_empty() {
            non_key
                .iter()
                .map(|c| format!("{} = NEW.{}", q(c), q(c)))
                .collect()
        } else {
            let converted: Vec<String> = non_key
                .iter()
                .map(|c| match self.change(c) {
                    Some(x) => format!("({})::{}", x.back, x.old_type),
                    None => q(c),
                })
                .collect();
            let from = format!("FROM (SELECT NEW.*) AS {}", q(&self.facts.name));
            match non_key.len() {
                0 => Vec::new(),
                1 => vec![format!(
                    "{} = (SELECT {} {from})",
                    q(&non_key[0]),
                    converted[0]
                )],
                _ => vec![format!(
                    "({}) = (SELECT {} {from})",
                    list(&non_key),
                    converted.join(", ")
                )],
            }
        };
        let old_match = self.key_match(key, "OLD");
        let ovr = self.overriding_into(false);
        let key_list = list(key);
        // An update that keeps the key updates the copy in place (one statement instead of a
        // delete and an insert: the common case, and a fifth less work for the writer; and
        // the old table keeps what only it has, the columns a rebuild dropped).
        // Not with a GENERATED ALWAYS identity column outside the key: UPDATE cannot set it.
        let always = self
            .facts
            .columns
            .iter()
            .any(|c| c.identity == "a" && !key.contains(&c.name));
        let in_place = if set_new.is_empty() || always {
            String::new()
        } else {
            format!(
                "  IF TG_OP = 'UPDATE' AND {same_key} THEN
    UPDATE {target} SET {} WHERE {old_match};
    IF FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
",
                set_new.join(", "),
            )
        };
        let write = format!(
            "  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM {target} WHERE {old_match};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO {target} ({col_list}){ovr} {new_vals}
      ON CONFLICT ({key_list}) {conflict};
  END IF;
"
        );
        // A value the old type cannot hold must not fail the application's write: the row's
        // key is noted instead, and a rollback refuses while such rows exist.
        let write = if changes.is_empty() {
            write
        } else {
            let ks = self.keys();
            format!(
                "  BEGIN
{write}  EXCEPTION WHEN others THEN
    INSERT INTO {unsynced} (lockstep_key, lockstep_error) VALUES ({}, SQLERRM);
  END;
",
                ks.text_array("NEW."),
                unsynced = self.unsynced()
            )
        };
        format!(
            "CREATE OR REPLACE FUNCTION lockstep.{fname}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $lockstep$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE {target};
    RETURN NULL;
  END IF;
{in_place}{write}  RETURN NULL;
END
$lockstep$",
            fname = q(name),
        )
    }

    /// The reverse function (new table → old table), created before the swap: with
    /// `[swap] reverse = "sync"` it applies each change to the old table, with `"deferred"`
    /// it logs the changed keys (reverse.rs); with `"logical"` there is none (a slot keeps
    /// the changes).
    pub fn reverse_function_sql(&self) -> Option<String> {
        match self.reverse {
            ReverseSync::Logical | ReverseSync::Auto => None,
            ReverseSync::Deferred => Some(self.reverse_log_function_sql()),
            ReverseSync::Sync => Some(self.sync_function(
                &self.names.reverse_fn,
                &self.old(),
                &self.facts.pk_columns,
            )),
        }
    }

    /// At the swap (`forward`), or the swap back: what columns of another type need besides
    /// the new table. A serial column's sequence takes the column's type; the reverse sync
    /// notes the rows it cannot write in the old types.
    fn column_changes_sql(&self, forward: bool) -> Vec<String> {
        let changes = self.target.changes();
        if changes.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for s in self.kept_sequences().filter(|s| !s.identity) {
            if let Some(x) = self.change(&s.column) {
                let t = if forward { &x.new_type } else { &x.old_type };
                if is_integer(&x.old_type) && is_integer(&x.new_type) {
                    out.push(format!("ALTER SEQUENCE {} AS {t}", s.sequence));
                }
            }
        }
        // Forward, the table for what the reverse sync cannot write was made before.
        if !forward {
            out.push(format!("DROP TABLE IF EXISTS {}", self.unsynced()));
        }
        out
    }

    /// The table where the reverse sync notes the rows it could not write to the old table,
    /// when columns change type.
    pub fn unsynced_table(&self) -> Option<String> {
        (!self.target.changes().is_empty()).then(|| self.unsynced())
    }

    /// Sequence continuity for the table now under the original name (run after the renames).
    /// A serial column's sequence changes owner. An identity sequence continues above every id
    /// handed out so far: after the swap (`to_new`) the new table's own identity sequence is
    /// moved past the original's; after a swap back the original's is moved past the ids the
    /// new table issued meanwhile.
    fn sequences_sql(&self, to_new: bool) -> Vec<String> {
        let live = self.source();
        self.kept_sequences()
            .map(|s| {
                if s.identity {
                    let target = if to_new {
                        format!("pg_get_serial_sequence({}, {})", lit(&live), lit(&s.column))
                    } else {
                        lit(&s.sequence)
                    };
                    format!(
                        "SELECT setval({target}, GREATEST((SELECT last_value FROM {}), (SELECT coalesce(max({}), 0) FROM {live}), 1))",
                        s.sequence,
                        q(&s.column)
                    )
                } else {
                    format!(
                        "ALTER SEQUENCE {} OWNED BY {live}.{}",
                        s.sequence,
                        q(&s.column)
                    )
                }
            })
            .collect()
    }

    /// The table, primary-key and index names of one side of the swap.
    fn side(&self, side: Side) -> (String, String, Vec<String>) {
        let f = &self.facts;
        let n = &self.names;
        match side {
            Side::Live => (
                f.name.clone(),
                f.pk_name.clone(),
                f.indexes.iter().map(|i| i.name.clone()).collect(),
            ),
            Side::Old => (
                n.old.clone(),
                n.old_pk.clone(),
                n.indexes.iter().map(|(_, o)| o.clone()).collect(),
            ),
            Side::Shadow => (
                n.shadow.clone(),
                n.shadow_pk.clone(),
                n.indexes.iter().map(|(p, _)| p.clone()).collect(),
            ),
        }
    }

    /// Renames the table, its primary key and its indexes from one side's names to another's.
    fn renames(&self, from: Side, to: Side) -> Vec<String> {
        let (ft, fpk, fix) = self.side(from);
        let (tt, tpk, tix) = self.side(to);
        let mut out = vec![format!(
            "ALTER TABLE {} RENAME TO {}",
            self.rel(&ft),
            q(&tt)
        )];
        if !self.facts.pk_name.is_empty() {
            out.push(format!(
                "ALTER INDEX {} RENAME TO {}",
                self.rel(&fpk),
                q(&tpk)
            ));
        }
        for (a, b) in fix.iter().zip(&tix) {
            out.push(format!("ALTER INDEX {} RENAME TO {}", self.rel(a), q(b)));
        }
        out
    }

    /// Before the swap, outside its lock (idempotent, one transaction): what the swap would
    /// otherwise do while the application waits and that needs no lock on the table. The new
    /// table's grants (they stay with it through the renames), the reverse log (or, with
    /// `reverse = "sync"`, the table noting what the reverse sync cannot write) and the
    /// reverse function (its body names the old table, resolved when it first runs). Not
    /// the storage parameters: autovacuum turned on for the freshly filled copy before the
    /// swap would start vacuuming it, and the swap's lock would wait for it longer than its
    /// lock_timeout (autovacuum gives way to a lock only after deadlock_timeout).
    pub fn swap_prepare_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let shadow = self.shadow();
        let mut out = Vec::new();
        for g in &f.grants {
            let (privilege, to) = g.split_once(" TO ").unwrap_or((g.as_str(), "PUBLIC"));
            out.push(format!("GRANT {privilege} ON {shadow} TO {to}"));
        }
        for (privilege, to) in &f.column_grants {
            // `PRIVILEGE (column)`: a dropped column's go with it.
            let dropped = self
                .shape
                .iter()
                .flat_map(|s| &s.dropped)
                .any(|c| privilege.ends_with(&format!(" ({})", q(c))));
            if !dropped {
                out.push(format!("GRANT {privilege} ON {shadow} TO {to}"));
            }
        }
        if self.reverse.is_deferred() {
            out.push(self.reverse_log_table_sql());
        } else if !self.target.changes().is_empty() {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {} (lockstep_key text[] NOT NULL, lockstep_error text)",
                self.unsynced()
            ));
        }
        if let Some(f) = self.reverse_function_sql() {
            out.push(f);
            out.push(format!(
                "REVOKE ALL ON FUNCTION lockstep.{}() FROM PUBLIC",
                q(&self.names.reverse_fn)
            ));
        }
        out
    }

    /// The locks the swap takes first: the table, then the new table.
    pub fn swap_locks_sql(&self) -> Vec<String> {
        vec![
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.source()),
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.shadow()),
        ]
    }

    /// The swap, in one transaction after `SET LOCAL lock_timeout`: the locks
    /// ([`Self::swap_locks_sql`]), the storage parameters, the rest of the log, renames,
    /// sequences, foreign keys, views and the reverse trigger (attached: its function and log
    /// were made before). Only what needs the lock is here
    /// ([`Self::swap_prepare_sql`] runs before).
    pub fn swap_sql(&self) -> Vec<String> {
        let (head, tail) = self.swap_parts();
        let mut out = self.swap_locks_sql();
        out.extend(head);
        out.extend(tail);
        out
    }

    /// The swap after its locks, in two parts: up to the replay of the last changes, and the
    /// rest (see [`Self::swap_sql`]). The comparisons of ranges that kept changing during the
    /// verification come between the two.
    pub fn swap_parts(&self) -> (Vec<String>, Vec<String>) {
        let f = &self.facts;
        let mut head = self.storage_sql();
        // The last changes, replayed under the lock; the capture stops.
        let (replay, stop) = self.capture().finish_sql();
        head.extend(replay);
        let mut out = stop;
        out.extend(f.inbound_fks.iter().map(InboundFk::drop_sql));
        out.extend(self.renames(Side::Live, Side::Old));
        out.extend(self.renames(Side::Shadow, Side::Live));
        let new = self.source();
        out.extend(self.sequences_sql(true));
        out.extend(f.inbound_fks.iter().map(|fk| fk.add_not_valid_sql(&new)));
        for v in &f.views {
            out.push(view_sql(v));
        }
        out.extend(self.swap_extras_sql());
        out.extend(self.column_changes_sql(true));
        if self.reverse_function_sql().is_some() {
            out.push(format!(
                "CREATE TRIGGER lockstep_reverse AFTER INSERT OR UPDATE OR DELETE ON {new} FOR EACH ROW EXECUTE FUNCTION lockstep.{}()",
                q(&self.names.reverse_fn)
            ));
            out.push(format!(
                "CREATE TRIGGER lockstep_reverse_truncate AFTER TRUNCATE ON {new} FOR EACH STATEMENT EXECUTE FUNCTION lockstep.{}()",
                q(&self.names.reverse_fn)
            ));
        }
        (head, out)
    }

    /// After the swap: validate the re-pointed foreign keys that were valid before (each in
    /// its own transaction); one that was NOT VALID stays so.
    pub fn validate_sql(&self) -> Vec<String> {
        self.facts
            .inbound_fks
            .iter()
            .filter(|fk| fk.validated)
            .map(InboundFk::validate_sql)
            .collect()
    }

    /// Swapping back after the swap (rollback): the old table, brought up to date from the
    /// reverse log (applied between the locks and the rest), takes the name again.
    pub fn swap_back_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let current = self.source();
        let mut out = vec![
            format!("LOCK TABLE {current} IN ACCESS EXCLUSIVE MODE"),
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.old()),
        ];
        out.extend(f.inbound_fks.iter().map(InboundFk::drop_sql));
        out.push(format!(
            "DROP TRIGGER IF EXISTS lockstep_reverse ON {current}; DROP TRIGGER IF EXISTS lockstep_reverse_truncate ON {current}"
        ));
        out.push(format!("DROP TABLE IF EXISTS {}", self.reverse_log()));
        out.extend(self.renames(Side::Live, Side::Shadow));
        out.extend(self.renames(Side::Old, Side::Live));
        out.extend(self.swap_back_extras_sql());
        out.extend(self.column_changes_sql(false));
        out.extend(self.sequences_sql(false));
        out.extend(
            f.inbound_fks
                .iter()
                .map(|fk| fk.add_not_valid_sql(&current)),
        );
        for v in &f.views {
            out.push(view_sql(v));
        }
        out.push(format!("DROP TABLE {}", self.shadow()));
        out.push(format!(
            "DROP FUNCTION IF EXISTS lockstep.{}()",
            q(&self.names.reverse_fn)
        ));
        out.push(format!(
            "DROP FUNCTION IF EXISTS lockstep.{}()",
            q(&self.names.forward_fn)
        ));
        out
    }

    /// Undoing everything before the swap.
    pub fn drop_shadow_sql(&self) -> Vec<String> {
        let mut out = self.capture().discard_sql();
        out.insert(1, format!("DROP TABLE IF EXISTS {}", self.shadow()));
        out.push(format!(
            "DROP FUNCTION IF EXISTS lockstep.{}()",
            q(&self.names.reverse_fn)
        ));
        out.push(format!("DROP TABLE IF EXISTS {}", self.unsynced()));
        out.push(format!("DROP TABLE IF EXISTS {}", self.reverse_log()));
        // A reverse slot made before a swap that did not happen.
        out.extend(self.reverse_discard_sql());
        out
    }

    /// Finalize: the reverse trigger, its log and the old table go (and a capture slot left
    /// by a runner that stopped right after the swap).
    pub fn finalize_sql(&self) -> Vec<String> {
        let mut out = self.capture().logical_discard_sql();
        out.extend(self.reverse_discard_sql());
        out.extend([
            format!(
                "DROP TRIGGER IF EXISTS lockstep_reverse ON {0}; DROP TRIGGER IF EXISTS lockstep_reverse_truncate ON {0}",
                self.source()
            ),
            format!("DROP TABLE IF EXISTS {}", self.old()),
            format!("DROP TABLE IF EXISTS {}", self.unsynced()),
            format!("DROP TABLE IF EXISTS {}", self.reverse_log()),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.reverse_fn)
            ),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.forward_fn)
            ),
        ]);
        out
    }
}

/// Re-creating a dependent view (on whatever table has the name now), options included.
fn view_sql(v: &View) -> String {
    let with = if v.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", v.options.join(", "))
    };
    format!(
        "CREATE OR REPLACE VIEW {}{with} AS {}",
        v.name,
        v.definition.trim_end().trim_end_matches(';')
    )
}

/// `smallint`, `integer`, `bigint`.
fn is_integer(t: &str) -> bool {
    matches!(t, "smallint" | "integer" | "bigint")
}
