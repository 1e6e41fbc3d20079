//! Running a trace: the lint predictions, the set-up, then every file's statements in
//! order, the way the file's migration tool runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::seed::Seeder;
use super::tracer::Tracer;
use super::{
    db_err, db_message, Connections, Effect, Mode, Outcome, Step, TraceError, TraceOptions, Verdict,
};
use crate::db::observe;
use crate::files::{self, FileReport, Input};
use crate::framework::{DirFacts, Direction};
use crate::lint::{LintOptions, StatementLocks};
use crate::sql::ir::StmtKind;
use crate::sql::LineIndex;

/// Reads a file to trace with lint's checks: a regular file of at most `limit` bytes.
fn read(input: &Input, limit: u64) -> Result<String, TraceError> {
    let bytes = match input {
        Input::File { path, .. } => {
            files::read_file_for(path, limit, "traced").map_err(|message| TraceError::Read {
                path: input.display().to_string(),
                message,
            })?
        }
        Input::Stdin { text, .. } => text.clone(),
    };
    match files::decode(bytes) {
        (Some(text), _) => Ok(text),
        (None, p) => Err(TraceError::Read {
            path: input.display().to_string(),
            message: p.map_or_else(|| "cannot read".to_string(), |p| p.message),
        }),
    }
}

fn path_of(input: &Input) -> &Path {
    match input {
        Input::File { path, .. } => path,
        Input::Stdin { display, .. } => Path::new(display),
    }
}

/// Traces `inputs` in order after running `setup` (untraced). `opts` shape the lint
/// predictions (version, framework).
pub async fn run(
    conns: Connections<'_>,
    inputs: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    how: impl Into<TraceOptions>,
) -> Result<Vec<Step>, TraceError> {
    run_with_progress(conns, inputs, setup, opts, how, &mut |_| {}).await
}

/// [`run`], calling `progress` after each statement (for a progress display).
pub async fn run_with_progress(
    conns: Connections<'_>,
    inputs: &[Input],
    setup: Option<&Input>,
    opts: &LintOptions,
    how: impl Into<TraceOptions>,
    progress: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, TraceError> {
    let how = how.into();
    let mode = how.mode;
    let opts = LintOptions {
        lint_down: false,
        ..opts.clone()
    };
    // Predictions: lint the set-up and the files as one ordered set (schema replay).
    let mut all: Vec<Input> = setup.cloned().into_iter().collect();
    all.extend(inputs.iter().cloned());
    let mut reports: Vec<FileReport> = files::lint_all(&all, &opts);
    if setup.is_some() && !reports.is_empty() {
        reports.remove(0);
    }

    let pid = observe::backend_pid(conns.main)
        .await
        .map_err(db_err("pg_backend_pid()"))?;
    let flushes_stats = observe::can_flush_stats(conns.main)
        .await
        .map_err(db_err("reading pg_proc"))?;
    let mut t = Tracer {
        progress,
        main: conns.main,
        watch: conns.watch,
        pid,
        flushes_stats,
        mode,
        in_tx: false,
        tx_steps: Vec::new(),
        steps: Vec::new(),
        seeder: None,
        seeded: Vec::new(),
        unseed_failure: None,
    };
    if mode == Mode::Rollback {
        t.exec("BEGIN").await.map_err(db_err("BEGIN"))?;
    }
    if let Some(s) = setup {
        let text = read(s, opts.max_file_size)?;
        t.exec(&text).await.map_err(|e| TraceError::Setup {
            path: s.display().to_string(),
            message: db_message(&e),
        })?;
    }
    if how.seed_rows > 0 {
        t.seeder = Some(
            Seeder::new(t.main, how.seed_rows)
                .await
                .map_err(db_err("listing tables"))?,
        );
    }
    let outcome = trace_files(&mut t, inputs, &reports, &opts).await;
    if t.in_tx {
        let _ = t.end(mode == Mode::Commit).await;
    }
    if mode == Mode::Rollback {
        t.exec("ROLLBACK").await.map_err(db_err("ROLLBACK"))?;
    }
    // Verdicts, now that hold times are known: also when the trace stopped early.
    for s in &mut t.steps {
        s.verdict = s.judge();
    }
    outcome?;
    Ok(t.steps)
}

async fn trace_files(
    t: &mut Tracer<'_>,
    inputs: &[Input],
    reports: &[FileReport],
    opts: &LintOptions,
) -> Result<(), TraceError> {
    for (input, report) in inputs.iter().zip(reports) {
        let text = read(input, opts.max_file_size)?;
        let path = path_of(input);
        let dir = match input {
            Input::File { path, .. } => DirFacts::of(path.parent().unwrap_or(Path::new("."))),
            Input::Stdin { .. } => DirFacts::default(),
        };
        let index = LineIndex::new(&text);
        // Each prediction belongs to the statement starting at its offset.
        let predictions: BTreeMap<usize, &StatementLocks> =
            report.locks.iter().map(|s| (s.start, s)).collect();
        let (_, units) = files::plan_units(path, &text, dir, opts);
        for unit in units {
            if unit.section.direction != Direction::Up {
                continue;
            }
            let Some(prepared) = unit.prepared.as_ref() else {
                continue;
            };
            let (wrapped, _) = files::transaction_of(&unit.section, Some(prepared), opts);
            if wrapped && !t.in_tx {
                t.seed().await?;
                t.begin(None).await.map_err(db_err("BEGIN"))?;
            }
            let parsed = unit.text.as_deref().unwrap_or(&text);
            for st in prepared.statements(parsed) {
                let sql = text[st.span.clone()].trim();
                let line = index.line(st.span.start);
                let end_line = index.line(st.span.end.saturating_sub(1).max(st.span.start));
                let predicted = predictions.get(&st.span.start).map(|s| Effect::of(s));
                let mut step = Step {
                    file: input.display().to_string(),
                    line,
                    end_line,
                    sql: sql.to_string(),
                    outcome: Outcome::Ran,
                    outside_transaction: false,
                    scans_unknown: false,
                    locks: Vec::new(),
                    already_held: BTreeMap::new(),
                    rewrites: BTreeSet::new(),
                    scans: BTreeSet::new(),
                    duration_ms: 0.0,
                    lock_timeout: String::new(),
                    seeded: Vec::new(),
                    emptied: Vec::new(),
                    predicted,
                    not_compared: None,
                    verdict: Verdict::NotCompared("not traced".into()),
                };
                if sql.starts_with('\\') {
                    step.outcome = Outcome::Skipped("psql meta-command".into());
                    t.record(step);
                    continue;
                }
                if matches!(st.kind, StmtKind::Unparsed { .. }) {
                    step.not_compared = Some("lint did not understand the statement".into());
                }
                if !t.statement(step, &st.kind, sql).await? {
                    return Ok(());
                }
            }
            if wrapped && t.in_tx {
                t.end(true).await.map_err(db_err("COMMIT"))?;
            }
        }
    }
    Ok(())
}
