//! Migration frameworks: which tool a file is written for, how that tool runs it (in one
//! transaction or not), and which parts of the file are "up" and which "down".
//!
//! Detection looks at the file name, the directory (marker files such as `sqitch.plan` or
//! `atlas.sum`) and marker comments in the text. The result is a [`FilePlan`]: the framework
//! and the file's sections, each with its direction and transaction mode, and the reason,
//! so findings can say *why* a statement runs in a transaction and how to change that.
//!
//! | framework | recognised by | transaction per file | down part |
//! |---|---|---|---|
//! | Flyway | `V1__x.sql`, `U1__x.sql`, `R__x.sql` | yes, unless `executeInTransaction=false` in `V1__x.sql.conf`, or the file holds a statement Flyway runs outside transactions (`CREATE INDEX CONCURRENTLY` …) | `U` scripts |
//! | golang-migrate | `1_x.up.sql` / `1_x.down.sql` | one implicit transaction when the file has several statements | `.down.sql` |
//! | goose | `-- +goose Up` | yes, unless `-- +goose NO TRANSACTION` | `-- +goose Down` |
//! | dbmate | `-- migrate:up` | yes, unless `transaction:false` on the marker | `-- migrate:down` |
//! | sqlx | `1_x.sql`, `1_x.up.sql` in a Rust project that depends on sqlx, or `-- no-transaction` | yes, unless the first line is `-- no-transaction` | `.down.sql` |
//! | diesel | `…/up.sql`, `…/down.sql` | yes, unless `run_in_transaction = false` in `metadata.toml` | `down.sql` |
//! | Prisma | `migrations/<name>/migration.sql` | one implicit transaction when the file has several statements | — |
//! | Liquibase | `--liquibase formatted sql` | per changeset, unless `runInTransaction:false` | `--rollback` lines |
//! | Atlas | `atlas.sum` beside the file, or `-- atlas:` directives | yes, unless `-- atlas:txmode none` | — |
//! | sqitch | `deploy/`, `revert/`, `verify/` under a `sqitch.plan` | no (scripts hold their own `BEGIN`/`COMMIT`) | `revert/` |

use std::ops::Range;

mod detect;
mod markers;
mod plan;
#[cfg(test)]
mod tests;

pub use detect::{detect, migration_key, DirCache, DirFacts};
pub(crate) use detect::{flyway_kind, numbered};
pub use plan::{plan, section_text};

/// A migration tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framework {
    /// No framework: plain SQL files, run as written (`assume_in_transaction` decides).
    Plain,
    Flyway,
    GolangMigrate,
    Goose,
    Dbmate,
    Sqlx,
    Diesel,
    Prisma,
    Liquibase,
    Atlas,
    Sqitch,
}

/// Every framework, for listings and "did you mean".
pub const ALL: [Framework; 11] = [
    Framework::Plain,
    Framework::Flyway,
    Framework::GolangMigrate,
    Framework::Goose,
    Framework::Dbmate,
    Framework::Sqlx,
    Framework::Diesel,
    Framework::Prisma,
    Framework::Liquibase,
    Framework::Atlas,
    Framework::Sqitch,
];

impl Framework {
    /// The name used in config files, flags and reports.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Plain => "none",
            Framework::Flyway => "flyway",
            Framework::GolangMigrate => "golang-migrate",
            Framework::Goose => "goose",
            Framework::Dbmate => "dbmate",
            Framework::Sqlx => "sqlx",
            Framework::Diesel => "diesel",
            Framework::Prisma => "prisma",
            Framework::Liquibase => "liquibase",
            Framework::Atlas => "atlas",
            Framework::Sqitch => "sqitch",
        }
    }

    pub fn parse(s: &str) -> Option<Framework> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "plain" => "none",
            "migrate" | "golang_migrate" => "golang-migrate",
            other => other,
        };
        ALL.into_iter().find(|f| f.name() == s)
    }

    /// Why this framework fails a statement that cannot run in a transaction block unless
    /// it is the only statement of its file (section `tx`), if it does.
    pub fn alone_reason(self, tx: TxMode) -> Option<&'static str> {
        match (self, tx) {
            (Framework::GolangMigrate, TxMode::Implicit) => Some(
                "golang-migrate sends a file as one multi-statement query, which PostgreSQL runs in one implicit transaction when it holds more than one statement",
            ),
            (Framework::Prisma, TxMode::Implicit) => Some(
                "Prisma sends a file as one multi-statement script, which PostgreSQL runs in one implicit transaction when it holds more than one statement",
            ),
            (Framework::Flyway, _) => Some(
                "Flyway refuses a script that mixes statements that cannot run in a transaction with other statements, unless `mixed` is turned on in its configuration",
            ),
            _ => None,
        }
    }

    /// How to make a file of this framework run outside a transaction.
    pub fn no_transaction_hint(self) -> &'static str {
        match self {
            Framework::Plain => {
                "move it to its own migration that is not wrapped in a transaction (mark it non-transactional for your migration tool)"
            }
            Framework::Flyway => {
                "move it to its own migration and set `executeInTransaction=false` in that script's `.sql.conf` file"
            }
            Framework::GolangMigrate | Framework::Prisma => {
                "move it to its own migration file, alone: a file with a single statement does not run in a transaction block"
            }
            Framework::Goose => {
                "move it to its own migration and add `-- +goose NO TRANSACTION` at the top of that file"
            }
            Framework::Dbmate => {
                "move it to its own migration and write `-- migrate:up transaction:false`"
            }
            Framework::Sqlx => {
                "move it to its own migration whose first line is `-- no-transaction`"
            }
            Framework::Diesel => {
                "move it to its own migration with `run_in_transaction = false` in that migration's `metadata.toml`"
            }
            Framework::Liquibase => {
                "move it to its own changeset with `runInTransaction:false`"
            }
            Framework::Atlas => {
                "move it to its own migration file starting with `-- atlas:txmode none`"
            }
            Framework::Sqitch => "move it out of the script's `BEGIN … COMMIT`",
        }
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a section migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    /// Down, undo, revert or rollback SQL: linted on its own, never replayed into the schema.
    Down,
    /// sqitch verify scripts: linted like down sections.
    Verify,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Verify => "verify",
        }
    }
}

/// How the migration tool runs a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Wrapped in one transaction by the tool.
    Wrapped,
    /// Sent as one multi-statement query: one implicit transaction when it holds more than
    /// one statement, none when it holds one.
    Implicit,
    /// Run statement by statement (autocommit), or as written.
    None,
    /// Flyway: wrapped, unless a statement in it cannot run in a transaction, in which case
    /// Flyway runs the whole script without one.
    FlywayAuto,
    /// No framework: `assume_in_transaction` decides.
    Default,
}

/// A part of a file that the tool runs as a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Byte ranges of the file that belong to this section.
    pub keep: Vec<Range<usize>>,
    /// Byte ranges inside `keep` to blank out before parsing (comment prefixes such as
    /// Liquibase's `--rollback`, whose SQL follows them on the same line).
    pub blank: Vec<Range<usize>>,
    pub direction: Direction,
    pub tx: TxMode,
    /// Why the tool runs the section this way, for messages (`goose wraps each migration in a
    /// transaction`).
    pub reason: String,
}

/// How a file will be run by its migration tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub framework: Framework,
    pub sections: Vec<Section>,
}

impl FilePlan {
    /// The file is one plain up section covering everything.
    pub fn is_whole_file(&self, len: usize) -> bool {
        matches!(self.sections.as_slice(), [s] if matches!(s.keep.as_slice(), [r] if *r == (0..len)) && s.blank.is_empty() && s.direction == Direction::Up)
    }
}
