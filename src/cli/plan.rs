use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::lint::fix::unified_diff;
use crate::playbook::ops::{self, Action};
use crate::playbook::{engine, spec};

/// Show what a playbook would do, without changing anything.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the table from the database (no writes), runs the preflight checks, and prints\n\
every step with its SQL, the locks it takes and an estimate of time and disk, then a diff of\n\
the table's definition before and after. Exit 1 when the preflight refuses the conversion.\n\n\
Examples:\n  lockstep plan playbooks/partition-events-monthly.toml --database-url postgres://app@db/app\n  DATABASE_URL=postgres://app@db/app lockstep plan playbooks/column-type-orders-id-bigint.toml"
)]
pub struct PlanArgs {
    /// The playbook file (TOML)
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

fn human_bytes(b: i64) -> String {
    let b = b.max(0) as f64;
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Rows per second one connection copies while it works, for estimates (measured on 2
/// cores with `sh bench/partition_speed.sh`, 5 million rows): on a quiet database, 5.6 s;
/// under a workload that keeps both cores busy, 13.5 s at a duty cycle of 0.6, that is about
/// 620,000 rows per second of work, the rest of the time resting.
const QUIET_ROWS_PER_SEC: f64 = 900_000.0;
const BUSY_ROWS_PER_SEC: f64 = 620_000.0;

/// How much faster two or more connections copy on a quiet database (the same benchmark:
/// 4.0 s to 4.3 s instead of 5.6 s; the copies share the WAL and the disk).
const LANES_SPEEDUP: f64 = 1.3;

pub fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let pb = match spec::load_any(&args.playbook) {
        Ok(spec::AnyPlaybook::Partition(p)) => p,
        Ok(spec::AnyPlaybook::Op(o)) => return op_plan(&args, color, &o),
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let pbr = &pb;
    let Some((plan, refusals)) = read_plan(&args.db, color, |client| async move {
        engine::prepare(&client, pbr, "plan").await
    })?
    else {
        return Ok(EXIT_ERROR);
    };
    let f = &plan.facts;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let secs = f.rows_estimate as f64 / BUSY_ROWS_PER_SEC / pb.backfill.duty_cycle;
    let quiet = f.rows_estimate as f64
        / QUIET_ROWS_PER_SEC
        / if pb.backfill.workers > 1 {
            LANES_SPEEDUP
        } else {
            1.0
        };
    writeln!(
        out,
        "plan: {} → partitioned by {} into {} partitions\n  about {} rows, {} on disk; the copy needs about {} more and takes about {:.0} s while the application keeps the server busy (one connection at {:.0}k rows/s, working {:.0}% of the time), {:.0} s on a quiet database ({} connection{})\n",
        plan.source(),
        plan.partition_by,
        plan.names.partitions.len(),
        f.rows_estimate,
        human_bytes(f.total_bytes),
        human_bytes(f.total_bytes),
        secs.max(1.0),
        BUSY_ROWS_PER_SEC / 1000.0,
        pb.backfill.duty_cycle * 100.0,
        quiet.max(1.0),
        pb.backfill.workers,
        if pb.backfill.workers == 1 { "" } else { "s" },
    )?;
    write_preflight(&mut out, &refusals)?;
    if plan.key != f.pk_columns {
        writeln!(
            out,
            "note: the primary key becomes ({}): PostgreSQL needs the partition column in every unique key of a partitioned table",
            plan.key.join(", ")
        )?;
    }
    let lt = pb.swap.lock_timeout_ms;
    let steps: Vec<(&str, String, Vec<String>)> = vec![
        (
            "shadow",
            format!("create the partitioned copy (ACCESS SHARE on {} while reading its definition; lock_timeout {lt} ms)", plan.source()),
            plan.shadow_sql(),
        ),
        (
            "capture",
            format!("a trigger logs the key of every changed row to {} (SHARE ROW EXCLUSIVE on {} for milliseconds; lock_timeout {lt} ms, retried)", plan.log(), plan.source()),
            plan.capture_sql(),
        ),
        (
            "backfill",
            format!(
                "copy in primary-key order into the unindexed copy, {} rows per batch at first, each batch its own transaction (no row locks), in {} key range(s) at once over as many connections; about {:.0} s",
                pb.backfill.batch_size,
                pb.backfill.workers,
                secs.max(1.0)
            ),
            vec![
                plan.batch_end_sql(false, pb.backfill.batch_size),
                plan.batch_sql(false),
            ],
        ),
        (
            "indexes",
            format!("the primary key, then each index, built per partition of the copy ({} at once) and attached (SHARE on the copy's partition only: nothing else writes to it); unique indexes after replaying the log", pb.backfill.workers),
            plan.index_sql()
                .into_iter()
                .flat_map(|job| {
                    job.first
                        .into_iter()
                        .chain(job.children.into_iter().flat_map(|c| c.build.into_iter().chain(c.attach)))
                        .chain(job.last.map(|(sql, _)| sql))
                })
                .collect(),
        ),
        (
            "replay",
            "apply the logged changes in batches, each one REPEATABLE READ transaction (no locks beyond reads and the copy's rows); again between verified ranges and before the swap".into(),
            [plan.replay_begin_sql(), plan.replay_batch_sql(pb.backfill.batch_size)].into_iter()
                .chain(plan.replay_sql(true))
                .collect(),
        ),
        (
            "verify",
            format!("statistics for the new table, meanwhile compare row counts and row hashes range by range ({} at once), in one snapshot per range, leaving out keys still in the log (no locks beyond reads); re-copy differing ranges", pb.backfill.workers),
            vec![plan.analyze_sql(), plan.verify_sql(false, true)],
        ),
        (
            "swap",
            format!("one transaction: ACCESS EXCLUSIVE on both tables while the last logged changes are applied and the names move (milliseconds); lock_timeout {lt} ms, up to {} attempts with backoff", pb.swap.attempts),
            plan.swap_sql(),
        ),
        (
            "validate",
            "validate re-pointed foreign keys (SHARE UPDATE EXCLUSIVE on the referencing tables)".into(),
            plan.validate_sql(),
        ),
        (
            "finalize (separate command)",
            "drop the reverse trigger and the old table".into(),
            plan.finalize_sql(),
        ),
    ];
    for (i, (name, what, sql)) in steps.iter().enumerate() {
        writeln!(out, "\n{}. {name}: {what}", i + 1)?;
        for s in sql {
            for line in s.lines() {
                writeln!(out, "     {line}")?;
            }
        }
    }
    writeln!(out, "\ndefinition before → after:")?;
    write!(
        out,
        "{}",
        unified_diff(
            &plan.source(),
            &plan.definition_before(),
            &plan.definition_after()
        )
    )?;
    out.flush()?;
    Ok(if refusals.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

/// One action as the plan shows it: its SQL, and how it runs when that is not obvious.
fn action_lines(a: &Action) -> Vec<String> {
    match a {
        Action::Tx(sql) => {
            let mut v = vec!["BEGIN; SET LOCAL lock_timeout …".to_string()];
            v.extend(sql.iter().map(|s| format!("{s};")));
            v.push("COMMIT;".into());
            v
        }
        Action::BuildIndex { sql, .. } => vec![format!("{sql};  -- an INVALID leftover is dropped first")],
        Action::Concurrent(sql) => vec![format!("{sql};")],
        Action::DropInvalid { prefix, .. } => vec![format!(
            "-- DROP INDEX CONCURRENTLY each INVALID index named {prefix}…"
        )],
        Action::Batches(b) => vec![
            format!("-- in batches, each its own transaction, until the range up to the highest key now is done:"),
            format!("{};", b.next_sql),
        ],
        Action::Drain(sql) => vec!["-- repeated until no row is left:".into(), format!("{sql};")],
        Action::Guard { sql, message } => vec![format!("{sql};  -- must be 0, else: {message}")],
    }
}

/// `preflight: ok`, or `preflight: refused` and the reasons.
fn write_preflight(out: &mut impl Write, refusals: &[String]) -> io::Result<()> {
    if refusals.is_empty() {
        return writeln!(out, "preflight: ok");
    }
    writeln!(out, "preflight: refused")?;
    for r in refusals {
        writeln!(out, "  - {r}")?;
    }
    Ok(())
}

/// Writes the actions' lines, indented.
fn write_actions(out: &mut impl Write, actions: &[Action]) -> io::Result<()> {
    for a in actions {
        for l in action_lines(a) {
            for line in l.lines() {
                writeln!(out, "     {line}")?;
            }
        }
    }
    Ok(())
}

/// Connects and runs `prepare`; `None` after printing the error (connection, catalog).
fn read_plan<T, F, Fut>(db: &DbArgs, color: bool, prepare: F) -> anyhow::Result<Option<T>>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, engine::EngineError>>,
{
    let conn = match db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(None);
        }
    };
    let result = online::block_on(async {
        let client = conn.connect().await.map_err(|e| e.to_string())?;
        prepare(client).await.map_err(|e| e.to_string())
    })?;
    match result {
        Ok(r) => Ok(Some(r)),
        Err(m) => {
            eprint_error(color, &m);
            Ok(None)
        }
    }
}

/// `lockstep plan` for the in-place kinds.
fn op_plan(args: &PlanArgs, color: bool, pb: &spec::OpPlaybook) -> anyhow::Result<u8> {
    let Some((plan, refusals)) = read_plan(&args.db, color, |client| async move {
        ops::runner::prepare(&client, pb, "plan").await
    })?
    else {
        return Ok(EXIT_ERROR);
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    writeln!(
        out,
        "plan: {} on {}\n  about {} rows, {} on disk\n",
        plan.kind,
        plan.table,
        plan.rows_estimate,
        human_bytes(plan.total_bytes)
    )?;
    write_preflight(&mut out, &refusals)?;
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    let lt = pb.swap.lock_timeout_ms;
    writeln!(
        out,
        "\nevery statement runs under lock_timeout {lt} ms, up to {} attempts with backoff; concurrent builds wait for older transactions first, then run without a timeout (their SHARE UPDATE EXCLUSIVE lock lets reads and writes go on)",
        pb.swap.attempts
    )?;
    for (i, step) in plan.steps.iter().enumerate() {
        writeln!(out, "\n{}. {}: {}", i + 1, step.name, step.what)?;
        write_actions(&mut out, &step.actions)?;
        if !step.undo.is_empty() {
            writeln!(
                out,
                "   rollback{}:",
                if step.swap { " (swap back)" } else { "" }
            )?;
            write_actions(&mut out, &step.undo)?;
        }
    }
    if !plan.finalize.is_empty() {
        writeln!(
            out,
            "\nfinalize (separate command, no way back afterwards):"
        )?;
        write_actions(&mut out, &plan.finalize)?;
    }
    writeln!(out, "\ndefinition before → after:")?;
    let diff = unified_diff(&plan.table, &plan.before, &plan.after);
    if diff.trim().is_empty() {
        writeln!(out, "  (unchanged)")?;
    } else {
        write!(out, "{diff}")?;
    }
    out.flush()?;
    Ok(if refusals.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}
