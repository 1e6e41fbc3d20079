//! The execution context every kind receives ([`Exec`]): the run's connections, its
//! settings, the progress sink, the stop flags and the pause gate; and [`Conn`], one
//! connection of the run with the shared machinery as methods: statements under the retry
//! policy, pacing, the pause gate, stop checks and progress.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::error::{dberr, EngineError};
use super::pace::{self, Share, Throttle};
use super::pause::{wait_while_paused, PauseGate};
use super::progress::Progress;
use super::retry::{Policy, Retry};
use super::tx::try_tx;
use crate::db::connect::ConnectOptions;
use crate::playbook::settings::{Backfill, Swap};

/// What the caller of a playbook command provides.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub progress: &'a mut dyn Progress,
    /// Set (by Ctrl-C or SIGTERM) to stop at the next safe point.
    pub stop: &'a AtomicBool,
    /// A second connection for watching long statements (index build progress), if any.
    pub monitor: Option<&'a Client>,
    /// How to open more connections (`[backfill] workers`); without it, one connection
    /// does all the work.
    pub connect: Option<&'a ConnectOptions>,
    /// `--takeover`: end a run-lock holder that is provably not a live runner.
    pub takeover: bool,
}

/// The context of one run at work.
pub(crate) struct Exec<'e> {
    /// The main connection: it holds the run lock.
    pub client: &'e Client,
    progress: RefCell<&'e mut dyn Progress>,
    pub stop: &'e AtomicBool,
    pub monitor: Option<&'e Client>,
    pub(super) connect: Option<&'e ConnectOptions>,
    pub run_id: String,
    pub backfill: Backfill,
    pub swap: Swap,
    /// The tables whose locks matter (for naming blockers and cancelling autovacuum).
    pub tables: Vec<String>,
    /// The connections besides `client` that share the work (see `crew.rs`).
    pub(super) helpers: Vec<Client>,
    /// The backends of the run's connections: not the application.
    pub(super) pids: Vec<i32>,
    pub(super) crewed: bool,
    /// One connection failed: the others stop at their next safe point.
    pub(super) abort: AtomicBool,
    /// How many connections are at work now.
    pub(super) working: AtomicUsize,
    pub(super) pause: PauseGate,
    /// Whether a connection has rested for the duty cycle yet.
    rested: Cell<bool>,
}

impl<'e> Exec<'e> {
    /// The context of run `run_id` with the playbook's settings.
    pub(crate) fn new(
        ctx: &'e mut Ctx<'_>,
        run_id: &str,
        (backfill, swap): (&Backfill, &Swap),
        tables: Vec<String>,
    ) -> Exec<'e> {
        Exec {
            client: ctx.client,
            progress: RefCell::new(&mut *ctx.progress),
            stop: ctx.stop,
            monitor: ctx.monitor,
            connect: ctx.connect,
            run_id: run_id.to_string(),
            backfill: backfill.clone(),
            swap: swap.clone(),
            tables,
            helpers: Vec::new(),
            pids: Vec::new(),
            crewed: false,
            abort: AtomicBool::new(false),
            working: AtomicUsize::new(1),
            pause: PauseGate::default(),
            rested: Cell::new(false),
        }
    }

    /// The main connection.
    pub(crate) fn main(&self) -> Conn<'_, 'e> {
        Conn {
            exec: self,
            client: self.client,
        }
    }

    pub(crate) fn step(&self, name: &str, detail: &str) {
        self.progress.borrow_mut().step(name, detail);
    }

    pub(crate) fn note(&self, message: &str) {
        self.progress.borrow_mut().note(message);
    }

    pub(crate) fn copy(&self, done: i64, total: i64, rows_per_sec: f64) {
        self.progress.borrow_mut().copy(done, total, rows_per_sec);
    }

    /// `Err(Stopped)` once Ctrl-C asked to stop, or another connection failed.
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.abort.load(Ordering::SeqCst) {
            return Err(EngineError::Stopped(self.run_id.clone()));
        }
        pace::stopped(self.stop, &self.run_id)
    }

    pub(super) fn policy(&self) -> Policy<'_> {
        Policy {
            swap: &self.swap,
            run_id: &self.run_id,
            tables: &self.tables,
        }
    }

    pub(super) fn share(&self) -> Share<'_> {
        Share {
            pids: &self.pids,
            working: self.working.load(Ordering::SeqCst),
        }
    }
}

