//! `lockstep trace`: run migration files against a real PostgreSQL and record, per
//! statement, the relation locks it took (and how long they were held), whether it rewrote
//! or scanned each table, how long it ran and the `lock_timeout` in force; then compare with
//! the lint lock report for the same statement (`confirmed` or `mismatch`).
//!
//! Statements run the way the file's migration tool runs them (see [`crate::framework`]):
//! a section the tool wraps in a transaction runs inside `BEGIN … COMMIT`, explicit
//! transaction control in the file is followed, and a statement outside any transaction is
//! wrapped in its own so its locks can be read before they are released. Statements that
//! cannot run in a transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM` …) run in
//! autocommit while a second connection watches their locks in `pg_locks`.
//!
//! In [`Mode::Rollback`] everything runs inside one transaction that is rolled back at the
//! end: the file's `BEGIN`/`COMMIT` become savepoints, and statements that cannot run in a
//! transaction are skipped.
//!
//! Only locks on tables that existed before the statement are compared (the lint model does
//! not describe tables a statement creates). ACCESS SHARE is compared where lint predicts it
//! (the tables a query reads); other plain reads (catalog look-ups, functions) are not
//! modelled. A lock the transaction already held at least as strongly counts as taken:
//! PostgreSQL does not show a second request.
//!
//! With `seed_rows`, every table the traced files create is filled with generated rows
//! between transactions ([`seed`]), so statements meet tables that hold rows.

pub mod seed;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_postgres::Client;

use crate::db::observe::{self, TableFile};
use crate::files::{self, FileReport, Input};
use crate::framework::{DirFacts, Direction};
use crate::lint::context::is_bookkeeping;
use crate::lint::{LintOptions, StatementLocks};
use crate::sql::ir::{LockMode, StmtKind};
use crate::sql::LineIndex;
use seed::{SeedNote, Seeder};

/// How the trace treats the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Statements commit as the migration would (a throwaway cluster, or `--commit`).
    Commit,
    /// Everything is rolled back at the end.
    Rollback,
}

/// How a trace runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    pub mode: Mode,
    /// Rows to generate in every table the traced files create (0: none). Only on a
    /// database the trace may fill (a throwaway cluster).
    pub seed_rows: u32,
}

impl From<Mode> for TraceOptions {
    fn from(mode: Mode) -> Self {
        TraceOptions { mode, seed_rows: 0 }
    }
}

/// A lock a statement took.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenLock {
    pub table: String,
    pub mode: LockMode,
    /// From the statement's start until its transaction ended (or, for statements watched
    /// from outside a transaction, while the lock was seen).
    pub held_ms: Option<f64>,
}

/// What a statement does, in the lint model's terms: locks (by table name), rewrites,
/// scans. For a prediction, `locks` holds the locks always taken (ACCESS SHARE included:
/// the tables a query reads) and `conditional` those taken only sometimes; for what
/// PostgreSQL did, `locks` holds the locks above ACCESS SHARE and `touched` every table
/// locked at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    pub locks: BTreeMap<String, LockMode>,
    pub conditional: BTreeMap<String, LockMode>,
    /// Locks predicted on "the table of index X" where the table is unknown (and whether
    /// each is conditional).
    pub index_locks: Vec<(LockMode, bool)>,
    pub rewrites: BTreeSet<String>,
    pub scans: BTreeSet<String>,
    pub may_rewrite: BTreeSet<String>,
    pub may_scan: BTreeSet<String>,
    pub touched: BTreeSet<String>,
    /// The prediction leaves out SQL built at run time (`EXECUTE format(…)`).
    pub incomplete: bool,
}

impl Effect {
    /// The prediction of one statement.
    pub fn of(s: &StatementLocks) -> Effect {
        let mut e = Effect::default();
        for l in &s.report.locks {
            if l.via_index {
                e.index_locks.push((l.mode, l.condition.is_some()));
                continue;
            }
            let map = if l.condition.is_some() {
                &mut e.conditional
            } else {
                &mut e.locks
            };
            let m = map.entry(l.table.name.clone()).or_insert(l.mode);
            *m = (*m).max(l.mode);
        }
        let names = |v: &[crate::sql::ir::ObjName]| v.iter().map(|t| t.name.clone()).collect();
        e.rewrites = names(&s.report.rewrites);
        e.scans = names(&s.report.scans);
        e.may_rewrite = names(&s.report.may_rewrite);
        e.may_scan = names(&s.report.may_scan);
        e.incomplete = s.report.incomplete;
        e
    }
}

