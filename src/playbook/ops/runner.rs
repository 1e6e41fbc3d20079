//! Runs an in-place plan with the engine's guarantees: every DDL under the playbook's
//! lock_timeout with retries and backoff (giving up with the blocking backends named),
//! concurrent index builds that survive long transactions and INVALID leftovers, batches that
//! are throttled, pausable and checkpointed, a checkpoint per step (in the step's own
//! transaction where the step is one), Ctrl-C at safe points, resume, rollback (each
//! completed step undone in reverse order) and finalize.

use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::{Action, Batches, Extra, IndexInfo, OpPlan};
use crate::playbook::engine::{self, dberr, hold_point, Ctx, EngineError, Finished, Policy};
use crate::playbook::facts::{self, Facts};
use crate::playbook::plan::lit;
use crate::playbook::spec::{self, AnyPlaybook, Op, OpPlaybook};
use crate::playbook::state::{self, Run};

/// Reads what the kind needs beyond the table's facts.
async fn read_extra(client: &Client, pb: &OpPlaybook, f: &Facts) -> Result<Extra, EngineError> {
    let err = dberr("preflight");
    let mut x = Extra {
        server_version: client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(&err)?
            .get(0),
        ..Extra::default()
    };
    // The first column of `sql`'s rows, for the table's oid.
    let texts = |sql: &'static str| async move {
        Ok::<Vec<String>, tokio_postgres::Error>(
            client
                .query(sql, &[&f.oid])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        )
    };
    x.constraints = texts("SELECT conname::text FROM pg_constraint WHERE conrelid = $1")
        .await
        .map_err(&err)?;
    if f.partitioned {
        x.partitions = texts(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1 ORDER BY 1",
        )
        .await
        .map_err(&err)?;
    }
    x.taken = facts::taken(client, f, &super::wanted_names(pb, f))
        .await
        .map_err(&err)?;
    match &pb.op {
        Op::ForeignKey { references, .. } => {
            if let Some(r) = client
                .query_opt(
                    "SELECT c.oid::regclass::text,
                            coalesce((SELECT array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
                              FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p'), '{}')
                     FROM pg_class c WHERE c.oid = to_regclass($1)",
                    &[&references.to_string()],
                )
                .await
                .map_err(&err)?
            {
                x.referenced = Some((r.get(0), r.get(1)));
            }
        }
        Op::Reindex { name } | Op::DropIndex { name } => {
            if let Some(r) = client
                .query_opt(
                    "SELECT pg_get_indexdef(i.indexrelid),
                            (SELECT conname::text FROM pg_constraint WHERE conindid = i.indexrelid LIMIT 1),
                            ic.relkind = 'I'
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = $1 AND ic.relname = $2",
                    &[&f.oid, name],
                )
                .await
                .map_err(&err)?
            {
                x.index = Some(IndexInfo {
                    name: name.clone(),
                    definition: r.get(0),
                    constraint: r.get(1),
                    partitioned: r.get(2),
                });
            }
        }
        Op::ColumnType { column, .. } => {
            x.column_views = client
                .query(
                    "SELECT DISTINCT v.oid::regclass::text
                     FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid JOIN pg_class v ON v.oid = rw.ev_class
                     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND a.attname = $2 AND v.oid <> $1",
                    &[&f.oid, column],
                )
                .await
                .map_err(&err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            x.column_checks = client
                .query(
                    "SELECT con.conname::text, pg_get_constraintdef(con.oid)
                     FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
                     WHERE con.conrelid = $1 AND con.contype = 'c' AND a.attname = $2",
                    &[&f.oid, column],
                )
                .await
                .map_err(&err)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            x.column_sequence = client
                .query_opt(
                    "SELECT s.seqrelid::regclass::text, format_type(s.seqtypid, NULL)
                     FROM pg_sequence s WHERE s.seqrelid = to_regclass(pg_get_serial_sequence($1, $2))
                       AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = $3 AND a.attname = $2 AND a.attidentity <> '')",
                    &[&f.qualified(), column, &f.oid],
                )
                .await
                .map_err(&err)?
                .map(|r| (r.get(0), r.get(1)));
        }
        _ => {}
    }
    Ok(x)
}

/// Reads the table and returns the plan and the refusals (no writes).
pub async fn prepare(
    client: &Client,
    pb: &OpPlaybook,
    run_id: &str,
) -> Result<(OpPlan, Vec<String>), EngineError> {
    let f = read_facts(client, pb).await?;
    prepare_from(client, pb, &f, run_id).await
}

/// The table's facts (a partitioned table only for `index`).
async fn read_facts(client: &Client, pb: &OpPlaybook) -> Result<Facts, EngineError> {
    Ok(facts::read_table(client, &pb.table, matches!(pb.op, Op::Index { .. })).await?)
}

/// [`prepare`] with the table's facts already read.
async fn prepare_from(
    client: &Client,
    pb: &OpPlaybook,
    f: &Facts,
    run_id: &str,
) -> Result<(OpPlan, Vec<String>), EngineError> {
    let extra = read_extra(client, pb, f).await?;
    let (plan, mut refusals) = super::plan(pb, f, &extra, run_id);
    if refusals.is_empty() {
        refusals.extend(check_expressions(client, pb, f).await);
    }
    Ok((plan, refusals))
}

/// The playbook's SQL expressions, tried against the table without reading or changing a row
/// (`LIMIT 0`, and an `EXPLAIN` for the backfill's UPDATE, rolled back), so a typo is a
/// refusal naming the key instead of a run that fails half way.
async fn check_expressions(client: &Client, pb: &OpPlaybook, f: &Facts) -> Vec<String> {
    let t = f.qualified();
    let mut probes: Vec<(&str, String)> = Vec::new();
    match &pb.op {
        Op::Check { expression, .. } => probes.push((
            "check.expression",
            format!("SELECT ({expression})::boolean FROM {t} LIMIT 0"),
        )),
        Op::NotNull {
            backfill: Some(b), ..
        } => probes.push((
            "not_null.backfill",
            format!("SELECT ({b}) FROM {t} LIMIT 0"),
        )),
        Op::ColumnType {
            column,
            new_type,
            using,
            reverse_using,
        } => {
            let c = crate::sql::ir::quote_ident(column);
            let old = f.column(column).map_or("text", |c| c.type_sql.as_str());
            let value = using.clone().unwrap_or_else(|| format!("{c}::{new_type}"));
            probes.push((
                "column_type.using",
                format!("SELECT ({value})::{new_type} FROM {t} LIMIT 0"),
            ));
            if let Some(r) = reverse_using {
                // The reverse expression reads the column with its new type.
                probes.push((
                    "column_type.reverse_using",
                    format!(
                        "SELECT ({r})::{old} FROM (SELECT ({value})::{new_type} AS {c} FROM {t} LIMIT 0) AS {}",
                        crate::sql::ir::quote_ident(&f.name)
                    ),
                ));
            }
        }
        Op::Index { tail, .. } => {
            if let Some((_, pred)) = tail.split_once(" WHERE ") {
                probes.push((
                    "index.where",
                    format!("SELECT 1 FROM {t} WHERE {pred} LIMIT 0"),
                ));
            }
        }
        Op::Backfill { set, predicate, .. } => probes.push((
            "update",
            format!(
                "EXPLAIN UPDATE {t} SET {set}{}",
                predicate
                    .as_ref()
                    .map_or(String::new(), |p| format!(" WHERE {p}"))
            ),
        )),
        _ => {}
    }
    let mut out = Vec::new();
    for (key, sql) in probes {
        // One statement through the extended protocol: an expression that smuggles in a
        // `; COMMIT; …` of its own is rejected instead of run.
        let r = match client
            .batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL lock_timeout = '{}ms'",
                pb.swap.lock_timeout_ms
            ))
            .await
        {
            Ok(()) => client.execute(sql.as_str(), &[]).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let _ = client.batch_execute("ROLLBACK").await;
        if let Err(e) = r {
            let msg = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            out.push(format!("`{key}` does not work on {t}: {msg}"));
        }
    }
    out
}

