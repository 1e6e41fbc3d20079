//! What can go wrong in a run, and how database errors are classified (by SQLSTATE).

use tokio_postgres::error::SqlState;

use crate::playbook::facts::FactsError;
use crate::playbook::settings::SpecError;

/// Why a playbook command did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Facts(#[from] FactsError),
    #[error("preflight refused the conversion:\n  - {}", .0.join("\n  - "))]
    Refused(Vec<String>),
    #[error("another lockstep process is working on {table}: {holder}")]
    Busy { table: String, holder: String },
    #[error("the connection goes through a connection pooler in transaction or statement mode ({0}). A run keeps session state (its lock, its settings, prepared statements), which such a pooler hands to other clients: connect directly to PostgreSQL, or through a session-mode pool (pgbouncer `pool_mode = session`). Nothing was changed")]
    Pooled(String),
    #[error("no run {0} in lockstep.runs")]
    NoRun(String),
    #[error("no runs recorded yet (lockstep.runs does not exist)")]
    NoState,
    /// The run's state does not allow the command, or the state table holds what this
    /// version cannot read.
    #[error("{0}")]
    State(String),
    #[error("{step}: could not get its locks within {attempts} attempts of {lock_timeout_ms} ms: {blockers}. The run is intact: retry with `lockstep resume {run}`, or end the blocking transaction first")]
    SwapGaveUp {
        step: String,
        run: String,
        attempts: u32,
        lock_timeout_ms: u64,
        blockers: String,
    },
    #[error("verification found rows that differ between {table} and the copy in the key range after {from}, even after copying it again; the swap is refused")]
    Mismatch { table: String, from: String },
    #[error("stopped at a safe point; continue with `lockstep resume {0}`")]
    Stopped(String),
    #[error("{step}: {message}")]
    Db { step: String, message: String },
    /// A hook with `required = true` failed.
    #[error("a required hook failed: {0}; the run stopped at a safe point (`lockstep resume {1}` continues it)")]
    Hook(String, String),
}

/// Maps a database error to [`EngineError::Db`] for `step`.
pub(crate) fn dberr(step: &str) -> impl Fn(tokio_postgres::Error) -> EngineError + '_ {
    move |e| {
        EngineError::Db {
        step: step.to_string(),
        message: match e.as_db_error() {
            Some(d) if pooled_statement(d.code()) => format!(
                "{} ({}): a connection pooler in transaction mode hands this session's prepared statements to other clients; connect directly or through a session-mode pool, then `lockstep resume` or `lockstep rollback`",
                d.message(),
                d.code().code()
            ),
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => e.to_string(),
        },
    }
    }
}

/// A prepared statement that vanished or already exists: what a transaction pooler does to
/// a session's statements.
fn pooled_statement(code: &SqlState) -> bool {
    *code == SqlState::INVALID_SQL_STATEMENT_NAME || *code == SqlState::DUPLICATE_PSTATEMENT
}

/// Whether `e` carries SQLSTATE `code`.
pub(crate) fn has_code(e: &tokio_postgres::Error, code: &SqlState) -> bool {
    e.code() == Some(code)
}

/// A lock not granted within `lock_timeout`.
pub(crate) fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    has_code(e, &SqlState::LOCK_NOT_AVAILABLE)
}

/// A lock timeout or a deadlock: a batch that can simply be run again.
pub(crate) fn is_lock_conflict(e: &tokio_postgres::Error) -> bool {
    is_lock_timeout(e) || has_code(e, &SqlState::T_R_DEADLOCK_DETECTED)
}

/// A unique index refused a row.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    has_code(e, &SqlState::UNIQUE_VIOLATION)
}

/// A `REPEATABLE READ` transaction that met a row a concurrent one changed.
pub(crate) fn is_serialization_failure(e: &tokio_postgres::Error) -> bool {
    has_code(e, &SqlState::T_R_SERIALIZATION_FAILURE)
}

/// A function that does not exist (for example `hash_record_extended` before PostgreSQL 14,
/// or for a column type without a hash function).
pub(crate) fn is_undefined_function(e: &tokio_postgres::Error) -> bool {
    has_code(e, &SqlState::UNDEFINED_FUNCTION)
}

/// The first real error of several lanes: one that stopped because another failed reports
/// `Stopped`, which only counts when nothing else went wrong.
pub(crate) fn first_error(results: Vec<Result<(), EngineError>>) -> Result<(), EngineError> {
    let mut stopped = None;
    for r in results {
        match r {
            Ok(()) => {}
            Err(e @ EngineError::Stopped(_)) => stopped = Some(e),
            Err(e) => return Err(e),
        }
    }
    stopped.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_error_wins() {
        let stopped = || Err(EngineError::Stopped("r".into()));
        let real = || {
            Err(EngineError::Db {
                step: "backfill".into(),
                message: "boom".into(),
            })
        };
        assert!(matches!(
            first_error(vec![stopped(), real(), Ok(())]),
            Err(EngineError::Db { .. })
        ));
        assert!(matches!(
            first_error(vec![Ok(()), stopped()]),
            Err(EngineError::Stopped(_))
        ));
        assert!(first_error(vec![Ok(()), Ok(())]).is_ok());
    }
}