/// How a statement's run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    /// PostgreSQL rejected it (message with SQLSTATE); the trace stops there.
    Failed(String),
    Skipped(String),
}

/// Whether what PostgreSQL did matches the lint lock report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    Mismatch,
    NotCompared(String),
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Mismatch => "mismatch",
            Verdict::NotCompared(_) => "not compared",
        }
    }
}

/// One traced statement.
#[derive(Debug, Clone)]
pub struct Step {
    pub file: String,
    pub line: usize,
    pub end_line: usize,
    /// The statement as written (trimmed).
    pub sql: String,
    pub outcome: Outcome,
    /// Run in autocommit and watched from a second connection.
    pub outside_transaction: bool,
    /// Outside a transaction on a server before PostgreSQL 15, whose scan counters reach
    /// the second connection late: the statement's scans are not compared.
    pub scans_unknown: bool,
    /// Locks taken (all modes, including ACCESS SHARE).
    pub locks: Vec<SeenLock>,
    /// Tables the transaction already held at least this strongly before the statement.
    pub already_held: BTreeMap<String, LockMode>,
    pub rewrites: BTreeSet<String>,
    pub scans: BTreeSet<String>,
    pub duration_ms: f64,
    pub lock_timeout: String,
    /// Tables filled with generated rows just before this statement (`seed_rows`).
    pub seeded: Vec<SeedNote>,
    /// Tables whose generated rows were deleted because PostgreSQL refused the statement
    /// on them (the message), before it ran again.
    pub emptied: Vec<(String, String)>,
    /// The lint prediction, when lint understood the statement.
    pub predicted: Option<Effect>,
    /// Why the statement is not compared, known before it runs (lint did not understand
    /// it, a psql meta-command).
    pub not_compared: Option<String>,
    pub verdict: Verdict,
}

impl Step {
    /// The step as it was before it ran: what was observed is forgotten.
    fn cleared(&self) -> Step {
        Step {
            outcome: Outcome::Ran,
            locks: Vec::new(),
            already_held: BTreeMap::new(),
            rewrites: BTreeSet::new(),
            scans: BTreeSet::new(),
            duration_ms: 0.0,
            ..self.clone()
        }
    }

    /// The observed effect in the lint model's terms (locks above ACCESS SHARE; every
    /// table locked in `touched`).
    pub fn observed(&self) -> Effect {
        let mut e = Effect::default();
        for l in &self.locks {
            e.touched.insert(l.table.clone());
        }
        for l in self.locks.iter().filter(|l| l.mode > LockMode::AccessShare) {
            let m = e.locks.entry(l.table.clone()).or_insert(l.mode);
            *m = (*m).max(l.mode);
        }
        e.rewrites = self.rewrites.clone();
        e.scans = self.scans.clone();
        e
    }

    /// What is compared with prediction `p`: [`Step::observed`], with the scans taken as
    /// predicted when they could not be read.
    fn compared(&self, p: &Effect) -> Effect {
        let mut e = self.observed();
        if self.scans_unknown {
            e.scans.clone_from(&p.scans);
        }
        e
    }