/// Starts a new run of an in-place playbook and runs every step.
pub async fn start(
    ctx: &mut Ctx<'_>,
    pb: OpPlaybook,
    playbook_text: &str,
) -> Result<Finished, EngineError> {
    let f = read_facts(ctx.client, &pb).await?;
    let table_name = f.qualified();
    let run_id = engine::claim(ctx.client, &table_name, f.oid).await?;
    ctx.progress
        .step("preflight", &format!("{} on {table_name}", pb.kind));
    let (plan, refusals) = prepare_from(ctx.client, &pb, &f, &run_id).await?;
    if !refusals.is_empty() {
        return Err(EngineError::Refused(refusals));
    }
    engine::ensure_state(ctx.client).await?;
    let plan_json = serde_json::to_value(&plan).map_err(|e| EngineError::State(e.to_string()))?;
    ctx.client
        .execute(
            "INSERT INTO lockstep.runs (id, kind, table_name, playbook, plan, step, status, rows_estimate)
             VALUES ($1, $2, $3, $4, $5, 'created', 'running', $6)",
            &[&run_id, &pb.kind, &table_name, &playbook_text, &plan_json, &plan.rows_estimate],
        )
        .await
        .map_err(dberr("recording the run"))?;
    let run = state::load(ctx.client, Some(&run_id))
        .await
        .map_err(dberr("reading the run"))?
        .ok_or_else(|| EngineError::NoRun(run_id.clone()))?;
    let mut r = Runner { ctx, pb, plan, run };
    r.forward().await
}

