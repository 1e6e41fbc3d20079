//! The linter: file text → statements → per-file context → rules → diagnostics.

pub mod block;
pub mod catalog;
pub mod compact;
pub mod context;
pub mod fix;
pub mod locks;
pub mod neighbours;
pub mod rules;
pub mod suppress;
pub mod types;
pub mod undo;

use std::fmt;
use std::ops::Range;

use crate::sql::parse::{analyze, Statement, LARGE_STATEMENT};
use crate::sql::split::{Comment, Unterminated};
use crate::sql::{split, LineIndex, Split};
use catalog::Catalog;
use context::FileContext;
use locks::LockReport;
use neighbours::{Facts, Neighbours};
use rules::{Checker, RULES};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "note" => Some(Severity::Note),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    /// Byte span in the file.
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// Index of the statement in the file (None for file-level findings).
    pub statement: Option<usize>,
    /// First and last line of that statement.
    pub statement_lines: Option<(usize, usize)>,
    /// The suggested rewrite, if any.
    pub fix: Option<fix::Fix>,
    /// The online playbook kind (`lockstep plan`/`run`) that makes this change without
    /// blocking, when one exists (`index`, `not-null`, `column-type`, …).
    pub playbook: Option<&'static str>,
}

/// Options that shape one lint run (already merged from config and flags).
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// Target PostgreSQL major version.
    pub pg_version: u32,
    /// Every file runs inside one transaction (the migration tool wraps it).
    pub assume_in_transaction: bool,
    /// Effective severity per rule, in registry order; `None` disables the rule.
    pub severities: Vec<Option<Severity>>,
    /// A `SET lock_timeout` above this (milliseconds) does not count as set.
    pub lock_timeout_max_ms: Option<u64>,
    /// The migration framework the files are written for; `None` detects it per file.
    pub framework: Option<crate::framework::Framework>,
    /// Lint down/rollback sections (each on its own, never replayed into the schema).
    pub lint_down: bool,
    /// Why the file runs in a transaction and how to change that, when a migration
    /// framework decided it (set per file section).
    pub tx_note: Option<TxNote>,
    /// Files larger than this many bytes are not read (`max_file_size`).
    pub max_file_size: u64,
    /// In a down section: what the migration's up part created (set per file section), so
    /// dropping it is known to undo the migration.
    pub up_created: Option<undo::Created>,
    /// The session `TimeZone` the migrations run with, when known (`timezone`).
    pub timezone: Option<String>,
    /// Keep each statement's lock report in [`FileResult::locks`] (the JSON report and
    /// `--locks` print them; without them a file's result holds only its findings).
    pub lock_reports: bool,
}

/// The default `max_file_size`: 16 MiB, far above any migration file, far below what would
/// exhaust a CI runner's memory.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Why a file runs in a transaction, and how to make it not, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxNote {
    /// e.g. "goose runs each migration in a transaction".
    pub reason: String,
    /// e.g. "move it to its own migration and add `-- +goose NO TRANSACTION` …".
    pub hint: &'static str,
    /// Set when the tool fails a statement that cannot run in a transaction (`CREATE INDEX
    /// CONCURRENTLY` …) unless it is the only statement of its file, and why.
    pub alone: Option<&'static str>,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: 15,
            assume_in_transaction: false,
            severities: RULES.iter().map(|r| r.default_severity).collect(),
            lock_timeout_max_ms: None,
            framework: None,
            lint_down: true,
            tx_note: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            up_created: None,
            timezone: None,
            lock_reports: true,
        }
    }
}

impl LintOptions {
    pub fn severity_of(&self, rule: &str) -> Option<Severity> {
        rules::index_of(rule).and_then(|i| self.severities.get(i).copied().flatten())
    }
}

/// The predicted effect of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLocks {
    /// Byte offset of the statement in its file (which statement it is, where two share a
    /// line).
    pub start: usize,
    pub line: usize,
    pub end_line: usize,
    /// The statement's first words (`ALTER TABLE`), for display.
    pub kind: String,
    pub report: LockReport,
}

/// The result of linting one file's text.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub statements: usize,
    pub diagnostics: Vec<Diagnostic>,
    /// Lock prediction per statement, in file order (empty unless
    /// [`LintOptions::lock_reports`]).
    pub locks: Vec<StatementLocks>,
}

/// A file split and parsed, ready to be checked. Preparing is the expensive part and runs
/// in parallel; checking runs in migration order because of schema replay.
#[derive(Debug)]
pub struct Prepared {
    /// Statement spans, in file order.
    spans: Vec<Range<usize>>,
    /// `(statement, what)` of the statements that run into the end of the file.
    unterminated: Vec<(usize, Unterminated)>,
    comments: Vec<Comment>,
    index: LineIndex,
    /// `(index, statement)`: the parsed statements held until they are checked. All of a
    /// short file's; of a streamed file (see [`compact`]) only those over
    /// [`LARGE_STATEMENT`], whose parsed form is a small fraction of their text: the
    /// others are parsed again one at a time when they are checked.
    statements: Vec<(usize, Statement)>,
    facts: Facts,
}

