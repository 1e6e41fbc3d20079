//! End-to-end tests of the `lockstep` binary, one module per subject: exit codes, the text
//! report, file discovery, standard input, configuration, suppressions, `rules`/`explain`,
//! hostile input and broken pipes, `trace`'s choice of database, and help and completions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../common/bin.rs"]
mod bin;

mod bad_input;
mod config;
mod discovery;
mod exit_codes;
mod help;
mod output;
mod rules;
mod stdin;
mod suppressions;
mod trace;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use bin::{lockstep, run, tmp, write, Run};

/// A statement with two error findings (create-index-non-concurrently, missing-lock-timeout).
const BAD: &str = "CREATE INDEX i ON t (a);\n";
/// A file with no findings.
const CLEAN: &str = "SET lock_timeout = '2s'; CREATE INDEX CONCURRENTLY i ON t (a);\n";
/// A file whose only finding is an `unparsed-statement` note.
const NOTE_ONLY: &str = "ALTER TABLE t FROBNICATE x;\n";
/// A file with exactly one finding: create-index-non-concurrently on line 2, column 1.
const ONE_INDEX: &str = "SET lock_timeout = '2s';\nCREATE INDEX good ON t (a);\n";

const ESC: &str = "\x1b[";

/// `lockstep lint --no-config`, run in `dir`.
fn lint(dir: &Path) -> Command {
    let mut c = lockstep(dir);
    c.args(["lint", "--no-config"]);
    c
}

/// `lockstep lint` (config discovery on), run in `dir`.
fn lint_with_config(dir: &Path) -> Command {
    let mut c = lockstep(dir);
    c.arg("lint");
    c
}

impl Run {
    /// The `path:line:col` of every finding, in output order.
    fn locations(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--> "))
            .map(str::to_string)
            .collect()
    }

    fn summary(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("checked "))
            .unwrap_or_else(|| panic!("no summary line in stdout:\n{}", self.stdout))
    }
}

/// Runs `cmd ARGS` and asserts exit code 2 with `needle` on stderr.
fn fails_with_2(mut cmd: Command, args: &[&str], needle: &str) {
    cmd.args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(needle));
}
