//! `lockstep apply DIR`: plain SQL migrations applied to a database (or to one schema of
//! it), each file once, recorded in `lockstep.migrations` on the target.
//!
//! - The files are linted first, as lockstep will run them ([`load`]); an error-level
//!   finding in a file the target has yet to apply refuses the run unless the caller
//!   allows it ([`Loaded::check_lint_of`]).
//! - A file runs in one transaction, with its record, unless it holds a statement that
//!   cannot run in one (`CREATE INDEX CONCURRENTLY` …): then each statement runs alone and
//!   the record counts the statements done, so a failed or interrupted file continues at the
//!   statement that did not complete. An INVALID index left by an interrupted concurrent
//!   build is dropped before the build runs again.
//! - Every statement runs under `lock_timeout`; one that does not get its locks in time is
//!   retried with exponential backoff and jitter (the whole file when it is one
//!   transaction), naming who blocks it, up to `attempts`, and within the target's lock
//!   budget (the total time it may spend waiting for locks).
//! - An advisory lock per target keeps two runners apart; a file whose text changed after
//!   it was applied stops the target (its checksum, SHA-256 of the text, is recorded).
//!
//! The same runner applies a fleet's migrations target by target (`crate::fleet`).

mod load;
mod target;

use std::time::Duration;

pub use load::{load, Finding, Loaded, Migration, Stmt};
pub use target::{apply, status, Applied, Event, Record, RecordStatus, Target, TargetStatus};

/// How `apply` treats locks.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Every statement's `lock_timeout`.
    pub lock_timeout_ms: u64,
    /// Attempts of a statement (or a transactional file) that meets lock timeouts.
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The most time one target may spend waiting for locks (failed attempts and the
    /// backoff between them) before it is given up.
    pub lock_budget: Option<Duration>,
    /// A migration recorded as failed is tried again (`false`: the target stops there; a
    /// fleet's `run` leaves failed targets to `resume`).
    pub retry_failed: bool,
    /// Apply even when lint found errors in migrations the target has yet to apply.
    pub allow_lint_errors: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_timeout_ms: 500,
            attempts: 20,
            backoff_ms: 200,
            max_backoff_ms: 5000,
            lock_budget: None,
            retry_failed: true,
            allow_lint_errors: false,
        }
    }
}

impl Settings {
    /// The playbook engine's retry policy with these numbers.
    pub(crate) fn retry_policy(&self) -> crate::playbook::settings::Swap {
        crate::playbook::settings::Swap {
            lock_timeout_ms: self.lock_timeout_ms,
            attempts: self.attempts,
            backoff_ms: self.backoff_ms,
            max_backoff_ms: self.max_backoff_ms,
            ..Default::default()
        }
    }
}

/// Why migrations could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The directory, a file in it, or what it holds.
    #[error("{0}")]
    Load(String),
    #[error("lint found {errors} error(s) in the migrations to apply; fix them, or apply anyway with --allow-lint-errors (a fleet file: `allow_lint_errors = true`):\n{list}")]
    Lint { errors: usize, list: String },
    #[error("{target}: {message}")]
    Connect { target: String, message: String },
    /// An error of the migrations, found on a target (lint errors in what it has to apply).
    #[error("{target}: {source}")]
    OnTarget {
        target: String,
        source: Box<ApplyError>,
    },
    #[error("{target}: another lockstep process is applying migrations to it{}", .pid.map(|p| format!(" (backend pid {p})")).unwrap_or_default())]
    Busy { target: String, pid: Option<i32> },
    #[error("{target}: {path} was applied with checksum {recorded}, the file now has {now}: a migration must not change once applied (add a new file instead)")]
    Checksum {
        target: String,
        path: String,
        recorded: String,
        now: String,
    },
    #[error("{target}: {path}:{line}: {message}")]
    Statement {
        target: String,
        path: String,
        line: usize,
        message: String,
    },
    #[error("{target}: {path}:{line}: could not get its locks within {attempts} attempts of {lock_timeout_ms} ms: {blockers}")]
    Locks {
        target: String,
        path: String,
        line: usize,
        attempts: u32,
        lock_timeout_ms: u64,
        blockers: String,
    },
    #[error("{target}: {path}:{line}: the lock budget of {budget_ms} ms is spent (waiting for locks); the target stops here")]
    LockBudget {
        target: String,
        path: String,
        line: usize,
        budget_ms: u128,
    },
    #[error("{target}: {path} failed in an earlier run ({error}); `lockstep fleet resume` tries it again")]
    FailedBefore {
        target: String,
        path: String,
        error: String,
    },
    #[error("{target}: stopped before {path} (Ctrl-C); run again to continue")]
    Stopped { target: String, path: String },
    #[error("{target}: {step}: {message}")]
    Db {
        target: String,
        step: String,
        message: String,
    },
}

impl ApplyError {
    /// The migration the error is about, when it is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ApplyError::Checksum { path, .. }
            | ApplyError::Statement { path, .. }
            | ApplyError::Locks { path, .. }
            | ApplyError::LockBudget { path, .. }
            | ApplyError::FailedBefore { path, .. }
            | ApplyError::Stopped { path, .. } => Some(path),
            _ => None,
        }
    }
}
