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
//!
//! The module's files: the types of a trace and its errors here, `compare` (a prediction
//! against what was seen), `tracer` (running one statement and observing it), `driver`
//! (reading the files and running them in order, [`run`]) and [`seed`].

mod compare;
mod driver;
pub mod seed;
mod tracer;

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use crate::lint::StatementLocks;
use crate::sql::ir::LockMode;
use seed::SeedNote;

pub use compare::compare;
pub use driver::{run, run_with_progress};

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

/// The connections a trace uses: statements run on `main`; `watch` observes `main` while
/// it runs a statement outside a transaction.
pub struct Connections<'a> {
    pub main: &'a Client,
    pub watch: &'a Client,
}
