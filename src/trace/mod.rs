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
//! Only locks stronger than ACCESS SHARE on tables that existed before the statement are
//! compared (the lint model does not describe plain reads or tables a statement creates).
//! A lock the transaction already held at least as strongly counts as taken: PostgreSQL does
//! not show a second request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_postgres::Client;

use crate::db::observe::{self, TableFile};
use crate::files::{self, FileReport, Input};
use crate::framework::{DirFacts, Direction};
use crate::lint::{LintOptions, StatementLocks};
use crate::sql::ir::{LockMode, StmtKind};
use crate::sql::LineIndex;

/// How the trace treats the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Statements commit as the migration would (a throwaway cluster, or `--commit`).
    Commit,
    /// Everything is rolled back at the end.
    Rollback,
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

/// What the lint model says a statement does: locks (by table name), rewrites, scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    pub locks: BTreeMap<String, LockMode>,
    /// Locks predicted on "the table of index X" where the table is unknown.
    pub index_locks: Vec<LockMode>,
    pub rewrites: BTreeSet<String>,
    pub scans: BTreeSet<String>,
}

impl Effect {
    fn of(s: &StatementLocks) -> Effect {
        let mut e = Effect::default();
        for l in &s.report.locks {
            if l.via_index {
                e.index_locks.push(l.mode);
            } else {
                let m = e.locks.entry(l.table.name.clone()).or_insert(l.mode);
                *m = (*m).max(l.mode);
            }
        }
        e.rewrites = s.report.rewrites.iter().map(|t| t.name.clone()).collect();
        e.scans = s.report.scans.iter().map(|t| t.name.clone()).collect();
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
    /// Locks taken (all modes, including ACCESS SHARE).
    pub locks: Vec<SeenLock>,
    /// Tables the transaction already held at least this strongly before the statement.
    pub already_held: BTreeMap<String, LockMode>,
    pub rewrites: BTreeSet<String>,
    pub scans: BTreeSet<String>,
    pub duration_ms: f64,
    pub lock_timeout: String,
    /// The lint prediction, when lint understood the statement.
    pub predicted: Option<Effect>,
    pub verdict: Verdict,
}

impl Step {
    /// The observed effect in the lint model's terms (locks above ACCESS SHARE).
    pub fn observed(&self) -> Effect {
        let mut e = Effect::default();
        for l in self.locks.iter().filter(|l| l.mode > LockMode::AccessShare) {
            let m = e.locks.entry(l.table.clone()).or_insert(l.mode);
            *m = (*m).max(l.mode);
        }
        e.rewrites = self.rewrites.clone();
        e.scans = self.scans.clone();
        e
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
pub fn compare(predicted: &Effect, seen: &Effect, held: &BTreeMap<String, LockMode>) -> bool {
    let mut index_locks = predicted.index_locks.clone();
    for (table, mode) in &seen.locks {
        if predicted.locks.get(table) == Some(mode) {
            continue;
        }
        match index_locks.iter().position(|m| m == mode) {
            Some(i) => {
                index_locks.remove(i);
            }
            None => return false,
        }
    }
    let locks_taken = predicted.locks.iter().all(|(table, mode)| {
        seen.locks.get(table) == Some(mode) || held.get(table).is_some_and(|h| h >= mode)
    });
    let index_taken = index_locks.iter().all(|m| held.values().any(|h| h >= m));
    locks_taken
        && index_taken
        && predicted.rewrites == seen.rewrites
        && predicted.scans == seen.scans
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
    mode: Mode,
    /// Inside a transaction block (the file's, the tool's, or a savepoint in rollback mode).
    in_tx: bool,
    /// Steps (indices) whose locks are held until the current transaction ends, with their
    /// start times.
    tx_steps: Vec<(usize, Instant)>,
    steps: Vec<Step>,
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

    /// Opens a transaction block (a savepoint in rollback mode).
    async fn begin(&mut self) -> Result<(), tokio_postgres::Error> {
        match self.mode {
            Mode::Commit => self.exec("BEGIN").await?,
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

    /// Runs `sql` inside the open transaction and reads what it did.
    async fn observe_in_tx(&mut self, step: &mut Step, sql: &str) -> Result<bool, TraceError> {
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
            return Ok(false);
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
        Ok(true)
    }

    /// Runs `sql` in autocommit while the watch connection polls its locks.
    async fn observe_outside(&mut self, step: &mut Step, sql: &str) -> Result<bool, TraceError> {
        let ctx = "watching from the second connection";
        observe::flush_stats(self.main)
            .await
            .map_err(db_err("flushing statistics"))?;
        let before_tables = observe::tables(self.watch).await.map_err(db_err(ctx))?;
        let before_scans = observe::seq_scans(self.watch, false)
            .await
            .map_err(db_err(ctx))?;
        let done = AtomicBool::new(false);
        let start = Instant::now();
        let run = async {
            let r = self.main.batch_execute(sql).await;
            done.store(true, Ordering::SeqCst);
            r
        };
        let watch = async {
            // oid -> (mode, first seen, last seen)
            let mut seen: BTreeMap<i64, (LockMode, Instant, Instant)> = BTreeMap::new();
            while !done.load(Ordering::SeqCst) {
                if let Ok(locks) = observe::locks(self.watch, self.pid).await {
                    let now = Instant::now();
                    for (oid, mode) in locks {
                        let e = seen.entry(oid).or_insert((mode, now, now));
                        e.0 = e.0.max(mode);
                        e.2 = now;
                    }
                }
            }
            seen
        };
        let (result, seen) = tokio::join!(run, watch);
        step.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
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
        step.lock_timeout = observe::lock_timeout(self.main)
            .await
            .map_err(db_err("SHOW lock_timeout"))?;
        let ok = match kind {
            StmtKind::Begin if !self.in_tx => {
                let start = Instant::now();
                let r = self.begin().await;
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
                step.verdict = Verdict::NotCompared("skipped".into());
                self.record(step);
                return Ok(true);
            }
            k if k.cannot_run_in_transaction().is_some() && !self.in_tx => {
                if self.mode == Mode::Rollback {
                    step.outcome = Outcome::Skipped(
                        "cannot run inside the trace's rollback transaction (use --commit, or trace on a throwaway cluster)".into(),
                    );
                    step.verdict = Verdict::NotCompared("skipped".into());
                    self.record(step);
                    return Ok(true);
                }
                step.outside_transaction = true;
                self.observe_outside(&mut step, sql).await?
            }
            _ if self.in_tx => {
                let i = self.steps.len();
                let started = Instant::now();
                let ok = self.observe_in_tx(&mut step, sql).await?;
                if ok {
                    self.tx_steps.push((i, started));
                }
                ok
            }
            _ => {
                self.begin().await.map_err(db_err("BEGIN"))?;
                let i = self.steps.len();
                let started = Instant::now();
                let ok = self.observe_in_tx(&mut step, sql).await?;
                if ok {
                    self.tx_steps.push((i, started));
                    self.record(step);
                    self.end(true).await.map_err(db_err("COMMIT"))?;
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
        Ok(ok)
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
    mode: Mode,
) -> Result<Vec<Step>, TraceError> {
    run_with_progress(conns, inputs, setup, opts, mode, &mut |_| {}).await
}

/// [`run`], calling `progress` after each statement (for a progress display).
pub async fn run_with_progress(
    conns: Connections<'_>,
    inputs: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    mode: Mode,
    progress: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, TraceError> {
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
    let mut t = Tracer {
        progress,
        main: conns.main,
        watch: conns.watch,
        pid,
        mode,
        in_tx: false,
        tx_steps: Vec::new(),
        steps: Vec::new(),
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
    let outcome = trace_files(&mut t, inputs, &reports, &opts).await;
    if t.in_tx {
        let _ = t.end(mode == Mode::Commit).await;
    }
    if mode == Mode::Rollback {
        t.exec("ROLLBACK").await.map_err(db_err("ROLLBACK"))?;
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
        let predictions: BTreeMap<usize, &StatementLocks> =
            report.locks.iter().map(|s| (s.line, s)).collect();
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
                t.begin().await.map_err(db_err("BEGIN"))?;
            }
            for st in prepared.statements() {
                let sql = text[st.span.clone()].trim();
                let line = index.line(st.span.start);
                let end_line = index.line(st.span.end.saturating_sub(1).max(st.span.start));
                let predicted = predictions.get(&line).map(|s| Effect::of(s));
                let mut step = Step {
                    file: input.display().to_string(),
                    line,
                    end_line,
                    sql: sql.to_string(),
                    outcome: Outcome::Ran,
                    outside_transaction: false,
                    locks: Vec::new(),
                    already_held: BTreeMap::new(),
                    rewrites: BTreeSet::new(),
                    scans: BTreeSet::new(),
                    duration_ms: 0.0,
                    lock_timeout: String::new(),
                    predicted,
                    verdict: Verdict::Confirmed,
                };
                if sql.starts_with('\\') {
                    step.outcome = Outcome::Skipped("psql meta-command".into());
                    step.verdict = Verdict::NotCompared("not run".into());
                    t.record(step);
                    continue;
                }
                if matches!(st.kind, StmtKind::Unparsed { .. }) {
                    step.verdict =
                        Verdict::NotCompared("lint did not understand the statement".into());
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
    // Verdicts, now that hold times are known.
    for s in &mut t.steps {
        if !matches!(s.verdict, Verdict::Confirmed) || s.outcome != Outcome::Ran {
            if s.outcome != Outcome::Ran && matches!(s.verdict, Verdict::Confirmed) {
                s.verdict = Verdict::NotCompared("did not run".into());
            }
            continue;
        }
        s.verdict = match &s.predicted {
            None => Verdict::NotCompared("no lint prediction for this statement".into()),
            Some(_) if s.outside_transaction && s.locks.is_empty() => Verdict::NotCompared(
                "it finished before the second connection saw its locks".into(),
            ),
            Some(p) if compare(p, &s.observed(), &s.already_held) => Verdict::Confirmed,
            Some(_) => Verdict::Mismatch,
        };
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
        }
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
        p.index_locks.push(LockMode::AccessExclusive);
        let seen = effect(&[("orders", LockMode::AccessExclusive)], &[], &[]);
        assert!(compare(&p, &seen, &BTreeMap::new()));
        let other = effect(&[("orders", LockMode::Share)], &[], &[]);
        assert!(!compare(&p, &other, &BTreeMap::new()));
    }
}