/// Files longer than this hold one parsed statement at a time (see [`compact`]).
pub const STREAM_ABOVE: usize = 256 * 1024;

impl Prepared {
    /// Number of statements.
    pub fn statement_count(&self) -> usize {
        self.spans.len()
    }

    /// The statements' byte spans, in file order.
    pub fn spans(&self) -> &[Range<usize>] {
        &self.spans
    }

    /// Facts about the statements, for whether the file can run in a transaction and what
    /// it creates.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Parsed statements held (all of a short file's, only the largest of a streamed
    /// file's).
    pub fn held(&self) -> usize {
        self.statements.len()
    }

    /// The statements, parsed (again, in a streamed file) one at a time.
    pub fn statements<'a>(&'a self, src: &'a str) -> impl Iterator<Item = Statement> + 'a {
        let mut held = self.statements.iter().peekable();
        (0..self.spans.len()).map(move |i| match held.next_if(|(at, _)| *at == i) {
            Some((_, st)) => st.clone(),
            None => parse_again(src, &self.spans, &self.unterminated, &self.index, i),
        })
    }
}

/// Parses statement `i` of a prepared file again from its text.
fn parse_again(
    src: &str,
    spans: &[Range<usize>],
    unterminated: &[(usize, Unterminated)],
    index: &LineIndex,
    i: usize,
) -> Statement {
    let span = spans.get(i).cloned().unwrap_or_default();
    let u = unterminated.iter().find(|(at, _)| *at == i).map(|(_, u)| u);
    analyze_raw(src, span, u, index)
}

/// Understands one statement of the splitter's output.
fn analyze_raw(
    src: &str,
    span: Range<usize>,
    unterminated: Option<&Unterminated>,
    index: &LineIndex,
) -> Statement {
    let mut st = analyze(src, span);
    if let Some(u) = unterminated {
        let (l, c) = index.line_col(src, u.at);
        st.kind = crate::sql::ir::StmtKind::Unparsed {
            reason: format!("unterminated {} starting at {l}:{c}", u.what),
        };
    }
    st
}

/// Lints one file's text on its own (no schema from earlier files).
pub fn lint_source(src: &str, opts: &LintOptions) -> FileResult {
    check(src, prepare(src), opts, Catalog::default()).0
}

/// Splits and parses a file.
pub fn prepare(src: &str) -> Prepared {
    prepare_with(src, src.len() > STREAM_ABOVE)
}

/// Splits and parses a file; with `stream`, the parsed statements are not held but parsed
/// again when checked, whatever the file's length.
pub fn prepare_with(src: &str, stream: bool) -> Prepared {
    let Split {
        statements: raw,
        comments,
        ..
    } = split(src);
    let index = LineIndex::new(src);
    let mut facts = Facts::default();
    let mut statements = Vec::with_capacity(if stream { 0 } else { raw.len() });
    let mut spans = Vec::with_capacity(raw.len());
    let mut unterminated = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let st = analyze_raw(src, r.span.clone(), r.unterminated.as_ref(), &index);
        facts.push(&st);
        if !stream || st.span.len() > LARGE_STATEMENT {
            statements.push((i, st));
        }
        spans.push(r.span);
        if let Some(u) = r.unterminated {
            unterminated.push((i, u));
        }
    }
    Prepared {
        spans,
        unterminated,
        comments,
        index,
        statements,
        facts,
    }
}

