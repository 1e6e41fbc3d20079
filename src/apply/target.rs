//! Applying migrations to one target, and reading what a target has applied.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::{ApplyError, Loaded, Migration, Settings, Stmt};
use crate::db::connect::{ConnectOptions, Host};
use crate::playbook::exec::{is_lock_timeout, EngineError, Policy, Retry};
use crate::playbook::names::quote_ident;

/// Creates the record table when missing. Targets of one database start at once (a
/// fleet of schemas): they take turns, since concurrent `CREATE … IF NOT EXISTS` of one
/// table can fail.
const SCHEMA_SQL: &str = "
SELECT pg_advisory_xact_lock(hashtextextended('lockstep:schema', 0));
CREATE SCHEMA IF NOT EXISTS lockstep;
CREATE TABLE IF NOT EXISTS lockstep.migrations (
    scope           text NOT NULL,
    version         text NOT NULL,
    checksum        text NOT NULL,
    status          text NOT NULL,
    statements_done integer NOT NULL,
    statements      integer NOT NULL,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    duration_ms     bigint,
    lock_waits      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, version)
)";

/// Where migrations go: a database, or one schema of it (then the statements run with the
/// schema alone on the `search_path`, and the records are kept per schema).
#[derive(Debug, Clone)]
pub struct Target {
    /// How the target is named in messages and status (`host:port/db`, `…/db#schema`).
    pub label: String,
    pub conn: ConnectOptions,
    pub schema: Option<String>,
}

impl Target {
    /// The database `conn` names, or one schema of it.
    pub fn new(conn: ConnectOptions, schema: Option<String>) -> Target {
        let host = match conn.host() {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => h.clone(),
            Host::Socket(d) => d.display().to_string(),
        };
        let mut label = format!("{host}:{}/{}", conn.port(), conn.dbname());
        if let Some(s) = &schema {
            label.push('#');
            label.push_str(s);
        }
        Target {
            label,
            conn,
            schema,
        }
    }

    /// What the records of this target are keyed by: its schema, or `""`.
    pub fn scope(&self) -> &str {
        self.schema.as_deref().unwrap_or("")
    }

    /// Connects, and sets the schema's search_path for a schema target.
    pub async fn connect(&self, application_name: &str) -> Result<Client, ApplyError> {
        let client = self
            .conn
            .with_application_name(application_name)
            .connect()
            .await
            .map_err(|e| ApplyError::Connect {
                target: self.label.clone(),
                message: e.to_string(),
            })?;
        if let Some(s) = &self.schema {
            let exists: bool = client
                .query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&quote_ident(s)])
                .await
                .map_err(self.db("schema"))?
                .get(0);
            if !exists {
                return Err(ApplyError::Connect {
                    target: self.label.clone(),
                    message: format!("schema {} does not exist", quote_ident(s)),
                });
            }
            client
                .batch_execute(&format!("SET search_path TO {}", quote_ident(s)))
                .await
                .map_err(self.db("search_path"))?;
        }
        Ok(client)
    }

    fn db<'a>(&'a self, step: &'a str) -> impl Fn(tokio_postgres::Error) -> ApplyError + 'a {
        move |e| ApplyError::Db {
            target: self.label.clone(),
            step: step.to_string(),
            message: db_message(&e),
        }
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// How far a migration got on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    Applied,
    /// Some statements of a file that runs statement by statement are done.
    Partial,
    Failed,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Applied => "applied",
            RecordStatus::Partial => "partial",
            RecordStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RecordStatus {
        match s {
            "applied" => RecordStatus::Applied,
            "partial" => RecordStatus::Partial,
            _ => RecordStatus::Failed,
        }
    }
}

/// A row of `lockstep.migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub version: String,
    pub checksum: String,
    pub status: RecordStatus,
    pub statements_done: i32,
    pub statements: i32,
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub applied_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub lock_waits: i32,
}

/// What a target has recorded, against the migrations of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// The target has a `lockstep.migrations` table.
    pub recorded: bool,
    /// Its records (of its scope), by version.
    pub records: BTreeMap<String, Record>,
}

