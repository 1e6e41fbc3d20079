//! The execution context every kind receives ([`Exec`]): the run's connections, its
//! settings, the progress sink, the stop flags and the pause gate; and [`Conn`], one
//! connection of the run with the shared machinery as methods: statements under the retry
//! policy, pacing, the pause gate, stop checks and progress.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::backlog::Backlog;
use super::error::{dberr, EngineError};
use super::live::{self, Live};
use super::pace::{self, Share, Throttle};
use super::pause::{wait_while_paused, PauseGate};
use super::progress::Progress;
use super::retry::{Policy, Retry};
use super::tx::try_tx;
use crate::db::connect::ConnectOptions;
use crate::playbook::hooks::{Dispatcher, Event, EventKind};
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
    /// `[backfill]`, with what `lockstep set` changed while the run works.
    live: Live,
    pub swap: Swap,
    /// The tables whose locks matter (for naming blockers and cancelling autovacuum).
    pub tables: Vec<String>,
    /// The connections besides `client` that share the work (see `crew.rs`).
    pub(super) helpers: Vec<Client>,
    /// The backends of the run's connections: not the application.
    pub(super) pids: Vec<i32>,
    pub(super) crewed: bool,
    /// A connection for short transactions beside the work (see [`Exec::flusher`]).
    pub(super) flusher: Option<Client>,
    /// One connection failed: the others stop at their next safe point.
    pub(super) abort: AtomicBool,
    /// How many connections are at work now.
    pub(super) working: AtomicUsize,
    pub(super) pause: PauseGate,
    /// Where events go besides the progress sink (`[hooks]`).
    hooks: Option<&'e Dispatcher>,
    /// The step shown last, which events happen in.
    current: RefCell<String>,
    /// Whether a connection has rested for the duty cycle yet.
    rested: Cell<bool>,
    /// The replay's backlog, and whether the replay is behind.
    pub(crate) backlog: Backlog,
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
            live: Live::new(backfill.clone()),
            swap: swap.clone(),
            tables,
            helpers: Vec::new(),
            pids: Vec::new(),
            crewed: false,
            flusher: None,
            abort: AtomicBool::new(false),
            working: AtomicUsize::new(1),
            pause: PauseGate::default(),
            hooks: None,
            current: RefCell::new(String::new()),
            rested: Cell::new(false),
            backlog: Backlog::default(),
        }
    }

    /// How to open more connections to the run's database, if the caller gave a way.
    pub(crate) fn connect_options(&self) -> Option<&'e ConnectOptions> {
        self.connect
    }

    /// Tells `hooks` about the run's events too.
    pub(crate) fn with_hooks(mut self, hooks: Option<&'e Dispatcher>) -> Exec<'e> {
        self.hooks = hooks;
        self
    }

    /// With required hooks: waits for the hooks of the events so far; `Err(Hook)` when one
    /// failed (called before every statement that takes locks, and before the swap).
    pub(crate) async fn settle_hooks(&self) -> Result<(), EngineError> {
        if let Some(h) = self.hooks {
            if let Some(f) = h.settle().await {
                for n in h.take_notes() {
                    self.note(&n);
                }
                return Err(EngineError::Hook(f, self.run_id.clone()));
            }
        }
        Ok(())
    }

    /// Reports an event: to the progress sink and the hooks (the one door for events).
    pub(crate) fn emit(&self, kind: EventKind, message: &str) {
        let event = Event {
            kind,
            step: self.current.borrow().clone(),
            message: message.to_string(),
        };
        self.progress.borrow_mut().event(&event);
        if let Some(h) = self.hooks {
            h.emit(kind, message);
        }
    }

    /// The main connection.
    pub(crate) fn main(&self) -> Conn<'_, 'e> {
        Conn {
            exec: self,
            client: self.client,
        }
    }

    /// The `[backfill]` settings in force.
    pub(crate) fn backfill(&self) -> Backfill {
        self.live.get()
    }

    /// Picks up settings changed with `lockstep set` (at most once a second).
    pub(crate) async fn refresh_settings(&self) {
        if let Some(change) = self.live.refresh(self.client, &self.run_id).await {
            self.note(&change);
        }
    }

    /// `[swap] mode = "manual"`: says the run is ready and waits for `lockstep swap`,
    /// calling `keep_up` between looks (a shadow rebuild replays its log meanwhile).
    pub(crate) async fn wait_for_swap(
        &self,
        detail: &str,
        mut keep_up: impl AsyncFnMut() -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut announced = false;
        loop {
            self.check()?;
            if live::take_swap_request(self.client, &self.run_id).await? {
                if announced {
                    live::set_ready(self.client, &self.run_id, false).await?;
                }
                self.note("swap requested (`lockstep swap`)");
                return Ok(());
            }
            if !announced {
                live::set_ready(self.client, &self.run_id, true).await?;
                let message = format!(
                    "ready to swap {detail}: catching up until `lockstep swap {}`",
                    self.run_id
                );
                self.note(&message);
                self.emit(EventKind::ReadyToSwap, &message);
                announced = true;
            }
            keep_up().await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub(crate) fn step(&self, name: &str, detail: &str) {
        if let Some(h) = self.hooks {
            h.step(name, detail);
        }
        *self.current.borrow_mut() = name.to_string();
        self.progress.borrow_mut().step(name, detail);
    }

    pub(crate) fn note(&self, message: &str) {
        self.progress.borrow_mut().note(message);
    }

    pub(crate) fn copy(&self, done: i64, total: i64, rows_per_sec: f64) {
        if let Some(h) = self.hooks {
            h.rows(done, total);
        }
        self.progress.borrow_mut().copy(done, total, rows_per_sec);
    }

    /// `Err(Stopped)` once Ctrl-C asked to stop, or another connection failed; `Err(Hook)`
    /// once a required hook failed. Reports the hooks that failed.
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if let Some(h) = self.hooks {
            for n in h.take_notes() {
                self.note(&n);
            }
            if let Some(f) = h.failure() {
                return Err(EngineError::Hook(f, self.run_id.clone()));
            }
        }
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
        self.exec.settle_hooks().await?;
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
        let lock = super::error::is_lock_conflict(&e);
        let r = retry
            .failed(e, self.client, &note, &self.exec.policy(), step)
            .await;
        if lock {
            self.exec.emit(EventKind::LockWait, step);
        }
        r
    }

    /// After `rows` that took `elapsed`: the duty cycle, `max_rows_per_second` and
    /// `max_replica_lag`.
    pub(crate) async fn pace(&self, rows: i64, elapsed: Duration) -> Result<(), EngineError> {
        // (`rest` reads the settings `lockstep set` changed.)
        self.rest(elapsed).await;
        self.limits(rows, elapsed).await
    }

    /// After `rows` that took `elapsed`: `max_rows_per_second` and `max_replica_lag`, the
    /// limits that hold even where the duty cycle does not (a replay that is behind).
    pub(crate) async fn limits(&self, rows: i64, elapsed: Duration) -> Result<(), EngineError> {
        self.exec.refresh_settings().await;
        let note = |m: &str| self.note(m);
        Throttle {
            client: self.client,
            run_id: &self.exec.run_id,
            stop: self.exec.stop,
            note: &note,
        }
        .pace(&self.exec.backfill(), self.exec.share(), (rows, elapsed))
        .await?;
        self.check()
    }

    /// After work that took `elapsed`: the duty cycle only. The first rest of a run is
    /// noted (what the run's pace depends on from then on).
    pub(crate) async fn rest(&self, elapsed: Duration) {
        self.exec.refresh_settings().await;
        let backfill = self.exec.backfill();
        let rested = pace::rest(self.client, &backfill, elapsed, self.exec.share()).await;
        if rested.is_some() && !self.exec.rested.replace(true) {
            self.note(&format!(
                "the application is busy: working {:.0}% of the time (duty_cycle)",
                backfill.duty_cycle * 100.0
            ));
        }
    }

    /// Waits while `lockstep pause` is in force.
    pub(crate) async fn wait_while_paused(&self) -> Result<(), EngineError> {
        let note = |m: &str| self.note(m);
        let emit = |k: EventKind| self.exec.emit(k, "");
        wait_while_paused(
            self.client,
            (&note, &emit),
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
