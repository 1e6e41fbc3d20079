//! Inputs that must end quickly with findings or one clear message: special files, files
//! over the size limit, megabytes of `;`, very long lines, huge data statements. Sizes
//! here are small; bench/lint_speed.py --sets hostile measures the large ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// Guards against a hang only; nothing here is timed.
const HANG_GUARD: Duration = Duration::from_secs(300);

fn write(dir: &Path, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(rel);
    fs::write(&p, contents).expect("write file");
    p
}

fn lint(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lockstep").expect("binary built");
    c.current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .timeout(HANG_GUARD)
        .args(["lint", "--no-config"]);
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(c: &mut Command) -> Run {
    let out = c.output().expect("lockstep runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const UNSAFE_INDEX: &str = "CREATE INDEX i ON t (a);\n";

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe.sql"))
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    write(dir.path(), "good.sql", UNSAFE_INDEX);
    // Nobody ever writes to the pipe: opening it would block for good.
    let r = run(lint(dir.path()).args(["pipe.sql", "good.sql"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("pipe.sql: a named pipe (FIFO), not a regular file; not linted"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("create-index-non-concurrently"),
        "the other file is linted: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("checked 2 files, 1 statement (1 file not linted)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_device_is_refused_without_being_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    if !Path::new("/dev/zero").exists() {
        eprintln!("skipped: no /dev/zero");
        return;
    }
    // /dev/zero never ends: reading it would take all memory.
    let r = run(lint(dir.path()).arg("/dev/zero"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("/dev/zero: a character device, not a regular file; not linted"),
        "{}",
        r.stdout
    );
}

#[test]
fn files_over_the_size_limit_are_refused_with_their_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = format!("{UNSAFE_INDEX}{}", "-- padding\n".repeat(200));
    write(dir.path(), "big.sql", &big);
    write(dir.path(), "small.sql", UNSAFE_INDEX);

    let r = run(lint(dir.path()).args(["--max-file-size", "1KB", "big.sql", "small.sql"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stdout
            .contains("big.sql: 2.2 KiB, over the 1000 bytes limit; not linted (raise it with --max-file-size"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("checked 2 files, 1 statement (1 file not linted)"),
        "{}",
        r.stdout
    );

    // Under the limit (the default is 16 MiB), it is linted.
    let r = run(lint(dir.path()).arg("big.sql"));
    assert_eq!(r.code, 1, "{}", r.stderr);

    // The same limit from lockstep.toml, and a bad value there.
    write(dir.path(), "lockstep.toml", "max_file_size = \"1KB\"\n");
    let mut c = Command::cargo_bin("lockstep").expect("binary built");
    let r = run(c
        .current_dir(dir.path())
        .timeout(HANG_GUARD)
        .args(["lint", "big.sql"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("over the 1000 bytes limit"),
        "{}",
        r.stdout
    );
    write(dir.path(), "lockstep.toml", "max_file_size = \"lots\"\n");
    let mut c = Command::cargo_bin("lockstep").expect("binary built");
    let r = run(c
        .current_dir(dir.path())
        .timeout(HANG_GUARD)
        .args(["lint", "big.sql"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`max_file_size`"), "{}", r.stderr);

    // Standard input reads at most the limit.
    let r = run(lint(dir.path())
        .args(["--max-file-size", "1000", "-"])
        .write_stdin(big.into_bytes()));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("<stdin>: standard input is over the 1000 bytes limit; not linted"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_megabyte_of_semicolons_is_no_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "semi.sql", ";".repeat(1 << 20));
    let r = run(lint(dir.path()).arg("semi.sql"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("checked 1 file, 0 statements: no findings"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_finding_on_a_very_long_line_prints_a_window_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let select = format!("SELECT {}1;", "1,".repeat(200_000));
    write(dir.path(), "long.sql", format!("{select}{}", UNSAFE_INDEX));
    let r = run(lint(dir.path()).arg("long.sql"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("--> long.sql:1:400010"), "{}", r.stdout);
    assert!(
        r.stdout.contains("1 | …1,1,1,") && r.stdout.contains(",1,1;CREATE INDEX i ON t (a);\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.len() < 4096, "{} bytes of output", r.stdout.len());

    // Thousands of findings on one line: each prints its own window, never the line.
    write(dir.path(), "many.sql", "x;".repeat(20_000));
    let r = run(lint(dir.path()).arg("many.sql"));
    assert!(
        r.stdout.contains("20000 notes"),
        "{}",
        &r.stdout[r.stdout.len().saturating_sub(300)..]
    );
    assert!(
        r.stdout.len() < 20_000 * 1024,
        "{} bytes of output",
        r.stdout.len()
    );
}

#[test]
fn huge_data_statements_are_recognized_and_their_strings_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Over a megabyte: tokenized a piece at a time, never parsed.
    let rows: Vec<String> = (0..60_000).map(|i| format!("({i}, 'row {i}')")).collect();
    let mut insert = format!("INSERT INTO events (id, mood) VALUES\n{}", rows.join(",\n"));
    insert.push_str(",\n(60000, 'happy');\n");
    assert!(insert.len() > 1 << 20);
    let src = format!("BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\n{insert}COMMIT;\n");
    write(dir.path(), "data.sql", &src);
    let r = run(lint(dir.path()).args(["--format", "json", "data.sql"]));
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("json report");
    let file = &json["files"][0];
    assert_eq!(file["statements"], 4, "{}", r.stderr);
    let insert_report = &file["statements_report"][2];
    assert_eq!(insert_report["kind"], "INSERT INTO");
    assert_eq!(
        insert_report["locks"][0]["table"], "events",
        "{insert_report}"
    );
    // The label is used in the last row, 60,000 rows into the statement.
    let uses = file["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "add-enum-value-in-transaction")
        .expect("add-enum-value-in-transaction finding");
    assert!(
        uses["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 3 uses it")),
        "{uses}"
    );

    // A query of megabytes on one line is a query, not an unparsed statement.
    write(
        dir.path(),
        "select.sql",
        format!("SELECT {}1;\n", "1,".repeat(1 << 20)),
    );
    let r = run(lint(dir.path()).args(["--format", "json", "select.sql"]));
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("json report");
    assert_eq!(json["files"][0]["statements_report"][0]["kind"], "SELECT");
    assert_eq!(
        json["files"][0]["findings"].as_array().map(Vec::len),
        Some(0),
        "{}",
        r.stdout.len()
    );
}