impl TargetStatus {
    /// The migrations not applied yet, in order.
    pub fn pending<'m>(&self, migrations: &'m [Migration]) -> Vec<&'m Migration> {
        migrations
            .iter()
            .filter(|m| {
                self.records
                    .get(&m.version)
                    .is_none_or(|r| r.status != RecordStatus::Applied)
            })
            .collect()
    }

    /// The last migration (in migration order) applied.
    pub fn last_applied<'m>(&self, migrations: &'m [Migration]) -> Option<&'m Migration> {
        migrations.iter().rev().find(|m| {
            self.records
                .get(&m.version)
                .is_some_and(|r| r.status == RecordStatus::Applied)
        })
    }

    /// A migration that failed or stopped half way, if any.
    pub fn unfinished(&self) -> Option<&Record> {
        self.records
            .values()
            .find(|r| r.status != RecordStatus::Applied)
    }

    /// Applied migrations whose file changed since.
    pub fn changed<'m>(&self, migrations: &'m [Migration]) -> Vec<&'m Migration> {
        migrations
            .iter()
            .filter(|m| {
                self.records
                    .get(&m.version)
                    .is_some_and(|r| r.status == RecordStatus::Applied && r.checksum != m.checksum)
            })
            .collect()
    }
}

/// Reads what `target` has applied.
pub async fn status(target: &Target) -> Result<TargetStatus, ApplyError> {
    let client = target.connect("lockstep status").await?;
    read(&client, target).await
}

async fn read(client: &Client, target: &Target) -> Result<TargetStatus, ApplyError> {
    let recorded: bool = client
        .query_one("SELECT to_regclass('lockstep.migrations') IS NOT NULL", &[])
        .await
        .map_err(target.db("lockstep.migrations"))?
        .get(0);
    let mut records = BTreeMap::new();
    if recorded {
        let rows = client
            .query(
                "SELECT version, checksum, status, statements_done, statements, error,
                        to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        duration_ms, lock_waits
                 FROM lockstep.migrations WHERE scope = $1",
                &[&target.scope()],
            )
            .await
            .map_err(target.db("reading lockstep.migrations"))?;
        for r in rows {
            let rec = Record {
                version: r.get(0),
                checksum: r.get(1),
                status: RecordStatus::parse(r.get(2)),
                statements_done: r.get(3),
                statements: r.get(4),
                error: r.get(5),
                applied_at: r.get(6),
                duration_ms: r.get(7),
                lock_waits: r.get(8),
            };
            records.insert(rec.version.clone(), rec);
        }
    }
    Ok(TargetStatus { recorded, records })
}

/// What happens while a target is migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A migration starts (`from`: the statement it continues at).
    Started {
        version: String,
        from: usize,
    },
    Applied(Applied),
    /// A retry, a cleanup: worth a line.
    Note(String),
}

/// One migration applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: String,
    pub path: String,
    pub statements: usize,
    pub in_transaction: bool,
    pub duration: Duration,
    /// Attempts that did not get their locks within lock_timeout.
    pub lock_waits: u32,
}

/// Applies the migrations of `loaded` to `target`, in order, each once; returns what it
/// applied (the migrations it had applied before are skipped). Lint errors in the
/// migrations it has yet to apply refuse them all, unless `settings` allow them. `stop` is
/// honoured between migrations and between the statements of a migration that runs
/// statement by statement.
pub async fn apply(
    target: &Target,
    loaded: &Loaded,
    settings: &Settings,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event),
) -> Result<Vec<Applied>, ApplyError> {
    let client = target.connect("lockstep apply").await?;
    take_lock(&client, target).await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('lockstep.migrations') IS NOT NULL", &[])
        .await
        .map_err(target.db("lockstep.migrations"))?
        .get(0);
    if !exists {
        client
            .batch_execute(&format!("BEGIN; {SCHEMA_SQL}; COMMIT"))
            .await
            .map_err(target.db("creating lockstep.migrations"))?;
    }
    let migrations = &loaded.migrations;
    let recorded = read(&client, target).await?;
    if !settings.allow_lint_errors {
        loaded
            .check_lint_of(&recorded.pending(migrations))
            .map_err(|e| ApplyError::OnTarget {
                target: target.label.clone(),
                source: Box::new(e),
            })?;
    }
    let mut runner = Runner {
        client: &client,
        target,
        settings,
        policy: settings.retry_policy(),
        stop,
        waited: Duration::ZERO,
        notes: RefCell::new(Vec::new()),
    };
    let mut done = Vec::new();
    for m in migrations {
        if let Some(r) = recorded.records.get(&m.version) {
            if r.status == RecordStatus::Failed && !settings.retry_failed {
                return Err(ApplyError::FailedBefore {
                    target: target.label.clone(),
                    path: m.path.clone(),
                    error: r.error.clone().unwrap_or_default(),
                });
            }
        }
        let from = match recorded.records.get(&m.version) {
            Some(r) if r.status == RecordStatus::Applied => {
                same_file(target, m, &r.checksum)?;
                continue;
            }
            Some(r) if !m.in_transaction && r.statements_done > 0 => {
                same_file(target, m, &r.checksum)?;
                r.statements_done.max(0) as usize
            }
            _ => 0,
        };
        if stop.load(Ordering::SeqCst) {
            return Err(ApplyError::Stopped {
                target: target.label.clone(),
                path: m.path.clone(),
            });
        }
        on(Event::Started {
            version: m.version.clone(),
            from,
        });
        let started = Instant::now();
        let waits = if m.in_transaction {
            runner.one_transaction(m, on).await?
        } else {
            runner.statement_by_statement(m, from, on).await?
        };
        let applied = Applied {
            version: m.version.clone(),
            path: m.path.clone(),
            statements: m.statements.len(),
            in_transaction: m.in_transaction,
            duration: started.elapsed(),
            lock_waits: waits,
        };
        on(Event::Applied(applied.clone()));
        done.push(applied);
    }
    Ok(done)
}

