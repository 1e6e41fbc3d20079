//! `lockstep lint --write-baseline FILE` accepts a history's findings; `--baseline FILE` (or
//! `baseline =` in lockstep.toml) then reports, counts and fixes only new ones, matched by
//! the fingerprints of the CI formats.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn lockstep(dir: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("lockstep")
        .expect("binary")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .arg("lint")
        .args(args)
        .output()
        .expect("run");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A history whose two files have findings (an index build, a missing lock_timeout, a
/// dropped column).
fn history(dir: &Path) {
    write(
        dir,
        "migrations/0001_init.sql",
        "CREATE TABLE orders (id int PRIMARY KEY, note text, total int);\n",
    );
    write(
        dir,
        "migrations/0002_index.sql",
        "CREATE INDEX orders_total_idx ON orders (total);\nALTER TABLE orders DROP COLUMN note;\n",
    );
}

#[test]
fn a_written_baseline_accepts_the_past_and_reports_only_new_findings() {
    let d = tempfile::tempdir().expect("tmp");
    history(d.path());
    let before = lockstep(d.path(), &["--no-config", "migrations"]);
    assert_eq!(before.code, Some(1), "{}", before.stdout);

    let w = lockstep(
        d.path(),
        &[
            "--no-config",
            "--write-baseline",
            "lockstep-baseline.json",
            "migrations",
        ],
    );
    assert_eq!(w.code, Some(0), "{}", w.stderr);
    assert!(
        w.stderr
            .contains("wrote 3 findings in 1 file to lockstep-baseline.json"),
        "{}",
        w.stderr
    );
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("lockstep-baseline.json")).expect("baseline"),
    )
    .expect("JSON");
    assert_eq!(file["version"], 1);
    let entries = file["findings"].as_array().expect("findings");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["path"], "migrations/0002_index.sql");
    assert_eq!(entries[0]["fingerprint"].as_str().expect("fp").len(), 32);

    let base = ["--no-config", "--baseline", "lockstep-baseline.json"];
    let r = lockstep(d.path(), &[&base[..], &["migrations"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("no findings (3 more findings in the baseline)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    // Comments and blank lines moved every line: still accepted.
    write(
        d.path(),
        "migrations/0002_index.sql",
        "-- indexes\n\nCREATE INDEX orders_total_idx\n    ON orders (total);\nALTER TABLE orders DROP COLUMN note;\n",
    );
    // A new migration with a new finding: only it is reported, and it fails the run.
    write(
        d.path(),
        "migrations/0003_more.sql",
        "SET lock_timeout = '1s';\nCREATE INDEX orders_id_total_idx ON orders (id, total);\n",
    );
    let r = lockstep(
        d.path(),
        &[&base[..], &["--format", "json", "migrations"]].concat(),
    );
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let findings: Vec<(String, String)> = v["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| {
            f["findings"].as_array().expect("findings").iter().map(|x| {
                (
                    f["path"].as_str().expect("path").to_string(),
                    x["rule"].as_str().expect("rule").to_string(),
                )
            })
        })
        .collect();
    assert_eq!(
        findings,
        [(
            "migrations/0003_more.sql".to_string(),
            "create-index-non-concurrently".to_string()
        )]
    );
    assert_eq!(v["summary"]["baselined"], 3);
    assert_eq!(v["summary"]["errors"], 1);

    // Fixing an accepted finding leaves a stale entry: a note, and the exit code is honest.
    std::fs::remove_file(d.path().join("migrations/0003_more.sql")).expect("rm");
    write(
        d.path(),
        "migrations/0002_index.sql",
        "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);\nALTER TABLE orders DROP COLUMN note;\n",
    );
    let r = lockstep(d.path(), &[&base[..], &["migrations"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "note: 2 entries of lockstep-baseline.json match no finding any more (fixed, or the statement changed)"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn fingerprints_of_new_findings_are_those_of_the_ci_formats() {
    let d = tempfile::tempdir().expect("tmp");
    // Two identical statements: the first accepted, the second added later.
    write(d.path(), "m.sql", "CREATE INDEX i ON t (a);\n");
    let w = lockstep(
        d.path(),
        &["--no-config", "--write-baseline", "b.json", "m.sql"],
    );
    assert_eq!(w.code, Some(0));
    write(
        d.path(),
        "m.sql",
        "CREATE INDEX i ON t (a);\nCREATE INDEX i ON t (a);\n",
    );
    let gitlab = |extra: &[&str]| -> Vec<String> {
        let r = lockstep(
            d.path(),
            &[
                &["--no-config", "--format", "gitlab"][..],
                extra,
                &["m.sql"],
            ]
            .concat(),
        );
        let v: Value = serde_json::from_str(&r.stdout).expect("gitlab JSON");
        v.as_array()
            .expect("issues")
            .iter()
            .map(|i| i["fingerprint"].as_str().expect("fp").to_string())
            .collect()
    };
    let all = gitlab(&[]);
    assert_eq!(all.len(), 3);
    let new = gitlab(&["--baseline", "b.json"]);
    assert_eq!(new.len(), 1);
    assert!(all.contains(&new[0]), "{new:?} not in {all:?}");
    let accepted: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("b.json")).expect("read"))
            .expect("JSON");
    assert!(accepted["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .all(|e| e["fingerprint"] != new[0].as_str()));
}

#[test]
fn the_config_key_fix_and_errors() {
    let d = tempfile::tempdir().expect("tmp");
    history(d.path());
    std::fs::create_dir(d.path().join("ci")).expect("mkdir");
    // Paths are relative to the repository root, as in the CI formats.
    std::fs::create_dir(d.path().join(".git")).expect("mkdir");
    let w = lockstep(
        d.path(),
        &[
            "--no-config",
            "--write-baseline",
            "ci/baseline.json",
            "migrations",
        ],
    );
    assert_eq!(w.code, Some(0), "{}", w.stderr);
    // Relative to the config file, wherever lockstep runs from.
    write(
        d.path(),
        "lockstep.toml",
        "baseline = \"ci/baseline.json\"\n",
    );
    let r = lockstep(&d.path().join("migrations"), &["."]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let r = lockstep(&d.path().join("migrations"), &["--no-baseline", "."]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);

    // --fix rewrites only what is new: accepted history stays as it ran.
    write(
        d.path(),
        "migrations/0003_more.sql",
        "SET lock_timeout = '1s';\nCREATE INDEX orders_id_idx ON orders (id);\n",
    );
    let r = lockstep(d.path(), &["--fix", "migrations"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let old = std::fs::read_to_string(d.path().join("migrations/0002_index.sql")).expect("read");
    assert!(!old.contains("CONCURRENTLY"), "{old}");
    let new = std::fs::read_to_string(d.path().join("migrations/0003_more.sql")).expect("read");
    assert!(new.contains("CREATE INDEX CONCURRENTLY"), "{new}");

    // A baseline that is missing or broken stops the run before anything is linted.
    let r = lockstep(
        d.path(),
        &["--no-config", "--baseline", "nope.json", "migrations"],
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("cannot read the baseline nope.json: no such file"),
        "{}",
        r.stderr
    );
    write(d.path(), "broken.json", "{\"version\": 1}");
    let r = lockstep(
        d.path(),
        &["--no-config", "--baseline", "broken.json", "migrations"],
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("invalid baseline broken.json"),
        "{}",
        r.stderr
    );
    // A baseline that cannot be written is an error too.
    let r = lockstep(
        d.path(),
        &[
            "--no-config",
            "--write-baseline",
            "no/such/dir/b.json",
            "migrations",
        ],
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("cannot write the baseline no/such/dir/b.json"),
        "{}",
        r.stderr
    );
}
