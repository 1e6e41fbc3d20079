//! The execution core every playbook kind shares: one context value ([`Exec`]) carrying the
//! run's connections and settings, and on each connection ([`Conn`]) the retry policy and
//! lock-conflict give-way (`retry.rs`), pacing and the duty cycle (`pace.rs`), the pause gate
//! (`pause.rs`), stop on signal, progress reporting (`progress.rs`) and transactions
//! (`tx.rs`); the one batch driver (`batch.rs`); the replay's backlog (`backlog.rs`); several connections at once (`crew.rs`);
//! statements that cannot run in a transaction block (`ddl.rs`).
//!
//! Kinds never talk to the database directly while they run: they give SQL to these.

pub(crate) mod backlog;
mod batch;
mod conn;
mod crew;
mod ddl;
mod error;
mod hold;
mod live;
mod pace;
mod pause;
mod progress;
mod retry;
mod tx;

pub(crate) use batch::{BatchError, Batching, Outcome, Pacing, Sizing};
pub use conn::Ctx;
pub(crate) use conn::{Conn, Exec};
pub(crate) use crew::runner_session;
pub use error::EngineError;
pub(crate) use error::{
    dberr, is_lock_timeout, is_serialization_failure, is_undefined_function, is_unique_violation,
};
pub(crate) use hold::{fault_once, hold_point};
pub use progress::{Progress, Silent};
pub(crate) use retry::{cancel_autovacuum, Policy, Retry};
pub(crate) use tx::{begin_with_lock_timeout, in_transaction, try_tx_timed, Timed};

/// What a command achieved: the run and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: String,
    pub message: String,
}
