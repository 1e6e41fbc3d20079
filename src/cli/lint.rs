use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::baseline::{Baseline, Recorder};
use crate::config::{self, parse_pg_version, Settings};
use crate::files::{self, FileReport, Input};
use crate::fixing::{self, FileFix};
use crate::git;
use crate::lint::context::parse_duration_ms;
use crate::lint::fix;
use crate::lint::{Diagnostic, LintOptions, Severity};
use crate::report::paths::RepoPaths;
use crate::report::text::{self, Style};
use crate::report::{github, gitlab, json, junit, sarif, Reporter, Summary};

mod output;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep lint migrations/\n  lockstep lint --pg-version 12 db/migrate/0042_add_index.sql\n  cat change.sql | lockstep lint - --stdin-filename db/change.sql\n  lockstep lint --diff migrations/        # the safe rewrites, as a patch\n\n\
Exit codes:\n  0  no finding at or above the fail level\n  1  findings at or above the fail level (--fail-on, default: error)\n  2  usage error, unreadable path or file, or invalid configuration\n\n\
Suppress a finding with a comment on the line above (or at the end of) the statement:\n  -- lockstep: ignore create-index-non-concurrently -- table is tiny\n\
or for a whole file:\n  -- lockstep: ignore-file missing-lock-timeout\n\n\
CI reports (one lint run, several reports; the terminal keeps the text report):\n  \
lockstep lint migrations/ --output gitlab=gl-code-quality-report.json \\\n                            --output junit=lockstep-junit.xml\n  \
lockstep lint --format sarif --output lockstep.sarif migrations/\n  \
lockstep lint --format github migrations/    # annotations in GitHub Actions\n  \
lockstep lint --changed-since origin/main migrations/   # only what this branch changed\n\n\
Adopting lockstep on an existing history:\n  \
lockstep lint --write-baseline lockstep-baseline.json migrations/   # accept what is there\n  \
lockstep lint --baseline lockstep-baseline.json migrations/         # then only new findings\n\n\
Frameworks (Flyway, golang-migrate, goose, dbmate, sqlx, diesel, Prisma, Liquibase, Atlas,\n\
sqitch) are detected per file; each file is linted the way its tool runs it (in a\n\
transaction or not, up and down sections apart). `--framework none` turns that off."
)]
pub struct LintArgs {
    /// Files or directories to lint (directories: every *.sql below, in migration order);
    /// `-` reads standard input
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Name to show for standard input in findings
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,

    /// Config file to use instead of the lockstep.toml found from the working directory
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Ignore any lockstep.toml
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,

    /// Target PostgreSQL version (major, e.g. 15 or 15.4) [default: 15]
    #[arg(long, value_name = "VERSION", value_parser = parse_pg_version)]
    pub pg_version: Option<u32>,

    /// The session TimeZone the migrations run with (e.g. UTC): with UTC, `timestamp` to
    /// `timestamptz` does not rewrite on PostgreSQL 12+ [default: unknown, "may rewrite"]
    #[arg(long, value_name = "ZONE", value_parser = config::parse_timezone)]
    pub timezone: Option<String>,

    /// Treat every file as wrapped in one transaction by the migration tool
    /// (`--assume-in-transaction=false` turns a config setting off)
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub assume_in_transaction: Option<bool>,

    /// Migration framework the files are written for, which decides how each file runs
    /// (in a transaction or not) and which parts are up and down: auto (default: detected
    /// per file), none, flyway, golang-migrate, goose, dbmate, sqlx, diesel, prisma,
    /// liquibase, atlas, sqitch
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,

    /// Lint down/rollback sections too, each on its own (`--lint-down=false` skips them)
    /// [default: true]
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub lint_down: Option<bool>,

    /// Report only files added or changed since the merge base with REF (a branch, tag or
    /// commit; untracked files count as changed). Earlier files are still read, so schema
    /// replay knows the tables they create. Needs git
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,

    /// Turn on rules (comma-separated; `all` for every rule), including rules off by default
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub select: Vec<String>,

    /// Turn off rules (comma-separated)
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub ignore: Vec<String>,

    /// Skip files matching this glob when walking directories (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// A `SET lock_timeout` above this (e.g. 5s) does not count as set
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout_max: Option<String>,

    /// Refuse files larger than this (e.g. 64MiB, 500KB, or bytes) [default: 16MiB]
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub max_file_size: Option<u64>,

