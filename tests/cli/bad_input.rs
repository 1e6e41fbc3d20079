//! Bad input (each next to a good file whose finding must still be reported) and broken pipes.

use super::*;
use std::io::Read;
use std::process::Stdio;

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
