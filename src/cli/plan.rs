use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::lint::fix::unified_diff;
use crate::playbook::queries::{self, QueryCheck};
use crate::playbook::view::PlanView;
use crate::playbook::{engine, spec};

/// Show what a playbook would do, without changing anything.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the table from the database (no writes), runs the preflight checks, and prints\n\
warnings about the statements of pg_stat_statements that the change would break (they leave\n\
the exit code alone), every step with its SQL, its locks and estimates, then a diff of\n\
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

#[inline(never)] // see `cli::main`
pub fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let pb = match spec::load(&args.playbook) {
        Ok(p) => p,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let conn = match args.db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let pbr = &pb;
    let prepared = online::block_on(async {
        let client = conn.connect().await.map_err(|e| e.to_string())?;
        let (plan, refusals) = engine::prepare(&client, Some(&conn), pbr, "plan")
            .await
            .map_err(|e| e.to_string())?;
        let check = queries::check(&client, &pbr.common.table, &plan).await;
        Ok::<_, String>((plan, refusals, check))
    })?;
    let (plan, refusals, check) = match prepared {
        Ok(r) => r,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let view = plan.describe(&pb.common.backfill, &pb.common.swap);
    match print(&view, &refusals, check.as_ref()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    Ok(if refusals.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

/// The plan: headline, preflight, notes, the statements it would break, every step with its
/// SQL (and how a rollback undoes it), finalize, and the definition's diff.
fn print(view: &PlanView, refusals: &[String], check: Option<&QueryCheck>) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    writeln!(out, "{}\n", view.headline)?;
    if refusals.is_empty() {
        writeln!(out, "preflight: ok")?;
    } else {
        writeln!(out, "preflight: refused")?;
        for r in refusals {
            writeln!(out, "  - {r}")?;
        }
    }
    for n in &view.notes {
        writeln!(out, "note: {n}")?;
    }
    if let Some(c) = check {
        for n in c.notes() {
            writeln!(out, "note: {n}")?;
        }
        for w in c.warnings() {
            writeln!(out, "warning: {w}")?;
        }
    }
    if let Some(p) = &view.preamble {
        writeln!(out, "\n{p}")?;
    }
    for (i, step) in view.steps.iter().enumerate() {
        writeln!(out, "\n{}. {}: {}", i + 1, step.name, step.what)?;
        write_sql(&mut out, &step.sql)?;
        if let Some((label, undo)) = &step.undo {
            writeln!(out, "   {label}:")?;
            write_sql(&mut out, undo)?;
        }
    }
    if let Some(f) = &view.finalize {
        writeln!(
            out,
            "\nfinalize (separate command, no way back afterwards):"
        )?;
        write_sql(&mut out, f)?;
    }
    writeln!(out, "\ndefinition before → after:")?;
    let diff = unified_diff(&view.table, &view.before, &view.after);
    if diff.trim().is_empty() {
        writeln!(out, "  (unchanged)")?;
    } else {
        write!(out, "{diff}")?;
    }
    out.flush()
}

/// Each statement's lines, indented.
fn write_sql(out: &mut impl Write, sql: &[String]) -> io::Result<()> {
    for s in sql {
        for line in s.lines() {
            writeln!(out, "     {line}")?;
        }
    }
    Ok(())
}
