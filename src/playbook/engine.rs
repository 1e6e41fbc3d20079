//! The playbook commands (`run`, `resume`, `rollback`, `finalize`, `pause`, `status`,
//! `plan`): each loads or starts a run, checks that its state allows the command (one check,
//! [`check`], for every kind), and hands the run to its engine: the shadow rebuild engine
//! (`shadow/`) or the step engine (`steps/`).

use tokio_postgres::Client;

use super::exec::{dberr, Exec};
pub use super::exec::{Ctx, EngineError, Finished, Progress, Silent};
use super::hooks::{Dispatcher, EventKind, RunFacts};
use super::kinds::KindName;
use super::lock::{self, Holder};
use super::plan::AnyPlan;
use super::settings::Backfill;
use super::shadow;
use super::spec::{self, Playbook};
use super::state::{self, Control, Controls, LaneCounts, Status};
use super::steps;
use crate::db::connect::ConnectOptions;
use crate::db::connect::Host;

/// Where a run is, in its engine's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStep {
    Shadow(shadow::Step),
    Steps(steps::At),
}

/// A run as loaded from the state table, every stored value parsed.
#[derive(Debug, Clone)]
pub struct Run {
    pub row: state::Row,
    pub kind: KindName,
    pub plan: AnyPlan,
    pub step: RunStep,
    pub status: Status,
}

impl Run {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    /// The step as stored.
    pub fn step_name(&self) -> &str {
        &self.row.step
    }

    /// Every step ran (and, for kinds that swap, the swap is validated), finalized or not.
    pub fn is_complete(&self) -> bool {
        matches!(self.phase(), Phase::Complete | Phase::Finalized)
    }

    /// The run was rolled back.
    pub fn is_rolled_back(&self) -> bool {
        self.phase() == Phase::RolledBack
    }

    /// Parses a stored run; an unknown value is an error naming the run.
    fn parse(row: state::Row) -> Result<Run, EngineError> {
        let bad = |what: &str, value: &str| {
            EngineError::State(format!(
                "run {} has {what} `{value}` in lockstep.runs, which this version of lockstep does not know (was it started by a newer one?)",
                row.id
            ))
        };
        let kind = KindName::parse(&row.kind).ok_or_else(|| bad("kind", &row.kind))?;
        let status = Status::parse(&row.status).ok_or_else(|| bad("status", &row.status))?;
        let plan = kind.load_plan(row.plan.clone()).map_err(|e| {
            EngineError::State(format!(
                "the stored plan of run {} cannot be read: {e}",
                row.id
            ))
        })?;
        let step = match &plan {
            AnyPlan::Shadow(_) => shadow::Step::parse(&row.step).map(RunStep::Shadow),
            AnyPlan::Steps(p) => steps::At::parse(&row.step, p).map(RunStep::Steps),
        }
        .ok_or_else(|| bad("step", &row.step))?;
        Ok(Run {
            kind,
            status,
            plan,
            step,
            row,
        })
    }

    /// The playbook the run was started with (its settings apply to every command).
    fn playbook(&self) -> Result<Playbook, EngineError> {
        Ok(spec::parse(
            &self.row.playbook,
            "playbook stored in lockstep.runs",
        )?)
    }

    fn phase(&self) -> Phase {
        match self.step {
            RunStep::Shadow(s) => match s {
                shadow::Step::Validated => Phase::Complete,
                shadow::Step::Finalized => Phase::Finalized,
                shadow::Step::RolledBack => Phase::RolledBack,
                _ => Phase::Working,
            },
            RunStep::Steps(a) => match a {
                steps::At::Done => Phase::Complete,
                steps::At::Finalized => Phase::Finalized,
                steps::At::RolledBack => Phase::RolledBack,
                steps::At::Created | steps::At::After(_) => Phase::Working,
            },
        }
    }

    /// What a complete run is, and what can follow.
    fn complete_words(&self) -> (&'static str, String) {
        let id = self.id();
        match &self.plan {
            AnyPlan::Shadow(_) => (
                "swapped and validated",
                format!("`lockstep finalize {id}` drops the old table, `lockstep rollback {id}` swaps back"),
            ),
            AnyPlan::Steps(p) => ("complete", after_steps(p, id)),
        }
    }
}