    /// Lowest severity that makes the run fail (exit 1)
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warning", "note"])]
    pub fail_on: Option<String>,

    /// When to colour the output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Report format [default: text]. It goes to standard output, and to `--output` files
    /// that name no format (standard output then shows the text report)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Also write the report to FILE, in FORMAT (default: the --format value); repeatable.
    /// Standard output then shows the text report, unless FILE is `-`. Files are replaced
    /// only once the report is complete
    #[arg(
        long,
        short = 'o',
        value_name = "[FORMAT=]FILE",
        value_parser = output::parse_spec,
        conflicts_with = "diff"
    )]
    pub output: Vec<output::OutputSpec>,

    /// Also print, per statement, the tables it locks, the lock mode, what that blocks,
    /// and whether it rewrites or scans the table (text format)
    #[arg(long)]
    pub locks: bool,
    /// Print, per file, a unified diff of the safe rewrites instead of the findings
    #[arg(long, conflicts_with = "fix")]
    pub diff: bool,

    /// Apply the safe rewrites to the files, then report what remains (with `-`, print the
    /// rewritten SQL instead)
    #[arg(long)]
    pub fix: bool,

    /// Leave out the findings recorded in this baseline (see --write-baseline): only new
    /// findings are reported, counted and fixed. Overrides `baseline` in lockstep.toml
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Ignore the `baseline` of lockstep.toml
    #[arg(long, conflicts_with = "baseline")]
    pub no_baseline: bool,

    /// Record every finding of this run in FILE (JSON) and exit: later runs with `--baseline
    /// FILE` report only findings that are not in it
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["baseline", "fix", "diff", "output", "format", "changed_since"]
    )]
    pub write_baseline: Option<PathBuf>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Compiler-style findings and a summary line
    Text,
    /// One JSON document with findings and the per-statement lock report
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers
    Sarif,
    /// GitLab Code Quality report (artifacts:reports:codequality)
    Gitlab,
    /// JUnit XML, one test case per file (CI test-report views)
    Junit,
    /// GitHub Actions workflow commands: annotations on the pull request
    Github,
}

impl Format {
    /// The reporter writing this format. `paths` makes file paths repository-relative for
    /// the CI formats; `style` and `locks` shape the text format.
    fn reporter(self, style: Style, locks: bool, paths: &RepoPaths) -> Box<dyn Reporter> {
        match self {
            Format::Text => Box::new(text::TextReporter { style, locks }),
            Format::Json => Box::new(json::JsonReporter::default()),
            Format::Sarif => Box::new(sarif::SarifReporter::new(paths.clone())),
            Format::Gitlab => Box::new(gitlab::GitlabReporter::new(paths.clone())),
            Format::Junit => Box::new(junit::JunitReporter::new(paths.clone())),
            Format::Github => Box::new(github::GithubReporter::new(paths.clone())),
        }
    }
}

impl LintArgs {
    fn settings(&self) -> Result<Settings, String> {
        for (flag, names) in [("--select", &self.select), ("--ignore", &self.ignore)] {
            for n in names {
                config::check_rule_name(n, true).map_err(|m| format!("{flag}: {m}"))?;
            }
        }
        let lock_timeout_max_ms = match &self.lock_timeout_max {
            Some(s) => Some(parse_duration_ms(s).ok_or_else(|| {
                format!("--lock-timeout-max: expected a duration such as 5s or 500ms, found `{s}`")
            })?),
            None => None,
        };
        let framework = match &self.framework {
            Some(f) => Some(config::parse_framework(f).map_err(|m| format!("--framework: {m}"))?),
            None => None,
        };
        Ok(Settings {
            pg_version: self.pg_version,
            assume_in_transaction: self.assume_in_transaction,
            framework,
            lint_down: self.lint_down,
            select: self.select.clone(),
            ignore: self.ignore.clone(),
            exclude: self.exclude.clone(),
            lock_timeout_max_ms,
            max_file_size: self.max_file_size,
            fail_on: self.fail_on.as_deref().and_then(Severity::parse),
            baseline: self.baseline.clone(),
            timezone: self.timezone.clone(),
            ..Settings::default()
        })
    }
}

/// One line per refused fix: `path:line:column: not fixed (rule): why`.
fn refusals(r: &FileReport, f: &FileFix) -> Vec<String> {
    f.refused
        .iter()
        .map(|x| {
            format!(
                "{}:{}:{}: not fixed ({}): {}",
                r.path, x.finding.line, x.finding.column, x.finding.rule, x.reason
            )
        })
        .collect()
}

