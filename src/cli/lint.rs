use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::config::{self, parse_pg_version, Settings};
use crate::files::{self, FileReport, Input};
use crate::lint::context::parse_duration_ms;
use crate::lint::fix;
use crate::lint::Severity;
use crate::report::text::{self, Style};
use crate::report::Summary;
use crate::report::{json, locks};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes:\n  0  no finding at or above the fail level\n  1  findings at or above the fail level (--fail-on, default: error)\n  2  usage error, unreadable path or file, or invalid configuration\n\n\
Suppress a finding with a comment on the line above (or at the end of) the statement:\n  -- lockstep: ignore create-index-non-concurrently -- table is tiny\n\
or for a whole file:\n  -- lockstep: ignore-file missing-lock-timeout"
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

    /// Lowest severity that makes the run fail (exit 1)
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warning", "note"])]
    pub fail_on: Option<String>,

    /// When to colour the output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

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
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Compiler-style findings and a summary line
    Text,
    /// One JSON document with findings and the per-statement lock report
    Json,
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
        Ok(Settings {
            pg_version: self.pg_version,
            assume_in_transaction: self.assume_in_transaction,
            select: self.select.clone(),
            ignore: self.ignore.clone(),
            exclude: self.exclude.clone(),
            lock_timeout_max_ms,
            fail_on: self.fail_on.as_deref().and_then(Severity::parse),
            ..Settings::default()
        })
    }
}

fn is_stdin(inputs: &[Input], path: &str) -> bool {
    inputs
        .iter()
        .any(|i| matches!(i, Input::Stdin { display, .. } if display == path))
}

/// Files with applicable fixes: the report, its fixed text and the number of fixes.
/// Files that were not valid UTF-8 are left alone (rewriting them would change bytes the
/// fixes do not touch).
fn fixed_sources(reports: &[FileReport]) -> Vec<(&FileReport, String, usize)> {
    reports
        .iter()
        .filter(|r| r.problem.is_none())
        .filter_map(|r| {
            let fixes = r.diagnostics.iter().filter_map(|d| d.fix.as_ref());
            let (new, n) = fix::apply(&r.source, fixes);
            (n > 0 && new != r.source).then_some((r, new, n))
        })
        .collect()
}

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
    let opts = settings.lint_options();
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
                .read_to_end(&mut text)
                .context("cannot read standard input")?;
            inputs.push(Input::Stdin {
                display: args
                    .stdin_filename
                    .clone()
                    .unwrap_or_else(|| "<stdin>".into()),
                text,
            });
        } else {
            let (found, errors) =
                files::discover(std::slice::from_ref(p), &cfg.root, &cwd, &excludes);
            for e in errors {
                eprint_error(color, &e.to_string());
                had_error = true;
            }
            inputs.extend(found);
        }
    }

    let mut reports = files::lint_all(&inputs, &opts);
    if args.diff || args.fix {
        let fixed = fixed_sources(&reports);
        if args.diff {
            let mut out = io::BufWriter::new(io::stdout().lock());
            let code = if fixed.is_empty() {
                EXIT_OK
            } else {
                EXIT_FINDINGS
            };
            let written: io::Result<()> = (|| {
                for (r, new, _) in &fixed {
                    write!(out, "{}", fix::unified_diff(&r.path, &r.source, new))?;
                }
                out.flush()
            })();
            return match written {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(e).context("cannot write the diff")
                }
                _ => Ok(code),
            };
        }
        if let Some((_, new, _)) = fixed.iter().find(|(r, _, _)| is_stdin(&inputs, &r.path)) {
            let mut out = io::stdout().lock();
            return match out.write_all(new.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(e).context("cannot write the fixed SQL")
                }
                _ => Ok(EXIT_OK),
            };
        }
        let mut count = 0;
        for (r, new, n) in &fixed {
            files::write_atomically(std::path::Path::new(&r.path), new.as_bytes())
                .with_context(|| format!("cannot write {}", r.path))?;
            count += n;
        }
        if count > 0 {
            let _ = writeln!(
                io::stderr(),
                "fixed {count} finding{} in {} file{}",
                if count == 1 { "" } else { "s" },
                fixed.len(),
                if fixed.len() == 1 { "" } else { "s" }
            );
            reports = files::lint_all(&inputs, &opts);
        }
    }
    let summary = Summary::of(&reports);
    had_error |= summary.skipped > 0;
    let code = if had_error {
        EXIT_ERROR
    } else if summary.at_or_above(fail_on) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };

    let style = Style { color };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written: io::Result<()> = (|| {
        match args.format {
            Format::Json => json::write(&mut out, &reports, &summary)?,
            Format::Text => {
                for r in &reports {
                    if args.locks {
                        locks::write_file(&mut out, r)?;
                    }
                    text::write_file(&mut out, r, style)?;
                }
                text::write_summary(&mut out, &summary, style)?;
            }
        }
        out.flush()
    })();
    match written {
        Ok(()) => Ok(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(e).context("cannot write the report"),
    }
}