struct Runner<'a, 'b> {
    ctx: &'b mut Ctx<'a>,
    pb: OpPlaybook,
    plan: OpPlan,
    run: Run,
}

/// Opens a stored in-place run (the run lock is already held).
fn open<'a, 'b>(ctx: &'b mut Ctx<'a>, run: Run) -> Result<Runner<'a, 'b>, EngineError> {
    let pb = match spec::parse_any(&run.playbook, "playbook stored in lockstep.runs")? {
        AnyPlaybook::Op(o) => o,
        AnyPlaybook::Partition(_) => {
            return Err(EngineError::State(format!(
                "run {} is recorded as kind `{}` but holds a partition playbook",
                run.id, run.kind
            )))
        }
    };
    let plan: OpPlan = serde_json::from_value(run.plan.clone()).map_err(|e| {
        EngineError::State(format!(
            "the stored plan of run {} cannot be read: {e}",
            run.id
        ))
    })?;
    Ok(Runner { ctx, pb, plan, run })
}

/// Continues an in-place run from its last checkpoint.
pub async fn resume(ctx: &mut Ctx<'_>, run: Run) -> Result<Finished, EngineError> {
    let mut r = open(ctx, run)?;
    match r.run.step.as_str() {
        "rolled_back" | "finalized" => {
            return Err(EngineError::State(format!(
                "run {} is {}; there is nothing to resume",
                r.run.id,
                r.run.step.replace('_', " ")
            )))
        }
        "done" => {
            return Err(EngineError::State(format!(
                "run {} is complete; {}",
                r.run.id,
                r.after_word()
            )))
        }
        _ => {}
    }
    if r.run.status == "rolling_back" {
        return Err(EngineError::State(format!(
            "run {} was being rolled back; `lockstep rollback {}` finishes that",
            r.run.id, r.run.id
        )));
    }
    state::set_status(r.ctx.client, &r.run.id, "running", None)
        .await
        .map_err(dberr("state"))?;
    state::set_paused(r.ctx.client, &r.run.id, false)
        .await
        .map_err(dberr("state"))?;
    r.forward().await
}

