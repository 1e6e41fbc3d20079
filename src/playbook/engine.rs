//! Runs a partitioning playbook step by step (see ONLINE.md): preflight, shadow, change
//! capture, backfill, indexes, verify, swap, validate; and rollback and finalize. Every
//! step is checkpointed in the state table, in the same transaction as its work where it
//! can be, and every step can be re-run after a crash.
//!
//! Also the machinery every kind shares (`ops/runner.rs` uses it for the in-place kinds):
//! DDL under lock_timeout with retries that name the blockers, concurrent index builds that
//! wait for older transactions visibly, batch sizing and pacing, the pause gate, and the
//! entry points that send a stored run to the engine of its kind.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::facts::{self, Facts};
use super::lanes::{self, CopyTally, Job, Tallies, VerifyTally, Worker};
use super::ops;
use super::plan::{self, lit, Names, Partition, Plan};
use super::spec::{self, Playbook, Strategy};
use super::state::{self, step_index, Run};
use crate::db::connect::ConnectOptions;
use crate::sql::ir::quote_ident;

/// What the engine reports while it works (the CLI draws bars or prints status lines).
pub trait Progress {
    /// A step starts.
    fn step(&mut self, name: &str, detail: &str);
    /// Copy progress.
    fn copy(&mut self, copied: i64, total: i64, rows_per_sec: f64);
    /// Anything worth a line: a retry, a pause, a warning.
    fn note(&mut self, message: &str);
}

/// A progress sink that discards everything.
pub struct Silent;

impl Progress for Silent {
    fn step(&mut self, _: &str, _: &str) {}
    fn copy(&mut self, _: i64, _: i64, _: f64) {}
    fn note(&mut self, _: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Spec(#[from] spec::SpecError),
    #[error("{0}")]
    Facts(#[from] facts::FactsError),
    #[error("preflight refused the conversion:\n  - {}", .0.join("\n  - "))]
    Refused(Vec<String>),
    #[error("another lockstep process is working on {table}{}", .pid.map(|p| format!(" (backend pid {p})")).unwrap_or_default())]
    Busy { table: String, pid: Option<i32> },
    #[error("no run {0} in lockstep.runs")]
    NoRun(String),
    #[error("no runs recorded yet (lockstep.runs does not exist)")]
    NoState,
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
}

pub(crate) fn dberr(step: &str) -> impl Fn(tokio_postgres::Error) -> EngineError + '_ {
    move |e| EngineError::Db {
        step: step.to_string(),
        message: match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => e.to_string(),
        },
    }
}

pub(crate) fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| d.code().code() == "55P03")
}

/// A lock timeout or a deadlock: a copy batch that can simply be run again.
pub(crate) fn is_lock_conflict(e: &tokio_postgres::Error) -> bool {
    is_lock_timeout(e) || e.as_db_error().is_some_and(|d| d.code().code() == "40P01")
}

/// Options of one engine invocation.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub progress: &'a mut dyn Progress,
    /// Set (by Ctrl-C) to stop at the next safe point.
    pub stop: &'a AtomicBool,
    /// A second connection for watching long statements (index build progress), if any.
    pub monitor: Option<&'a Client>,
    /// How to open more connections, for the lanes of a partition run (`[backfill] workers`);
    /// without it, one connection does all the work.
    pub connect: Option<&'a ConnectOptions>,
}

/// Binds `$w` to a [`Worker`] on the runner `$r`'s main connection, working alone.
macro_rules! alone {
    ($r:ident, $w:ident) => {
        let tables = $r.tables();
        let abort = AtomicBool::new(false);
        let sink: &mut dyn Progress = &mut *$r.ctx.progress;
        let progress = RefCell::new(sink);
        let share = Share {
            pids: &$r.pids,
            working: &ONE,
        };
        let pause = PauseGate::default();
        let $w = worker!(
            $r,
            $r.ctx.client,
            (&abort, &pause),
            &progress,
            share,
            &tables
        );
    };
}

/// A [`Worker`] on `client` for the runner `$r` (a macro: the worker borrows the runner's
/// fields while the progress sink, borrowed mutably, sits in `$progress`).
macro_rules! worker {
    ($r:ident, $client:expr, ($abort:expr, $pause:expr), $progress:expr, $share:expr, $tables:expr) => {
        Worker {
            client: $client,
            pb: &$r.pb,
            plan: &$r.plan,
            run_id: &$r.run.id,
            stop: $r.ctx.stop,
            abort: $abort,
            progress: $progress,
            share: $share,
            tables: $tables,
            unvacuumed: &$r.unvacuumed,
            pause: $pause,
        }
    };
}

/// What a command achieved: the run and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: String,
    pub message: String,
}