/// Runs the rules over a prepared file, starting from `catalog` (the schema replayed from
/// earlier files), and returns the findings with the catalog after this file.
pub fn check(
    src: &str,
    prepared: Prepared,
    opts: &LintOptions,
    catalog: Catalog,
) -> (FileResult, Catalog) {
    let count = prepared.statement_count();
    let Prepared {
        spans,
        unterminated,
        comments,
        index,
        statements,
        facts,
    } = prepared;
    let mut held = statements.into_iter().peekable();
    let mut ctx = FileContext::with_catalog(opts, catalog);
    let mut diagnostics = Vec::new();
    let mut locks = Vec::with_capacity(if opts.lock_reports { count } else { 0 });
    let mut raw_findings = Vec::new();
    let mut neighbours = Neighbours::new(facts);
    for i in 0..count {
        let st = match held.next_if(|(at, _)| *at == i) {
            Some((_, st)) => st,
            None => parse_again(src, &spans, &unterminated, &index, i),
        };
        let st = &st;
        let line = index.line(st.span.start);
        let mut report = locks::predict(st, &ctx);
        // The statements of a DO block or a called function of this file: linted in
        // place, their locks the statement's.
        let inner = block::inner_statements(src, st, &mut ctx);
        let is_block = matches!(st.kind, crate::sql::ir::StmtKind::Do) && !inner.is_empty();
        if !inner.is_empty() {
            let mut body = Facts::default();
            for x in &inner {
                body.push(&x.stmt);
            }
            let mut body = Neighbours::new(body);
            let mut merged = if is_block {
                locks::LockReport::default()
            } else {
                report.clone()
            };
            ctx.enter_block();
            let mut created = Vec::new();
            for (k, x) in inner.iter().enumerate() {
                let mut r = locks::predict(&x.stmt, &ctx);
                // Tables created earlier in the block did not exist before it.
                r.without(&created);
                if let Some(t) = locks::creates(&x.stmt.kind) {
                    created.push(t.clone());
                }
                if x.checked {
                    for (ri, rule) in RULES.iter().enumerate() {
                        let Some(severity) = opts.severities.get(ri).copied().flatten() else {
                            continue;
                        };
                        let mut checker = Checker::new(&ctx, &x.stmt, src, &r, body.at(k));
                        (rule.check)(&mut checker);
                        for mut f in checker.into_findings() {
                            // A rewrite of the file's own statement does not fit in a body.
                            f.fix = None;
                            raw_findings.push((i, rule, severity, f, Some(x.stmt.span.clone())));
                        }
                    }
                }
                body.passed(&x.stmt);
                let at = if x.checked {
                    index.line(x.stmt.span.start)
                } else {
                    line
                };
                ctx.apply(&x.stmt, &r, at);
                // A function called by a query runs only for the rows it produces.
                let condition = if !is_block {
                    Some(locks::Condition::Call)
                } else {
                    x.conditional.then_some(locks::Condition::Branch)
                };
                merged.merge(&r, condition);
            }
            ctx.leave_block();
            if is_block {
                merged.incomplete = report.incomplete;
            }
            report = merged;
        }
        for (ri, rule) in RULES.iter().enumerate() {
            let Some(severity) = opts.severities.get(ri).copied().flatten() else {
                continue;
            };
            // A DO block's own statements were checked one by one.
            if is_block && !rules::applies_to_blocks(rule) {
                continue;
            }
            let mut checker = Checker::new(&ctx, st, src, &report, neighbours.at(i));
            (rule.check)(&mut checker);
            for f in checker.into_findings() {
                raw_findings.push((i, rule, severity, f, None));
            }
        }
        neighbours.passed(st);
        ctx.apply(st, &report, line);
        if let Some(body) = block::function_body(st) {
            if let crate::sql::ir::StmtKind::CreateFunction { name, .. } = &st.kind {
                ctx.catalog
                    .set_function_body(&name.name, std::sync::Arc::from(body));
            }
            ctx.local_functions.record(src, st);
        }
        if opts.lock_reports {
            locks.push(StatementLocks {
                start: st.span.start,
                line,
                end_line: index.line(st.span.end.saturating_sub(1).max(st.span.start)),
                kind: crate::sql::parse::leading_words(&st.toks),
                report,
            });
        }
    }

    let mut sup = suppress::Suppressions::collect(src, &comments, &spans, &index);
    for (i, rule, severity, f, inner) in raw_findings {
        if sup.suppresses(rule.name, i) {
            continue;
        }
        let mut d = make_diag(
            src,
            &index,
            rule.name,
            severity,
            f.message,
            f.help,
            f.span,
            Some(i),
        );
        d.fix = f.fix;
        d.playbook = f.playbook;
        let st = inner.as_ref().or(spans.get(i)).unwrap_or(&d.span);
        d.statement_lines = Some((
            index.line(st.start),
            index.line(st.end.saturating_sub(1).max(st.start)),
        ));
        diagnostics.push(d);
    }
    if let Some(severity) = opts.severity_of(rules::unused_ignore::RULE.name) {
        for u in sup.unused(opts) {
            diagnostics.push(make_diag(
                src,
                &index,
                rules::unused_ignore::RULE.name,
                severity,
                u.message,
                u.help,
                u.span,
                None,
            ));
        }
    }
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    let result = FileResult {
        statements: count,
        diagnostics,
        locks,
    };
    (result, ctx.into_catalog())
}

#[allow(clippy::too_many_arguments)]
fn make_diag(
    src: &str,
    index: &LineIndex,
    rule: &'static str,
    severity: Severity,
    message: String,
    help: Option<String>,
    span: Range<usize>,
    statement: Option<usize>,
) -> Diagnostic {
    let (line, column) = index.line_col(src, span.start);
    let (end_line, end_column) = index.line_col(src, span.end.max(span.start));
    Diagnostic {
        rule,
        severity,
        message,
        help,
        span,
        line,
        column,
        end_line,
        end_column,
        statement,
        statement_lines: None,
        fix: None,
        playbook: None,
    }
}

/// Finds the rule with the closest name, for "did you mean" hints.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim(name, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2) || c.contains(name) && name.len() >= 4)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