    /// The verdict, from the outcome and the comparison with the prediction. A statement
    /// that did not run to its end is never confirmed.
    fn judge(&self) -> Verdict {
        match &self.outcome {
            Outcome::Failed(_) => return Verdict::NotCompared("it failed".into()),
            Outcome::Skipped(_) => return Verdict::NotCompared("not run".into()),
            Outcome::Ran => {}
        }
        if let Some(why) = &self.not_compared {
            return Verdict::NotCompared(why.clone());
        }
        match &self.predicted {
            None => Verdict::NotCompared("no lint prediction for this statement".into()),
            // No lock seen: it took none, or only ones the hold does not block and let go
            // before a poll (`CREATE INDEX CONCURRENTLY IF NOT EXISTS` of an index that is
            // there): not known.
            Some(_) if self.outside_transaction && self.locks.is_empty() => Verdict::NotCompared(
                "it finished before the second connection saw its locks".into(),
            ),
            Some(p) if compare(p, &self.compared(p), &self.already_held) => Verdict::Confirmed,
            Some(p) if p.incomplete => Verdict::NotCompared(
                "it runs SQL built at run time (`EXECUTE`), which lint cannot see".into(),
            ),
            Some(_) => Verdict::Mismatch,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("--setup {path}: {message}")]
    Setup { path: String, message: String },
    #[error("{context}: {message}")]
    Db { context: String, message: String },
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

fn db_err(context: &str) -> impl Fn(tokio_postgres::Error) -> TraceError + '_ {
    move |e| TraceError::Db {
        context: context.to_string(),
        message: db_message(&e),
    }
}

/// Whether a predicted effect matches what was seen. `held` are locks the transaction held
/// before the statement: a predicted lock already held at least as strongly is satisfied.
/// Every lock above ACCESS SHARE PostgreSQL took must be predicted with its mode (always
/// or conditionally); every lock predicted to be always taken must have been taken (for
/// ACCESS SHARE: any lock on the table); rewrites and scans must be the predicted ones,
/// give or take those predicted as possible.
pub fn compare(predicted: &Effect, seen: &Effect, held: &BTreeMap<String, LockMode>) -> bool {
    let mut index_locks = predicted.index_locks.clone();
    for (table, mode) in &seen.locks {
        if predicted.locks.get(table) == Some(mode)
            || predicted.conditional.get(table) == Some(mode)
        {
            continue;
        }
        match index_locks.iter().position(|(m, _)| m == mode) {
            Some(i) => {
                index_locks.remove(i);
            }
            None => return false,
        }
    }
    let locks_taken = predicted.locks.iter().all(|(table, mode)| {
        if *mode == LockMode::AccessShare {
            seen.touched.contains(table) || held.contains_key(table)
        } else {
            seen.locks.get(table) == Some(mode) || held.get(table).is_some_and(|h| h >= mode)
        }
    });
    let index_taken = index_locks
        .iter()
        .filter(|(_, conditional)| !conditional)
        .all(|(m, _)| held.values().any(|h| h >= m));
    let within = |must: &BTreeSet<String>, may: &BTreeSet<String>, seen: &BTreeSet<String>| {
        must.is_subset(seen) && seen.iter().all(|t| must.contains(t) || may.contains(t))
    };
    locks_taken
        && index_taken
        && within(&predicted.rewrites, &predicted.may_rewrite, &seen.rewrites)
        && within(&predicted.scans, &predicted.may_scan, &seen.scans)
}

/// The connections a trace uses: statements run on `main`; `watch` observes `main` while
/// it runs a statement outside a transaction.
pub struct Connections<'a> {
    pub main: &'a Client,
    pub watch: &'a Client,
}

struct Tracer<'a> {
    progress: &'a mut dyn FnMut(&Step),
    main: &'a Client,
    watch: &'a Client,
    pid: i32,
    /// The server publishes statistics on demand (PostgreSQL 15+).
    flushes_stats: bool,
    mode: Mode,
    /// Inside a transaction block (the file's, the tool's, or a savepoint in rollback mode).
    in_tx: bool,
    /// Steps (indices) whose locks are held until the current transaction ends, with their
    /// start times.
    tx_steps: Vec<(usize, Instant)>,
    steps: Vec<Step>,
    seeder: Option<Seeder>,
    /// Tables filled since the last recorded statement, reported with the next one.
    seeded: Vec<SeedNote>,
    /// Why generated rows could not be deleted, for the failure message.
    unseed_failure: Option<String>,
}

const SAVEPOINT: &str = "lockstep_trace";