/// A test hook: with `LOCKSTEP_TEST_HOLD_AT=<point>` the engine stops moving at that point
/// (after checkpointing) and waits there until the process is killed. Points: `backfill`
/// (after the first batch), `indexes` (after the first index build), `replay` (after the
/// first replay batch after the builds), `verify` (after the first verified range),
/// `before-swap`, `after-swap`.
pub(crate) async fn hold_point(point: &str) {
    if std::env::var("LOCKSTEP_TEST_HOLD_AT").is_ok_and(|v| v == point) {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

struct Runner<'a, 'b> {
    ctx: &'b mut Ctx<'a>,
    pb: Playbook,
    plan: Plan,
    run: Run,
    /// Log entries replayed since the log was last vacuumed.
    unvacuumed: Cell<u64>,
    /// The connections besides `ctx.client` that work lanes (opened by [`Runner::crew`]).
    helpers: Vec<Client>,
    /// The backends of `ctx.client` and the helpers: not the application.
    pids: Vec<i32>,
    /// Whether [`Runner::crew`] ran.
    crewed: bool,
}

impl<'a, 'b> Runner<'a, 'b> {
    fn new(ctx: &'b mut Ctx<'a>, pb: Playbook, plan: Plan, run: Run) -> Self {
        Runner {
            ctx,
            pb,
            plan,
            run,
            unvacuumed: Cell::new(0),
            helpers: Vec::new(),
            pids: Vec::new(),
            crewed: false,
        }
    }
}

/// Reads the table, checks it, and returns the plan (no writes). `run_id` names the
/// objects; partitions are computed from the data.
pub async fn prepare(
    client: &Client,
    pb: &Playbook,
    run_id: &str,
) -> Result<(Plan, Vec<String>), EngineError> {
    let facts = facts::read(client, &pb.table).await?;
    prepare_from(client, pb, facts, run_id).await
}

/// [`prepare`] with the table's facts already read.
async fn prepare_from(
    client: &Client,
    pb: &Playbook,
    facts: Facts,
    run_id: &str,
) -> Result<(Plan, Vec<String>), EngineError> {
    let mut refusals = plan::preflight(pb, &facts);
    let partitions = if refusals.iter().any(|r| r.contains("partition column")) {
        Vec::new()
    } else {
        partitions(client, pb, &facts).await?
    };
    let names = Names::new(&facts, run_id, partitions);
    // Names that must be free: the tables and the indexes the run creates.
    let mut wanted = vec![
        names.shadow.clone(),
        names.old.clone(),
        names.shadow_pk.clone(),
    ];
    wanted.extend(names.partitions.iter().map(|p| p.name.clone()));
    wanted.extend(names.indexes.iter().map(|(parent, _)| parent.clone()));
    let plan = Plan::new(pb, facts, names);
    for job in plan.index_sql() {
        wanted.extend(job.children.into_iter().map(|c| c.name));
    }
    let taken = facts::taken(client, &plan.facts, &wanted)
        .await
        .map_err(dberr("preflight"))?;
    for n in taken {
        refusals.push(format!(
            "{} already exists (a leftover of an earlier run? `lockstep status` lists runs; drop it or roll that run back)",
            plan.rel(&n)
        ));
    }
    Ok((plan, refusals))
}

fn trunc_unit(interval: &str) -> (&'static str, &'static str) {
    let i = interval.to_ascii_lowercase();
    if i.contains("year") {
        ("year", "YYYY")
    } else if i.contains("month") {
        ("month", "YYYYMM")
    } else if i.contains("week") {
        ("week", "YYYYMMDD")
    } else if i.contains("hour") {
        ("hour", "YYYYMMDD\"_\"HH24")
    } else if i.contains("min") {
        ("minute", "YYYYMMDD\"_\"HH24MI")
    } else {
        ("day", "YYYYMMDD")
    }
}

fn partition_name(pattern: &str, table: &str, start: &str, n: usize) -> String {
    plan::fit(
        &pattern
            .replace("{table}", table)
            .replace("{start}", start)
            .replace("{n}", &n.to_string()),
    )
}

/// The partitions covering the table's data, the future ones and the default.
async fn partitions(
    client: &Client,
    pb: &Playbook,
    f: &Facts,
) -> Result<Vec<Partition>, EngineError> {
    let p = &pb.partition;
    let col = quote_ident(&p.column);
    let ty = f.column(&p.column).map_or("text", |c| c.type_sql.as_str());
    let mut out = Vec::new();
    match &p.strategy {
        Strategy::RangeInterval(iv) => {
            let (unit, fmt) = trunc_unit(iv);
            let base = if ty == "date" { "timestamp" } else { ty };
            let sql = format!(
                "WITH b AS (SELECT coalesce(min({col})::{base}, now()::{base}) lo, coalesce(max({col})::{base}, now()::{base}) hi FROM {t})
                 SELECT to_char(g, {fmt}), format('%L', g::{ty}), format('%L', (g + {iv}::interval)::{ty})
                 FROM b, generate_series(date_trunc({unit}, b.lo), b.hi + {premake} * {iv}::interval, {iv}::interval) g",
                t = f.qualified(),
                fmt = lit(fmt),
                unit = lit(unit),
                iv = lit(iv),
                premake = p.premake,
            );
            let rows = client
                .query(&sql, &[])
                .await
                .map_err(dberr("computing partitions"))?;
            for (n, r) in rows.iter().enumerate() {
                let start: String = r.get(0);
                out.push(Partition {
                    name: partition_name(&p.naming, &f.name, &start, n),
                    bound: format!(
                        "FOR VALUES FROM ({}) TO ({})",
                        r.get::<_, String>(1),
                        r.get::<_, String>(2)
                    ),
                });
            }
        }
        Strategy::RangeWidth(w) => {
            let r = client
                .query_one(
                    &format!(
                        "SELECT coalesce(min({col}), 0)::bigint, coalesce(max({col}), 0)::bigint FROM {}",
                        f.qualified()
                    ),
                    &[],
                )
                .await
                .map_err(dberr("computing partitions"))?;
            let (lo, hi): (i64, i64) = (r.get(0), r.get(1));
            let mut start = lo.div_euclid(*w) * w;
            let end = hi.saturating_add(w.saturating_mul(i64::from(p.premake)));
            let mut n = 0;
            while start <= end && n < 10_000 {
                out.push(Partition {
                    name: partition_name(&p.naming, &f.name, &start.to_string(), n),
                    bound: format!(
                        "FOR VALUES FROM ({start}) TO ({})",
                        start.saturating_add(*w)
                    ),
                });
                start = start.saturating_add(*w);
                n += 1;
            }
        }
        Strategy::List(lists) => {
            for (n, l) in lists.iter().enumerate() {
                out.push(Partition {
                    name: partition_name(&p.naming, &f.name, &l.name, n),
                    bound: format!("FOR VALUES IN ({})", l.values.join(", ")),
                });
            }
        }
        Strategy::Hash(m) => {
            for r in 0..*m {
                out.push(Partition {
                    name: partition_name(&p.naming, &f.name, &r.to_string(), r as usize),
                    bound: format!("FOR VALUES WITH (MODULUS {m}, REMAINDER {r})"),
                });
            }
        }
    }
    if p.default_partition && !matches!(p.strategy, Strategy::Hash(_)) {
        out.push(Partition {
            name: plan::fit(&format!("{}_default", f.name)),
            bound: "DEFAULT".into(),
        });
    }
    Ok(out)
}

pub(crate) async fn ensure_state(client: &Client) -> Result<(), EngineError> {
    client
        .batch_execute(state::SCHEMA_SQL)
        .await
        .map_err(dberr("creating the state table"))
}

/// Takes the run lock for `table_name`, checks no unfinished run exists, and returns a new
/// run id.
pub(crate) async fn claim(
    client: &Client,
    table_name: &str,
    oid: u32,
) -> Result<String, EngineError> {
    if !state::try_lock(client, table_name)
        .await
        .map_err(dberr("advisory lock"))?
    {
        let pid = state::lock_held(client, table_name).await.ok().flatten();
        return Err(EngineError::Busy {
            table: table_name.to_string(),
            pid,
        });
    }
    runner_session(client).await?;
    let open = if state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        state::open_runs(client, table_name)
            .await
            .map_err(dberr("reading lockstep.runs"))?
    } else {
        Vec::new()
    };
    if let Some(id) = open.first() {
        return Err(EngineError::State(format!(
            "run {id} on {table_name} is not finished: `lockstep resume {id}` continues it, `lockstep rollback {id}` undoes it"
        )));
    }
    let run_id: String = client
        .query_one(
            "SELECT $1::oid::text || '_' || to_char(clock_timestamp(), 'YYYYMMDD_HH24MISS_MS')",
            &[&oid],
        )
        .await
        .map_err(dberr("run id"))?
        .get(0);
    Ok(run_id)
}

/// Starts a new run of `pb` (its text is kept for resume) and runs it up to the swap
/// (and the validation after it).
pub async fn start(
    ctx: &mut Ctx<'_>,
    pb: Playbook,
    playbook_text: &str,
) -> Result<Finished, EngineError> {
    let facts = facts::read(ctx.client, &pb.table).await?;
    let table_name = facts.qualified();
    let run_id = claim(ctx.client, &table_name, facts.oid).await?;
    ctx.progress.step("preflight", &table_name);
    let (plan, refusals) = prepare_from(ctx.client, &pb, facts, &run_id).await?;
    if !refusals.is_empty() {
        return Err(EngineError::Refused(refusals));
    }
    // Only now, so that a refused run leaves nothing behind.
    ensure_state(ctx.client).await?;
    let plan_json = serde_json::to_value(&plan).map_err(|e| EngineError::State(e.to_string()))?;
    ctx.client
        .execute(
            "INSERT INTO lockstep.runs (id, kind, table_name, playbook, plan, step, status, rows_estimate)
             VALUES ($1, 'partition', $2, $3, $4, 'created', 'running', $5)",
            &[&run_id, &table_name, &playbook_text, &plan_json, &plan.facts.rows_estimate],
        )
        .await
        .map_err(dberr("recording the run"))?;
    let run = state::load(ctx.client, Some(&run_id))
        .await
        .map_err(dberr("reading the run"))?
        .ok_or_else(|| EngineError::NoRun(run_id.clone()))?;
    let mut r = Runner::new(ctx, pb, plan, run);
    r.forward().await?;
    Ok(swapped(run_id))
}

/// Starts a run of a playbook of any kind.
pub async fn start_any(
    ctx: &mut Ctx<'_>,
    pb: spec::AnyPlaybook,
    playbook_text: &str,
) -> Result<Finished, EngineError> {
    match pb {
        spec::AnyPlaybook::Partition(p) => start(ctx, p, playbook_text).await,
        spec::AnyPlaybook::Op(o) => ops::runner::start(ctx, o, playbook_text).await,
    }
}

fn swapped(id: String) -> Finished {
    Finished {
        message: format!("run {id}: swapped. The old table is kept current until `lockstep finalize {id}`; `lockstep rollback {id}` swaps back."),
        id,
    }
}

/// Loads a run (the latest when `id` is `None`) and takes its table's run lock.
async fn load_locked(client: &Client, id: Option<&str>) -> Result<Run, EngineError> {
    if !state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        return Err(EngineError::NoState);
    }
    let run = state::load(client, id)
        .await
        .map_err(dberr("reading lockstep.runs"))?
        .ok_or_else(|| EngineError::NoRun(id.unwrap_or("(latest)").to_string()))?;
    if !state::try_lock(client, &run.table_name)
        .await
        .map_err(dberr("advisory lock"))?
    {
        let pid = state::lock_held(client, &run.table_name)
            .await
            .ok()
            .flatten();
        return Err(EngineError::Busy {
            table: run.table_name.clone(),
            pid,
        });
    }
    runner_session(client).await?;
    Ok(run)
}

