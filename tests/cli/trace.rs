//! `lockstep trace`: which database it runs on (`--database-url`, else `DATABASE_URL`, else a
//! throwaway cluster; `--throwaway` forces one), and a forgotten URL.

use super::*;

/// A server that is certainly not there: connections are refused at once.
const NOWHERE: &str = "host=127.0.0.1 port=1 user=nobody dbname=nothing connect_timeout=2";

#[test]
fn a_database_url_that_is_a_file_is_refused() {
    let d = tmp();
    write(d.path(), "1.sql", "SELECT 1;\n");
    write(d.path(), "2.sql", "SELECT 2;\n");
    // `--database-url` takes a value: with the URL forgotten, it would take the first path.
    let r =
        run(lockstep(d.path()).args(["trace", "--no-config", "--database-url", "1.sql", "2.sql"]));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(
            "--database-url `1.sql` is a path, not a database URL (was the URL forgotten?"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn database_url_from_the_environment_is_used() {
    let d = tmp();
    write(d.path(), "1.sql", "SELECT 1;\n");
    let r = run(lockstep(d.path())
        .args(["trace", "--no-config", "1.sql"])
        .env("DATABASE_URL", NOWHERE));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr
            .contains("cannot connect to nobody@127.0.0.1:1/nothing: connection refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn throwaway_ignores_database_url_and_commit_needs_a_database() {
    let d = tmp();
    write(d.path(), "1.sql", "CREATE TABLE t (a int);\n");
    let r = run(lockstep(d.path())
        .args(["trace", "--no-config", "--throwaway", "1.sql"])
        .env("DATABASE_URL", NOWHERE));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("a throwaway cluster"), "{}", r.stdout);
    let r = run(lockstep(d.path()).args(["trace", "--no-config", "--commit", "1.sql"]));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains("--commit needs a database"),
        "{}",
        r.stderr
    );
}
