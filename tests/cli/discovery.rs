//! Directory order and discovery.

use super::*;

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
fn a_directory_without_sql_files_is_an_error_naming_it() {
    // A wrong path in CI must not pass green.
    let d = tmp();
    fs::create_dir(d.path().join("empty")).unwrap();
    write(d.path(), "docs/readme.md", "# not a migration\n");
    for dir in ["empty", "docs"] {
        let r = run(lint(d.path()).arg(dir));
        assert_eq!(r.code, Some(2), "{}", r.all());
        assert_eq!(r.stderr, format!("error: no .sql files under {dir}\n"));
        assert_eq!(r.stdout, "", "no summary for nothing linted");
    }
    // Next to a directory that has some, the others are still linted (and it still fails).
    write(d.path(), "m/1.sql", ONE_INDEX);
    let r = run(lint(d.path()).args(["empty", "m"]));
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains("no .sql files under empty"),
        "{}",
        r.stderr
    );
    assert_eq!(r.locations(), ["m/1.sql:2:1"]);
}