/// The runner's session settings. No JIT: a batch's plan often costs more than
/// `jit_above_cost`, and compiling it took longer than running it (half a second per
/// verified range, measured with `lockstep demo --bench`). No parallel workers for index
/// builds: the lanes already build one index per connection, and workers would take cores
/// the duty cycle does not count.
async fn runner_session(client: &Client) -> Result<(), EngineError> {
    client
        .batch_execute("SET jit = off; SET max_parallel_maintenance_workers = 0")
        .await
        .map_err(dberr("session settings"))
}

/// Opens a locked partition run.
fn open<'a, 'b>(ctx: &'b mut Ctx<'a>, run: Run) -> Result<Runner<'a, 'b>, EngineError> {
    let pb = spec::parse(&run.playbook, "playbook stored in lockstep.runs")?;
    let plan: Plan = serde_json::from_value(run.plan.clone()).map_err(|e| {
        EngineError::State(format!(
            "the stored plan of run {} cannot be read: {e}",
            run.id
        ))
    })?;
    Ok(Runner::new(ctx, pb, plan, run))
}

/// Continues a run from its last checkpoint.
pub async fn resume(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx.client, id).await?;
    if run.kind != "partition" {
        return ops::runner::resume(ctx, run).await;
    }
    let mut r = open(ctx, run)?;
    match r.run.step.as_str() {
        "finalized" | "rolled_back" => {
            return Err(EngineError::State(format!(
                "run {} is {}; there is nothing to resume",
                r.run.id,
                r.run.step.replace('_', " ")
            )))
        }
        "validated" => {
            return Err(EngineError::State(format!(
                "run {} is swapped and validated; `lockstep finalize {}` drops the old table, `lockstep rollback {}` swaps back",
                r.run.id, r.run.id, r.run.id
            )))
        }
        _ => {}
    }
    state::set_status(r.ctx.client, &r.run.id, "running", None)
        .await
        .map_err(dberr("state"))?;
    state::set_paused(r.ctx.client, &r.run.id, false)
        .await
        .map_err(dberr("state"))?;
    r.forward().await?;
    Ok(swapped(r.run.id.clone()))
}

/// Undoes a run: before the swap, drops what it created; after the swap (before finalize),
/// swaps back to the original table, which the reverse trigger kept current.
pub async fn rollback(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx.client, id).await?;
    if run.kind != "partition" {
        return ops::runner::rollback(ctx, run).await;
    }
    let mut r = open(ctx, run)?;
    let step = step_index(&r.run.step);
    if r.run.step == "finalized" {
        return Err(EngineError::State(format!(
            "run {} is finalized: the original table is gone, there is nothing to swap back to",
            r.run.id
        )));
    }
    if r.run.step == "rolled_back" {
        return Err(EngineError::State(format!(
            "run {} is already rolled back",
            r.run.id
        )));
    }
    if step >= step_index("swapped") {
        r.ctx.progress.step("swap back", &r.plan.source());
        let sql = r.plan.swap_back_sql();
        r.swap_back(&sql).await?;
        for v in r.plan.validate_sql() {
            r.with_retry(std::slice::from_ref(&v), "validate").await?;
        }
    } else {
        r.ctx.progress.step("drop the copy", &r.plan.shadow());
        for s in r.plan.drop_shadow_sql() {
            r.with_retry(std::slice::from_ref(&s), "rollback").await?;
        }
        state::set_step(r.ctx.client, &r.run.id, "rolled_back", "rolled_back", None)
            .await
            .map_err(dberr("state"))?;
        state::drop_lanes(r.ctx.client, &r.run.id)
            .await
            .map_err(dberr("state"))?;
    }
    let id = r.run.id.clone();
    Ok(Finished {
        message: format!("run {id}: rolled back: the original table is in place"),
        id,
    })
}

/// After the swap: drops the reverse trigger and the old table.
pub async fn finalize(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx.client, id).await?;
    if run.kind != "partition" {
        return ops::runner::finalize(ctx, run).await;
    }
    let mut r = open(ctx, run)?;
    if step_index(&r.run.step) < step_index("validated") || r.run.step == "rolled_back" {
        return Err(EngineError::State(format!(
            "run {} is at step `{}`: finalize is for swapped runs (resume it first)",
            r.run.id, r.run.step
        )));
    }
    if r.run.step == "finalized" {
        return Err(EngineError::State(format!(
            "run {} is already finalized",
            r.run.id
        )));
    }
    r.ctx.progress.step("finalize", &r.plan.old());
    for s in r.plan.finalize_sql() {
        r.with_retry(std::slice::from_ref(&s), "finalize").await?;
    }
    state::set_step(r.ctx.client, &r.run.id, "finalized", "finalized", None)
        .await
        .map_err(dberr("state"))?;
    let id = r.run.id.clone();
    Ok(Finished {
        message: format!("run {id}: finalized: the old table is dropped"),
        id,
    })
}

impl Runner<'_, '_> {
    fn client(&self) -> &Client {
        self.ctx.client
    }

    async fn checkpoint(&mut self, step: &str) -> Result<(), EngineError> {
        let status = if step == "validated" {
            "swapped"
        } else {
            "running"
        };
        state::set_step(self.client(), &self.run.id, step, status, None)
            .await
            .map_err(dberr("checkpoint"))?;
        self.run.step = step.to_string();
        Ok(())
    }

    fn done(&self, step: &str) -> bool {
        step_index(&self.run.step) >= step_index(step)
    }

    fn check_stop(&self) -> Result<(), EngineError> {
        if self.ctx.stop.load(Ordering::SeqCst) {
            return Err(EngineError::Stopped(self.run.id.clone()));
        }
        Ok(())
    }

