//! Exit codes: 0 clean, 1 findings at or above the fail level, 2 usage or I/O errors.

use super::*;

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
        .stderr("error: nope.sql: no such file or directory\n")
        .stdout("");
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
