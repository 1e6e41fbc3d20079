//! Command-line interface: argument definitions and the only code that prints.

// The command line is the one place that writes to the terminal (Cargo.toml denies it
// elsewhere).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod apply;
mod completions;
mod demo;
mod explain;
mod finalize;
mod fleet;
mod interrupt;
mod lint;
mod man;
mod online;
mod pause;
mod plan;
mod resume;
mod rollback;
mod rules;
mod run;
mod set;
mod status;
mod swap;
mod sync_back;
mod trace;

use std::io::{self, IsTerminal, Write};

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Change PostgreSQL schemas without downtime",
    long_about = "lockstep lints PostgreSQL migrations before they reach production (which statement \
takes which lock, which one rewrites or scans a table, and what to write instead), traces them on a \
real PostgreSQL, and converts live tables online (partitioning) with resumable, reversible playbooks.",
    after_help = "Examples:\n  lockstep lint migrations/\n  lockstep lint --pg-version 12 db/migrate/0042_add_index.sql\n  git diff --name-only | grep '\\.sql$' | xargs lockstep lint\n  cat change.sql | lockstep lint - --stdin-filename change.sql\n  lockstep explain set-not-null-scan\n  lockstep demo\n  lockstep plan playbooks/partition-events-monthly.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint migration files for locking, rewrite and transaction hazards
    Lint(Box<lint::LintArgs>),
    /// List every rule with its default severity and a one-line summary
    Rules(rules::RulesArgs),
    /// Print a rule's full documentation
    Explain(explain::ExplainArgs),
    /// Run migrations against a real PostgreSQL and record what each statement locked,
    /// rewrote and scanned, compared with the lint lock report
    Trace(Box<trace::TraceArgs>),
    /// Show what a playbook would do: preflight, every step's SQL and locks, estimates, and
    /// the table's definition before and after (no writes)
    Plan(Box<plan::PlanArgs>),
    /// Apply a directory of SQL migrations: linted first, each file once, every statement
    /// under lock_timeout with retries
    Apply(Box<apply::ApplyArgs>),
    /// Roll a change out across many databases or schemas: canary, waves, circuit breaker
    Fleet(Box<fleet::FleetArgs>),
    /// Run a playbook: change a live table online (partition, column type, constraints, indexes, backfill)
    Run(Box<run::RunArgs>),
    /// Show a run's step, progress, throttle state and replica lag
    Status(Box<status::StatusArgs>),
    /// Change a run's throttling while it works (rows/s, batch time, duty cycle)
    Set(Box<set::SetArgs>),
    /// Swap a run waiting in `[swap] mode = "manual"`
    Swap(Box<swap::SwapArgs>),
    /// Pause a run's copy (the trigger keeps capturing writes)
    Pause(Box<pause::PauseArgs>),
    /// Continue a paused, stopped, failed or killed run from its last checkpoint
    Resume(Box<resume::ResumeArgs>),
    /// Undo a run, before or after the swap (until finalize)
    Rollback(Box<rollback::RollbackArgs>),
    /// After the swap: apply the changes since to the old table now (no swap back), freeing the WAL a reverse slot holds
    SyncBack(Box<sync_back::SyncBackArgs>),
    /// After the swap: drop the reverse trigger or slot and the old table; after a backfill or its rollback: drop the undo data
    Finalize(Box<finalize::FinalizeArgs>),
    /// Try it: a throwaway PostgreSQL, a busy table, converted to partitions online
    Demo(Box<demo::DemoArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(completions::CompletionsArgs),
    /// Print the man page (or a subcommand's), or write all pages into a directory
    Man(man::ManArgs),
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when writing to a terminal (respects NO_COLOR and CLICOLOR_FORCE)
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
                if set("NO_COLOR") {
                    false
                } else if std::env::var_os("CLICOLOR_FORCE")
                    .is_some_and(|v| !v.is_empty() && v != "0")
                {
                    true
                } else {
                    io::stdout().is_terminal()
                }
            }
        }
    }
}

/// Runs the CLI and returns the process exit code.
///
/// Every command's `run` is `#[inline(never)]`: inlined here, the online commands' large
/// futures made this one frame 350 KB, touched (and resident) for every command, `lint`
/// included.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Lint(args) => lint::run(*args),
        Command::Trace(args) => trace::run(*args),
        Command::Plan(args) => plan::run(*args),
        Command::Demo(args) => demo::run(*args),
        Command::Run(args) => run::run(*args),
        Command::Apply(args) => apply::run(*args),
        Command::Fleet(args) => fleet::run(*args),
        Command::Status(args) => status::run(*args),
        Command::Pause(args) => pause::run(*args),
        Command::Set(args) => set::run(*args),
        Command::Swap(args) => swap::run(*args),
        Command::Resume(args) => resume::run(*args),
        Command::Rollback(args) => rollback::run(*args),
        Command::SyncBack(args) => sync_back::run(*args),
        Command::Finalize(args) => finalize::run(*args),
        Command::Rules(args) => rules::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return EXIT_OK;
            }
            let _ = writeln!(io::stderr(), "error: {e:#}");
            EXIT_ERROR
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints an error line to stderr in the house style.
pub(crate) fn eprint_error(color: bool, msg: &str) {
    let label = if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    let _ = writeln!(io::stderr(), "{label}: {msg}");
}