    async fn forward(&mut self) -> Result<(), EngineError> {
        let result = self.forward_steps().await;
        let (status, message) = match &result {
            Ok(()) => ("swapped", None),
            Err(EngineError::Stopped(_)) => {
                ("stopped", Some("stopped at a safe point".to_string()))
            }
            Err(e) => ("failed", Some(e.to_string())),
        };
        let _ = state::set_status(self.client(), &self.run.id, status, message.as_deref()).await;
        result
    }

    async fn forward_steps(&mut self) -> Result<(), EngineError> {
        if !self.done("shadow") {
            let detail = self.plan.shadow();
            self.ddl_step("shadow", &detail, self.plan.shadow_sql())
                .await?;
        }
        self.check_stop()?;
        if !self.done("capture") {
            self.ddl_step("capture", "change-capture trigger", self.plan.capture_sql())
                .await?;
        }
        self.check_stop()?;
        if !self.done("backfill") {
            self.backfill().await?;
            self.checkpoint("backfill").await?;
            state::drop_lanes(self.client(), &self.run.id)
                .await
                .map_err(dberr("backfill"))?;
        }
        self.check_stop()?;
        if !self.done("indexes") {
            self.indexes().await?;
            self.checkpoint("indexes").await?;
        }
        self.check_stop()?;
        if !self.done("verified") {
            self.ctx
                .progress
                .step("replay", "changes logged during the copy and the builds");
            self.catch_up(true).await?;
            self.verify().await?;
            self.checkpoint("verified").await?;
        }
        self.check_stop()?;
        if !self.done("swapped") {
            hold_point("before-swap").await;
            self.swap().await?;
            hold_point("after-swap").await;
        }
        if !self.done("validated") {
            self.ctx
                .progress
                .step("validate", "re-pointed foreign keys");
            for v in self.plan.validate_sql() {
                self.with_retry(std::slice::from_ref(&v), "validate")
                    .await?;
            }
            self.checkpoint("validated").await?;
        }
        Ok(())
    }

    /// Runs a step's DDL and its checkpoint in one transaction (with the retry policy), so a
    /// crash leaves either all of it or none.
    async fn ddl_step(
        &mut self,
        step: &str,
        detail: &str,
        mut sql: Vec<String>,
    ) -> Result<(), EngineError> {
        self.ctx.progress.step(step, detail);
        sql.push(format!(
            "UPDATE lockstep.runs SET step = {}, updated_at = now() WHERE id = {}",
            lit(step),
            lit(&self.run.id)
        ));
        self.with_retry(&sql, step).await?;
        self.run.step = step.to_string();
        Ok(())
    }

    /// Runs `sql` in one transaction with the playbook's lock_timeout, retried with backoff
    /// when a lock is not granted in time.
    async fn with_retry(&mut self, sql: &[String], step: &str) -> Result<(), EngineError> {
        alone!(self, w);
        w.with_retry(sql, step).await
    }

    /// After an attempt failed with `e`: [`Retry::failed`] with this run's policy.
    async fn retry_failed(
        &mut self,
        retry: &mut Retry,
        e: tokio_postgres::Error,
        step: &str,
    ) -> Result<(), EngineError> {
        alone!(self, w);
        w.retry_failed(retry, e, step).await
    }

    fn tables(&self) -> Vec<String> {
        vec![self.plan.source(), self.plan.shadow(), self.plan.old()]
    }

    /// The swap: one transaction with the retry policy. What is left in the log is replayed
    /// under its lock, so the runner catches up right before every attempt: a backlog grown
    /// during a backoff would otherwise hold the application up for its whole replay.
    async fn swap(&mut self) -> Result<(), EngineError> {
        let mut sql = self.plan.swap_sql();
        sql.push(format!(
            "UPDATE lockstep.runs SET step = 'swapped', status = 'running', updated_at = now() WHERE id = {}",
            lit(&self.run.id)
        ));
        let mut retry = Retry::new(&self.pb.swap);
        self.ctx.progress.step("swap", &self.plan.source());
        loop {
            self.catch_up(false).await?;
            match try_tx(self.client(), &sql, self.pb.swap.lock_timeout_ms).await {
                Ok(()) => break,
                Err(e) => self.retry_failed(&mut retry, e, "swap").await?,
            }
        }
        self.run.step = "swapped".to_string();
        Ok(())
    }

    /// The swap back: one transaction with the retry policy that also records the run as
    /// rolled back.
    async fn swap_back(&mut self, sql: &[String]) -> Result<(), EngineError> {
        let mut all = sql.to_vec();
        all.push(format!(
            "UPDATE lockstep.runs SET step = 'rolled_back', status = 'rolled_back', updated_at = now() WHERE id = {}",
            lit(&self.run.id)
        ));
        self.with_retry(&all, "swap").await?;
        self.run.step = "rolled_back".to_string();
        Ok(())
    }

    /// Opens the helper connections the playbook's `workers` asks for (once per process):
    /// fewer when the server refuses more, or when there is no way to connect again.
    async fn crew(&mut self) {
        if self.crewed {
            return;
        }
        self.crewed = true;
        if let Ok(r) = self
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .await
        {
            self.pids.push(r.get(0));
        }
        let Some(connect) = self.ctx.connect else {
            return;
        };
        for _ in 1..self.pb.backfill.workers {
            let helper = async {
                let c = connect.connect().await.map_err(|e| e.to_string())?;
                runner_session(&c).await.map_err(|e| e.to_string())?;
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                Ok::<_, String>((c, pid))
            };
            match helper.await {
                Ok((c, pid)) => {
                    self.helpers.push(c);
                    self.pids.push(pid);
                }
                Err(e) => {
                    self.ctx.progress.note(&format!(
                        "could not open another connection ({e}): working with {}",
                        1 + self.helpers.len()
                    ));
                    return;
                }
            }
        }
    }

