use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::apply::{self, ApplyError, Event, Loaded, Settings, Target};
use crate::config;
use crate::lint::context::parse_duration_ms;

/// Apply a directory of SQL migrations to a database: linted first, each file once (recorded
/// in lockstep.migrations), every statement under lock_timeout with retries.
#[derive(Debug, Args)]
#[command(
    after_help = "Each file runs in one transaction with its record, unless it holds a statement that\n\
cannot run in one (CREATE INDEX CONCURRENTLY …): then statement by statement, its progress\n\
recorded, so a failed file continues where it stopped. Files in migration order; *.down.sql\n\
and down.sql are left out. lockstep.toml (found from the working directory) sets the lint\n\
options.\n\n\
Exit codes:\n  0  every migration applied (or already applied)\n  1  lint found errors, or a migration failed (recorded on the target)\n  2  usage error, unreadable file, or no connection\n\n\
Examples:\n  lockstep apply migrations/ --database-url postgres://app@db.internal/app\n  lockstep apply migrations/ --schema tenant_0042 --lock-timeout 1s\n  lockstep apply --status migrations/"
)]
pub struct ApplyArgs {
    /// The directory of migrations
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub locks: LockArgs,
    /// Apply to this schema of the database (the statements run with it alone on the
    /// search_path; records are kept per schema)
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// Apply even when lint reports errors
    #[arg(long)]
    pub allow_lint_errors: bool,
    /// Show what the database has applied and what is pending; change nothing
    #[arg(long)]
    pub status: bool,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// How statements wait for locks (`apply`; a fleet file has the same keys).
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Every statement's lock_timeout
    #[arg(long, value_name = "DURATION", default_value = "500ms")]
    pub lock_timeout: String,
    /// Attempts of a statement (or a file run in one transaction) that meets lock timeouts
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub attempts: u32,
    /// The most time the target may spend waiting for locks in all
    #[arg(long, value_name = "DURATION")]
    pub lock_budget: Option<String>,
}

impl LockArgs {
    pub fn settings(&self) -> Result<Settings, String> {
        let ms = |flag: &str, v: &str| {
            parse_duration_ms(v).filter(|ms| *ms > 0).ok_or_else(|| {
                format!("{flag}: expected a duration above zero such as 500ms or 2s, found `{v}`")
            })
        };
        if self.attempts == 0 {
            return Err("--attempts: must be at least 1".into());
        }
        Ok(Settings {
            lock_timeout_ms: ms("--lock-timeout", &self.lock_timeout)?,
            attempts: self.attempts,
            lock_budget: match &self.lock_budget {
                Some(v) => Some(Duration::from_millis(ms("--lock-budget", v)?)),
                None => None,
            },
            ..Settings::default()
        })
    }
}

/// Reads and lints a directory of migrations with the lint options of `lockstep.toml`;
/// prints the findings (errors and warnings) on standard error.
pub fn load_and_lint(dir: &Path, color: bool) -> Result<Loaded, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let cfg = config::load(None, &cwd).map_err(|e| e.to_string())?;
    let loaded = apply::load(dir, &cfg.settings.lint_options()).map_err(|e| e.to_string())?;
    let mut err = io::stderr().lock();
    for f in loaded
        .findings
        .iter()
        .filter(|f| f.severity >= crate::lint::Severity::Warning)
    {
        let label = match (color, f.severity) {
            (true, crate::lint::Severity::Error) => "\x1b[1;31merror\x1b[0m",
            (true, _) => "\x1b[1;33mwarning\x1b[0m",
            (false, s) => s.as_str(),
        };
        let _ = writeln!(
            err,
            "{label}[{}]: {}:{}:{}: {}",
            f.rule, f.path, f.line, f.column, f.message
        );
    }
    Ok(loaded)
}

#[inline(never)] // see `cli::main`
pub fn run(args: ApplyArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let settings = match args.locks.settings() {
        Ok(s) => Settings {
            allow_lint_errors: args.allow_lint_errors,
            ..s
        },
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    let loaded = match load_and_lint(&args.dir, color) {
        Ok(l) => l,
        Err(m) => {
            eprint_error(color, &m);
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
    let target = Target::new(conn, args.schema.clone());
    online::block_on(async {
        if args.status {
            return match apply::status(&target).await {
                Ok(st) => {
                    print_status(&target, &loaded, &st);
                    EXIT_OK
                }
                Err(e) => fail(color, &e),
            };
        }
        let stop = online::stop_on_ctrl_c();
        let mut out = io::stdout().lock();
        let mut on = |e: Event| match e {
            Event::Started { version, from } => {
                let _ = if from > 0 {
                    writeln!(out, "{version}: continuing at statement {}", from + 1)
                } else {
                    Ok(())
                };
            }
            Event::Applied(a) => {
                let how = if a.in_transaction {
                    "one transaction"
                } else {
                    "statement by statement"
                };
                let waits = match a.lock_waits {
                    0 => String::new(),
                    1 => ", 1 lock wait".to_string(),
                    n => format!(", {n} lock waits"),
                };
                let _ = writeln!(
                    out,
                    "applied {} ({} statement{}, {how}, {} ms{waits})",
                    a.version,
                    a.statements,
                    if a.statements == 1 { "" } else { "s" },
                    a.duration.as_millis()
                );
            }
            Event::Note(n) => {
                let _ = writeln!(io::stderr(), "{n}");
            }
        };
        match apply::apply(&target, &loaded, &settings, &stop, &mut on).await {
            Ok(done) => {
                let skipped = loaded.migrations.len() - done.len();
                println!(
                    "{}: {} migration{} applied{}",
                    target.label,
                    done.len(),
                    if done.len() == 1 { "" } else { "s" },
                    if skipped > 0 {
                        format!(", {skipped} applied before")
                    } else {
                        String::new()
                    }
                );
                EXIT_OK
            }
            Err(e) => fail(color, &e),
        }
    })
}

fn fail(color: bool, e: &ApplyError) -> u8 {
    eprint_error(color, &e.to_string());
    match e {
        ApplyError::Load(_) | ApplyError::Connect { .. } | ApplyError::Db { .. } => EXIT_ERROR,
        ApplyError::Stopped { .. } => 130,
        _ => EXIT_FINDINGS,
    }
}

fn print_status(target: &Target, loaded: &Loaded, st: &apply::TargetStatus) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", target.label);
    for m in &loaded.migrations {
        let what = match st.records.get(&m.version) {
            None => "pending".to_string(),
            Some(r) if r.status == apply::RecordStatus::Applied && r.checksum != m.checksum => {
                "applied, but the file changed since".to_string()
            }
            Some(r) if r.status == apply::RecordStatus::Applied => {
                format!("applied {}", r.applied_at.as_deref().unwrap_or_default())
            }
            Some(r) => format!(
                "{} after {}/{} statements: {}",
                r.status.as_str(),
                r.statements_done,
                r.statements,
                r.error.as_deref().unwrap_or("interrupted")
            ),
        };
        let _ = writeln!(out, "  {:<40} {what}", m.version);
    }
}