impl Tracer<'_> {
    fn record(&mut self, step: Step) {
        (self.progress)(&step);
        self.steps.push(step);
    }

    async fn exec(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.main.batch_execute(sql).await
    }

    /// Fills the history's empty tables (`seed_rows`): only between transactions.
    async fn seed(&mut self) -> Result<(), TraceError> {
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
    async fn begin(&mut self, sql: Option<&str>) -> Result<(), tokio_postgres::Error> {
        match self.mode {
            Mode::Commit => self.exec(sql.unwrap_or("BEGIN")).await?,
            Mode::Rollback => self.exec(&format!("SAVEPOINT {SAVEPOINT}")).await?,
        }
        self.in_tx = true;
        self.tx_steps.clear();
        Ok(())
    }

    /// Ends the transaction block (`commit` false: roll it back).
    async fn end(&mut self, commit: bool) -> Result<(), tokio_postgres::Error> {
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
    async fn statement(
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

/// Reads a file to trace with lint's checks: a regular file of at most `limit` bytes.
fn read(input: &Input, limit: u64) -> Result<String, TraceError> {
    let bytes = match input {
        Input::File { path, .. } => {
            files::read_file_for(path, limit, "traced").map_err(|message| TraceError::Read {
                path: input.display().to_string(),
                message,
            })?
        }
        Input::Stdin { text, .. } => text.clone(),
    };
    match files::decode(bytes) {
        (Some(text), _) => Ok(text),
        (None, p) => Err(TraceError::Read {
            path: input.display().to_string(),
            message: p.map_or_else(|| "cannot read".to_string(), |p| p.message),
        }),
    }
}

fn path_of(input: &Input) -> &Path {
    match input {
        Input::File { path, .. } => path,
        Input::Stdin { display, .. } => Path::new(display),
    }
}

/// Traces `inputs` in order after running `setup` (untraced). `opts` shape the lint
/// predictions (version, framework).
pub async fn run(
    conns: Connections<'_>,
    inputs: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    how: impl Into<TraceOptions>,
) -> Result<Vec<Step>, TraceError> {
    run_with_progress(conns, inputs, setup, opts, how, &mut |_| {}).await
}

/// [`run`], calling `progress` after each statement (for a progress display).
pub async fn run_with_progress(
    conns: Connections<'_>,
    inputs: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    how: impl Into<TraceOptions>,
    progress: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, TraceError> {
    let how = how.into();
    let mode = how.mode;
    let opts = LintOptions {
        lint_down: false,
        ..opts.clone()
    };
    // Predictions: lint the set-up and the files as one ordered set (schema replay).
    let mut all: Vec<Input> = setup.cloned().into_iter().collect();
    all.extend(inputs.iter().cloned());
    let mut reports: Vec<FileReport> = files::lint_all(&all, &opts);
    if setup.is_some() && !reports.is_empty() {
        reports.remove(0);
    }

    let pid = observe::backend_pid(conns.main)
        .await
        .map_err(db_err("pg_backend_pid()"))?;
    let flushes_stats = observe::can_flush_stats(conns.main)
        .await
        .map_err(db_err("reading pg_proc"))?;
    let mut t = Tracer {
        progress,
        main: conns.main,
        watch: conns.watch,
        pid,
        flushes_stats,
        mode,
        in_tx: false,
        tx_steps: Vec::new(),
        steps: Vec::new(),
        seeder: None,
        seeded: Vec::new(),
        unseed_failure: None,
    };
    if mode == Mode::Rollback {
        t.exec("BEGIN").await.map_err(db_err("BEGIN"))?;
    }
    if let Some(s) = setup {
        let text = read(s, opts.max_file_size)?;
        t.exec(&text).await.map_err(|e| TraceError::Setup {
            path: s.display().to_string(),
            message: db_message(&e),
        })?;
    }
    if how.seed_rows > 0 {
        t.seeder = Some(
            Seeder::new(t.main, how.seed_rows)
                .await
                .map_err(db_err("listing tables"))?,
        );
    }
    let outcome = trace_files(&mut t, inputs, &reports, &opts).await;
    if t.in_tx {
        let _ = t.end(mode == Mode::Commit).await;
    }
    if mode == Mode::Rollback {
        t.exec("ROLLBACK").await.map_err(db_err("ROLLBACK"))?;
    }
    // Verdicts, now that hold times are known: also when the trace stopped early.
    for s in &mut t.steps {
        s.verdict = s.judge();
    }
    outcome?;
    Ok(t.steps)
}

async fn trace_files(
    t: &mut Tracer<'_>,
    inputs: &[Input],
    reports: &[FileReport],
    opts: &LintOptions,
) -> Result<(), TraceError> {
    for (input, report) in inputs.iter().zip(reports) {
        let text = read(input, opts.max_file_size)?;
        let path = path_of(input);
        let dir = match input {
            Input::File { path, .. } => DirFacts::of(path.parent().unwrap_or(Path::new("."))),
            Input::Stdin { .. } => DirFacts::default(),
        };
        let index = LineIndex::new(&text);
        // Each prediction belongs to the statement starting at its offset.
        let predictions: BTreeMap<usize, &StatementLocks> =
            report.locks.iter().map(|s| (s.start, s)).collect();
        let (_, units) = files::plan_units(path, &text, dir, opts);
        for unit in units {
            if unit.section.direction != Direction::Up {
                continue;
            }
            let Some(prepared) = unit.prepared.as_ref() else {
                continue;
            };
            let (wrapped, _) = files::transaction_of(&unit.section, Some(prepared), opts);
            if wrapped && !t.in_tx {
                t.seed().await?;
                t.begin(None).await.map_err(db_err("BEGIN"))?;
            }
            for st in prepared.statements() {
                let sql = text[st.span.clone()].trim();
                let line = index.line(st.span.start);
                let end_line = index.line(st.span.end.saturating_sub(1).max(st.span.start));
                let predicted = predictions.get(&st.span.start).map(|s| Effect::of(s));
                let mut step = Step {
                    file: input.display().to_string(),
                    line,
                    end_line,
                    sql: sql.to_string(),
                    outcome: Outcome::Ran,
                    outside_transaction: false,
                    scans_unknown: false,
                    locks: Vec::new(),
                    already_held: BTreeMap::new(),
                    rewrites: BTreeSet::new(),
                    scans: BTreeSet::new(),
                    duration_ms: 0.0,
                    lock_timeout: String::new(),
                    seeded: Vec::new(),
                    emptied: Vec::new(),
                    predicted,
                    not_compared: None,
                    verdict: Verdict::NotCompared("not traced".into()),
                };
                if sql.starts_with('\\') {
                    step.outcome = Outcome::Skipped("psql meta-command".into());
                    t.record(step);
                    continue;
                }
                if matches!(st.kind, StmtKind::Unparsed { .. }) {
                    step.not_compared = Some("lint did not understand the statement".into());
                }
                if !t.statement(step, &st.kind, sql).await? {
                    return Ok(());
                }
            }
            if wrapped && t.in_tx {
                t.end(true).await.map_err(db_err("COMMIT"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(locks: &[(&str, LockMode)], rewrites: &[&str], scans: &[&str]) -> Effect {
        Effect {
            locks: locks.iter().map(|(t, m)| (t.to_string(), *m)).collect(),
            index_locks: Vec::new(),
            rewrites: rewrites.iter().map(|s| s.to_string()).collect(),
            scans: scans.iter().map(|s| s.to_string()).collect(),
            ..Effect::default()
        }
    }

    #[test]
    fn conditional_locks_and_possible_scans_may_or_may_not_happen() {
        let mut p = effect(&[("t", LockMode::RowExclusive)], &[], &[]);
        p.conditional.insert("child".into(), LockMode::RowShare);
        p.may_scan.insert("t".into());
        let none = BTreeMap::new();
        let plain = effect(&[("t", LockMode::RowExclusive)], &[], &[]);
        assert!(compare(&p, &plain, &none));
        let all = effect(
            &[("t", LockMode::RowExclusive), ("child", LockMode::RowShare)],
            &[],
            &["t"],
        );
        assert!(compare(&p, &all, &none));
        let wrong_mode = effect(
            &[
                ("t", LockMode::RowExclusive),
                ("child", LockMode::RowExclusive),
            ],
            &[],
            &[],
        );
        assert!(!compare(&p, &wrong_mode, &none));
        let other_scan = effect(&[("t", LockMode::RowExclusive)], &[], &["child"]);
        assert!(!compare(&p, &other_scan, &none));
        // A predicted read (ACCESS SHARE) needs some lock on the table.
        let mut reads = effect(&[("src", LockMode::AccessShare)], &[], &[]);
        reads.may_scan.insert("src".into());
        let mut seen = effect(&[], &[], &[]);
        assert!(!compare(&reads, &seen, &none));
        seen.touched.insert("src".into());
        assert!(compare(&reads, &seen, &none));
    }

    #[test]
    fn compare_requires_the_same_locks_rewrites_and_scans() {
        let p = effect(&[("t", LockMode::AccessExclusive)], &["t"], &[]);
        let none = BTreeMap::new();
        assert!(compare(&p, &p.clone(), &none));
        let weaker = effect(&[("t", LockMode::Share)], &["t"], &[]);
        assert!(!compare(&p, &weaker, &none));
        let no_rewrite = effect(&[("t", LockMode::AccessExclusive)], &[], &[]);
        assert!(!compare(&p, &no_rewrite, &none));
        let extra = effect(
            &[("t", LockMode::AccessExclusive), ("u", LockMode::RowShare)],
            &["t"],
            &[],
        );
        assert!(!compare(&p, &extra, &none));
    }

    #[test]
    fn a_lock_already_held_counts_as_taken() {
        let p = effect(&[("t", LockMode::ShareUpdateExclusive)], &[], &[]);
        let seen = effect(&[], &[], &[]);
        let held: BTreeMap<String, LockMode> =
            [("t".to_string(), LockMode::AccessExclusive)].into();
        assert!(compare(&p, &seen, &held));
        assert!(!compare(&p, &seen, &BTreeMap::new()));
    }

    #[test]
    fn index_locks_match_any_table() {
        let mut p = effect(&[], &[], &[]);
        p.index_locks.push((LockMode::AccessExclusive, false));
        let seen = effect(&[("orders", LockMode::AccessExclusive)], &[], &[]);
        assert!(compare(&p, &seen, &BTreeMap::new()));
        let other = effect(&[("orders", LockMode::Share)], &[], &[]);
        assert!(!compare(&p, &other, &BTreeMap::new()));
    }
}
