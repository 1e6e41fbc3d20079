//! End-to-end tests of the `lockstep` binary: exit codes, output format, file discovery,
//! standard input, configuration, suppressions, `rules`/`explain`, hostile input and
//! broken pipes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

/// A statement with two error findings (create-index-non-concurrently, missing-lock-timeout).
const BAD: &str = "CREATE INDEX i ON t (a);\n";
/// A file with no findings.
const CLEAN: &str = "SET lock_timeout = '2s'; CREATE INDEX CONCURRENTLY i ON t (a);\n";
/// A file whose only finding is an `unparsed-statement` note.
const NOTE_ONLY: &str = "ALTER TABLE t FROBNICATE x;\n";
/// A file with exactly one finding: create-index-non-concurrently on line 2, column 1.
const ONE_INDEX: &str = "SET lock_timeout = '2s';\nCREATE INDEX good ON t (a);\n";

const ESC: &str = "\x1b[";

fn tmp() -> TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// Writes `contents` to `dir/rel`, creating parent directories.
fn write(dir: &Path, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(&p, contents).expect("write file");
    p
}

/// The binary, run in `dir`, with colour-related variables removed.
fn lockstep(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lockstep").expect("binary built");
    c.current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    c
}

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

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
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

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd ARGS` and asserts exit code 2 with `needle` on stderr.
fn fails_with_2(mut cmd: Command, args: &[&str], needle: &str) {
    cmd.args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(needle));
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run lockstep");
    let r = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "lockstep panicked:\n{}",
        r.stderr
    );
    r
}

// ---------------------------------------------------------------------------------------------
// 1. Exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_0_for_clean_file() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    lint(d.path())
        .arg("clean.sql")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "checked 1 file, 2 statements: no findings",
        ))
        .stdout(predicate::str::contains("[").not());
}

#[test]
fn exit_1_for_error_finding() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    lint(d.path())
        .arg("bad.sql")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error[create-index-non-concurrently]",
        ))
        .stdout(predicate::str::contains("error[missing-lock-timeout]"))
        .stdout(predicate::str::contains(
            "checked 1 file, 1 statement: 2 errors",
        ));
}

#[test]
fn exit_2_for_missing_path_naming_it() {
    let d = tmp();
    lint(d.path())
        .arg("nope.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: nope.sql: no such file or directory",
        ));
}

#[test]
fn missing_path_still_lints_the_other_paths() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path()).args(["nope.sql", "bad.sql"]));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("nope.sql"), "{}", r.stderr);
    assert!(r.stdout.contains("bad.sql:1:1"), "{}", r.stdout);
}

#[test]
fn exit_2_for_unknown_flag() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    lint(d.path())
        .args(["--frobnicate", "bad.sql"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--frobnicate"));
}

#[test]
fn exit_2_without_paths() {
    let d = tmp();
    lint(d.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("PATH"));
}

#[test]
fn exit_2_for_unknown_select_rule_without_suggestion() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    lint(d.path())
        .args(["--select", "no-such-rule", "clean.sql"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "--select: unknown rule `no-such-rule`",
        ))
        .stderr(predicate::str::contains("did you mean").not());
}

#[test]
fn exit_2_for_misspelled_select_rule_with_suggestion() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    fails_with_2(
        lint(d.path()),
        &["--select", "set-not-null-scn", "clean.sql"],
        "did you mean `set-not-null-scan`?",
    );
}

#[test]
fn exit_2_for_misspelled_ignore_rule_with_suggestion() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    lint(d.path())
        .args(["--ignore", "create-index-non-concurent", "clean.sql"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--ignore"))
        .stderr(predicate::str::contains(
            "did you mean `create-index-non-concurrently`?",
        ));
}

#[test]
fn ignore_flag_turns_rules_off() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    lint(d.path())
        .args([
            "--ignore",
            "create-index-non-concurrently,missing-lock-timeout",
            "bad.sql",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "checked 1 file, 1 statement: no findings",
        ));
}

#[test]
fn fail_on_note_fails_on_a_note() {
    let d = tmp();
    write(d.path(), "note.sql", NOTE_ONLY);

    let r = run(lint(d.path()).arg("note.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("note[unparsed-statement]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.summary(), "checked 1 file, 1 statement: 1 note");

    let r = run(lint(d.path()).args(["--fail-on", "note", "note.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());

    // A note is below the warning level.
    let r = run(lint(d.path()).args(["--fail-on", "warning", "note.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn fail_on_warning_fails_on_a_warning() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurrently = \"warning\"\n",
    );
    write(d.path(), "idx.sql", ONE_INDEX);

    let r = run(lint_with_config(d.path()).arg("idx.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.summary(), "checked 1 file, 2 statements: 1 warning");

    let r = run(lint_with_config(d.path()).args(["--fail-on", "warning", "idx.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());

    let r = run(lint_with_config(d.path()).args(["--fail-on", "note", "idx.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
}

#[test]
fn fail_on_from_config_and_flag_overrides_it() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "fail_on = \"warning\"\n[severity]\ncreate-index-non-concurrently = \"warning\"\n",
    );
    write(d.path(), "idx.sql", ONE_INDEX);

    let r = run(lint_with_config(d.path()).arg("idx.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());

    let r = run(lint_with_config(d.path()).args(["--fail-on", "error", "idx.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn exit_2_for_invalid_fail_on_value() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    fails_with_2(
        lint(d.path()),
        &["--fail-on", "fatal", "clean.sql"],
        "fatal",
    );
}

#[test]
fn exit_2_for_invalid_pg_version_flag() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    fails_with_2(
        lint(d.path()),
        &["--pg-version", "8", "clean.sql"],
        "not supported",
    );
    fails_with_2(lint(d.path()), &["--pg-version", "abc", "clean.sql"], "abc");
}

#[test]
fn exit_2_for_invalid_lock_timeout_max_flag() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    lint(d.path())
        .args(["--lock-timeout-max", "soon", "clean.sql"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--lock-timeout-max"))
        .stderr(predicate::str::contains("soon"));
}

// ---------------------------------------------------------------------------------------------
// 2. Output format
// ---------------------------------------------------------------------------------------------

#[test]
fn location_is_one_based_line_and_column() {
    let d = tmp();
    write(
        d.path(),
        "multi.sql",
        "SET lock_timeout = '2s';\n\nCREATE INDEX i\n  ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("multi.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(r.locations(), ["multi.sql:3:1"]);
    // Both lines of the statement are shown, with line numbers.
    assert!(r.stdout.contains("3 | CREATE INDEX i\n"), "{}", r.stdout);
    assert!(r.stdout.contains("4 |   ON t (a);\n"), "{}", r.stdout);
}

#[test]
fn column_is_counted_from_one_after_other_statements() {
    let d = tmp();
    write(
        d.path(),
        "add.sql",
        "SET lock_timeout = '2s';\nSET lock_timeout = '2s'; CREATE INDEX i ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("add.sql"));
    assert_eq!(r.locations(), ["add.sql:2:26"], "{}", r.stdout);
}

#[test]
fn column_counts_characters_not_bytes() {
    let d = tmp();
    // `é` is two bytes; the CREATE starts at character 27 (byte 28).
    write(
        d.path(),
        "mb.sql",
        "SET lock_timeout = 'é2s'; CREATE INDEX i ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("mb.sql"));
    assert!(
        r.locations().contains(&"mb.sql:1:27".to_string()),
        "{}",
        r.stdout
    );
}

#[test]
fn crlf_line_endings_give_the_same_lines() {
    let d = tmp();
    write(
        d.path(),
        "crlf.sql",
        "SET lock_timeout = '2s';\r\n\r\nCREATE INDEX i\r\n  ON t (a);\r\n",
    );
    let r = run(lint(d.path()).arg("crlf.sql"));
    assert_eq!(r.locations(), ["crlf.sql:3:1"]);
    assert!(!r.stdout.contains('\r'), "{:?}", r.stdout);
}

#[test]
fn finding_has_rule_header_source_caret_and_help() {
    let d = tmp();
    write(d.path(), "one.sql", ONE_INDEX);
    let r = run(lint(d.path()).arg("one.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    let expected = "\
error[create-index-non-concurrently]: `CREATE INDEX` without `CONCURRENTLY` blocks writes to `t` while the index builds (SHARE lock)
 --> one.sql:2:1
  |
2 | CREATE INDEX good ON t (a);
  | ^^^^^^^^^^^^
  = help: use `CREATE INDEX CONCURRENTLY` in a migration that does not run in a transaction; or run it online with an `index` playbook (`lockstep run`)

checked 1 file, 2 statements: 1 error
";
    assert_eq!(r.stdout, expected);
    assert_eq!(r.stderr, "");
}

#[test]
fn summary_counts_files_statements_and_each_severity() {
    let d = tmp();
    write(d.path(), "d/1.sql", BAD);
    write(d.path(), "d/2.sql", NOTE_ONLY);
    write(d.path(), "d/3.sql", CLEAN);
    let r = run(lint(d.path()).arg("d"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(
        r.summary(),
        "checked 3 files, 4 statements: 2 errors, 1 note"
    );
}

#[test]
fn summary_counts_warnings() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurrently = \"warning\"\nmissing-lock-timeout = \"warning\"\n",
    );
    write(d.path(), "bad.sql", BAD);
    let r = run(lint_with_config(d.path()).arg("bad.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.summary(), "checked 1 file, 1 statement: 2 warnings");
}

#[test]
fn no_ansi_codes_when_not_a_terminal() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path()).arg("bad.sql"));
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("error[create-index-non-concurrently]"));
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);
    // Errors on stderr are plain too.
    let r = run(lint(d.path()).arg("nope.sql"));
    assert!(r.stderr.starts_with("error: nope.sql"), "{:?}", r.stderr);
}

#[test]
fn ansi_codes_with_color_always() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path()).args(["--color", "always", "bad.sql"]));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stdout.contains("\x1b[1;31merror\x1b[0m"),
        "{:?}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("\x1b[1m[create-index-non-concurrently]\x1b[0m"));
    assert!(r.stdout.contains("\x1b[1;31m2 errors\x1b[0m"));

    let r = run(lint(d.path()).args(["--color", "always", "nope.sql"]));
    assert!(
        r.stderr.starts_with("\x1b[1;31merror\x1b[0m: nope.sql"),
        "{:?}",
        r.stderr
    );
}

#[test]
fn ansi_codes_with_clicolor_force() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path()).env("CLICOLOR_FORCE", "1").arg("bad.sql"));
    assert!(
        r.stdout.contains("\x1b[1;31merror\x1b[0m"),
        "{:?}",
        r.stdout
    );

    // CLICOLOR_FORCE=0 does not force.
    let r = run(lint(d.path()).env("CLICOLOR_FORCE", "0").arg("bad.sql"));
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);
}

#[test]
fn no_color_wins_over_clicolor_force() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path())
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .arg("bad.sql"));
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("error[create-index-non-concurrently]"));
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);

    // An empty NO_COLOR does not count as set.
    let r = run(lint(d.path())
        .env("NO_COLOR", "")
        .env("CLICOLOR_FORCE", "1")
        .arg("bad.sql"));
    assert!(r.stdout.contains(ESC), "{:?}", r.stdout);
}

#[test]
fn color_flag_wins_over_environment() {
    let d = tmp();
    write(d.path(), "bad.sql", BAD);
    let r = run(lint(d.path())
        .env("NO_COLOR", "1")
        .args(["--color", "always", "bad.sql"]));
    assert!(r.stdout.contains(ESC), "{:?}", r.stdout);

    let r = run(lint(d.path())
        .env("CLICOLOR_FORCE", "1")
        .args(["--color", "never", "bad.sql"]));
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// 3. Directory order and discovery
// ---------------------------------------------------------------------------------------------

#[test]
fn directory_files_in_version_order() {
    let d = tmp();
    for f in ["V10__b.sql", "V2__a.sql", "V1__c.sql"] {
        write(d.path(), &format!("m/{f}"), ONE_INDEX);
    }
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(
        r.locations(),
        ["m/V1__c.sql:2:1", "m/V2__a.sql:2:1", "m/V10__b.sql:2:1"]
    );
    assert_eq!(r.summary(), "checked 3 files, 6 statements: 3 errors");
}

#[test]
fn directory_files_in_numeric_prefix_order() {
    let d = tmp();
    for f in ["0010_x.sql", "0002_y.sql", "0001_z.sql", "0100_w.sql"] {
        write(d.path(), &format!("m/{f}"), ONE_INDEX);
    }
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(
        r.locations(),
        [
            "m/0001_z.sql:2:1",
            "m/0002_y.sql:2:1",
            "m/0010_x.sql:2:1",
            "m/0100_w.sql:2:1"
        ]
    );
}

#[test]
fn hidden_directories_and_non_sql_files_are_skipped() {
    let d = tmp();
    write(d.path(), "m/1_a.sql", ONE_INDEX);
    write(d.path(), "m/.git/x.sql", ONE_INDEX);
    write(d.path(), "m/sub/.hidden/y.sql", ONE_INDEX);
    write(d.path(), "m/notes.txt", ONE_INDEX);
    write(d.path(), "m/2_b.sql.bak", ONE_INDEX);
    write(d.path(), "m/sub/3_c.sql", ONE_INDEX);
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.locations(), ["m/1_a.sql:2:1", "m/sub/3_c.sql:2:1"]);
    assert_eq!(r.summary(), "checked 2 files, 4 statements: 2 errors");
}

#[test]
fn uppercase_sql_extension_is_linted() {
    let d = tmp();
    write(d.path(), "m/1_UP.SQL", ONE_INDEX);
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.locations(), ["m/1_UP.SQL:2:1"]);
}

#[test]
fn named_file_is_linted_whatever_its_extension() {
    let d = tmp();
    write(d.path(), "change.txt", ONE_INDEX);
    let r = run(lint(d.path()).arg("change.txt"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(r.locations(), ["change.txt:2:1"]);
}

#[test]
fn empty_directory_is_fine() {
    let d = tmp();
    fs::create_dir(d.path().join("empty")).unwrap();
    lint(d.path())
        .arg("empty")
        .assert()
        .code(0)
        .stdout("checked 0 files, 0 statements: no findings\n");
}

// ---------------------------------------------------------------------------------------------
// 4. Standard input
// ---------------------------------------------------------------------------------------------

#[test]
fn stdin_is_shown_as_stdin() {
    let d = tmp();
    let r = run(lint(d.path()).arg("-").write_stdin(BAD));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(r.locations(), ["<stdin>:1:1", "<stdin>:1:1"]);
    assert_eq!(r.summary(), "checked 1 file, 1 statement: 2 errors");
}

#[test]
fn stdin_filename_names_stdin() {
    let d = tmp();
    let r = run(lint(d.path())
        .args(["-", "--stdin-filename", "db/x.sql"])
        .write_stdin(BAD));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(r.locations(), ["db/x.sql:1:1", "db/x.sql:1:1"]);
}

#[test]
fn stdin_clean_and_empty() {
    let d = tmp();
    lint(d.path())
        .arg("-")
        .write_stdin(CLEAN)
        .assert()
        .code(0)
        .stdout("checked 1 file, 2 statements: no findings\n");
    lint(d.path())
        .arg("-")
        .write_stdin("")
        .assert()
        .code(0)
        .stdout("checked 1 file, 0 statements: no findings\n");
}

#[test]
fn stdin_together_with_a_file() {
    let d = tmp();
    write(d.path(), "a.sql", ONE_INDEX);
    let r = run(lint(d.path()).args(["a.sql", "-"]).write_stdin(NOTE_ONLY));
    assert_eq!(r.locations(), ["a.sql:2:1", "<stdin>:1:1"]);
    assert_eq!(
        r.summary(),
        "checked 2 files, 3 statements: 1 error, 1 note"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Configuration
// ---------------------------------------------------------------------------------------------

/// `ADD COLUMN … DEFAULT 0` on an existing table: a rewrite only before PostgreSQL 11.
const ADD_DEFAULT: &str = "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c int DEFAULT 0;\n";

#[test]
fn default_pg_version_does_not_flag_constant_default() {
    let d = tmp();
    write(d.path(), "add.sql", ADD_DEFAULT);
    lint(d.path())
        .arg("add.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 2 statements: no findings\n");
}

#[test]
fn config_is_discovered_from_a_subdirectory() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "pg_version = 10\n");
    write(d.path(), "db/migrate/add.sql", ADD_DEFAULT);
    let r = run(lint_with_config(&d.path().join("db/migrate")).arg("add.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("error[add-column-volatile-default]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(target: 10)"), "{}", r.stdout);
    assert_eq!(r.locations(), ["add.sql:2:15"]);

    // --no-config ignores it.
    let r = run(lint(&d.path().join("db/migrate")).arg("add.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(!r.stdout.contains("add-column-volatile-default"));
}

#[test]
fn pg_version_as_string_and_float_with_minor() {
    for value in ["\"15.4\"", "15.4", "15", "\"15\""] {
        let d = tmp();
        write(d.path(), "lockstep.toml", format!("pg_version = {value}\n"));
        write(d.path(), "add.sql", ADD_DEFAULT);
        let r = run(lint_with_config(d.path()).arg("add.sql"));
        assert_eq!(r.code, Some(0), "pg_version = {value}: {}", r.all());
        assert_eq!(r.summary(), "checked 1 file, 2 statements: no findings");
    }
    // The major version is what counts: 9.6 is before 11.
    for value in ["\"9.6\"", "9.6", "10.0"] {
        let d = tmp();
        write(d.path(), "lockstep.toml", format!("pg_version = {value}\n"));
        write(d.path(), "add.sql", ADD_DEFAULT);
        let r = run(lint_with_config(d.path()).arg("add.sql"));
        assert_eq!(r.code, Some(1), "pg_version = {value}: {}", r.all());
        assert!(r.stdout.contains("add-column-volatile-default"));
    }
}

#[test]
fn unknown_config_key_is_an_error_naming_key_and_file() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "foo = 1\n");
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("foo"))
        .stderr(predicate::str::contains("lockstep.toml"));
}

#[test]
fn invalid_pg_version_in_config() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "pg_version = \"abc\"\n");
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`pg_version`"))
        .stderr(predicate::str::contains("lockstep.toml"))
        .stderr(predicate::str::contains("abc"));

    write(d.path(), "lockstep.toml", "pg_version = 20\n");
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`pg_version`"))
        .stderr(predicate::str::contains("not supported"));
}

#[test]
fn misspelled_rule_in_config_ignore_suggests() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "ignore = [\"set-not-nul-scan\"]\n",
    );
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`ignore`"))
        .stderr(predicate::str::contains(
            "did you mean `set-not-null-scan`?",
        ));
}

#[test]
fn misspelled_rule_in_config_severity_suggests() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurent = \"warning\"\n",
    );
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "severity.create-index-non-concurent",
        ))
        .stderr(predicate::str::contains(
            "did you mean `create-index-non-concurrently`?",
        ));
}

#[test]
fn invalid_severity_level_in_config() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurrently = \"fatal\"\n",
    );
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("fatal"));
}

#[test]
fn config_severity_warning_downgrades_finding() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurrently = \"warning\"\n",
    );
    write(d.path(), "idx.sql", ONE_INDEX);
    let r = run(lint_with_config(d.path()).arg("idx.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("warning[create-index-non-concurrently]"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("error["), "{}", r.stdout);
    assert_eq!(r.locations(), ["idx.sql:2:1"]);
}

#[test]
fn config_severity_off_hides_finding() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "[severity]\ncreate-index-non-concurrently = \"off\"\n",
    );
    write(d.path(), "idx.sql", ONE_INDEX);
    lint_with_config(d.path())
        .arg("idx.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 2 statements: no findings\n");
}

#[test]
fn config_exclude_skips_files_when_walking() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "exclude = [\"legacy/**\"]\n");
    write(d.path(), "legacy/1_old.sql", ONE_INDEX);
    write(d.path(), "new/2_new.sql", ONE_INDEX);
    let r = run(lint_with_config(d.path()).arg("."));
    assert_eq!(r.locations(), ["./new/2_new.sql:2:1"], "{}", r.stdout);
    assert_eq!(r.summary(), "checked 1 file, 2 statements: 1 error");

    // A file named explicitly is linted even if excluded.
    let r = run(lint_with_config(d.path()).arg("legacy/1_old.sql"));
    assert_eq!(r.locations(), ["legacy/1_old.sql:2:1"]);
}

#[test]
fn config_exclude_is_relative_to_the_config_directory() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "exclude = [\"db/legacy\"]\n");
    write(d.path(), "db/legacy/1_old.sql", ONE_INDEX);
    write(d.path(), "db/new/2_new.sql", ONE_INDEX);
    let r = run(lint_with_config(d.path()).arg("db"));
    assert_eq!(r.locations(), ["db/new/2_new.sql:2:1"], "{}", r.stdout);
}

#[test]
fn exclude_flag_adds_to_config() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "exclude = [\"a/**\"]\n");
    write(d.path(), "a/1.sql", ONE_INDEX);
    write(d.path(), "b/2.sql", ONE_INDEX);
    write(d.path(), "c/3.sql", ONE_INDEX);
    let r = run(lint_with_config(d.path()).args(["--exclude", "b/*.sql", "."]));
    assert_eq!(r.locations(), ["./c/3.sql:2:1"], "{}", r.stdout);
}

#[test]
fn invalid_exclude_glob_is_an_error() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    fails_with_2(lint(d.path()), &["--exclude", "a/[b", "."], "a/[b");
}

#[test]
fn config_exclude_applies_when_run_from_a_subdirectory_with_dotdot() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "exclude = [\"legacy/**\"]\n");
    write(d.path(), "legacy/1_old.sql", ONE_INDEX);
    write(d.path(), "new/2_new.sql", ONE_INDEX);
    fs::create_dir_all(d.path().join("new/deeper")).unwrap();
    let r = run(lint_with_config(&d.path().join("new/deeper")).arg("../.."));
    assert_eq!(r.locations(), ["../../new/2_new.sql:2:1"], "{}", r.stdout);
}

#[test]
fn config_exclude_applies_to_dot_from_a_subdirectory() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "exclude = [\"m/legacy/**\"]\n");
    write(d.path(), "m/legacy/1_old.sql", ONE_INDEX);
    write(d.path(), "m/new/2_new.sql", ONE_INDEX);
    let r = run(lint_with_config(&d.path().join("m")).arg("."));
    assert_eq!(r.locations(), ["./new/2_new.sql:2:1"], "{}", r.stdout);
}

#[test]
fn config_flag_uses_that_file() {
    let d = tmp();
    write(d.path(), "cfg/other.toml", "pg_version = 10\n");
    write(d.path(), "add.sql", ADD_DEFAULT);
    let r = run(lint_with_config(d.path()).args(["--config", "cfg/other.toml", "add.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("add-column-volatile-default"));

    // It replaces the discovered lockstep.toml.
    write(d.path(), "lockstep.toml", "foo = 1\n");
    let r = run(lint_with_config(d.path()).args(["--config", "cfg/other.toml", "add.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("add-column-volatile-default"));
}

#[test]
fn config_flag_with_missing_file_is_an_error() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    fails_with_2(
        lint_with_config(d.path()),
        &["--config", "missing.toml", "clean.sql"],
        "missing.toml",
    );
}

#[test]
fn config_and_no_config_conflict() {
    let d = tmp();
    write(d.path(), "clean.sql", CLEAN);
    write(d.path(), "c.toml", "");
    fails_with_2(
        lint_with_config(d.path()),
        &["--config", "c.toml", "--no-config", "clean.sql"],
        "--no-config",
    );
}

#[test]
fn flags_override_config_file() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "pg_version = 10\n");
    write(d.path(), "add.sql", ADD_DEFAULT);
    let r = run(lint_with_config(d.path()).args(["--pg-version", "15", "add.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.summary(), "checked 1 file, 2 statements: no findings");

    let r = run(lint_with_config(d.path()).args(["--pg-version", "10.4", "add.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
}

#[test]
fn select_flag_overrides_config_ignore() {
    let d = tmp();
    write(
        d.path(),
        "lockstep.toml",
        "ignore = [\"create-index-non-concurrently\"]\n",
    );
    write(d.path(), "idx.sql", ONE_INDEX);
    let r = run(lint_with_config(d.path()).arg("idx.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let r = run(lint_with_config(d.path()).args([
        "--select",
        "create-index-non-concurrently",
        "idx.sql",
    ]));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("error[create-index-non-concurrently]"));
}

/// `CREATE INDEX CONCURRENTLY` after a lock_timeout: fine unless the file runs in a transaction.
const CONCURRENT: &str = "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON t (a);\n";

#[test]
fn assume_in_transaction_in_config() {
    let d = tmp();
    write(d.path(), "conc.sql", CONCURRENT);
    let r = run(lint_with_config(d.path()).arg("conc.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());

    write(d.path(), "lockstep.toml", "assume_in_transaction = true\n");
    let r = run(lint_with_config(d.path()).arg("conc.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("error[concurrently-in-transaction]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.locations(), ["conc.sql:2:14"]);

    // The flag overrides the file.
    let r = run(lint_with_config(d.path()).args(["--assume-in-transaction=false", "conc.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn assume_in_transaction_flag() {
    let d = tmp();
    write(d.path(), "conc.sql", CONCURRENT);
    let r = run(lint(d.path()).args(["conc.sql", "--assume-in-transaction"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("concurrently-in-transaction"));
}

#[test]
fn assume_in_transaction_flag_before_path() {
    let d = tmp();
    write(d.path(), "conc.sql", CONCURRENT);
    let r = run(lint(d.path()).args(["--assume-in-transaction", "conc.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("concurrently-in-transaction"));
}

#[test]
fn lock_timeout_max_in_config() {
    let d = tmp();
    write(
        d.path(),
        "long.sql",
        "SET lock_timeout = '10s'; ALTER TABLE t ADD COLUMN c int;\n",
    );
    write(
        d.path(),
        "short.sql",
        "SET lock_timeout = '500ms'; ALTER TABLE t ADD COLUMN c int;\n",
    );

    // Without a maximum any timeout counts.
    let r = run(lint(d.path()).args(["long.sql", "short.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());

    write(d.path(), "lockstep.toml", "lock_timeout_max = \"1s\"\n");
    let r = run(lint_with_config(d.path()).arg("long.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("error[missing-lock-timeout]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("above `lock_timeout_max`"),
        "{}",
        r.stdout
    );
    assert_eq!(r.locations(), ["long.sql:1:27"]);

    let r = run(lint_with_config(d.path()).arg("short.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());

    // A number of milliseconds works too, and the flag overrides the file.
    write(d.path(), "lockstep.toml", "lock_timeout_max = 1000\n");
    let r = run(lint_with_config(d.path()).arg("long.sql"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    let r = run(lint_with_config(d.path()).args(["--lock-timeout-max", "20s", "long.sql"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn invalid_lock_timeout_max_in_config() {
    let d = tmp();
    write(d.path(), "lockstep.toml", "lock_timeout_max = \"soon\"\n");
    write(d.path(), "clean.sql", CLEAN);
    lint_with_config(d.path())
        .arg("clean.sql")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`lock_timeout_max`"));
}

// ---------------------------------------------------------------------------------------------
// 6. Suppressions
// ---------------------------------------------------------------------------------------------

#[test]
fn ignore_comment_above_multiline_statement() {
    let d = tmp();
    write(
        d.path(),
        "a.sql",
        "-- lockstep: ignore create-index-non-concurrently\nCREATE INDEX i\n    ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("a.sql"));
    // Only the rule listed is suppressed.
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        !r.stdout.contains("[create-index-non-concurrently]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("error[missing-lock-timeout]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.summary(), "checked 1 file, 1 statement: 1 error");

    write(
        d.path(),
        "b.sql",
        "-- lockstep: ignore create-index-non-concurrently, missing-lock-timeout -- tiny table\nCREATE INDEX i\n    ON t (a);\n",
    );
    lint(d.path())
        .arg("b.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 1 statement: no findings\n");
}

#[test]
fn trailing_ignore_comment_on_last_line_of_statement() {
    let d = tmp();
    write(
        d.path(),
        "c.sql",
        "SET lock_timeout = '2s';\nCREATE INDEX i\n    ON t (a); -- lockstep: ignore create-index-non-concurrently\nCREATE INDEX j ON t (b);\n",
    );
    let r = run(lint(d.path()).arg("c.sql"));
    // The next statement is not covered.
    assert_eq!(r.locations(), ["c.sql:4:1"], "{}", r.stdout);
    assert_eq!(r.summary(), "checked 1 file, 3 statements: 1 error");
}

#[test]
fn block_comment_ignore() {
    let d = tmp();
    write(
        d.path(),
        "c.sql",
        "SET lock_timeout = '2s';\n/* lockstep: ignore create-index-non-concurrently */\nCREATE INDEX i ON t (a);\n",
    );
    lint(d.path())
        .arg("c.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 2 statements: no findings\n");
}

#[test]
fn ignore_file_covers_the_whole_file() {
    let d = tmp();
    write(
        d.path(),
        "d.sql",
        "-- lockstep: ignore-file missing-lock-timeout, create-index-non-concurrently\nCREATE INDEX i ON t (a);\n\nCREATE INDEX j ON t (b);\n",
    );
    lint(d.path())
        .arg("d.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 2 statements: no findings\n");
}

#[test]
fn ignore_file_all() {
    let d = tmp();
    write(
        d.path(),
        "d.sql",
        "-- lockstep: ignore-file all\nCREATE INDEX i ON t (a);\nALTER TABLE t FROBNICATE x;\n",
    );
    let r = run(lint(d.path()).arg("d.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.summary(), "checked 1 file, 2 statements: no findings");
}

#[test]
fn unused_ignore_is_a_note() {
    let d = tmp();
    write(
        d.path(),
        "e.sql",
        "SET lock_timeout = '2s';\n-- lockstep: ignore set-not-null-scan\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("e.sql"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("note[unused-ignore]"), "{}", r.stdout);
    assert!(r.stdout.contains("`set-not-null-scan`"), "{}", r.stdout);
    assert_eq!(r.locations(), ["e.sql:2:1"]);
    assert_eq!(r.summary(), "checked 1 file, 2 statements: 1 note");

    let r = run(lint(d.path()).args(["--fail-on", "note", "e.sql"]));
    assert_eq!(r.code, Some(1), "{}", r.all());
}

#[test]
fn misspelled_rule_in_ignore_comment_suggests() {
    let d = tmp();
    write(
        d.path(),
        "f.sql",
        "SET lock_timeout = '2s';\n-- lockstep: ignore create-index-non-concurent\nCREATE INDEX i ON t (a);\n",
    );
    let r = run(lint(d.path()).arg("f.sql"));
    // The finding is not suppressed.
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("note[unused-ignore]"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("did you mean `create-index-non-concurrently`?"),
        "{}",
        r.stdout
    );
    assert_eq!(r.locations(), ["f.sql:2:1", "f.sql:3:1"]);
    assert_eq!(r.summary(), "checked 1 file, 2 statements: 1 error, 1 note");
}

// ---------------------------------------------------------------------------------------------
// 7. `rules` and `explain`
// ---------------------------------------------------------------------------------------------

const RULE_NAMES: [&str; 9] = [
    "create-index-non-concurrently",
    "add-foreign-key-validating",
    "add-check-validating",
    "set-not-null-scan",
    "add-column-volatile-default",
    "missing-lock-timeout",
    "concurrently-in-transaction",
    "unparsed-statement",
    "unused-ignore",
];

/// Rule names as listed by `lockstep rules`.
fn listed_rules(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_lists_every_rule() {
    let d = tmp();
    let r = run(lockstep(d.path()).arg("rules"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let listed = listed_rules(&r.stdout);
    for name in RULE_NAMES {
        assert!(
            listed.iter().any(|l| l == name),
            "`{name}` missing from:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains(&format!(
            "\n{} rules. `lockstep explain <rule>`",
            listed.len()
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().any(
        |l| l.starts_with("unparsed-statement") && l.split_whitespace().nth(1) == Some("note")
    ));
    assert!(r.stdout.lines().any(
        |l| l.starts_with("set-not-null-scan") && l.split_whitespace().nth(1) == Some("error")
    ));
}

#[test]
fn explain_has_the_four_sections() {
    let d = tmp();
    let r = run(lockstep(d.path()).args(["explain", "set-not-null-scan"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with("# set-not-null-scan\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Default severity: error"));
    let mut at = 0;
    for h in [
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Use instead",
    ] {
        let i = r.stdout[at..]
            .find(&format!("\n{h}\n"))
            .unwrap_or_else(|| panic!("`{h}` missing or out of order:\n{}", r.stdout));
        at += i + 1;
    }
}

#[test]
fn core_rules_have_an_explanation() {
    let d = tmp();
    for name in RULE_NAMES {
        let e = run(lockstep(d.path()).args(["explain", name]));
        assert_eq!(e.code, Some(0), "explain {name}: {}", e.all());
        assert!(e.stdout.starts_with(&format!("# {name}\n")));
        for h in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
        ] {
            assert!(e.stdout.contains(h), "explain {name} lacks `{h}`");
        }
    }
}

#[test]
fn every_listed_rule_has_an_explanation() {
    let d = tmp();
    let r = run(lockstep(d.path()).arg("rules"));
    for name in listed_rules(&r.stdout) {
        let e = run(lockstep(d.path()).args(["explain", &name]));
        assert_eq!(e.code, Some(0), "explain {name}: {}", e.all());
        assert!(e.stdout.starts_with(&format!("# {name}\n")));
        for h in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
        ] {
            assert!(e.stdout.contains(h), "explain {name} lacks `{h}`");
        }
    }
}

#[test]
fn explain_misspelled_rule_suggests() {
    let d = tmp();
    lockstep(d.path())
        .args(["explain", "set-not-nul"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("unknown rule `set-not-nul`"))
        .stderr(predicate::str::contains(
            "did you mean `set-not-null-scan`?",
        ));
    lockstep(d.path())
        .args(["explain", "zzz"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown rule `zzz`"))
        .stderr(predicate::str::contains("did you mean").not());
}

#[test]
fn help_and_version_exit_0() {
    let d = tmp();
    lockstep(d.path())
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("lint"));
    lockstep(d.path())
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("lockstep "));
    lockstep(d.path())
        .args(["lint", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes:"));
}

#[test]
fn missing_subcommand_is_a_usage_error() {
    let d = tmp();
    lockstep(d.path()).assert().code(2);
    lockstep(d.path())
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
}

// ---------------------------------------------------------------------------------------------
// 8. Bad input (each next to a good file whose finding must still be reported)
// ---------------------------------------------------------------------------------------------

/// A directory holding `bad_name` and `2_good.sql` (one finding at 2_good.sql:2:1).
fn dir_with(bad_name: &str, bad: impl AsRef<[u8]>) -> TempDir {
    let d = tmp();
    write(d.path(), &format!("m/{bad_name}"), bad);
    write(d.path(), "m/2_good.sql", ONE_INDEX);
    d
}

fn assert_good_file_linted(r: &Run) {
    assert!(
        r.locations().contains(&"m/2_good.sql:2:1".to_string()),
        "good file not linted:\n{}",
        r.all()
    );
}

#[test]
fn non_utf8_file_is_linted_with_a_warning() {
    let d = dir_with("1_latin.sql", b"CREATE INDEX i ON t (a); -- \xff\xfe\n");
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.all()
            .contains("warning: m/1_latin.sql: not valid UTF-8 (first bad byte at line 1)"),
        "{}",
        r.all()
    );
    assert_eq!(
        r.locations(),
        ["m/1_latin.sql:1:1", "m/1_latin.sql:1:1", "m/2_good.sql:2:1"]
    );
    assert!(r.stdout.contains("error[create-index-non-concurrently]"));
    assert_eq!(r.summary(), "checked 2 files, 3 statements: 3 errors");
}

#[test]
fn binary_file_is_refused_with_exit_2() {
    let d = dir_with("1_bin.sql", b"CREATE\0INDEX i ON t (a);\n");
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.all().contains("m/1_bin.sql: binary file"), "{}", r.all());
    assert_good_file_linted(&r);
    assert_eq!(
        r.summary(),
        "checked 2 files, 2 statements (1 file not linted): 1 error"
    );
}

#[test]
fn empty_file_is_fine() {
    let d = dir_with("1_empty.sql", b"");
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(r.locations(), ["m/2_good.sql:2:1"]);
    assert_eq!(r.summary(), "checked 2 files, 2 statements: 1 error");

    lint(d.path())
        .arg("m/1_empty.sql")
        .assert()
        .code(0)
        .stdout("checked 1 file, 0 statements: no findings\n");
}

#[test]
fn deeply_nested_parentheses_do_not_crash() {
    let n = 20_000;
    let deep = format!("SELECT {}1{};\n", "(".repeat(n), ")".repeat(n));
    let deep_default = format!(
        "ALTER TABLE t ADD COLUMN c int DEFAULT {}1{};\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    let unbalanced = format!("SELECT {}1;\n", "(".repeat(n));
    let d = dir_with("1_deep.sql", deep);
    write(d.path(), "m/1_deep_default.sql", deep_default);
    write(d.path(), "m/1_unbalanced.sql", unbalanced);
    let r = run(lint(d.path()).arg("m"));
    assert!(
        matches!(r.code, Some(0) | Some(1)),
        "exit {:?}:\n{}",
        r.code,
        r.stderr
    );
    assert!(!r.stderr.contains("overflow"), "{}", r.stderr);
    assert_good_file_linted(&r);
    assert!(
        r.summary().starts_with("checked 4 files, "),
        "{}",
        r.summary()
    );
}

#[test]
fn unterminated_string_is_an_unparsed_note() {
    let d = dir_with("1_quote.sql", "SELECT 'abc\n");
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("note[unparsed-statement]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("unterminated string starting at 1:8"),
        "{}",
        r.stdout
    );
    assert_eq!(r.locations(), ["m/1_quote.sql:1:1", "m/2_good.sql:2:1"]);
    assert_eq!(
        r.summary(),
        "checked 2 files, 3 statements: 1 error, 1 note"
    );
}

#[test]
fn unterminated_dollar_quote_is_an_unparsed_note() {
    let d = dir_with("1_dollar.sql", "DO $$ BEGIN\n");
    let r = run(lint(d.path()).arg("m"));
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("note[unparsed-statement]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("unterminated dollar-quoted string `$$` starting at 1:4"),
        "{}",
        r.stdout
    );
    assert_good_file_linted(&r);
}

#[test]
fn unterminated_quoted_identifier_and_comment_are_unparsed_notes() {
    let d = dir_with("1_ident.sql", "SELECT 1;\nSELECT \"abc;\n");
    write(d.path(), "m/1_z_comment.sql", "SELECT 1; /* abc\n");
    let r = run(lint(d.path()).arg("m"));
    assert!(
        r.stdout
            .contains("unterminated quoted identifier starting at 2:8"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("unterminated block comment starting at 1:11"),
        "{}",
        r.stdout
    );
    assert_good_file_linted(&r);
}

#[test]
fn fifty_megabyte_file_is_linted() {
    let d = tmp();
    let line = format!("INSERT INTO t VALUES (1, '{}');\n", "x".repeat(95));
    let half = 200_000;
    let mut s = String::with_capacity(line.len() * half * 2 + 100);
    s.push_str("SET lock_timeout = '2s';\n");
    for _ in 0..half {
        s.push_str(&line);
    }
    s.push_str("CREATE INDEX i ON t (a);\n");
    for _ in 0..half {
        s.push_str(&line);
    }
    assert!(s.len() >= 49_000_000, "{}", s.len());
    write(d.path(), "m/1_big.sql", s);
    write(d.path(), "m/2_good.sql", ONE_INDEX);
    // Over the default 16 MiB limit: linted once the limit is raised.
    let r = run(lint(d.path()).args(["--max-file-size", "64MiB", "m"]));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        r.locations(),
        [
            format!("m/1_big.sql:{}:1", half + 2),
            "m/2_good.sql:2:1".to_string()
        ]
    );
    assert_eq!(
        r.summary(),
        format!("checked 2 files, {} statements: 2 errors", 2 * half + 2 + 2)
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Broken pipe
// ---------------------------------------------------------------------------------------------

#[test]
fn broken_pipe_exits_quietly() {
    let d = tmp();
    for i in 0..300 {
        write(
            d.path(),
            &format!("m/{i:04}_idx.sql"),
            format!(
                "CREATE INDEX i{i} ON t (a);\nALTER TABLE t ADD CONSTRAINT c{i} CHECK (a > 0);\n"
            ),
        );
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["lint", "--no-config", "m"])
        .current_dir(d.path())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lockstep");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).expect("read first bytes");
    assert_eq!(&first, b"error[");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), None, "killed by a signal");
    }
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}