/// A migration recorded (applied, or partly) must be the file it was: its checksum then.
fn same_file(target: &Target, m: &Migration, recorded: &str) -> Result<(), ApplyError> {
    if recorded == m.checksum {
        return Ok(());
    }
    Err(ApplyError::Checksum {
        target: target.label.clone(),
        path: m.path.clone(),
        recorded: short(recorded),
        now: short(&m.checksum),
    })
}

fn short(checksum: &str) -> String {
    checksum.chars().take(12).collect()
}

/// Tries at the target's advisory lock, 50 ms apart, before it is reported as held.
const LOCK_TRIES: u32 = 40;

/// Takes the target's advisory lock for the session (waiting up to 2 s for a holder that is
/// going away), or says who has it.
async fn take_lock(client: &Client, target: &Target) -> Result<(), ApplyError> {
    let key: i64 = client
        .query_one(
            "SELECT hashtextextended('lockstep:apply:' || current_database() || '/' || $1, 0)",
            &[&target.scope()],
        )
        .await
        .map_err(target.db("advisory lock"))?
        .get(0);
    // A moment's patience: the backend of a lockstep that has just exited (an earlier apply,
    // a retried CI job) lets go of the lock only when it notices its client is gone.
    for attempt in 0..=LOCK_TRIES {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(target.db("advisory lock"))?
            .get(0);
        if got {
            return Ok(());
        }
        if attempt < LOCK_TRIES {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let pid = client
        .query_opt(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND ((classid::bigint << 32) | objid::bigint) = $1 LIMIT 1",
            &[&key],
        )
        .await
        .ok()
        .flatten()
        .map(|r| r.get(0));
    Err(ApplyError::Busy {
        target: target.label.clone(),
        pid,
    })
}

struct Runner<'r> {
    client: &'r Client,
    target: &'r Target,
    settings: &'r Settings,
    policy: crate::playbook::settings::Swap,
    stop: &'r AtomicBool,
    /// Time spent waiting for locks so far (the lock budget's count).
    waited: Duration,
    notes: RefCell<Vec<String>>,
}

/// Statement `i` of `m` (the last one past the end; line 1 of a file without statements,
/// whose `BEGIN` or record failed).
fn statement_at(m: &Migration, i: usize) -> Stmt {
    m.statements
        .get(i)
        .or(m.statements.last())
        .cloned()
        .unwrap_or(Stmt {
            sql: String::new(),
            line: 1,
            tables: Vec::new(),
            concurrent_index: None,
        })
}

/// What a failed attempt means.
enum Failure {
    /// Not granted its locks in time: try again.
    Locks(tokio_postgres::Error),
    Other(tokio_postgres::Error),
}

impl Runner<'_> {
    /// The whole file and its record in one transaction; a lock timeout anywhere rolls it
    /// back and runs it again after the backoff. Returns the lock waits.
    async fn one_transaction(
        &mut self,
        m: &Migration,
        on: &mut dyn FnMut(Event),
    ) -> Result<u32, ApplyError> {
        let mut retry = Retry::new(&self.policy);
        let mut waits = 0u32;
        loop {
            let attempt = Instant::now();
            match self.try_transaction(m, waits).await {
                Ok(()) => return Ok(waits),
                Err((i, Failure::Locks(e))) => {
                    waits += 1;
                    let s = &statement_at(m, i);
                    if let Err(err) = self.wait_after(&mut retry, e, m, s, attempt, on).await {
                        return Err(self.record_failure(m, 0, waits, err).await);
                    }
                }
                Err((i, Failure::Other(e))) => {
                    let s = &statement_at(m, i);
                    let err = self.statement_error(m, s, &e);
                    return Err(self.record_failure(m, 0, waits, err).await);
                }
            }
        }
    }

    /// One attempt at the whole file; the index of the statement that failed.
    async fn try_transaction(&self, m: &Migration, waits: u32) -> Result<(), (usize, Failure)> {
        let c = self.client;
        let classify = |e: tokio_postgres::Error| {
            if is_lock_timeout(&e) {
                Failure::Locks(e)
            } else {
                Failure::Other(e)
            }
        };
        let r = async {
            c.batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                self.settings.lock_timeout_ms
            ))
            .await
            .map_err(|e| (0, classify(e)))?;
            let started = Instant::now();
            for (i, s) in m.statements.iter().enumerate() {
                c.batch_execute(&s.sql)
                    .await
                    .map_err(|e| (i, classify(e)))?;
            }
            let last = m.statements.len().saturating_sub(1);
            self.record(
                m,
                RecordStatus::Applied,
                m.statements.len(),
                None,
                started,
                waits,
            )
            .await
            .map_err(|e| (last, classify(e)))?;
            c.batch_execute("COMMIT")
                .await
                .map_err(|e| (last, classify(e)))
        }
        .await;
        if r.is_err() {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        r
    }

    /// Each statement alone (autocommit) under the session's lock_timeout, from statement
    /// `from`, its progress recorded after each. Returns the lock waits.
    async fn statement_by_statement(
        &mut self,
        m: &Migration,
        from: usize,
        on: &mut dyn FnMut(Event),
    ) -> Result<u32, ApplyError> {
        let started = Instant::now();
        self.client
            .batch_execute(&format!(
                "SET lock_timeout = '{}ms'",
                self.settings.lock_timeout_ms
            ))
            .await
            .map_err(self.target.db("lock_timeout"))?;
        let mut waits = 0u32;
        for (i, s) in m.statements.iter().enumerate().skip(from) {
            if self.stop.load(Ordering::SeqCst) {
                let _ = self
                    .record(m, RecordStatus::Partial, i, None, started, waits)
                    .await;
                return Err(ApplyError::Stopped {
                    target: self.target.label.clone(),
                    path: m.path.clone(),
                });
            }
            waits += self.alone(m, i, s, &s.sql, on).await?;
            let status = if i + 1 == m.statements.len() {
                RecordStatus::Applied
            } else {
                RecordStatus::Partial
            };
            self.record(m, status, i + 1, None, started, waits)
                .await
                .map_err(self.target.db("recording the migration"))?;
        }
        Ok(waits)
    }

    /// Runs `sql` (statement `i` of `m`, or its cleanup) alone, retried while it meets lock
    /// timeouts. For `CREATE INDEX CONCURRENTLY` (`s.concurrent_index`), the INVALID index
    /// an interrupted run or a timed-out attempt left is dropped before every attempt.
    /// Returns the lock waits.
    async fn alone(
        &mut self,
        m: &Migration,
        i: usize,
        s: &Stmt,
        sql: &str,
        on: &mut dyn FnMut(Event),
    ) -> Result<u32, ApplyError> {
        let mut retry = Retry::new(&self.policy);
        let mut waits = 0u32;
        loop {
            if let Some(index) = &s.concurrent_index {
                // The cleanup runs through `alone` too, without an index of its own.
                waits += Box::pin(self.drop_invalid_leftover(m, i, s, index, on)).await?;
            }
            let attempt = Instant::now();
            match self.client.batch_execute(sql).await {
                Ok(()) => return Ok(waits),
                Err(e) if is_lock_timeout(&e) => {
                    waits += 1;
                    if let Err(err) = self.wait_after(&mut retry, e, m, s, attempt, on).await {
                        return Err(self.record_failure(m, i, waits, err).await);
                    }
                }
                Err(e) => {
                    let err = self.statement_error(m, s, &e);
                    return Err(self.record_failure(m, i, waits, err).await);
                }
            }
        }
    }

    /// Before a concurrent build: drops the INVALID index an interrupted build left.
    async fn drop_invalid_leftover(
        &mut self,
        m: &Migration,
        i: usize,
        s: &Stmt,
        index: &str,
        on: &mut dyn FnMut(Event),
    ) -> Result<u32, ApplyError> {
        let invalid: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid)",
                &[&quote_ident(index)],
            )
            .await
            .map_err(self.target.db("pg_index"))?
            .get(0);
        if !invalid {
            return Ok(0);
        }
        on(Event::Note(format!(
            "{}: {}:{}: dropping the INVALID index {index} an interrupted or timed-out build left",
            self.target.label, m.path, s.line
        )));
        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quote_ident(index));
        let cleanup = Stmt {
            concurrent_index: None,
            ..s.clone()
        };
        self.alone(m, i, &cleanup, &drop, on).await
    }

    /// After an attempt that met a lock timeout: the lock budget, then the retry policy
    /// (who blocks, backoff); `Err` when it is time to give up.
    async fn wait_after(
        &mut self,
        retry: &mut Retry,
        e: tokio_postgres::Error,
        m: &Migration,
        s: &Stmt,
        attempt: Instant,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), ApplyError> {
        self.waited += attempt.elapsed();
        self.over_budget(m, s)?;
        let before = Instant::now();
        let note = |n: &str| self.notes.borrow_mut().push(n.to_string());
        let policy = Policy {
            swap: &self.policy,
            run_id: &self.target.label,
            tables: &s.tables,
        };
        let step = format!("{}:{}", m.path, s.line);
        let r = retry.failed(e, self.client, &note, &policy, &step).await;
        for n in self.notes.borrow_mut().drain(..) {
            on(Event::Note(format!("{}: {n}", self.target.label)));
        }
        self.waited += before.elapsed();
        match r {
            Ok(()) => self.over_budget(m, s),
            Err(EngineError::SwapGaveUp {
                attempts,
                lock_timeout_ms,
                blockers,
                ..
            }) => Err(ApplyError::Locks {
                target: self.target.label.clone(),
                path: m.path.clone(),
                line: s.line,
                attempts,
                lock_timeout_ms,
                blockers,
            }),
            Err(other) => Err(ApplyError::Statement {
                target: self.target.label.clone(),
                path: m.path.clone(),
                line: s.line,
                message: other.to_string(),
            }),
        }
    }

    fn over_budget(&self, m: &Migration, s: &Stmt) -> Result<(), ApplyError> {
        match self.settings.lock_budget {
            Some(b) if self.waited > b => Err(ApplyError::LockBudget {
                target: self.target.label.clone(),
                path: m.path.clone(),
                line: s.line,
                budget_ms: b.as_millis(),
            }),
            _ => Ok(()),
        }
    }

    fn statement_error(&self, m: &Migration, s: &Stmt, e: &tokio_postgres::Error) -> ApplyError {
        ApplyError::Statement {
            target: self.target.label.clone(),
            path: m.path.clone(),
            line: s.line,
            message: db_message(e),
        }
    }

    /// Records `err` as the migration's failure (after `done` statements) and returns it.
    async fn record_failure(
        &self,
        m: &Migration,
        done: usize,
        waits: u32,
        err: ApplyError,
    ) -> ApplyError {
        let _ = self
            .record(
                m,
                RecordStatus::Failed,
                done,
                Some(&err.to_string()),
                Instant::now(),
                waits,
            )
            .await;
        err
    }

    async fn record(
        &self,
        m: &Migration,
        status: RecordStatus,
        done: usize,
        error: Option<&str>,
        started: Instant,
        waits: u32,
    ) -> Result<(), tokio_postgres::Error> {
        let ms = started.elapsed().as_millis() as i64;
        self.client
            .execute(
                "INSERT INTO lockstep.migrations (scope, version, checksum, status, statements_done,
                     statements, error, applied_at, duration_ms, lock_waits)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $4 = 'applied' THEN now() END, $8, $9)
                 ON CONFLICT (scope, version) DO UPDATE SET checksum = EXCLUDED.checksum,
                     status = EXCLUDED.status, statements_done = EXCLUDED.statements_done,
                     statements = EXCLUDED.statements, error = EXCLUDED.error,
                     applied_at = EXCLUDED.applied_at, duration_ms = EXCLUDED.duration_ms,
                     lock_waits = EXCLUDED.lock_waits, updated_at = now()",
                &[
                    &self.target.scope(),
                    &m.version,
                    &m.checksum,
                    &status.as_str(),
                    &(done as i32),
                    &(m.statements.len() as i32),
                    &error,
                    &ms,
                    &(waits as i32),
                ],
            )
            .await?;
        Ok(())
    }
}
