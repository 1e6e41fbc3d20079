//! Configuration: lockstep.toml discovery, keys, flags over the file.

use super::*;

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