/// What the user can do once every step of `p` ran.
fn after_steps(p: &steps::StepPlan, id: &str) -> String {
    if p.swaps() {
        format!("the old column is kept current until `lockstep finalize {id}`; `lockstep rollback {id}` swaps back")
    } else if p.finalize.is_empty() && p.discard.is_empty() {
        format!("`lockstep rollback {id}` would undo it")
    } else {
        format!("`lockstep rollback {id}` restores the old values; `lockstep finalize {id}` drops the undo data")
    }
}

/// How far a run is, in every engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not every step ran yet.
    Working,
    Complete,
    Finalized,
    RolledBack,
}

/// A command on a stored run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Resume,
    Rollback,
    Finalize,
    Pause,
    /// `lockstep set`: change a setting of a working run.
    Set,
    /// `lockstep swap`: swap a run waiting in manual mode.
    Swap,
}

/// Whether the run's state allows `command`; the error says why not and what to do.
fn check(run: &Run, command: Command) -> Result<(), EngineError> {
    let id = run.id();
    let refuse = |m: String| Err(EngineError::State(m));
    let phase = run.phase();
    match (command, phase) {
        (_, Phase::RolledBack) if command == Command::Rollback => {
            refuse(format!("run {id} is already rolled back"))
        }
        (_, Phase::Finalized) if command == Command::Finalize => {
            refuse(format!("run {id} is already finalized"))
        }
        (Command::Rollback, Phase::Finalized) if run.status == Status::RolledBack => refuse(
            format!("run {id} is already rolled back (and finalized: its undo data is dropped)"),
        ),
        (Command::Rollback, Phase::Finalized) => refuse(format!(
            "run {id} is finalized: {}",
            match run.plan {
                AnyPlan::Shadow(_) =>
                    "the original table is gone, there is nothing to swap back to",
                AnyPlan::Steps(_) => "there is nothing to roll back to",
            }
        )),
        // A rollback keeps the undo data; finalize drops it.
        (Command::Finalize, Phase::RolledBack) if matches!(&run.plan, AnyPlan::Steps(p) if !p.discard.is_empty()) => {
            Ok(())
        }
        (Command::Resume | Command::Pause, Phase::Finalized | Phase::RolledBack) => {
            refuse(format!(
                "run {id} is {}; there is nothing to {}",
                run.step_name().replace('_', " "),
                if command == Command::Resume {
                    "resume"
                } else {
                    "pause"
                }
            ))
        }
        (Command::Resume, Phase::Complete) => {
            let (done, after) = run.complete_words();
            refuse(format!("run {id} is {done}; {after}"))
        }
        (Command::Resume, Phase::Working) if run.status == Status::RollingBack => refuse(format!(
            "run {id} was being rolled back; `lockstep rollback {id}` finishes that"
        )),
        (Command::Finalize, Phase::Working | Phase::RolledBack) => refuse(format!(
            "run {id} is at step `{}`: finalize is for {} runs (resume it first)",
            run.step_name(),
            match run.plan {
                AnyPlan::Shadow(_) => "swapped",
                AnyPlan::Steps(_) => "completed",
            }
        )),
        (Command::Set | Command::Swap, Phase::Complete | Phase::Finalized | Phase::RolledBack) => {
            refuse(format!(
                "run {id} is {}: there is nothing left to {}",
                run.step_name().replace('_', " "),
                if command == Command::Set {
                    "change"
                } else {
                    "swap"
                }
            ))
        }
        (Command::Swap, Phase::Working) if !run.kind.swaps() => refuse(format!(
            "run {id} is of kind `{}`, which has no swap",
            run.kind
        )),
        (Command::Pause, Phase::Complete) => refuse(format!(
            "run {id} is {}: there is nothing to pause",
            run.step_name()
        )),
        (Command::Pause, Phase::Working) => match run.step {
            RunStep::Shadow(s) if s >= shadow::Step::Backfill => refuse(format!(
                "run {id} is past the copy (step `{}`): there is nothing to pause",
                run.step_name()
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Reads the table, checks it, and returns the plan and the reasons to refuse it (no
/// writes). `run_id` names the objects a run would create; `connect` opens more
/// connections (logical capture needs a replication connection: it is tried here).
pub async fn prepare(
    client: &Client,
    connect: Option<&ConnectOptions>,
    pb: &Playbook,
    run_id: &str,
) -> Result<(AnyPlan, Vec<String>), EngineError> {
    let (mut plan, mut refusals) = pb.kind.prepare(&pb.common, client, run_id).await?;
    if let AnyPlan::Shadow(p) = &mut plan {
        if p.logical.is_some() {
            if let Some(why) = super::shadow::replication_unavailable(connect).await {
                p.without_logical(why, &pb.common, &mut refusals);
            }
        }
    }
    Ok((plan, refusals))
}

/// Takes the run lock for `table_name`, checks no unfinished run exists, and returns a new
/// run id.
async fn claim(ctx: &Ctx<'_>, table_name: &str, oid: u32) -> Result<String, EngineError> {
    let client = ctx.client;
    lock::acquire(client, table_name, false).await?;
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
    Ok(client
        .query_one(
            "SELECT $1::oid::text || '_' || to_char(clock_timestamp(), 'YYYYMMDD_HH24MISS_MS')",
            &[&oid],
        )
        .await
        .map_err(dberr("run id"))?
        .get(0))
}

/// Starts a new run of `pb` (its text is kept for resume) and runs it: up to the swap and
/// the validation after it, or every step.
pub async fn start(
    ctx: &mut Ctx<'_>,
    pb: Playbook,
    playbook_text: &str,
) -> Result<Finished, EngineError> {
    lock::refuse_pooler(ctx.client, ctx.monitor).await?;
    let (table_name, oid) = super::facts::resolve(ctx.client, &pb.common.table).await?;
    let run_id = claim(ctx, &table_name, oid).await?;
    ctx.progress
        .step("preflight", &format!("{} on {table_name}", pb.kind_name()));
    let (plan, refusals) = prepare(ctx.client, ctx.connect, &pb, &run_id).await?;
    if !refusals.is_empty() {
        return Err(EngineError::Refused(refusals));
    }
    // Warnings only: the statements the change would break (see `queries/`).
    if let Some(check) = super::queries::check(ctx.client, &pb.common.table, &plan).await {
        for n in check.notes() {
            ctx.progress.note(&format!("note: {n}"));
        }
        for w in check.warnings() {
            ctx.progress.note(&format!("warning: {w}"));
        }
    }
    // Only now, so that a refused run leaves nothing behind.
    state::ensure(ctx.client)
        .await
        .map_err(dberr("creating the state table"))?;
    let plan_json = serde_json::to_value(&plan).map_err(|e| EngineError::State(e.to_string()))?;
    state::insert(
        ctx.client,
        &state::NewRun {
            id: &run_id,
            kind: pb.kind_name().name(),
            table_name: &table_name,
            playbook: playbook_text,
            plan: &plan_json,
            rows_estimate: plan.rows_estimate(),
        },
    )
    .await
    .map_err(dberr("recording the run"))?;
    let run = load(ctx.client, Some(&run_id)).await?;
    let (client, monitor) = (ctx.client, ctx.monitor);
    lock::beating(
        client,
        monitor,
        &table_name,
        &run_id,
        forward(ctx, &pb, run),
    )
    .await
}

/// The latest run on the table of `pb`, if any (a fleet's record on a target).
pub async fn latest_on_table(client: &Client, pb: &Playbook) -> Result<Option<Run>, EngineError> {
    if !state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        return Ok(None);
    }
    let (table_name, _) = super::facts::resolve(client, &pb.common.table).await?;
    state::latest_for_table(client, &table_name)
        .await
        .map_err(dberr("reading lockstep.runs"))?
        .map(Run::parse)
        .transpose()
}

/// Loads a run (the latest when `id` is `None`).
async fn load(client: &Client, id: Option<&str>) -> Result<Run, EngineError> {
    if !state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        return Err(EngineError::NoState);
    }
    let row = state::load(client, id)
        .await
        .map_err(dberr("reading lockstep.runs"))?
        .ok_or_else(|| EngineError::NoRun(id.unwrap_or("(latest)").to_string()))?;
    Run::parse(row)
}

/// Loads a run and takes its table's run lock.
async fn load_locked(ctx: &Ctx<'_>, id: Option<&str>) -> Result<Run, EngineError> {
    lock::refuse_pooler(ctx.client, ctx.monitor).await?;
    let run = load(ctx.client, id).await?;
    lock::acquire(ctx.client, &run.row.table_name, ctx.takeover).await?;
    state::ensure(ctx.client)
        .await
        .map_err(dberr("updating the state tables"))?;
    Ok(run)
}

/// The facts of `run` every hook event carries.
fn run_facts(ctx: &Ctx<'_>, run: &Run) -> RunFacts {
    let mut f = RunFacts {
        run_id: run.id().to_string(),
        kind: run.kind.name().to_string(),
        table: run.row.table_name.clone(),
        ..RunFacts::default()
    };
    if let Some(c) = ctx.connect {
        f.database = c.dbname().to_string();
        f.host = match c.host() {
            Host::Tcp(h) => h.clone(),
            Host::Socket(dir) => dir.display().to_string(),
        };
        f.port = c.port();
        f.user = c.user().to_string();
    }
    f
}

/// The execution context of `run` with the playbook's settings.
async fn exec<'e>(ctx: &'e mut Ctx<'_>, pb: &Playbook, run: &Run) -> Exec<'e> {
    let mut exec = Exec::new(
        ctx,
        run.id(),
        (&pb.common.backfill, &pb.common.swap),
        run.plan.tables(),
    );
    exec.own_connections().await;
    exec
}

/// Runs the run's remaining steps and records how it ended.
async fn forward(ctx: &mut Ctx<'_>, pb: &Playbook, run: Run) -> Result<Finished, EngineError> {
    let client = ctx.client;
    let id = run.id().to_string();
    let copy = run.row.copy.clone();
    let hooks = Dispatcher::start(&pb.common.hooks, run_facts(ctx, &run));
    let result = match (&run.plan, run.step) {
        (AnyPlan::Shadow(p), RunStep::Shadow(s)) => {
            let e = exec(ctx, pb, &run).await.with_hooks(hooks.as_ref());
            shadow::forward(e, p, s, copy).await
        }
        (AnyPlan::Steps(p), RunStep::Steps(a)) => {
            let e = exec(ctx, pb, &run).await.with_hooks(hooks.as_ref());
            steps::forward(e, p, a, copy).await
        }
        _ => Err(mismatch(&run)),
    };
    if let Some(h) = hooks {
        let (kind, message) = match &result {
            Ok(()) => (EventKind::Finished, String::new()),
            Err(EngineError::Stopped(_)) => (EventKind::Stopped, String::new()),
            Err(e) => (EventKind::Failed, e.to_string()),
        };
        for note in h.finish(kind, &message).await {
            ctx.progress.note(&note);
        }
    }
    let (status, message) = match &result {
        Ok(()) => (
            match run.plan {
                AnyPlan::Shadow(_) => Status::Swapped,
                AnyPlan::Steps(_) => Status::Done,
            },
            None,
        ),
        Err(EngineError::Stopped(_)) => {
            (Status::Stopped, Some("stopped at a safe point".to_string()))
        }
        Err(e) => (Status::Failed, Some(e.to_string())),
    };
    let _ = state::set_status(client, &id, status, message.as_deref()).await;
    result?;
    let message = match &run.plan {
        AnyPlan::Shadow(_) => format!(
            "run {id}: swapped. The old table is kept for a way back until `lockstep finalize {id}`; `lockstep rollback {id}` brings it up to date and swaps back."
        ),
        AnyPlan::Steps(p) => format!(
            "run {id}: {} done on {}. {}",
            p.kind,
            p.table,
            after_steps(p, &id)
        ),
    };
    Ok(Finished { id, message })
}

fn mismatch(run: &Run) -> EngineError {
    EngineError::State(format!(
        "run {} is recorded as kind `{}` but its plan is of another engine",
        run.id(),
        run.kind
    ))
}

/// Continues a run from its last checkpoint.
pub async fn resume(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx, id).await?;
    check(&run, Command::Resume)?;
    let pb = run.playbook()?;
    state::set_status(ctx.client, run.id(), Status::Running, None)
        .await
        .map_err(dberr("state"))?;
    state::set_paused(ctx.client, run.id(), false)
        .await
        .map_err(dberr("state"))?;
    let (client, monitor) = (ctx.client, ctx.monitor);
    let (table, id) = (run.row.table_name.clone(), run.id().to_string());
    lock::beating(client, monitor, &table, &id, forward(ctx, &pb, run)).await
}

/// Undoes a run: a shadow rebuild drops the copy before the swap and swaps back after it; a
/// run of steps undoes every completed step, newest first.
pub async fn rollback(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx, id).await?;
    // A rollback stopped between its swap back and dropping the reverse slot: the slot goes
    // now (it would hold back WAL for good).
    if let (AnyPlan::Shadow(p), Phase::RolledBack) = (&run.plan, run.phase()) {
        if shadow::drop_reverse_slot(ctx.client, p).await? {
            return Ok(Finished {
                id: run.id().to_string(),
                message: format!(
                    "run {}: already rolled back; the reverse slot its rollback left is dropped",
                    run.id()
                ),
            });
        }
    }
    check(&run, Command::Rollback)?;
    let (client, monitor) = (ctx.client, ctx.monitor);
    let table = run.row.table_name.clone();
    let id = run.id().to_string();
    lock::beating(client, monitor, &table, &id, roll_back(ctx, run)).await
}

async fn roll_back(ctx: &mut Ctx<'_>, run: Run) -> Result<Finished, EngineError> {
    let pb = run.playbook()?;
    let id = run.id().to_string();
    let message = match (&run.plan, run.step) {
        (AnyPlan::Shadow(p), RunStep::Shadow(s)) => {
            shadow::rollback(exec(ctx, &pb, &run).await, p, s).await?;
            format!("run {id}: rolled back: the original table is in place")
        }
        (AnyPlan::Steps(p), RunStep::Steps(a)) => {
            let undone = steps::rollback(exec(ctx, &pb, &run).await, p, a).await?;
            let mut m = match (undone.kept.is_empty(), undone.restored.is_empty()) {
                (true, true) => format!("run {id}: rolled back: {} is as it was", p.table),
                (true, false) => format!("run {id}: rolled back on {}", p.table),
                (false, _) => format!(
                    "run {id}: rolled back on {}, except: {}",
                    p.table,
                    undone.kept.join("; ")
                ),
            };
            for r in &undone.restored {
                m.push_str(&format!("\n{r}"));
            }
            if !p.discard.is_empty() {
                m.push_str(&format!("\n`lockstep finalize {id}` drops the undo data"));
            }
            m
        }
        _ => return Err(mismatch(&run)),
    };
    Ok(Finished { id, message })
}

/// After a shadow rebuild's swap: applies the changes made since to the old table, what a
/// rollback does first, without swapping back (the demo compares the two tables after it).
pub async fn sync_back(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx, id).await?;
    check(&run, Command::Rollback)?;
    let (client, monitor) = (ctx.client, ctx.monitor);
    let table = run.row.table_name.clone();
    let id = run.id().to_string();
    let work = async {
        let pb = run.playbook()?;
        match (&run.plan, run.step) {
            (AnyPlan::Shadow(p), RunStep::Shadow(s)) if s >= shadow::Step::Swapped => {
                let message = if p.reverse.is_sync() {
                    format!("run {id}: the old table is kept current by the reverse trigger: nothing to apply")
                } else {
                    let n = shadow::sync_back(exec(ctx, &pb, &run).await, p).await?;
                    format!("run {id}: {n} changes since the swap applied to the old table")
                };
                Ok(Finished {
                    id: id.clone(),
                    message,
                })
            }
            _ => Err(EngineError::State(format!(
                "run {id} has no old table to bring up to date (not a shadow rebuild after its swap)"
            ))),
        }
    };
    lock::beating(client, monitor, &table, run.id(), work).await
}

/// After a run completed: drops what it kept for a way back (the old table, the old
/// column, the undo data).
pub async fn finalize(ctx: &mut Ctx<'_>, id: Option<&str>) -> Result<Finished, EngineError> {
    let run = load_locked(ctx, id).await?;
    check(&run, Command::Finalize)?;
    let (client, monitor) = (ctx.client, ctx.monitor);
    let table = run.row.table_name.clone();
    let id = run.id().to_string();
    lock::beating(client, monitor, &table, &id, finish(ctx, run)).await
}

async fn finish(ctx: &mut Ctx<'_>, run: Run) -> Result<Finished, EngineError> {
    let pb = run.playbook()?;
    let id = run.id().to_string();
    let message = match &run.plan {
        AnyPlan::Shadow(p) => {
            shadow::finalize(exec(ctx, &pb, &run).await, p).await?;
            format!("run {id}: finalized: the old table is dropped")
        }
        AnyPlan::Steps(p) if run.phase() == Phase::RolledBack => {
            steps::finalize(exec(ctx, &pb, &run).await, p, true).await?;
            format!("run {id}: finalized: the undo data of the rolled-back run is dropped")
        }
        AnyPlan::Steps(p) => {
            steps::finalize(exec(ctx, &pb, &run).await, p, false).await?;
            format!("run {id}: finalized: no way back from here")
        }
    };
    Ok(Finished { id, message })
}

/// What a run looks like now, for `lockstep status`.
#[derive(Debug, Clone)]
pub struct RunStatus {
    pub run: Run,
    /// The backend holding the run lock (a runner is alive, or its session was left behind).
    pub holder: Option<Holder>,
    pub replica_lag_ms: Option<i64>,
    /// Changes captured and not replayed yet (a shadow rebuild before its swap).
    pub logged: Option<i64>,
    /// After a shadow rebuild's swap: changes since the swap not applied to the old table yet
    /// (`lockstep rollback` applies them first; none with `[swap] reverse = "sync"`).
    pub reverse_backlog: Option<i64>,
    /// During a shadow rebuild's copy: its lanes, how many are copied and under way.
    pub lanes: Option<LaneCounts>,
    /// How a shadow rebuild captures changes.
    pub capture: Option<shadow::CaptureStatus>,
    /// The settings in force: the playbook's, with what `lockstep set` changed.
    pub settings: Backfill,
    /// `[swap] mode = "manual"`.
    pub manual_swap: bool,
    /// What `lockstep set` and `lockstep swap` asked.
    pub controls: Controls,
}

impl RunStatus {
    /// The backend holding the run lock when it is a live runner (not a session left
    /// behind by a runner that is gone).
    pub fn runner(&self) -> Option<&Holder> {
        self.holder.as_ref().filter(|h| h.alive().is_some())
    }

    /// Whether the run waits for a runner: it is working (or paused, or ready to swap) and
    /// no live runner holds its lock.
    pub fn interrupted(&self) -> bool {
        self.runner().is_none()
            && matches!(
                self.run.status,
                Status::Running | Status::Paused | Status::ReadyToSwap
            )
    }
}

/// Reads a run's status (any run, from any connection).
pub async fn status(client: &Client, id: Option<&str>) -> Result<RunStatus, EngineError> {
    let run = load(client, id).await?;
    status_of(client, run, state::replica_lag_ms(client).await).await
}

/// Reads the status of every run, oldest first (none before the first run).
pub async fn status_all(client: &Client) -> Result<Vec<RunStatus>, EngineError> {
    if !state::exists(client)
        .await
        .map_err(dberr("lockstep.runs"))?
    {
        return Ok(Vec::new());
    }
    let rows = state::load_all(client)
        .await
        .map_err(dberr("reading lockstep.runs"))?;
    let lag = state::replica_lag_ms(client).await;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(status_of(client, Run::parse(row)?, lag).await?);
    }
    Ok(out)
}