/// Undoes every completed step of an in-place run, newest first.
pub async fn rollback(ctx: &mut Ctx<'_>, run: Run) -> Result<Finished, EngineError> {
    let mut r = open(ctx, run)?;
    match r.run.step.as_str() {
        "finalized" => {
            return Err(EngineError::State(format!(
                "run {} is finalized: there is nothing to roll back to",
                r.run.id
            )))
        }
        "rolled_back" => {
            return Err(EngineError::State(format!(
                "run {} is already rolled back",
                r.run.id
            )))
        }
        _ => {}
    }
    state::set_status(r.ctx.client, &r.run.id, "rolling_back", None)
        .await
        .map_err(dberr("state"))?;
    // The completed steps, and the one in progress when it may have half run: a step that is
    // one transaction was all or nothing, any other (batches, concurrent builds) may have
    // left work behind, and its undo is idempotent.
    let mut done = r.completed();
    if r.plan
        .steps
        .get(done)
        .is_some_and(|s| !matches!(s.actions.as_slice(), [Action::Tx(_)]))
    {
        done += 1;
    }
    let kept: Vec<String> = r.plan.steps[..done]
        .iter()
        .filter_map(|s| s.kept.clone())
        .collect();
    for i in (0..done).rev() {
        let step = r.plan.steps[i].clone();
        let previous = if i == 0 {
            "created".to_string()
        } else {
            r.plan.steps[i - 1].name.clone()
        };
        r.ctx.progress.step(
            "rollback",
            &format!(
                "undo `{}`{}",
                step.name,
                if step.swap { " (swap back)" } else { "" }
            ),
        );
        let name = format!("rollback {}", step.name);
        r.run_actions(&step.undo, &name, &previous).await?;
    }
    state::set_step(r.ctx.client, &r.run.id, "rolled_back", "rolled_back", None)
        .await
        .map_err(dberr("state"))?;
    let id = r.run.id.clone();
    let message = if kept.is_empty() {
        format!("run {id}: rolled back: {} is as it was", r.plan.table)
    } else {
        format!(
            "run {id}: rolled back on {}, except: {}",
            r.plan.table,
            kept.join("; ")
        )
    };
    Ok(Finished { message, id })
}

/// Runs the plan's finalize actions (after the run completed).
pub async fn finalize(ctx: &mut Ctx<'_>, run: Run) -> Result<Finished, EngineError> {
    let mut r = open(ctx, run)?;
    if r.run.step == "finalized" {
        return Err(EngineError::State(format!(
            "run {} is already finalized",
            r.run.id
        )));
    }
    if r.run.step != "done" {
        return Err(EngineError::State(format!(
            "run {} is at step `{}`: finalize is for completed runs (resume it first)",
            r.run.id, r.run.step
        )));
    }
    let actions = r.plan.finalize.clone();
    r.ctx.progress.step("finalize", &r.plan.table);
    r.run_actions(&actions, "finalize", "finalized").await?;
    state::set_step(r.ctx.client, &r.run.id, "finalized", "finalized", None)
        .await
        .map_err(dberr("state"))?;
    let id = r.run.id.clone();
    Ok(Finished {
        message: format!("run {id}: finalized: no way back from here"),
        id,
    })
}

impl Runner<'_, '_> {
    fn client(&self) -> &Client {
        self.ctx.client
    }

    /// How many steps are complete.
    fn completed(&self) -> usize {
        match self.run.step.as_str() {
            "created" => 0,
            "done" | "finalized" => self.plan.steps.len(),
            s => self
                .plan
                .steps
                .iter()
                .position(|x| x.name == s)
                .map_or(0, |i| i + 1),
        }
    }

    /// What the user can do once every step ran.
    fn after_word(&self) -> String {
        let id = &self.run.id;
        if self.plan.steps.iter().any(|s| s.swap) {
            format!("the old column is kept current until `lockstep finalize {id}`; `lockstep rollback {id}` swaps back")
        } else if self.plan.finalize.is_empty() {
            format!("`lockstep rollback {id}` would undo it")
        } else {
            format!("`lockstep rollback {id}` restores the old values; `lockstep finalize {id}` drops the undo data")
        }
    }

    fn check_stop(&self) -> Result<(), EngineError> {
        engine::stopped(self.ctx.stop, &self.run.id)
    }

    async fn forward(&mut self) -> Result<Finished, EngineError> {
        let result = self.forward_steps().await;
        let (status, message) = match &result {
            Ok(()) => ("done", None),
            Err(EngineError::Stopped(_)) => {
                ("stopped", Some("stopped at a safe point".to_string()))
            }
            Err(e) => ("failed", Some(e.to_string())),
        };
        let _ = state::set_status(self.client(), &self.run.id, status, message.as_deref()).await;
        result?;
        let id = self.run.id.clone();
        Ok(Finished {
            message: format!(
                "run {id}: {} done on {}. {}",
                self.plan.kind,
                self.plan.table,
                self.after_word()
            ),
            id,
        })
    }

