//! Inline ignore comments.

use super::*;

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