async fn status_of(
    client: &Client,
    run: Run,
    replica_lag_ms: Option<i64>,
) -> Result<RunStatus, EngineError> {
    let holder = lock::holder(client, &run.row.table_name).await?;
    let (logged, lanes) = match (&run.plan, run.phase()) {
        (AnyPlan::Shadow(p), Phase::Working) => shadow::status(client, p, run.id()).await,
        _ => (None, None),
    };
    let capture = match &run.plan {
        AnyPlan::Shadow(p) => Some(shadow::capture_status(client, p).await),
        _ => None,
    };
    let reverse_backlog = match &run.plan {
        AnyPlan::Shadow(p) => shadow::reverse_backlog(client, p).await,
        _ => None,
    };
    let controls = state::controls(client, run.id())
        .await
        .map_err(dberr("reading lockstep.controls"))?;
    let pb = run.playbook().ok();
    let settings = live_settings(
        pb.as_ref()
            .map_or_else(Backfill::default, |p| p.common.backfill.clone()),
        &controls,
    );
    Ok(RunStatus {
        replica_lag_ms,
        holder,
        logged,
        reverse_backlog,
        lanes,
        capture,
        settings,
        manual_swap: pb.is_some_and(|p| p.common.swap.manual),
        controls,
        run,
    })
}