/// One connection of a run.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'c, 'e> {
    pub exec: &'c Exec<'e>,
    pub client: &'c Client,
}

impl<'c> Conn<'c, '_> {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        self.exec.check()
    }

    pub(crate) fn note(&self, message: &str) {
        self.exec.note(message);
    }

    /// Runs `sql` in one transaction with the playbook's lock_timeout, retried with backoff
    /// and jitter when a lock is not granted in time; gives up naming the blocking backends.
    pub(crate) async fn with_retry(&self, sql: &[String], step: &str) -> Result<(), EngineError> {
        let mut retry = Retry::new(&self.exec.swap);
        loop {
            match try_tx(self.client, sql, self.exec.swap.lock_timeout_ms).await {
                Ok(()) => return Ok(()),
                Err(e) => self.retry_failed(&mut retry, e, step).await?,
            }
        }
    }

    /// After an attempt failed with `e`: [`Retry::failed`] on this connection.
    pub(crate) async fn retry_failed(
        &self,
        retry: &mut Retry,
        e: tokio_postgres::Error,
        step: &str,
    ) -> Result<(), EngineError> {
        let note = |m: &str| self.note(m);
        retry
            .failed(e, self.client, &note, &self.exec.policy(), step)
            .await
    }

    /// After `rows` that took `elapsed`: the duty cycle, `max_rows_per_second` and
    /// `max_replica_lag`.
    pub(crate) async fn pace(&self, rows: i64, elapsed: Duration) -> Result<(), EngineError> {
        self.rest(elapsed).await;
        let note = |m: &str| self.note(m);
        Throttle {
            client: self.client,
            run_id: &self.exec.run_id,
            stop: self.exec.stop,
            note: &note,
        }
        .pace(&self.exec.backfill, self.exec.share(), (rows, elapsed))
        .await?;
        self.check()
    }

    /// After work that took `elapsed`: the duty cycle only. The first rest of a run is
    /// noted (what the run's pace depends on from then on).
    pub(crate) async fn rest(&self, elapsed: Duration) {
        let rested = pace::rest(self.client, &self.exec.backfill, elapsed, self.exec.share()).await;
        if rested.is_some() && !self.exec.rested.replace(true) {
            self.note(&format!(
                "the application is busy: working {:.0}% of the time (duty_cycle)",
                self.exec.backfill.duty_cycle * 100.0
            ));
        }
    }

    /// Waits while `lockstep pause` is in force.
    pub(crate) async fn wait_while_paused(&self) -> Result<(), EngineError> {
        let note = |m: &str| self.note(m);
        wait_while_paused(
            self.client,
            &note,
            (&self.exec.run_id, self.exec.stop),
            (&self.exec.pause, &self.exec.working),
        )
        .await?;
        self.check()
    }

    /// Whether the application is busy now.
    pub(crate) async fn busy(&self) -> bool {
        pace::busy(self.client, &self.exec.pids).await
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        step: &str,
    ) -> Result<Vec<Row>, EngineError> {
        self.client.query(sql, params).await.map_err(dberr(step))
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        step: &str,
    ) -> Result<Row, EngineError> {
        self.client
            .query_one(sql, params)
            .await
            .map_err(dberr(step))
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        step: &str,
    ) -> Result<Option<Row>, EngineError> {
        self.client
            .query_opt(sql, params)
            .await
            .map_err(dberr(step))
    }

    /// Statements without parameters (several allowed), outside any transaction.
    pub(crate) async fn batch(&self, sql: &str, step: &str) -> Result<(), EngineError> {
        self.client.batch_execute(sql).await.map_err(dberr(step))
    }

    /// Whether the relation `rel` (qualified) exists.
    pub(crate) async fn exists(&self, rel: &str, step: &str) -> Result<bool, EngineError> {
        Ok(self
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&rel], step)
            .await?
            .get(0))
    }
}