    async fn forward_steps(&mut self) -> Result<(), EngineError> {
        for i in self.completed()..self.plan.steps.len() {
            self.check_stop()?;
            let step = self.plan.steps[i].clone();
            self.ctx.progress.step(&step.name, &step.what);
            if step.swap {
                hold_point("before-swap").await;
            }
            self.run_actions(&step.actions, &step.name, &step.name)
                .await?;
            if step.swap {
                hold_point("after-swap").await;
            }
        }
        state::set_step(self.client(), &self.run.id, "done", "running", None)
            .await
            .map_err(dberr("checkpoint"))?;
        self.run.step = "done".into();
        Ok(())
    }

    /// Runs `actions`, then records `checkpoint` as the run's step: inside the last
    /// transaction when the actions end with one, so a crash leaves all of it or none.
    async fn run_actions(
        &mut self,
        actions: &[Action],
        step: &str,
        checkpoint: &str,
    ) -> Result<(), EngineError> {
        let record = format!(
            "UPDATE lockstep.runs SET step = {}, max_key = NULL, high_water = NULL, updated_at = now() WHERE id = {}",
            lit(checkpoint),
            lit(&self.run.id)
        );
        let mut recorded = false;
        for (i, a) in actions.iter().enumerate() {
            self.check_stop()?;
            match a {
                Action::Tx(sql) => {
                    let mut sql = sql.clone();
                    if i + 1 == actions.len() {
                        sql.push(record.clone());
                        recorded = true;
                    }
                    self.with_retry(&sql, step).await?;
                }
                Action::BuildIndex { index, sql } => self.build_index(index, sql, step).await?,
                Action::Concurrent(sql) => self.concurrent(sql, step).await?,
                Action::DropInvalid { table, prefix } => {
                    let rows = self
                        .client()
                        .query(
                            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                             WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid AND left(c.relname, length($2)) = $2",
                            &[table, prefix],
                        )
                        .await
                        .map_err(dberr(step))?;
                    for r in rows {
                        let ix: String = r.get(0);
                        self.ctx.progress.note(&format!(
                            "{ix} is an INVALID leftover of an interrupted run: dropping it"
                        ));
                        self.concurrent(&format!("DROP INDEX CONCURRENTLY IF EXISTS {ix}"), step)
                            .await?;
                    }
                }
                Action::Batches(b) => self.batches(b).await?,
                Action::Drain(sql) => self.drain(sql, step).await?,
                Action::Guard { sql, message } => {
                    let n: i64 = self
                        .client()
                        .query_one(sql.as_str(), &[])
                        .await
                        .map_err(dberr(step))?
                        .get(0);
                    if n > 0 {
                        return Err(EngineError::State(format!("{step}: {n} {message}")));
                    }
                }
            }
        }
        if !recorded {
            self.client()
                .batch_execute(&record)
                .await
                .map_err(dberr("checkpoint"))?;
        }
        self.run.step = checkpoint.to_string();
        self.run.max_key = None;
        self.run.high_water = None;
        Ok(())
    }

    async fn with_retry(&mut self, sql: &[String], step: &str) -> Result<(), EngineError> {
        let policy = Policy {
            swap: &self.pb.swap,
            run_id: &self.run.id,
            tables: &self.plan.tables,
        };
        engine::with_retry(self.ctx.client, &mut *self.ctx.progress, &policy, sql, step).await
    }

    /// A statement that cannot run in a transaction block. It waits for older transactions
    /// itself, so it runs after they ended, without lock_timeout: its SHARE UPDATE EXCLUSIVE
    /// lock does not conflict with reads and writes.
    async fn concurrent(&mut self, sql: &str, step: &str) -> Result<(), EngineError> {
        engine::wait_for_older_transactions(
            self.ctx.client,
            &mut *self.ctx.progress,
            &self.run.id,
            self.ctx.stop,
        )
        .await?;
        let c = self.client();
        c.batch_execute("SET lock_timeout = 0")
            .await
            .map_err(dberr(step))?;
        let r = c.batch_execute(sql).await;
        let reset = c.batch_execute("RESET lock_timeout").await;
        r.and(reset).map_err(dberr(step))
    }