/// The playbook's settings with what `lockstep set` changed.
pub(crate) fn live_settings(mut b: Backfill, c: &Controls) -> Backfill {
    if let Some(v) = c.max_rows_per_second {
        b.max_rows_per_second = v.max(0) as u64;
    }
    if let Some(v) = c.target_batch_ms {
        b.target_batch_ms = v.max(1) as u64;
    }
    if let Some(v) = c.duty_cycle {
        b.duty_cycle = v;
    }
    b
}

/// Changes a setting of a run while it works (`lockstep set`): its runner picks it up
/// within a second. Returns the run id and whether a runner is alive.
pub async fn set_control(
    client: &Client,
    id: Option<&str>,
    control: Control,
) -> Result<(String, bool), EngineError> {
    let run = load(client, id).await?;
    check(&run, Command::Set)?;
    state::set_control(client, run.id(), control)
        .await
        .map_err(dberr("lockstep.controls"))?;
    let alive = lock::holder(client, &run.row.table_name)
        .await?
        .is_some_and(|h| h.alive().is_some());
    Ok((run.row.id, alive))
}

/// What `lockstep swap` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapRequest {
    pub id: String,
    /// A runner is alive (it swaps within a second, or when it is ready).
    pub alive: bool,
    /// The run already waits, verified and caught up.
    pub ready: bool,
}

/// Asks the runner of a run with `[swap] mode = "manual"` to swap (`lockstep swap`).
pub async fn request_swap(client: &Client, id: Option<&str>) -> Result<SwapRequest, EngineError> {
    let run = load(client, id).await?;
    check(&run, Command::Swap)?;
    if !run.playbook()?.common.swap.manual {
        return Err(EngineError::State(format!(
            "run {} swaps by itself (its playbook has no `[swap] mode = \"manual\"`)",
            run.id()
        )));
    }
    state::request_swap(client, run.id())
        .await
        .map_err(dberr("lockstep.controls"))?;
    let alive = lock::holder(client, &run.row.table_name)
        .await?
        .is_some_and(|h| h.alive().is_some());
    Ok(SwapRequest {
        ready: run.status == Status::ReadyToSwap,
        id: run.row.id,
        alive,
    })
}

/// Pauses or un-pauses the work of a run that can wait (copy, batches, replay).
pub async fn set_paused(
    client: &Client,
    id: Option<&str>,
    paused: bool,
) -> Result<String, EngineError> {
    let run = load(client, id).await?;
    check(&run, Command::Pause)?;
    state::set_paused(client, run.id(), paused)
        .await
        .map_err(dberr("state"))?;
    Ok(run.row.id)
}