    /// The upper keys of up to `parts` key ranges of about equal size that together cover
    /// the keys up to `upper` (the last is `upper`), from a sample of the table's pages.
    async fn bounds(
        &self,
        upper: &[String],
        parts: usize,
    ) -> Result<Vec<Vec<String>>, EngineError> {
        // Pages sampled: a few thousand keys place the bounds within a percent or so.
        const SAMPLE_PAGES: f64 = 100.0;
        let mut bounds = Vec::new();
        if parts > 1 {
            let pages: f64 = self
                .client()
                .query_one(&self.plan.pages_sql(), &[])
                .await
                .map_err(dberr("sampling keys"))?
                .get(0);
            let percent = (100.0 * SAMPLE_PAGES / pages.max(1.0)).clamp(0.0001, 100.0);
            let sample: Vec<Vec<String>> = self
                .client()
                .query(
                    &self.plan.sample_keys_sql(percent),
                    &lanes::range_params(None, upper),
                )
                .await
                .map_err(dberr("sampling keys"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            bounds = lanes::split(&sample, parts);
        }
        bounds.push(upper.to_vec());
        Ok(bounds)
    }

    /// How many connections the lanes can have now.
    fn crew_size(&self) -> usize {
        1 + self.helpers.len()
    }

    async fn backfill(&mut self) -> Result<(), EngineError> {
        self.ctx.progress.step(
            "backfill",
            &format!("{} → {}", self.plan.source(), self.plan.shadow()),
        );
        // The upper bound, read after the trigger is active: later rows come through the log.
        let max_key = match self.run.max_key.clone() {
            Some(k) => Some(k),
            None => {
                let row = self
                    .client()
                    .query_opt(&self.plan.max_key_sql(), &[])
                    .await
                    .map_err(dberr("backfill"))?;
                let key: Option<Vec<String>> = row.map(|r| r.get(0));
                if let Some(k) = &key {
                    self.client()
                        .execute(
                            "UPDATE lockstep.runs SET max_key = $2, updated_at = now() WHERE id = $1",
                            &[&self.run.id, k],
                        )
                        .await
                        .map_err(dberr("backfill"))?;
                }
                key
            }
        };
        let Some(max_key) = max_key else {
            return Ok(()); // empty table
        };
        // The lanes table, also for a state table made by an earlier version.
        ensure_state(self.client()).await?;
        let mut lanes = state::lanes(self.client(), &self.run.id)
            .await
            .map_err(dberr("backfill"))?;
        if lanes.is_empty() {
            // More lanes than connections: a connection that is done (or a helper that waited
            // while the application was busy) takes the next. A copy begun by a version
            // without lanes (its high-water mark in lockstep.runs) goes on as one lane.
            let parts = match (self.pb.backfill.workers as usize, &self.run.high_water) {
                (1, _) | (_, Some(_)) => 1,
                (n, None) => 4 * n,
            };
            let bounds = self.bounds(&max_key, parts).await?;
            lanes = state::create_lanes(
                self.client(),
                &self.run.id,
                self.run.high_water.as_deref(),
                &bounds,
            )
            .await
            .map_err(dberr("backfill"))?;
        }
        if lanes.len() > 1 {
            self.crew().await;
        }
        let tally = CopyTally {
            copied: Cell::new(self.run.rows_copied),
            total: self.run.rows_estimate.max(self.run.rows_copied),
            started: Instant::now(),
            at_start: self.run.rows_copied,
            batches: Cell::new(0),
        };
        let first_batch = self
            .run
            .batch_size
            .map_or(self.pb.backfill.batch_size, |b| b.max(1) as u32);
        let queue = lanes.into_iter().map(Job::Copy).collect();
        let tallies = Tallies {
            copy: Some(&tally),
            first_batch,
            verify: None,
        };
        self.in_lanes(queue, &tallies).await?;
        self.run.rows_copied = tally.copied.get();
        Ok(())
    }

    /// Works off `queue` with every connection of the crew at once (as many as there are
    /// jobs): each takes the next job when done with one. The main connection always works;
    /// a helper takes a job only while the application leaves the machine alone (with a
    /// duty cycle below 1): under load the duty cycle is the runner's as a whole, and the
    /// main connection alone keeps to it, replaying the log as it goes. The first failure
    /// stops the others at their next safe point and is returned.
    async fn in_lanes(
        &mut self,
        queue: VecDeque<Job<'_>>,
        tallies: &Tallies<'_>,
    ) -> Result<(), EngineError> {
        let n = self.crew_size().min(queue.len()).max(1);
        let queue = RefCell::new(queue);
        let clients: Vec<&Client> = std::iter::once(self.ctx.client)
            .chain(self.helpers.iter())
            .take(n)
            .collect();
        let tables = self.tables();
        let abort = AtomicBool::new(false);
        let sink: &mut dyn Progress = &mut *self.ctx.progress;
        let progress = RefCell::new(sink);
        let working = AtomicUsize::new(n);
        let pause = PauseGate::default();
        let share = Share {
            pids: &self.pids,
            working: &working,
        };
        let workers: Vec<Worker> = clients
            .into_iter()
            .map(|client| worker!(self, client, (&abort, &pause), &progress, share, &tables))
            .collect();
        let futures: Vec<lanes::LaneFuture<'_, Result<(), EngineError>>> = workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (queue, abort, working) = (&queue, &abort, &working);
                Box::pin(async move {
                    loop {
                        if i > 0 {
                            if let Err(e) = w.wait_for_a_quiet_moment(queue, working).await {
                                abort.store(true, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                        let Some(job) = queue.borrow_mut().pop_front() else {
                            working.fetch_sub(1, Ordering::SeqCst);
                            return Ok(());
                        };
                        if let Err(e) = w.work(i, job, tallies).await {
                            abort.store(true, Ordering::SeqCst);
                            return Err(e);
                        }
                    }
                }) as lanes::LaneFuture<'_, _>
            })
            .collect();
        lanes::first_error(lanes::join_all(futures).await)
    }

    async fn indexes(&mut self) -> Result<(), EngineError> {
        let jobs = self.plan.index_sql();
        let total: usize = jobs.iter().map(|j| j.children.len()).sum();
        if jobs.iter().any(|j| j.children.len() > 1) {
            self.crew().await;
        }
        let mut started = 0;
        for job in &jobs {
            if job.unique {
                self.ctx.progress.step(
                    "replay",
                    "every logged change, so that the copy matches the table at one moment before a unique index is built",
                );
                // The last batch of a catch-up takes every entry its snapshot sees.
                self.catch_up(false).await?;
            }
            if let Some(first) = &job.first {
                self.with_retry(std::slice::from_ref(first), "indexes")
                    .await?;
            }
            // The partitions' builds, in lanes.
            let queue = job
                .children
                .iter()
                .map(|child| {
                    started += 1;
                    Job::Build(started, total, child)
                })
                .collect();
            let tallies = Tallies::default();
            self.in_lanes(queue, &tallies).await?;
            // Then each attaches to the parent's index, one at a time: each takes a lock on it.
            for child in &job.children {
                let Some(attach) = &child.attach else {
                    continue;
                };
                let attached: bool = self
                    .client()
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))",
                        &[&self.plan.rel(&child.name)],
                    )
                    .await
                    .map_err(dberr("indexes"))?
                    .get(0);
                if !attached {
                    self.with_retry(std::slice::from_ref(attach), "indexes")
                        .await?;
                }
            }
            if let Some((sql, rel)) = &job.last {
                if !self.exists(rel).await? {
                    self.with_retry(std::slice::from_ref(sql), "indexes")
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn exists(&self, rel: &str) -> Result<bool, EngineError> {
        Ok(self
            .client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&rel])
            .await
            .map_err(dberr("indexes"))?
            .get(0))
    }

    /// [`Worker::catch_up`] on the main connection; with `hold`, reports what it replayed.
    async fn catch_up(&mut self, hold: bool) -> Result<(), EngineError> {
        let replayed = {
            alone!(self, w);
            w.catch_up(hold).await?
        };
        if replayed > 0 && hold {
            self.ctx
                .progress
                .note(&format!("replay: {replayed} logged changes applied"));
        }
        Ok(())
    }

    /// Gathers the new table's statistics and compares the copy with the table, in key
    /// ranges, spread over the crew. The comparison
    /// ends at the highest key when it starts: rows inserted later came only through the
    /// log, and a comparison chasing the end of a table that grows would not end. A range
    /// that differs is copied again and compared again, up to three times.
    async fn verify(&mut self) -> Result<(), EngineError> {
        self.ctx.progress.step(
            "verify",
            "comparing the copy with the table, range by range",
        );
        // The fast row hash needs PostgreSQL 14 and hashable column types.
        let hash_record = self
            .client()
            .query_one(
                "SELECT current_setting('server_version_num')::int >= 140000",
                &[],
            )
            .await
            .map_err(dberr("verify"))?
            .get::<_, bool>(0);
        let bound: Option<Vec<String>> = self
            .client()
            .query_opt(&self.plan.max_key_sql(), &[])
            .await
            .map_err(dberr("verify"))?
            .map(|r| r.get(0));
        let Some(bound) = bound else {
            // An empty table: only the statistics.
            return self.with_retry(&[self.plan.analyze_sql()], "verify").await;
        };
        self.crew().await;
        // More ranges than connections: the main one, which also replays the log, takes
        // fewer, and helpers only work while the application is quiet.
        let parts = if self.crew_size() > 1 {
            8 * self.crew_size()
        } else {
            1
        };
        let bounds = self.bounds(&bound, parts).await?;
        let mut lower = None;
        // The statistics too, on one connection while the others verify.
        let mut queue = VecDeque::from([Job::Sql(self.plan.analyze_sql(), "verify")]);
        for upper in bounds {
            queue.push_back(Job::Verify((lower.take(), upper.clone())));
            lower = Some(upper);
        }
        let tally = VerifyTally::new(self.run.rows_copied, hash_record);
        let tallies = Tallies {
            verify: Some(&tally),
            ..Tallies::default()
        };
        self.in_lanes(queue, &tallies).await?;
        let differing = tally.differing.take();
        if differing.is_empty() {
            return Ok(());
        }
        alone!(self, w);
        for (lower, upper) in differing {
            let mut attempt = 0;
            loop {
                attempt += 1;
                if attempt > 3 {
                    return Err(EngineError::Mismatch {
                        table: self.plan.source(),
                        from: lower
                            .as_ref()
                            .map_or("the start".into(), |l| format!("({})", l.join(", "))),
                    });
                }
                w.note("a range differs: copying it again");
                w.recopy(lower.as_deref(), &upper).await?;
                if w.compare(lower.as_deref(), &upper, &tally).await?.0 {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// How DDL waits for locks: the playbook's lock_timeout and retry settings, the run, and the
/// tables involved (for naming blockers and cancelling autovacuum).
pub(crate) struct Policy<'p> {
    pub swap: &'p spec::Swap,
    pub run_id: &'p str,
    pub tables: &'p [String],
}

/// Runs `sql` in one transaction with the playbook's lock_timeout, retried with backoff and
/// jitter when a lock is not granted in time; gives up naming the blocking backends.
pub(crate) async fn with_retry(
    client: &Client,
    progress: &mut dyn Progress,
    policy: &Policy<'_>,
    sql: &[String],
    step: &str,
) -> Result<(), EngineError> {
    let mut retry = Retry::new(policy.swap);
    loop {
        match try_tx(client, sql, policy.swap.lock_timeout_ms).await {
            Ok(()) => return Ok(()),
            Err(e) => retry.failed(e, client, progress, policy, step).await?,
        }
    }
}

/// The retry policy of a transaction that needs a lock: after each failure to get it within
/// lock_timeout, cancels blocking autovacuum workers, says who blocks, and waits with
/// exponential backoff and jitter; after the last attempt, gives up naming the blockers.
pub(crate) struct Retry {
    attempt: u32,
    backoff: u64,
    first_backoff: u64,
    /// Batches: a row-lock wait over lock_timeout or a deadlock is retried too, and the count
    /// starts again after each batch that goes through ([`Retry::reset`]).
    batches: bool,
}

impl Retry {
    /// For a transaction that takes locks on the tables (DDL, the swap).
    pub(crate) fn new(swap: &spec::Swap) -> Retry {
        Retry {
            attempt: 0,
            backoff: swap.backoff_ms,
            first_backoff: swap.backoff_ms,
            batches: false,
        }
    }

    /// For the batches of a copy or an update, which meet the application's row locks.
    pub(crate) fn batches(swap: &spec::Swap) -> Retry {
        Retry {
            batches: true,
            ..Retry::new(swap)
        }
    }

    /// After a batch that went through.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.backoff = self.first_backoff;
    }

    /// After an attempt failed with `e`: `Ok(())` to try again (after the backoff), or the
    /// error to give up with.
    pub(crate) async fn failed(
        &mut self,
        e: tokio_postgres::Error,
        client: &Client,
        progress: &mut dyn Progress,
        policy: &Policy<'_>,
        step: &str,
    ) -> Result<(), EngineError> {
        let swap = policy.swap;
        self.attempt += 1;
        let retried = if self.batches {
            is_lock_conflict(&e)
        } else {
            is_lock_timeout(&e)
        };
        if !retried {
            return Err(dberr(step)(e));
        }
        if self.attempt >= swap.attempts {
            return Err(EngineError::SwapGaveUp {
                step: step.to_string(),
                run: policy.run_id.to_string(),
                attempts: swap.attempts,
                lock_timeout_ms: swap.lock_timeout_ms,
                blockers: blockers(client, policy.tables).await,
            });
        }
        if self.batches {
            let who = blockers(client, policy.tables).await;
            progress.note(&format!(
                "{step}: a batch waited more than {} ms for row locks (attempt {}/{}; {who}); retrying",
                swap.lock_timeout_ms, self.attempt, swap.attempts
            ));
        } else {
            // PostgreSQL cancels an autovacuum that blocks a lock request only after
            // deadlock_timeout (1 s by default), longer than our lock_timeout: do it
            // ourselves, except for a wraparound vacuum, which must finish.
            let cancelled = cancel_autovacuum(client, policy.tables).await;
            if cancelled > 0 {
                progress.note(&format!(
                    "{step}: cancelled {cancelled} autovacuum worker(s) holding a lock on the tables (they restart later)"
                ));
            }
            let who = blockers(client, policy.tables).await;
            progress.note(&format!(
                "{step}: lock not granted within {} ms (attempt {}/{}; {who}); retrying",
                swap.lock_timeout_ms, self.attempt, swap.attempts
            ));
        }
        tokio::time::sleep(jitter(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(swap.max_backoff_ms);
        Ok(())
    }
}

/// Runs `body` in a transaction opened with `begin` (`BEGIN …`, and any `SET LOCAL`): commits
/// when it succeeds, rolls back when it fails.
pub(crate) async fn in_transaction<T>(
    client: &Client,
    begin: &str,
    body: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    client.batch_execute(begin).await?;
    match body.await {
        Ok(v) => client.batch_execute("COMMIT").await.map(|()| v),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// `BEGIN` with the playbook's lock_timeout.
pub(crate) fn begin_with_lock_timeout(lock_timeout_ms: u64) -> String {
    format!("BEGIN; SET LOCAL lock_timeout = '{lock_timeout_ms}ms'")
}

/// Runs `sql` in one transaction after `SET LOCAL lock_timeout`; a single statement that
/// cannot run in a transaction block (`… CONCURRENTLY …`) runs alone under the timeout.
pub(crate) async fn try_tx(
    client: &Client,
    sql: &[String],
    lock_timeout_ms: u64,
) -> Result<(), tokio_postgres::Error> {
    if sql.len() == 1 && sql[0].contains(" CONCURRENTLY ") {
        client
            .batch_execute(&format!("SET lock_timeout = '{lock_timeout_ms}ms'"))
            .await?;
        let r = client.batch_execute(&sql[0]).await;
        client.batch_execute("RESET lock_timeout").await?;
        return r;
    }
    let mut body = format!("BEGIN;\nSET LOCAL lock_timeout = '{lock_timeout_ms}ms';\n");
    for s in sql {
        body.push_str(s);
        body.push_str(";\n");
    }
    body.push_str("COMMIT;");
    let r = client.batch_execute(&body).await;
    if r.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    r
}

/// The tables (and their partitions) of `tables`, as a CTE `lockstep_involved(oid)`; `$1` is
/// the array of qualified names.
const INVOLVED_CTE: &str = "WITH lockstep_named AS (SELECT to_regclass(n) AS oid FROM unnest($1::text[]) n),
     lockstep_involved AS (SELECT oid FROM lockstep_named WHERE oid IS NOT NULL
         UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent IN (SELECT oid FROM lockstep_named))";

/// Cancels autovacuum workers (not wraparound ones) holding locks on `tables` (and their
/// partitions).
pub(crate) async fn cancel_autovacuum(client: &Client, tables: &[String]) -> u64 {
    client
        .query_one(
            &format!(
                "{INVOLVED_CTE}
                 SELECT count(*) FILTER (WHERE pg_cancel_backend(a.pid))
                 FROM pg_stat_activity a
                 WHERE a.backend_type = 'autovacuum worker'
                   AND a.query NOT LIKE '%to prevent wraparound%'
                   AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation'
                               AND l.relation IN (SELECT oid FROM lockstep_involved))"
            ),
            &[&tables],
        )
        .await
        .map_or(0, |r| r.get::<_, i64>(0).max(0) as u64)
}

/// The backends holding locks on `tables` (and their partitions), for messages.
pub(crate) async fn blockers(client: &Client, tables: &[String]) -> String {
    let rows = client
        .query(
            &format!(
                "{INVOLVED_CTE}
                 SELECT DISTINCT a.pid, coalesce(a.usename::text, a.backend_type, '?'), coalesce(a.state, '?'),
                        coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0),
                        left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80), l.mode
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.granted AND l.pid <> pg_backend_pid() AND l.locktype = 'relation'
                   AND l.relation IN (SELECT oid FROM lockstep_involved)"
            ),
            &[&tables],
        )
        .await;
    match rows {
        Ok(rows) if !rows.is_empty() => rows
            .iter()
            .map(|r| {
                format!(
                    "blocked by backend pid {} (user {}, {}, transaction open {} s, holding {}, running `{}`)",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, String>(5),
                    r.get::<_, String>(4)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no blocking backend seen any more".to_string(),
    }
}

/// Waits until the transactions of this database that hold a snapshot now have ended;
/// after a second, says which ones it waits for.
pub(crate) async fn wait_for_older_transactions(
    client: &Client,
    progress: &mut dyn Progress,
    run_id: &str,
    stop: &AtomicBool,
) -> Result<(), EngineError> {
    let since: String = client
        .query_one("SELECT clock_timestamp()::text", &[])
        .await
        .map_err(dberr("indexes"))?
        .get(0);
    let started = Instant::now();
    let mut noted = false;
    loop {
        let rows = client
            .query(
                "SELECT pid, coalesce(state, '?'), extract(epoch FROM now() - xact_start)::bigint,
                        left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 80)
                 FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend' AND backend_xmin IS NOT NULL
                   AND xact_start < $1::text::timestamptz
                 ORDER BY xact_start LIMIT 3",
                &[&since],
            )
            .await
            .map_err(dberr("indexes"))?;
        if rows.is_empty() {
            if noted {
                let _ = state::set_status(client, run_id, "running", None).await;
            }
            return Ok(());
        }
        if !noted && started.elapsed() >= Duration::from_secs(1) {
            let who = rows
                .iter()
                .map(|r| {
                    format!(
                        "backend pid {} ({}, transaction open {} s, `{}`)",
                        r.get::<_, i32>(0),
                        r.get::<_, String>(1),
                        r.get::<_, i64>(2),
                        r.get::<_, String>(3)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let msg = format!("index builds wait for older transactions to end: {who}");
            progress.note(&msg);
            let _ = state::set_status(client, run_id, "running", Some(&msg)).await;
            noted = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stop.load(Ordering::SeqCst) {
            return Err(EngineError::Stopped(run_id.to_string()));
        }
    }
}

/// The size of the next batch: one that takes about `target_ms`, at most double or half
/// the last one, between 100 and 200,000 rows.
pub(crate) fn next_batch_size(batch: u32, elapsed: Duration, target_ms: u64) -> u32 {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms <= 0.0 {
        return batch;
    }
    let ideal = f64::from(batch) * target_ms as f64 / ms;
    (ideal.clamp(f64::from(batch) / 2.0, f64::from(batch) * 2.0) as u32).clamp(100, 200_000)
}

/// The runner's backends, which are not the application, and how many of them work at
/// once: together they keep to the duty cycle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share<'a> {
    pub pids: &'a [i32],
    /// How many lanes are at work now (a lane that has run out of work stops counting).
    pub working: &'a AtomicUsize,
}

/// One lane at work.
static ONE: AtomicUsize = AtomicUsize::new(1);

impl Share<'_> {
    /// A runner with one connection.
    pub(crate) const ALONE: Share<'static> = Share {
        pids: &[],
        working: &ONE,
    };

    fn lanes(&self) -> f64 {
        self.working.load(Ordering::SeqCst).max(1) as f64
    }
}

/// After a batch of `rows` that took `elapsed`: rests as `duty_cycle` asks, then waits as
/// `max_rows_per_second` and `max_replica_lag` ask (the triggers keep capturing meanwhile).
/// With several lanes, `max_rows_per_second` is shared among them.
pub(crate) async fn pace(
    client: &Client,
    progress: &mut dyn Progress,
    (run_id, stop, share): (&str, &AtomicBool, Share<'_>),
    settings: &spec::Backfill,
    (rows, elapsed): (i64, Duration),
) -> Result<(), EngineError> {
    rest(client, settings, elapsed, share).await;
    stopped(stop, run_id)?;
    if settings.max_rows_per_second > 0 {
        let per_lane = settings.max_rows_per_second as f64 / share.lanes();
        let should_take = Duration::from_secs_f64(rows.max(0) as f64 / per_lane);
        if should_take > elapsed {
            throttle(
                client,
                progress,
                run_id,
                stop,
                "max_rows_per_second",
                should_take - elapsed,
            )
            .await?;
        }
    }
    if let Some(max_lag) = settings.max_replica_lag_ms {
        loop {
            let lag = replica_lag_ms(client).await;
            if lag <= max_lag {
                break;
            }
            throttle(
                client,
                progress,
                run_id,
                stop,
                &format!("replica lag {lag} ms > {max_lag} ms"),
                Duration::from_secs(1),
            )
            .await?;
        }
    }
    Ok(())
}

/// After work that took `elapsed`, rests as `duty_cycle` asks, but only while the
/// application is busy: some client backend other than the runner's is running a statement
/// or ran one in the last second. On an idle database the runner works flat out. With
/// several lanes at work, each takes its share: together they work `duty_cycle` of the time
/// one connection would. `duty_cycle = 1` never rests, with any number of lanes.
pub(crate) async fn rest(
    client: &Client,
    settings: &spec::Backfill,
    elapsed: Duration,
    share: Share<'_>,
) {
    if settings.duty_cycle >= 1.0 {
        return;
    }
    let duty = settings.duty_cycle / share.lanes();
    if busy(client, share.pids).await {
        let rest = elapsed.as_secs_f64() * (1.0 - duty) / duty;
        tokio::time::sleep(Duration::from_secs_f64(rest.min(60.0))).await;
    }
}

/// Whether the application is busy: some client backend of the database other than the
/// runner's (`pids`) is running a statement or ran one in the last second.
pub(crate) async fn busy(client: &Client, pids: &[i32]) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                   AND pid <> ALL($1::int[]) AND datname = current_database()
                   AND (state <> 'idle' OR state_change > now() - interval '1 second'))",
            &[&pids],
        )
        .await
        .map_or(true, |r| r.get::<_, bool>(0))
}

/// Records why the copy is slowed and sleeps `pause` (Ctrl-C is honoured after it).
pub(crate) async fn throttle(
    client: &Client,
    progress: &mut dyn Progress,
    run_id: &str,
    stop: &AtomicBool,
    why: &str,
    pause: Duration,
) -> Result<(), EngineError> {
    let _ = client
        .execute(
            "UPDATE lockstep.runs SET throttle = $2 WHERE id = $1",
            &[&run_id, &why],
        )
        .await;
    if pause > Duration::from_millis(500) {
        progress.note(&format!("copy throttled: {why}"));
    }
    tokio::time::sleep(pause).await;
    stopped(stop, run_id)
}

/// `Err(Stopped)` once Ctrl-C asked to stop.
pub(crate) fn stopped(stop: &AtomicBool, run_id: &str) -> Result<(), EngineError> {
    if stop.load(Ordering::SeqCst) {
        return Err(EngineError::Stopped(run_id.to_string()));
    }
    Ok(())
}

/// The worst replay lag of the replicas, in milliseconds (0 without replicas).
pub(crate) async fn replica_lag_ms(client: &Client) -> u64 {
    client
        .query_one(
            "SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::bigint FROM pg_stat_replication",
            &[],
        )
        .await
        .map_or(0, |r| r.get::<_, i64>(0).max(0) as u64)
}

/// How the lanes of a copy say a pause once: the run shows `paused` when every lane at
/// work waits (not when the first one does, while another still finishes its batch), and
/// `running` again when the first goes on.
#[derive(Debug, Default)]
pub(crate) struct PauseGate {
    waiting: AtomicUsize,
    announced: AtomicBool,
}

/// Waits while `lockstep pause` is in force for the run (the triggers keep capturing).
/// With `lanes` (the gate the lanes share, and how many are at work), the wait is announced
/// once for all of them; without, this connection is the only one.
pub(crate) async fn wait_while_paused(
    client: &Client,
    progress: &mut dyn Progress,
    (run_id, stop): (&str, &AtomicBool),
    lanes: Option<(&PauseGate, &AtomicUsize)>,
) -> Result<(), EngineError> {
    let (alone, one) = (PauseGate::default(), AtomicUsize::new(1));
    let (gate, working) = lanes.unwrap_or((&alone, &one));
    let mut waiting = false;
    let result = async {
        loop {
            let paused: bool = client
                .query_one("SELECT paused FROM lockstep.runs WHERE id = $1", &[&run_id])
                .await
                .map_err(dberr("state"))?
                .get(0);
            if !paused {
                return Ok(());
            }
            if !waiting {
                waiting = true;
                gate.waiting.fetch_add(1, Ordering::SeqCst);
            }
            if gate.waiting.load(Ordering::SeqCst) >= working.load(Ordering::SeqCst)
                && !gate.announced.swap(true, Ordering::SeqCst)
            {
                progress.note(
                    "copy paused (triggers keep capturing changes); `lockstep resume` continues it",
                );
                let _ = state::set_status(client, run_id, "paused", None).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            stopped(stop, run_id)?;
        }
    }
    .await;
    if waiting {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() && gate.announced.swap(false, Ordering::SeqCst) {
            progress.note("copy resumed");
            let _ = state::set_status(client, run_id, "running", None).await;
        }
    }
    result
}

/// `ms` with ±25 % jitter.
pub(crate) fn jitter(ms: u64) -> Duration {
    let spread = ms / 4;
    let low = ms - spread;
    Duration::from_millis(low + fastrand::u64(0..=spread * 2))
}

/// What a run looks like now, for `lockstep status`.
#[derive(Debug, Clone)]
pub struct Status {
    pub run: Run,
    /// The pid of the backend holding the run lock, when a runner is alive.
    pub runner_pid: Option<i32>,
    pub replica_lag_ms: Option<i64>,
    /// Changes logged and not replayed yet (a partition run before its swap).
    pub logged: Option<i64>,
    /// During a partition run's copy: its lanes, how many are copied and how many under way.
    pub lanes: Option<LaneCounts>,
}

/// How far the lanes of a copy are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneCounts {
    pub total: i64,
    pub copied: i64,
    pub under_way: i64,
}

/// Reads a run's status (any run, from any connection).
pub async fn status(client: &Client, id: Option<&str>) -> Result<Status, EngineError> {
    if !state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        return Err(EngineError::NoState);
    }
    let run = state::load(client, id)
        .await
        .map_err(dberr("reading lockstep.runs"))?
        .ok_or_else(|| EngineError::NoRun(id.unwrap_or("(latest)").to_string()))?;
    let runner_pid = state::lock_held(client, &run.table_name)
        .await
        .map_err(dberr("pg_locks"))?;
    let replica_lag_ms = client
        .query_one(
            "SELECT (max(extract(epoch FROM replay_lag) * 1000))::bigint FROM pg_stat_replication",
            &[],
        )
        .await
        .ok()
        .and_then(|r| r.get::<_, Option<i64>>(0));
    let log = plan::log_table(&run.id);
    let logged = match client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&log])
        .await
    {
        Ok(r) if r.get::<_, bool>(0) => client
            .query_one(&format!("SELECT count(*) FROM {log}"), &[])
            .await
            .ok()
            .map(|r| r.get::<_, i64>(0)),
        _ => None,
    };
    let lanes = match client
        .query_one("SELECT to_regclass('lockstep.lanes') IS NOT NULL", &[])
        .await
    {
        Ok(r) if r.get::<_, bool>(0) => client
            .query_one(
                "SELECT count(*),
                        count(*) FILTER (WHERE h.high_water = h.upper_key),
                        count(*) FILTER (WHERE h.high_water IS DISTINCT FROM p.upper_key
                                           AND h.high_water IS DISTINCT FROM h.upper_key)
                 FROM lockstep.lanes h
                 LEFT JOIN lockstep.lanes p ON p.run_id = h.run_id AND p.lane = h.lane - 1
                 WHERE h.run_id = $1",
                &[&run.id],
            )
            .await
            .ok()
            .map(|r| LaneCounts {
                total: r.get(0),
                copied: r.get(1),
                under_way: r.get(2),
            })
            .filter(|l| l.total > 0),
        _ => None,
    };
    Ok(Status {
        run,
        runner_pid,
        replica_lag_ms,
        logged,
        lanes,
    })
}

/// Pauses or un-pauses the copy of a running run.
pub async fn set_paused(
    client: &Client,
    id: Option<&str>,
    paused: bool,
) -> Result<String, EngineError> {
    let st = status(client, id).await?;
    let finished = ["done", "finalized", "rolled_back"].contains(&st.run.step.as_str());
    if st.run.kind != "partition" && finished {
        return Err(EngineError::State(format!(
            "run {} is {}: there is nothing to pause",
            st.run.id,
            st.run.step.replace('_', " ")
        )));
    }
    if st.run.kind == "partition" && step_index(&st.run.step) >= step_index("backfill") {
        return Err(EngineError::State(format!(
            "run {} is past the copy (step `{}`): there is nothing to pause",
            st.run.id, st.run.step
        )));
    }
    state::set_paused(client, &st.run.id, paused)
        .await
        .map_err(dberr("state"))?;
    Ok(st.run.id)
}
