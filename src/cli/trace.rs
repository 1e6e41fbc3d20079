use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::interrupt;
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::config::{self, parse_pg_version, Settings};
use crate::db::connect::ConnectOptions;
use crate::db::observe;
use crate::files::{self, Input};
use crate::report::trace::{self as report, TraceInfo, TraceSummary};
use crate::trace::{self, Connections, Mode, Outcome, Step, Verdict};

#[derive(Debug, Args)]
#[command(after_help = "\
By default the files run on a throwaway PostgreSQL (initdb in a temporary directory, removed\n\
afterwards, also on Ctrl-C, SIGTERM or SIGHUP); --setup FILE creates the schema and data they\n\
expect first. With --database-url, or DATABASE_URL set (and no --throwaway), they run on that\n\
database inside one transaction that is rolled back at the end (statements that cannot run\n\
in a transaction, such as CREATE INDEX CONCURRENTLY, are then skipped), unless --commit is\n\
given.\n\n\
Each statement is marked `confirmed` when PostgreSQL took the locks, rewrites and scans the\n\
lint lock report predicts (locks stronger than ACCESS SHARE, on tables that existed before\n\
the statement), `mismatch` with both sides otherwise.\n\n\
Exit codes:\n  0  every statement ran and matched the lint report\n  1  a statement failed, or a mismatch\n  2  usage error, unreadable file, or no database\n\n\
Examples:\n  lockstep trace --setup schema.sql migrations/0042_add_index.sql\n  lockstep trace --format markdown --setup schema.sql migrations/ > trace.md\n  lockstep trace --database-url postgres://app@db.internal/app migrations/0042_add_index.sql")]
pub struct TraceArgs {
    /// Migration files or directories (every *.sql below, in migration order)
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// SQL run first, untraced: the schema and data the migrations expect
    #[arg(long, value_name = "FILE")]
    pub setup: Option<PathBuf>,

    /// Run on this database instead of a throwaway cluster (URL or `key=value` string)
    /// [default: DATABASE_URL when set; without a value: DATABASE_URL, else the libpq
    /// environment: PGHOST, PGUSER …]
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub database_url: Option<String>,

    /// Run on a throwaway cluster even when DATABASE_URL is set
    #[arg(long, conflicts_with = "database_url")]
    pub throwaway: bool,

    /// On a database (not a throwaway cluster): commit the migrations instead of rolling
    /// them back
    #[arg(long, conflicts_with = "throwaway")]
    pub commit: bool,

    /// Fill every table the migrations create with N generated rows before the statements
    /// that follow, so they meet tables that hold rows (throwaway cluster only)
    #[arg(long, value_name = "N", conflicts_with = "database_url")]
    pub seed_rows: Option<u32>,

    /// Output format
    #[arg(long, value_enum, default_value_t = TraceFormat::Text, value_name = "FORMAT")]
    pub format: TraceFormat,

    /// PostgreSQL version for the lint predictions [default: the server's]
    #[arg(long, value_name = "VERSION", value_parser = parse_pg_version)]
    pub pg_version: Option<u32>,

    /// The session TimeZone lint assumes for its predictions [default: the server's]
    #[arg(long, value_name = "ZONE", value_parser = config::parse_timezone)]
    pub timezone: Option<String>,

    /// Migration framework (see `lockstep lint --help`); default: detected per file
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,

    /// Refuse files (the migrations and --setup) larger than this (e.g. 64MiB, 500KB, or
    /// bytes) [default: `max_file_size` in lockstep.toml, else 16MiB]
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub max_file_size: Option<u64>,

    /// Ignore any lockstep.toml
    #[arg(long)]
    pub no_config: bool,

    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// Trace report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// One block per statement: locks, rewrites, scans, timing and the verdict
    Text,
    /// One JSON document (schema in the docs of `report::trace`)
    Json,
    /// A table for a merge-request comment
    Markdown,
}

fn progress_line(s: &Step) -> String {
    let what = match &s.outcome {
        Outcome::Ran => format!("{:.1} ms", s.duration_ms),
        Outcome::Failed(_) => "failed".into(),
        Outcome::Skipped(_) => "skipped".into(),
    };
    format!("trace: {}:{} {what}", s.file, s.line)
}

