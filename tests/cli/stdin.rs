//! Standard input.

use super::*;

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