    /// Builds `index` (qualified) with `sql` unless a valid one exists; an INVALID leftover
    /// is dropped first. Progress from `pg_stat_progress_create_index` (when a second
    /// connection is available).
    async fn build_index(&mut self, index: &str, sql: &str, step: &str) -> Result<(), EngineError> {
        let state: Option<bool> = self
            .client()
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&index],
            )
            .await
            .map_err(dberr(step))?
            .map(|r| r.get(0));
        if state == Some(true) {
            return Ok(());
        }
        if state == Some(false) {
            self.ctx.progress.note(&format!(
                "{index} is INVALID (an interrupted build): dropping and building it again"
            ));
            self.concurrent(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"), step)
                .await?;
        }
        engine::wait_for_older_transactions(
            self.ctx.client,
            &mut *self.ctx.progress,
            &self.run.id,
            self.ctx.stop,
        )
        .await?;
        let c = self.ctx.client;
        c.batch_execute("SET lock_timeout = 0")
            .await
            .map_err(dberr(step))?;
        let pid: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(dberr(step))?
            .get(0);
        let build = c.batch_execute(sql);
        tokio::pin!(build);
        let r = match self.ctx.monitor {
            None => build.await,
            Some(m) => loop {
                tokio::select! {
                    r = &mut build => break r,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        if let Ok(Some(row)) = m.query_opt(
                            "SELECT phase, coalesce(blocks_done, 0) + coalesce(tuples_done, 0),
                                    coalesce(blocks_total, 0) + coalesce(tuples_total, 0)
                             FROM pg_stat_progress_create_index WHERE pid = $1",
                            &[&pid],
                        ).await {
                            let (phase, done, total): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
                            self.ctx.progress.step(step, &format!("{index}: {phase}"));
                            if total > 0 {
                                self.ctx.progress.copy(done, total, 0.0);
                            }
                        }
                    }
                }
            },
        };
        let reset = c.batch_execute("RESET lock_timeout").await;
        r.and(reset).map_err(dberr(step))?;
        hold_point("indexes").await;
        Ok(())
    }

    /// Runs `sql` (returning rows handled and rows changed) until it handles none, each time
    /// in its own transaction under lock_timeout, retrying on lock conflicts.
    async fn drain(&mut self, sql: &str, step: &str) -> Result<(), EngineError> {
        let (mut handled, mut changed) = (0i64, 0i64);
        let mut give_way = engine::Retry::batches(&self.pb.swap);
        loop {
            self.check_stop()?;
            let c = self.client();
            let begin = engine::begin_with_lock_timeout(self.pb.swap.lock_timeout_ms);
            match engine::in_transaction(c, &begin, c.query_one(sql, &[])).await {
                Ok(row) => {
                    let (h, ch): (i64, i64) = (row.get(0), row.get(1));
                    if h == 0 {
                        break;
                    }
                    handled += h;
                    changed += ch;
                    give_way.reset();
                }
                Err(e) => {
                    let policy = Policy {
                        swap: &self.pb.swap,
                        run_id: &self.run.id,
                        tables: &self.plan.tables,
                    };
                    give_way
                        .failed(e, self.ctx.client, &mut *self.ctx.progress, &policy, step)
                        .await?;
                }
            }
        }
        if handled > 0 {
            self.ctx.progress.note(&format!(
                "{step}: restored {changed} row(s); {} changed by the application since were left as they are",
                handled - changed
            ));
        }
        Ok(())
    }

    /// Keyset batches, each with its checkpoint in its own transaction.
    async fn batches(&mut self, b: &Batches) -> Result<(), EngineError> {
        let max_key = match self.run.max_key.clone() {
            Some(k) => Some(k),
            None => {
                let key: Option<Vec<String>> = self
                    .client()
                    .query_opt(b.max_key_sql.as_str(), &[])
                    .await
                    .map_err(dberr(&b.label))?
                    .map(|r| r.get(0));
                if let Some(k) = &key {
                    self.client()
                        .execute(
                            "UPDATE lockstep.runs SET max_key = $2, rows_copied = 0, updated_at = now() WHERE id = $1",
                            &[&self.run.id, k],
                        )
                        .await
                        .map_err(dberr(&b.label))?;
                    self.run.rows_copied = 0;
                }
                key
            }
        };
        let Some(max_key) = max_key else {
            return Ok(()); // an empty table
        };
        let settings = self.pb.backfill.clone();
        let mut batch = self
            .run
            .batch_size
            .map_or(settings.batch_size, |b| b.max(1) as u32);
        let mut high = self.run.high_water.clone();
        let mut changed = self.run.rows_copied;
        let total = self.run.rows_estimate.max(changed);
        let started = Instant::now();
        let at_start = changed;
        let mut give_way = engine::Retry::batches(&self.pb.swap);
        let mut batches = 0u64;
        let mut paused = true;
        let mut walked = 0i64;
        loop {
            self.check_stop()?;
            if paused {
                self.wait_while_paused().await?;
            }
            let t0 = Instant::now();
            let sql = if high.is_none() {
                &b.first_sql
            } else {
                &b.next_sql
            }
            .replace("{limit}", &batch.to_string());
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
            for k in &max_key {
                params.push(k);
            }
            if let Some(h) = &high {
                for k in h {
                    params.push(k);
                }
            }
            let rate = (changed - at_start) as f64 / started.elapsed().as_secs_f64().max(0.001);
            match self.one_batch(&sql, &params, batch as i32, rate).await {
                Ok((n, last, p)) => {
                    give_way.reset();
                    paused = p;
                    let Some(last) = last else { break };
                    changed += n;
                    walked += i64::from(batch);
                    high = Some(last);
                }
                Err(e) => {
                    let policy = Policy {
                        swap: &self.pb.swap,
                        run_id: &self.run.id,
                        tables: &self.plan.tables,
                    };
                    give_way
                        .failed(
                            e,
                            self.ctx.client,
                            &mut *self.ctx.progress,
                            &policy,
                            &b.label,
                        )
                        .await?;
                    continue;
                }
            }
            batches += 1;
            let elapsed = t0.elapsed();
            let done = i64::from(batch);
            batch = engine::next_batch_size(batch, elapsed, settings.target_batch_ms);
            let rate = (changed - at_start) as f64 / started.elapsed().as_secs_f64().max(0.001);
            self.ctx
                .progress
                .copy(walked.min(total.max(walked)), total.max(walked), rate);
            if batches == 1 {
                hold_point("backfill").await;
            }
            engine::pace(
                self.ctx.client,
                &mut *self.ctx.progress,
                (&self.run.id, self.ctx.stop, engine::Share::ALONE),
                &settings,
                (done, elapsed),
            )
            .await?;
        }
        self.run.rows_copied = changed;
        Ok(())
    }

    /// One batch and its checkpoint in one transaction: (rows changed, last key, paused).
    async fn one_batch(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        batch_size: i32,
        rate: f64,
    ) -> Result<(i64, Option<Vec<String>>, bool), tokio_postgres::Error> {
        let c = self.client();
        let begin = engine::begin_with_lock_timeout(self.pb.swap.lock_timeout_ms);
        engine::in_transaction(c, &begin, async {
            let row = c.query_one(sql, params).await?;
            let n: i64 = row.get(0);
            let last: Option<Vec<String>> = row.get(1);
            let mut paused = false;
            if let Some(l) = &last {
                paused = c
                    .query_one(
                        "UPDATE lockstep.runs SET high_water = $2, rows_copied = rows_copied + $3,
                             batch_size = $4, rows_per_sec = $5, throttle = NULL, updated_at = now()
                         WHERE id = $1 RETURNING paused",
                        &[&self.run.id, l, &n, &batch_size, &rate],
                    )
                    .await?
                    .get(0);
            }
            Ok((n, last, paused))
        })
        .await
    }

    async fn wait_while_paused(&mut self) -> Result<(), EngineError> {
        engine::wait_while_paused(
            self.ctx.client,
            &mut *self.ctx.progress,
            (&self.run.id, self.ctx.stop),
            None,
        )
        .await
    }
}
