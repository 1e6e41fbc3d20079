//! The per-statement lock report in `--format json` and `--locks`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use assert_cmd::Command;
use serde_json::Value;

fn run(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::cargo_bin("lockstep")
        .expect("binary")
        .current_dir(dir)
        .args(["lint", "--no-config"])
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn json_has_findings_and_a_lock_report_per_statement() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "0001_schema.sql",
        "CREATE TABLE u (id int PRIMARY KEY);\nCREATE TABLE \"Order Items\" (id int, u_id int REFERENCES u (id));\n",
    );
    write(
        d.path(),
        "0002_change.sql",
        "SET lock_timeout = '2s';\nALTER TABLE \"Order Items\" ADD COLUMN t uuid DEFAULT gen_random_uuid();\nDROP TABLE \"Order Items\";\n",
    );
    let (code, out) = run(d.path(), &["--format", "json", "."]);
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["version"], 1);
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    let f = &files[1];
    assert!(f["path"]
        .as_str()
        .expect("path")
        .ends_with("0002_change.sql"));
    assert_eq!(f["statements"], 3);
    let finding = &f["findings"][0];
    assert_eq!(finding["rule"], "add-column-volatile-default");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["line"], 2);
    assert!(finding["help"].as_str().is_some());

    let stmts = f["statements_report"]
        .as_array()
        .expect("statements_report");
    assert_eq!(stmts.len(), 3);
    let add = &stmts[1];
    assert_eq!(add["line"], 2);
    assert_eq!(add["kind"], "ALTER TABLE");
    assert_eq!(add["locks"][0]["table"], "\"Order Items\"");
    assert_eq!(add["locks"][0]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(add["locks"][0]["blocks_reads"], true);
    assert_eq!(add["rewrites"][0], "\"Order Items\"");
    // Dropping a table with a foreign key also locks the referenced table (schema replay
    // from the earlier file knows the key).
    let drop = &stmts[2];
    let tables: Vec<&str> = drop["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| l["table"].as_str().expect("table"))
        .collect();
    assert_eq!(tables, ["\"Order Items\"", "u"]);
    assert_eq!(v["summary"]["files"], 2);
    assert_eq!(v["summary"]["errors"], 1);
}

#[test]
fn locks_flag_prints_a_table_row_per_locked_table() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "m.sql",
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON orders (a);\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers (id) NOT VALID;\n",
    );
    let (code, out) = run(d.path(), &["--locks", "m.sql"]);
    assert_eq!(code, Some(0));
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert!(rows.contains(&vec![
        "line",
        "statement",
        "table",
        "lock",
        "blocks",
        "rewrite",
        "scan"
    ]));
    assert!(
        rows.contains(&vec![
            "2",
            "CREATE INDEX",
            "orders",
            "SHARE UPDATE EXCLUSIVE",
            "-",
            "no",
            "yes"
        ]),
        "{out}"
    );
    assert!(
        rows.contains(&vec![
            "3",
            "ALTER TABLE",
            "orders",
            "SHARE ROW EXCLUSIVE",
            "writes",
            "no",
            "no"
        ]),
        "{out}"
    );
    assert!(
        rows.contains(&vec![
            "3",
            "ALTER TABLE",
            "customers",
            "SHARE ROW EXCLUSIVE",
            "writes",
            "no",
            "no"
        ]),
        "{out}"
    );
}
