//! The text report: locations, source excerpts, summary, colour.

use super::*;

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
