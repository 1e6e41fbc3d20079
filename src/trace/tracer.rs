//! Running one statement of a trace and observing it: inside the open transaction, or
//! outside any while a second connection watches it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_postgres::Client;

use super::seed::{SeedNote, Seeder};
use super::{db_err, db_message, Mode, Outcome, SeenLock, Step, TraceError};
use crate::db::observe::{self, TableFile};
use crate::lint::context::is_bookkeeping;
use crate::sql::ir::{LockMode, StmtKind};

/// The state of a running trace.
pub(super) struct Tracer<'a> {
    pub(super) progress: &'a mut dyn FnMut(&Step),
    pub(super) main: &'a Client,
    pub(super) watch: &'a Client,
    pub(super) pid: i32,
    /// The server publishes statistics on demand (PostgreSQL 15+).
    pub(super) flushes_stats: bool,
    pub(super) mode: Mode,
    /// Inside a transaction block (the file's, the tool's, or a savepoint in rollback mode).
    pub(super) in_tx: bool,
    /// Steps (indices) whose locks are held until the current transaction ends, with their
    /// start times.
    pub(super) tx_steps: Vec<(usize, Instant)>,
    pub(super) steps: Vec<Step>,
    pub(super) seeder: Option<Seeder>,
    /// Tables filled since the last recorded statement, reported with the next one.
    pub(super) seeded: Vec<SeedNote>,
    /// Why generated rows could not be deleted, for the failure message.
    pub(super) unseed_failure: Option<String>,
}

const SAVEPOINT: &str = "lockstep_trace";