#[inline(never)] // see `cli::main`
pub fn run(args: TraceArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    let cwd = std::env::current_dir().context("cannot determine the working directory")?;
    let cfg = if args.no_config {
        Ok(config::Config {
            path: None,
            root: cwd.clone(),
            settings: Settings::default(),
        })
    } else {
        config::load(None, &cwd)
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let framework = match args.framework.as_deref().map(config::parse_framework) {
        Some(Err(m)) => {
            eprint_error(color, &format!("--framework: {m}"));
            return Ok(EXIT_ERROR);
        }
        other => other.transpose().unwrap_or(None),
    };
    let flags = Settings {
        pg_version: args.pg_version,
        timezone: args.timezone.clone(),
        framework,
        max_file_size: args.max_file_size,
        ..Settings::default()
    };
    let settings = cfg.settings.clone().merged_with(flags);
    let excludes = match files::exclude_set(&settings.exclude) {
        Ok(e) => e,
        Err(e) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
    };
    let (inputs, errors) = files::discover(
        &args.paths,
        &cfg.root,
        &cwd,
        &excludes,
        settings.framework.flatten(),
    );
    if !errors.is_empty() {
        for e in errors {
            eprint_error(color, &e.to_string());
        }
        return Ok(EXIT_ERROR);
    }
    // Lint's checks, before a cluster is started: regular files under the size limit.
    let limit = settings.lint_options().max_file_size;
    let mut refused = false;
    for input in &inputs {
        if let Input::File { path, display } = input {
            if let Err(m) = files::check_file(path, limit, "traced") {
                eprint_error(color, &format!("{display}: {m}"));
                refused = true;
            }
        }
    }
    if let Some(p) = &args.setup {
        if p.exists() {
            if let Err(m) = files::check_file(p, limit, "run") {
                eprint_error(color, &format!("--setup {}: {m}", p.display()));
                refused = true;
            }
        }
    }
    if refused {
        return Ok(EXIT_ERROR);
    }
    let setup = match &args.setup {
        Some(p) if !p.exists() => {
            eprint_error(color, &format!("--setup {}: no such file", p.display()));
            return Ok(EXIT_ERROR);
        }
        Some(p) => Some(Input::File {
            path: p.clone(),
            display: p.display().to_string(),
        }),
        None => None,
    };

    // Signals are handled from here on, before a throwaway cluster exists, so that none of
    // them can end the process and leave it running.
    let (rt, mut interrupts) = interrupt::runtime()?;

    // Where to run: the given database (the flag, else DATABASE_URL), or a throwaway cluster.
    let url = match &args.database_url {
        Some(url) if url.is_empty() => Some(std::env::var("DATABASE_URL").unwrap_or_default()),
        Some(url) => {
            if std::path::Path::new(url).exists() {
                eprint_error(
                    color,
                    &format!(
                        "--database-url `{url}` is a path, not a database URL (was the URL forgotten? `--database-url URL`; `--database-url --` before the paths uses DATABASE_URL, else the PG* environment)"
                    ),
                );
                return Ok(EXIT_ERROR);
            }
            Some(url.clone())
        }
        None if args.throwaway => None,
        None => std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()),
    };
    if args.commit && url.is_none() {
        eprint_error(
            color,
            "--commit needs a database (--database-url or DATABASE_URL); a throwaway cluster is removed anyway",
        );
        return Ok(EXIT_ERROR);
    }
    let mut cluster = None;
    let (target, conn) = match &url {
        Some(url) => {
            let url = Some(url.as_str()).filter(|u| !u.is_empty());
            match ConnectOptions::resolve(url) {
                Ok(c) => {
                    for w in c.warnings() {
                        let _ = writeln!(io::stderr(), "warning: {w}");
                    }
                    (c.describe(), c)
                }
                Err(e) => {
                    eprint_error(color, &e.to_string());
                    return Ok(EXIT_ERROR);
                }
            }
        }
        None => {
            if io::stderr().is_terminal() {
                let _ = writeln!(io::stderr(), "trace: starting a throwaway PostgreSQL …");
            }
            let Some((c, opts)) = interrupt::start_cluster(color) else {
                return Ok(EXIT_ERROR);
            };
            cluster = Some(c);
            ("a throwaway cluster".to_string(), opts)
        }
    };
    let mode = if url.is_some() && !args.commit {
        Mode::Rollback
    } else {
        Mode::Commit
    };

    let show_progress = io::stderr().is_terminal();
    let traced = async {
        let main = conn.connect().await?;
        let watch = conn.connect().await?;
        let major = observe::server_major(&main).await.unwrap_or(0);
        let mut opts = settings.lint_options();
        if args.pg_version.is_none() && cfg.settings.pg_version.is_none() && major > 0 {
            opts.pg_version = major;
        }
        if opts.timezone.is_none() {
            opts.timezone = observe::timezone(&main).await.ok();
        }
        let mut progress = |s: &Step| {
            if show_progress {
                let _ = writeln!(io::stderr(), "{}", progress_line(s));
            }
        };
        let steps = trace::run_with_progress(
            Connections {
                main: &main,
                watch: &watch,
            },
            &inputs,
            setup.as_ref(),
            &opts,
            trace::TraceOptions {
                mode,
                seed_rows: args.seed_rows.unwrap_or(0),
            },
            &mut progress,
        )
        .await?;
        Ok::<_, anyhow::Error>((steps, major))
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = traced => Ok(r),
            signal = interrupts.recv() => Err(signal),
        }
    });
    drop(rt);
    let removed = cluster.is_some();
    drop(cluster);
    let result = match outcome {
        Ok(r) => r,
        Err(signal) => {
            let what = match (removed, mode) {
                (true, _) => "the throwaway PostgreSQL is removed",
                (false, Mode::Rollback) => "nothing was committed",
                (false, Mode::Commit) => "statements committed before it stay committed",
            };
            eprint_error(color, &format!("trace {}: stopped; {what}", signal.name()));
            return Ok(signal.exit_code());
        }
    };
    let (steps, major) = match result {
        Ok(r) => r,
        Err(e) => {
            eprint_error(color, &format!("{e:#}"));
            return Ok(EXIT_ERROR);
        }
    };
    let info = TraceInfo {
        target: format!("PostgreSQL {major} ({target})"),
        server_major: major,
        rolled_back: mode == Mode::Rollback,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = match args.format {
        TraceFormat::Text => report::write_text(&mut out, &info, &steps),
        TraceFormat::Json => report::write_json(&mut out, &info, &steps),
        TraceFormat::Markdown => report::write_markdown(&mut out, &info, &steps),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write the trace");
        }
    }
    let sum = TraceSummary::of(&steps);
    let failed = steps
        .iter()
        .any(|s| matches!(s.outcome, Outcome::Failed(_)) || s.verdict == Verdict::Mismatch);
    Ok(if failed || sum.mismatches > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