/// The lines `--diff` prints before a file's diff, one per distinct online playbook kind
/// of the applied rewrites. They come before the `---` header, where `patch` and
/// `git apply` skip text.
fn online_alternatives(applied: &[&Diagnostic]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for k in applied.iter().filter_map(|d| d.playbook) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
        .iter()
        .map(|k| format!("# online alternative: the `{k}` playbook kind (lockstep plan/run)\n"))
        .collect()
}

#[inline(never)] // see `cli::main`
pub fn run(args: LintArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let flags = match args.settings() {
        Ok(s) => s,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let cwd = std::env::current_dir().context("cannot determine the working directory")?;
    let cfg = if args.no_config {
        Ok(config::Config {
            path: None,
            root: cwd.clone(),
            settings: Settings::default(),
        })
    } else {
        config::load(args.config.as_deref(), &cwd)
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let settings = cfg.settings.clone().merged_with(flags);
    let mut opts = settings.lint_options();
    // Only the reports chosen below print lock reports; the baseline, --diff and --fix do not.
    opts.lock_reports = false;
    let fail_on = settings.fail_on.unwrap_or(Severity::Error);

    let excludes = match files::exclude_set(&settings.exclude) {
        Ok(e) => e,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let mut had_error = false;
    let mut inputs = Vec::new();
    let mut stdin_used = false;
    for p in &args.paths {
        if p.as_os_str() == "-" {
            if stdin_used {
                continue;
            }
            stdin_used = true;
            let mut text = Vec::new();
            io::stdin()
                .take(opts.max_file_size.saturating_add(1))
                .read_to_end(&mut text)
                .context("cannot read standard input")?;
            let display = args
                .stdin_filename
                .clone()
                .unwrap_or_else(|| "<stdin>".into());
            if text.len() as u64 > opts.max_file_size {
                eprint_error(
                    color,
                    &format!(
                        "{display}: standard input is over the {} limit; not linted (raise it with --max-file-size or `max_file_size` in lockstep.toml)",
                        files::format_size(opts.max_file_size)
                    ),
                );
                had_error = true;
                continue;
            }
            inputs.push(Input::Stdin { display, text });
        } else {
            let (found, errors) = files::discover(
                std::slice::from_ref(p),
                &cfg.root,
                &cwd,
                &excludes,
                opts.framework,
            );
            // A directory with nothing to lint is most likely a wrong path (a typo in CI):
            // failing loudly beats passing green.
            if found.is_empty() && errors.is_empty() && p.is_dir() {
                eprint_error(color, &format!("no .sql files under {}", p.display()));
                had_error = true;
            }
            for e in errors {
                eprint_error(color, &e.to_string());
                had_error = true;
            }
            inputs.extend(found);
        }
    }

    // Every path was wrong: there is nothing to report on, not even an empty summary.
    if inputs.is_empty() && had_error {
        return Ok(EXIT_ERROR);
    }

    // --changed-since: which inputs to report on. Files after the last changed one cannot
    // affect it and are not read; earlier ones are linted silently for schema replay.
    let wanted: Option<Vec<bool>> = match &args.changed_since {
        None => None,
        Some(reference) => match git::changed_since(&repo_anchor(&args.paths, &cwd), reference) {
            Ok(changed) => {
                let mut w: Vec<bool> = inputs
                    .iter()
                    .map(|i| match i {
                        Input::Stdin { .. } => true,
                        Input::File { path, .. } => {
                            let abs = cwd.join(path);
                            changed.contains(&abs.canonicalize().unwrap_or(abs))
                        }
                    })
                    .collect();
                let end = w.iter().rposition(|&b| b).map_or(0, |i| i + 1);
                let n = w.iter().filter(|&&b| b).count();
                let _ = writeln!(
                    io::stderr(),
                    "{n} of {} migration file{} changed since {reference}{}",
                    inputs.len(),
                    if inputs.len() == 1 { "" } else { "s" },
                    if end > n {
                        format!(
                            "; {} earlier one{} read for schema replay",
                            end - n,
                            if end - n == 1 { "" } else { "s" }
                        )
                    } else {
                        String::new()
                    }
                );
                inputs.truncate(end);
                w.truncate(end);
                Some(w)
            }
            Err(e) => {
                eprint_error(color, &e.to_string());
                return Ok(EXIT_ERROR);
            }
        },
    };
    let wanted = wanted.as_deref();
    let paths = RepoPaths::discover(&cwd);

    if let Some(file) = &args.write_baseline {
        return write_baseline(&inputs, &opts, &paths, file, color, had_error);
    }
    let baseline_file = settings.baseline.as_ref().filter(|_| !args.no_baseline);
    let mut baseline = match baseline_file.map(|f| Baseline::read(f)).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    if args.diff {
        return print_diffs(&inputs, wanted, &opts, baseline.as_ref(), &paths);
    }
    // Open every report destination before anything is changed or linted, so a report file
    // that cannot be created stops the run at once (exit 2).
    let make = |f: Format, to_stdout: bool| {
        let style = Style {
            color: color && to_stdout,
        };
        f.reporter(style, args.locks, &paths)
    };
    let mut sinks = match output::Sinks::open(
        &args.output,
        args.format.unwrap_or(Format::Text),
        args.format.is_some(),
        &cwd,
        make,
    ) {
        Ok(s) => s,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    if args.fix {
        let stdin = inputs.iter().find(|i| matches!(i, Input::Stdin { .. }));
        if let Some(code) = stdin
            .map(|i| print_fixed_stdin(i, &opts, baseline.as_ref(), &paths))
            .transpose()?
            .flatten()
        {
            return Ok(code);
        }
        let (count, changed) = fix_files(&inputs, wanted, &opts, baseline.as_ref(), &paths)?;
        if count > 0 {
            let _ = writeln!(
                io::stderr(),
                "fixed {count} finding{} in {changed} file{}",
                if count == 1 { "" } else { "s" },
                if changed == 1 { "" } else { "s" }
            );
        }
    }

    // One lint pass feeds every report; it stops early only when no destination is left
    // (standard output closed, e.g. piped into `head`, and no report file).
    opts.lock_reports = sinks.want_locks();
    let mut summary = Summary::default();
    if sinks.begin().is_ok() {
        let _stopped: Result<(), output::NothingLeft> = files::lint_each(
            &inputs,
            &opts,
            only(wanted, |mut r| {
                if let Some(b) = baseline.as_mut() {
                    b.apply(&mut r, &paths);
                }
                summary.add(&r);
                sinks.file(&r)
            }),
        );
    }
    let done = sinks.finish(&summary);
    for m in &done.file_errors {
        eprint_error(color, m);
    }
    if let Some(b) = &baseline {
        let stale = b.stale(&crate::report::paths::repo_root(&cwd));
        if !stale.is_empty() {
            let _ = writeln!(
                io::stderr(),
                "note: {} of {} match{} no finding any more (fixed, or the statement changed); `lockstep lint --write-baseline {}` drops {}",
                plural(stale.len(), "entry", "entries"),
                b.path().display(),
                if stale.len() == 1 { "es" } else { "" },
                b.path().display(),
                if stale.len() == 1 { "it" } else { "them" },
            );
        }
    }
    had_error |= summary.skipped > 0 || !done.file_errors.is_empty();
    let code = if had_error {
        EXIT_ERROR
    } else if summary.at_or_above(fail_on) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    match done.stdout {
        None => Ok(code),
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Some(e) => Err(e).context("cannot write the report"),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `--write-baseline FILE`: records every finding of the run. Exit 0 once written; 2 when
/// the file cannot be written or a file could not be linted (its findings are unknown).
fn write_baseline(
    inputs: &[Input],
    opts: &LintOptions,
    paths: &RepoPaths,
    file: &std::path::Path,
    color: bool,
    mut had_error: bool,
) -> anyhow::Result<u8> {
    let mut recorder = Recorder::default();
    let _ = files::lint_each(inputs, opts, |r| {
        if let Some(p) = r.problem.as_ref().filter(|p| p.fatal) {
            eprint_error(color, &format!("{}: {}", r.path, p.message));
            had_error = true;
        }
        recorder.add(&r, paths);
        Ok::<(), std::convert::Infallible>(())
    });
    let (findings, in_files) = recorder.counts();
    if let Err(e) = recorder.write(file) {
        eprint_error(color, &e.to_string());
        return Ok(EXIT_ERROR);
    }
    let _ = writeln!(
        io::stderr(),
        "wrote {} in {} to {}",
        plural(findings, "finding", "findings"),
        plural(in_files, "file", "files"),
        file.display()
    );
    Ok(if had_error { EXIT_ERROR } else { EXIT_OK })
}

/// Where to look for the repository of `--changed-since`: the first linted path (a
/// directory, or a file's directory), else the working directory.
fn repo_anchor(paths: &[PathBuf], cwd: &Path) -> PathBuf {
    paths
        .iter()
        .find(|p| p.as_os_str() != "-")
        .map(|p| {
            let dir = if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(Path::new(""))
            };
            cwd.join(dir)
        })
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// Wraps a per-file callback so that it only sees the inputs marked in `wanted` (all when
/// `None`); reports arrive in input order.
fn only<'a, E>(
    wanted: Option<&'a [bool]>,
    mut f: impl FnMut(FileReport) -> Result<(), E> + 'a,
) -> impl FnMut(FileReport) -> Result<(), E> + 'a {
    let mut i = 0;
    move |r| {
        let keep = wanted.is_none_or(|w| w.get(i).copied().unwrap_or(true));
        i += 1;
        if keep {
            f(r)
        } else {
            Ok(())
        }
    }
}

/// `--diff`: one unified diff per file that has fixes; exit 1 when there is any.
fn print_diffs(
    inputs: &[Input],
    wanted: Option<&[bool]>,
    opts: &LintOptions,
    baseline: Option<&Baseline>,
    paths: &RepoPaths,
) -> anyhow::Result<u8> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut any = false;
    let mut baseline = baseline.cloned();
    let written = files::lint_each(
        inputs,
        opts,
        only(wanted, |mut r| {
            if let Some(b) = baseline.as_mut() {
                b.apply(&mut r, paths);
            }
            if let Some(f) = fixing::fix_file(&r, opts) {
                for line in refusals(&r, &f) {
                    writeln!(out, "# {line}")?;
                }
                if f.changed(&r.source) {
                    any = true;
                    write!(
                        out,
                        "{}{}",
                        online_alternatives(&f.applied),
                        fix::unified_diff(&r.path, &r.source, &f.text)
                    )?;
                }
            }
            Ok(())
        }),
    )
    .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write the diff"),
        _ => Ok(if any { EXIT_FINDINGS } else { EXIT_OK }),
    }
}

/// `--fix` on standard input: print the fixed SQL (unchanged when there is nothing to fix).
/// Input that could not be read as text gets the normal report instead (`None`), so nothing
/// is silently replaced by an empty output.
fn print_fixed_stdin(
    stdin: &Input,
    opts: &LintOptions,
    baseline: Option<&Baseline>,
    paths: &RepoPaths,
) -> anyhow::Result<Option<u8>> {
    let mut fixed = None;
    let mut baseline = baseline.cloned();
    let _ = files::lint_each(std::slice::from_ref(stdin), opts, |mut r| {
        if let Some(b) = baseline.as_mut() {
            b.apply(&mut r, paths);
        }
        if r.problem.is_none() {
            let new = fixing::fix_file(&r, opts).map(|f| {
                for line in refusals(&r, &f) {
                    let _ = writeln!(io::stderr(), "{line}");
                }
                f.text
            });
            fixed = Some(new.unwrap_or(r.source));
        }
        Ok::<(), std::convert::Infallible>(())
    });
    let Some(fixed) = fixed else {
        return Ok(None);
    };
    let mut out = io::stdout().lock();
    match out.write_all(fixed.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the fixed SQL")
        }
        _ => Ok(Some(EXIT_OK)),
    }
}

/// `--fix` on files: rewrites each file with fixes in place (atomically). Returns the number
/// of fixes applied and of files changed.
fn fix_files(
    inputs: &[Input],
    wanted: Option<&[bool]>,
    opts: &LintOptions,
    baseline: Option<&Baseline>,
    paths: &RepoPaths,
) -> anyhow::Result<(usize, usize)> {
    let (mut count, mut changed) = (0, 0);
    let mut baseline = baseline.cloned();
    files::lint_each(
        inputs,
        opts,
        only(wanted, |mut r| {
            if let Some(b) = baseline.as_mut() {
                b.apply(&mut r, paths);
            }
            if let Some(f) = fixing::fix_file(&r, opts) {
                for line in refusals(&r, &f) {
                    let _ = writeln!(io::stderr(), "{line}");
                }
                if f.changed(&r.source) {
                    files::write_atomically(std::path::Path::new(&r.path), f.text.as_bytes())
                        .with_context(|| format!("cannot write {}", r.path))?;
                    count += f.applied.len();
                    changed += 1;
                }
            }
            Ok::<(), anyhow::Error>(())
        }),
    )?;
    Ok((count, changed))
}