impl Tracer<'_> {
    pub(super) fn record(&mut self, step: Step) {
        (self.progress)(&step);
        self.steps.push(step);
    }

    pub(super) async fn exec(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.main.batch_execute(sql).await
    }

    /// Fills the history's empty tables (`seed_rows`): only between transactions.
    pub(super) async fn seed(&mut self) -> Result<(), TraceError> {
        if self.in_tx {
            return Ok(());
        }
        if let Some(seeder) = self.seeder.as_mut() {
            let notes = seeder
                .fill(self.main)
                .await
                .map_err(db_err("filling tables with generated rows"))?;
            self.seeded.extend(notes);
        }
        Ok(())
    }

    /// Opens a transaction block (a savepoint in rollback mode); `sql` is the file's own
    /// `BEGIN …` with its options, if it wrote one.
    pub(super) async fn begin(&mut self, sql: Option<&str>) -> Result<(), tokio_postgres::Error> {
        match self.mode {
            Mode::Commit => self.exec(sql.unwrap_or("BEGIN")).await?,
            Mode::Rollback => self.exec(&format!("SAVEPOINT {SAVEPOINT}")).await?,
        }
        self.in_tx = true;
        self.tx_steps.clear();
        Ok(())
    }

    /// Ends the transaction block (`commit` false: roll it back).
    pub(super) async fn end(&mut self, commit: bool) -> Result<(), tokio_postgres::Error> {
        let sql = match (self.mode, commit) {
            (Mode::Commit, true) => "COMMIT".to_string(),
            (Mode::Commit, false) => "ROLLBACK".to_string(),
            (Mode::Rollback, true) => format!("RELEASE SAVEPOINT {SAVEPOINT}"),
            (Mode::Rollback, false) => {
                format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}")
            }
        };
        self.exec(&sql).await?;
        self.close_tx();
        Ok(())
    }

    /// Records how long each lock of the ending transaction was held.
    fn close_tx(&mut self) {
        let now = Instant::now();
        for (i, start) in self.tx_steps.drain(..) {
            let ms = now.duration_since(start).as_secs_f64() * 1000.0;
            for l in &mut self.steps[i].locks {
                l.held_ms = Some(ms);
            }
        }
        self.in_tx = false;
    }

    /// Runs `sql` inside the open transaction and reads what it did; the inner result is
    /// the statement's own.
    async fn observe_in_tx(
        &mut self,
        step: &mut Step,
        sql: &str,
    ) -> Result<Result<(), tokio_postgres::Error>, TraceError> {
        let ctx = "reading pg_class/pg_locks";
        let before_tables = observe::tables(self.main).await.map_err(db_err(ctx))?;
        let before_scans = observe::seq_scans(self.main, true)
            .await
            .map_err(db_err(ctx))?;
        let before_locks = observe::locks(self.main, self.pid)
            .await
            .map_err(db_err(ctx))?;
        let start = Instant::now();
        let result = self.exec(sql).await;
        step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        if let Err(e) = result {
            step.outcome = Outcome::Failed(db_message(&e));
            return Ok(Err(e));
        }
        let after_locks = observe::locks(self.main, self.pid)
            .await
            .map_err(db_err(ctx))?;
        let after_tables = observe::tables(self.main).await.map_err(db_err(ctx))?;
        let after_scans = observe::seq_scans(self.main, true)
            .await
            .map_err(db_err(ctx))?;
        diff(
            step,
            &before_tables,
            &after_tables,
            &before_scans,
            &after_scans,
        );
        for (oid, mode) in &after_locks {
            let Some(t) = before_tables.get(oid) else {
                continue;
            };
            match before_locks.get(oid) {
                Some(b) if b >= mode => {
                    step.already_held.insert(t.name.clone(), *b);
                }
                _ => step.locks.push(SeenLock {
                    table: t.name.clone(),
                    mode: *mode,
                    held_ms: None,
                }),
            }
        }
        for (oid, mode) in &before_locks {
            if let Some(t) = before_tables.get(oid) {
                step.already_held.entry(t.name.clone()).or_insert(*mode);
            }
        }
        Ok(Ok(()))
    }

    /// [`Tracer::observe_in_tx`]; with generated rows, a statement PostgreSQL refuses on
    /// them (a new NOT NULL column without a default, a unique index over repeated values,
    /// a conversion of generated text) runs again once the rows of the tables it names are
    /// gone: the history ran it when those tables were empty.
    async fn run_in_tx(&mut self, step: &mut Step, sql: &str) -> Result<bool, TraceError> {
        const GUARD: &str = "lockstep_seeded";
        if self.seeder.is_none() {
            return Ok(self.observe_in_tx(step, sql).await?.is_ok());
        }
        let ctx = "savepoint around a statement on generated rows";
        self.exec(&format!("SAVEPOINT {GUARD}"))
            .await
            .map_err(db_err(ctx))?;
        let e = match self.observe_in_tx(step, sql).await? {
            Ok(()) => {
                self.exec(&format!("RELEASE SAVEPOINT {GUARD}"))
                    .await
                    .map_err(db_err(ctx))?;
                return Ok(true);
            }
            Err(e) => e,
        };
        // Data errors, constraint violations, and a block that raised an error after
        // looking at the rows.
        let Some(db) = e.as_db_error().filter(|d| {
            let code = d.code().code();
            code.starts_with("22") || code.starts_with("23") || code == "P0001"
        }) else {
            return Ok(false);
        };
        self.exec(&format!("ROLLBACK TO SAVEPOINT {GUARD}"))
            .await
            .map_err(db_err(ctx))?;
        // The table PostgreSQL names, and those the statement reads or writes (the rows
        // an `INSERT … SELECT` copies come from its sources).
        let mut tables: Vec<String> = db.table().map(str::to_string).into_iter().collect();
        if let Some(p) = &step.predicted {
            tables.extend(p.locks.keys().chain(p.conditional.keys()).cloned());
        }
        let emptied = self.empty(&tables).await?;
        if emptied.is_empty() {
            let why = self
                .unseed_failure
                .take()
                .map_or(String::new(), |w| format!(" ({w})"));
            step.outcome = Outcome::Failed(format!("{}{why}", db_message(&e)));
            return Ok(false);
        }
        if let Some(s) = self.seeder.as_mut() {
            s.forget(emptied.iter().map(|(oid, _)| *oid));
        }
        *step = Step {
            emptied: emptied
                .into_iter()
                .map(|(_, t)| (t, db_message(&e)))
                .collect(),
            ..step.cleared()
        };
        match self.observe_in_tx(step, sql).await? {
            Ok(()) => {
                self.exec(&format!("RELEASE SAVEPOINT {GUARD}"))
                    .await
                    .map_err(db_err(ctx))?;
                Ok(true)
            }
            Err(again) => {
                step.outcome = Outcome::Failed(format!(
                    "{} (and again once the generated rows of {} were deleted)",
                    db_message(&again),
                    step.emptied
                        .iter()
                        .map(|(t, _)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Ok(false)
            }
        }
    }

    /// Deletes every row of `tables` and of the tables whose foreign keys reference them,
    /// with foreign-key and user triggers off (`session_replication_role = replica`: the
    /// throwaway cluster's superuser may), so that their order and cycles do not matter;
    /// returns the tables emptied (oid, name).
    async fn empty(&mut self, tables: &[String]) -> Result<Vec<(i64, String)>, TraceError> {
        let names = observe::referencing_closure(self.main, tables)
            .await
            .map_err(db_err("reading foreign keys"))?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let deletes: String = names
            .iter()
            .map(|(_, q)| format!("DELETE FROM {q};"))
            .collect();
        let sql = format!(
            "SAVEPOINT lockstep_empty; SET LOCAL session_replication_role = replica; {deletes} \
             SET LOCAL session_replication_role = origin; RELEASE SAVEPOINT lockstep_empty"
        );
        if let Err(e) = self.exec(&sql).await {
            self.exec("ROLLBACK TO SAVEPOINT lockstep_empty; RELEASE SAVEPOINT lockstep_empty")
                .await
                .map_err(db_err("emptying a table"))?;
            self.unseed_failure = Some(format!(
                "cannot delete the generated rows: {}",
                db_message(&e)
            ));
            return Ok(Vec::new());
        }
        Ok(names)
    }

    /// Runs `sql` in autocommit while the watch connection reads its locks.
    ///
    /// Polling alone misses a statement that ends between two polls, so the watch
    /// connection first makes the statement wait for it: it holds a snapshot and a lock on
    /// every table (ACCESS SHARE; SHARE UPDATE EXCLUSIVE for `VACUUM`, which waits for
    /// neither). `CREATE INDEX CONCURRENTLY` and `REINDEX CONCURRENTLY` wait for the
    /// snapshot while holding their locks, `DROP INDEX CONCURRENTLY` and `DETACH …
    /// CONCURRENTLY` wait for the lock holders, the others wait for a lock they request.
    /// Once the statement waits for it, the watch connection reads its locks (granted and
    /// requested), lets it go on, and keeps reading until it ends.
    async fn observe_outside(
        &mut self,
        step: &mut Step,
        kind: &StmtKind,
        sql: &str,
    ) -> Result<bool, TraceError> {
        let ctx = "watching from the second connection";
        observe::flush_stats(self.main)
            .await
            .map_err(db_err("flushing statistics"))?;
        let before_tables = observe::tables(self.watch).await.map_err(db_err(ctx))?;
        let before_scans = observe::seq_scans(self.watch, false)
            .await
            .map_err(db_err(ctx))?;
        let mode = match kind {
            // They take SHARE UPDATE EXCLUSIVE and then wait for the snapshot (or for the
            // lock holders): holding ACCESS SHARE, we see all they hold.
            StmtKind::CreateIndex { .. }
            | StmtKind::DropIndex { .. }
            | StmtKind::Reindex { .. }
            | StmtKind::AlterTable { .. } => LockMode::AccessShare,
            // Waits for nothing: it waits for the lock it asks for.
            StmtKind::Vacuum { .. } => LockMode::ShareUpdateExclusive,
            // A DO block that commits: its first write waits.
            _ => LockMode::Exclusive,
        };
        // Without the hold (a table that cannot be locked) the watch still polls.
        let held = observe::hold_all_tables(self.watch, mode).await.is_ok();
        step.scans_unknown = !self.flushes_stats;
        let done = AtomicBool::new(false);
        let start = Instant::now();
        let run = async {
            let r = self.main.batch_execute(sql).await;
            done.store(true, Ordering::SeqCst);
            r
        };
        let pid = self.pid;
        let watch = self.watch;
        let watch = async {
            // oid -> (mode, first seen, last seen)
            let mut seen: BTreeMap<i64, (LockMode, Instant, Instant)> = BTreeMap::new();
            let mut holding = held;
            let mut failure = None;
            while !done.load(Ordering::SeqCst) {
                let waits = if holding {
                    match observe::waits_for_caller(watch, pid).await {
                        Ok(w) => w,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                } else {
                    false
                };
                if let Ok(locks) = observe::lock_requests(watch, pid).await {
                    let now = Instant::now();
                    for (oid, mode) in locks {
                        let e = seen.entry(oid).or_insert((mode, now, now));
                        e.0 = e.0.max(mode);
                        e.2 = now;
                    }
                }
                if waits {
                    // Seen while it waits for us: let it go on.
                    if let Err(e) = watch.batch_execute("COMMIT").await {
                        failure = Some(e);
                        break;
                    }
                    holding = false;
                }
            }
            if holding {
                let _ = watch.batch_execute("COMMIT").await;
            }
            (seen, failure)
        };
        let (result, (seen, failure)) = tokio::join!(run, watch);
        step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        if let Some(e) = failure {
            return Err(db_err(ctx)(e));
        }
        if let Err(e) = result {
            step.outcome = Outcome::Failed(db_message(&e));
            return Ok(false);
        }
        observe::flush_stats(self.main)
            .await
            .map_err(db_err("flushing statistics"))?;
        let after_tables = observe::tables(self.watch).await.map_err(db_err(ctx))?;
        let after_scans = observe::seq_scans(self.watch, false)
            .await
            .map_err(db_err(ctx))?;
        diff(
            step,
            &before_tables,
            &after_tables,
            &before_scans,
            &after_scans,
        );
        for (oid, (mode, first, last)) in seen {
            if let Some(t) = before_tables.get(&oid) {
                step.locks.push(SeenLock {
                    table: t.name.clone(),
                    mode,
                    held_ms: Some(last.duration_since(first).as_secs_f64() * 1000.0),
                });
            }
        }
        Ok(true)
    }

    /// Runs one statement; false when it failed (the trace stops).
    pub(super) async fn statement(
        &mut self,
        mut step: Step,
        kind: &StmtKind,
        sql: &str,
    ) -> Result<bool, TraceError> {
        if !self.in_tx && !is_bookkeeping(kind) {
            self.seed().await?;
        }
        step.seeded = std::mem::take(&mut self.seeded);
        if is_bookkeeping(kind) {
            step.not_compared =
                Some("transaction control and settings: their locks are not read".into());
        }
        step.lock_timeout = observe::lock_timeout(self.main)
            .await
            .map_err(db_err("SHOW lock_timeout"))?;
        let ok = match kind {
            StmtKind::Begin if !self.in_tx => {
                let start = Instant::now();
                let r = self.begin(Some(sql)).await;
                step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
                self.settle(&mut step, r)
            }
            StmtKind::Commit | StmtKind::Rollback if self.in_tx => {
                let start = Instant::now();
                let r = self.end(matches!(kind, StmtKind::Commit)).await;
                step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
                self.settle(&mut step, r)
            }
            StmtKind::Commit | StmtKind::Rollback if self.mode == Mode::Rollback => {
                // Outside a transaction block it would end the trace's own transaction.
                step.outcome = Outcome::Skipped("no transaction block to end".into());
                self.record(step);
                return Ok(true);
            }
            k if (k.cannot_run_in_transaction().is_some() || ends_transactions(k, sql))
                && !self.in_tx =>
            {
                if self.mode == Mode::Rollback {
                    step.outcome = Outcome::Skipped(
                        "cannot run inside the trace's rollback transaction (use --commit, or trace on a throwaway cluster)".into(),
                    );
                    self.record(step);
                    return Ok(true);
                }
                step.outside_transaction = true;
                self.observe_outside(&mut step, kind, sql).await?
            }
            // Settings take no locks, and reading the catalog first would break
            // `SET TRANSACTION …`, which must come before any query of its transaction.
            k if is_setting(k) => {
                let start = Instant::now();
                let r = self.exec(sql).await;
                step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
                self.settle(&mut step, r)
            }
            _ if self.in_tx => {
                let i = self.steps.len();
                let started = Instant::now();
                let ok = self.run_in_tx(&mut step, sql).await?;
                if ok {
                    self.tx_steps.push((i, started));
                }
                ok
            }
            _ => {
                self.begin(None).await.map_err(db_err("BEGIN"))?;
                let i = self.steps.len();
                let started = Instant::now();
                let ok = self.run_in_tx(&mut step, sql).await?;
                if ok {
                    self.tx_steps.push((i, started));
                    self.record(step);
                    self.end(true).await.map_err(db_err("COMMIT"))?;
                    self.after(kind);
                    return Ok(true);
                }
                self.end(false).await.map_err(db_err("ROLLBACK"))?;
                false
            }
        };
        if !ok && self.in_tx {
            // The transaction is aborted: end it so the connection is usable.
            self.end(false).await.map_err(db_err("ROLLBACK"))?;
        }
        self.record(step);
        if ok {
            self.after(kind);
        }
        Ok(ok)
    }

    /// After a statement that may have emptied tables: fill them again before the next
    /// transaction.
    fn after(&mut self, kind: &StmtKind) {
        let emptied: Vec<String> = match kind {
            StmtKind::Truncate { tables, .. } => tables.iter().map(|t| t.name.clone()).collect(),
            StmtKind::Delete { table, .. } => vec![table.name.clone()],
            _ => return,
        };
        if let Some(seeder) = self.seeder.as_mut() {
            seeder.forget_named(&emptied);
        }
    }

    fn settle(&self, step: &mut Step, r: Result<(), tokio_postgres::Error>) -> bool {
        match r {
            Ok(()) => true,
            Err(e) => {
                step.outcome = Outcome::Failed(db_message(&e));
                false
            }
        }
    }
}

/// A `DO` block that commits or rolls back inside: it runs only outside a transaction
/// block.
fn ends_transactions(kind: &StmtKind, sql: &str) -> bool {
    if !matches!(kind, StmtKind::Do) {
        return false;
    }
    let Ok(t) = crate::sql::tokens::tokenize(sql, 0) else {
        return false;
    };
    t.toks.iter().any(|t| match &t.kind {
        crate::sql::tokens::TokKind::Str(body) => crate::sql::tokens::tokenize(body, 0)
            .is_ok_and(|b| b.toks.iter().any(|w| w.is("COMMIT") || w.is("ROLLBACK"))),
        _ => false,
    })
}

/// `SET …`/`RESET …`: session or transaction settings.
fn is_setting(kind: &StmtKind) -> bool {
    match kind {
        StmtKind::Set { .. } | StmtKind::Reset { .. } => true,
        StmtKind::Other { what } => what == "SET" || what.starts_with("SET ") || what == "RESET",
        _ => false,
    }
}

fn diff(
    step: &mut Step,
    before_tables: &BTreeMap<i64, TableFile>,
    after_tables: &BTreeMap<i64, TableFile>,
    before_scans: &BTreeMap<i64, i64>,
    after_scans: &BTreeMap<i64, i64>,
) {
    for (oid, t) in before_tables {
        if let Some(a) = after_tables.get(oid) {
            if t.relfilenode != 0 && a.relfilenode != t.relfilenode {
                step.rewrites.insert(t.name.clone());
            }
        }
        let b = before_scans.get(oid).copied().unwrap_or(0);
        if after_scans.get(oid).copied().unwrap_or(0) > b {
            step.scans.insert(t.name.clone());
        }
    }
}
