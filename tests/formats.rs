//! The report formats of `lockstep lint` (text, json, sarif, gitlab, junit, github) on one
//! shared input, `tests/fixtures/formats/`: errors, warnings, a note, a multi-line statement, a
//! path with a space, a message with characters that need escaping (`"`, `'`, `<`, `,`, `:`,
//! `%`), a binary file (not linted) and a file that is not valid UTF-8.
//!
//! Each run copies the fixture into a throwaway repository (`<tmp>/.git`, migrations in
//! `<tmp>/db/migrations/`) and lints `migrations` from `<tmp>/db`, so displayed paths
//! (`migrations/…`) differ from repository-relative ones (`db/migrations/…`) and snapshots do
//! not depend on where the checkout lives.
//!
//! `tests/fixtures/sarif-schema-2.1.0.json` is the OASIS SARIF 2.1.0 JSON schema (draft-07
//! edition, `$id` https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json),
//! copied unchanged from `src/schema.json` of the crates.io package `serde-sarif` 0.8.0
//! (sha256 of the file: af47e7b67f24efe74076621fd3a5fbe7398add9e84fe820c971219a385895cea).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::{json, Value};
use tempfile::TempDir;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/formats");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sarif-schema-2.1.0.json"
);
/// Files in the fixture, all linted (one of them is binary, so every run exits 2).
const FILES: usize = 7;
/// The exit code of every full run: the binary file is an I/O error.
const EXIT_ERROR: i32 = 2;

/// A throwaway repository holding the fixture in `db/migrations/`.
fn repo() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join(".git")).expect("create .git");
    let dest = dir.path().join("db/migrations");
    fs::create_dir_all(&dest).expect("create db/migrations");
    for e in fs::read_dir(FIXTURE).expect("fixture dir") {
        let e = e.expect("fixture entry");
        fs::copy(e.path(), dest.join(e.file_name())).expect("copy fixture");
    }
    dir
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `lockstep lint --no-config ARGS migrations`, run in `<repo>/db`.
fn lint(repo: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("lockstep")
        .expect("binary built")
        .current_dir(repo.join("db"))
        .env_remove("CLICOLOR_FORCE")
        .env_remove("GITHUB_ACTIONS")
        .args(["lint", "--no-config"])
        .args(args)
        .arg("migrations")
        .output()
        .expect("run lockstep");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The report in `format` on standard output.
fn report(format: &str) -> String {
    let dir = repo();
    let run = lint(dir.path(), &["--format", format]);
    assert_eq!(run.code, Some(EXIT_ERROR), "{format}: {}", run.stderr);
    run.stdout
}

fn json_report(format: &str) -> Value {
    let text = report(format);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{format} is not JSON: {e}\n{text}"))
}

/// The repository-relative paths of the fixture files.
fn fixture_paths() -> HashSet<String> {
    fs::read_dir(FIXTURE)
        .expect("fixture dir")
        .map(|e| {
            let name = e.expect("entry").file_name();
            format!("db/migrations/{}", name.to_string_lossy())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Snapshots, one per format

#[test]
fn text_snapshot() {
    insta::assert_snapshot!("text", report("text"));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("json", report("json"));
}

#[test]
fn sarif_snapshot() {
    let mut v = json_report("sarif");
    let driver = &mut v["runs"][0]["tool"]["driver"];
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    driver["version"] = json!("[version]");
    // The rule descriptors (every rule with its documentation) are checked against the
    // registry in `sarif_lists_every_rule_with_its_documentation`, not snapshotted here.
    assert!(driver["rules"].is_array());
    driver["rules"] = json!("[every rule]");
    insta::assert_json_snapshot!("sarif", v);
}

#[test]
fn gitlab_snapshot() {
    insta::assert_snapshot!("gitlab", report("gitlab"));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!("junit", report("junit"));
}

#[test]
fn github_snapshot() {
    insta::assert_snapshot!("github", report("github"));
}

// ---------------------------------------------------------------------------------------------
// SARIF

#[test]
fn sarif_validates_against_the_official_schema() {
    let mut schema: Value =
        serde_json::from_str(&fs::read_to_string(SCHEMA).expect("schema")).expect("schema JSON");
    // This edition of the schema writes the pattern of the two `language` properties (which
    // lockstep never writes) as `^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`, which the
    // validator refuses to compile (stray `]`); the OASIS errata edition corrected it to
    // `^[a-zA-Z]{2}(-[a-zA-Z]{2})?$`. Use the corrected pattern, in memory only.
    for def in ["run", "toolComponent"] {
        let pattern = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        if pattern == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" {
            *pattern = json!("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
        }
    }
    // Formats (`uri`, `uri-reference`, …) are checked too.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    let v = json_report("sarif");
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF does not validate:\n{errors:#?}");

    // The validator does reject what the schema forbids.
    let mut bad = v.clone();
    bad["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(!validator.is_valid(&bad));
    let mut bad = v.clone();
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        json!("db/a b.sql");
    assert!(!validator.is_valid(&bad), "uri-reference format is checked");
    let mut bad = v;
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    assert!(!validator.is_valid(&bad));
}

#[test]
fn sarif_lists_every_rule_with_its_documentation() {
    let rules_out = Command::cargo_bin("lockstep")
        .expect("binary")
        .arg("rules")
        .output()
        .expect("run rules");
    let listed: Vec<String> = String::from_utf8_lossy(&rules_out.stdout)
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let v = json_report("sarif");
    let driver = &v["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "lockstep");
    let rules = driver["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, listed);
    for r in rules {
        for key in ["shortDescription", "fullDescription", "help"] {
            let text = r[key]["text"].as_str().unwrap_or("");
            assert!(!text.trim().is_empty(), "{}: empty {key}", r["id"]);
        }
        assert!(r["help"]["markdown"]
            .as_str()
            .is_some_and(|m| m.contains("## Why is this bad?")));
        let level = r["defaultConfiguration"]["level"].as_str().unwrap();
        assert!(["error", "warning", "note"].contains(&level));
    }
    // Off-by-default rules say so.
    let off = rules.iter().find(|r| r["id"] == "prefer-text").unwrap();
    assert_eq!(off["defaultConfiguration"]["enabled"], false);
}

#[test]
fn sarif_results_locate_findings_in_the_repository() {
    let v = json_report("sarif");
    let run = &v["runs"][0];
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let mut fingerprints = HashSet::new();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.starts_with("db/migrations/"), "{uri}");
        assert!(!uri.contains(' '), "{uri}");
        let fp = r["partialFingerprints"]["lockstepFingerprint/v1"]
            .as_str()
            .unwrap();
        assert!(
            fingerprints.insert(fp.to_string()),
            "duplicate fingerprint {fp}"
        );
    }
    let index = results
        .iter()
        .find(|r| r["ruleId"] == "create-index-non-concurrently")
        .unwrap();
    let loc = &index["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "db/migrations/0002_add%20index.sql"
    );
    assert_eq!(
        loc["region"],
        json!({"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 13})
    );
    assert!(index["message"]["text"]
        .as_str()
        .unwrap()
        .contains("\nhelp: use `CREATE INDEX CONCURRENTLY`"));
    let multi = results
        .iter()
        .find(|r| r["ruleId"] == "set-not-null-scan")
        .unwrap();
    let region = &multi["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["endLine"].as_u64()),
        (Some(3), Some(4))
    );

    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    let levels: Vec<&str> = notes.iter().map(|n| n["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["error", "warning"]);
    assert_eq!(
        notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "db/migrations/0006_binary.sql"
    );
}

// ---------------------------------------------------------------------------------------------
// GitLab Code Quality

#[test]
fn gitlab_issues_have_every_required_field() {
    let text = report("gitlab");
    assert!(!text.starts_with('\u{feff}'), "no byte-order mark");
    let v: Value = serde_json::from_str(&text).expect("gitlab JSON");
    let issues = v.as_array().expect("a JSON array");
    // 6 findings, plus the binary file and the invalid UTF-8 one.
    assert_eq!(issues.len(), 8);
    let paths = fixture_paths();
    let mut fingerprints = HashSet::new();
    for i in issues {
        for key in ["description", "check_name", "fingerprint", "severity"] {
            assert!(
                i[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} in {i}"
            );
        }
        let sev = i["severity"].as_str().unwrap();
        assert!(
            ["info", "minor", "major", "critical", "blocker"].contains(&sev),
            "{sev}"
        );
        let path = i["location"]["path"].as_str().expect("location.path");
        assert!(paths.contains(path), "{path} is not repository-relative");
        let begin = i["location"]["lines"]["begin"]
            .as_u64()
            .expect("lines.begin");
        assert!(begin >= 1);
        let fp = i["fingerprint"].as_str().unwrap();
        assert!(
            fingerprints.insert(fp.to_string()),
            "duplicate fingerprint {fp}"
        );
    }
    let sev_of = |rule: &str| {
        issues
            .iter()
            .find(|i| i["check_name"] == rule)
            .map(|i| i["severity"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(sev_of("create-index-non-concurrently"), "critical");
    assert_eq!(sev_of("rename-column"), "major");
    assert_eq!(sev_of("unparsed-statement"), "info");
    let blocker = issues
        .iter()
        .find(|i| i["severity"] == "blocker")
        .expect("the binary file is a blocker");
    assert_eq!(blocker["location"]["path"], "db/migrations/0006_binary.sql");
}

/// (check_name, path) → (fingerprint, begin line) of every issue, for reports where each
/// pair occurs once.
fn issues_by_rule(v: &Value) -> Vec<(String, String, String, u64)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["check_name"].as_str().unwrap().to_string(),
                i["location"]["path"].as_str().unwrap().to_string(),
                i["fingerprint"].as_str().unwrap().to_string(),
                i["location"]["lines"]["begin"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn gitlab_fingerprints_survive_unrelated_edits() {
    let dir = repo();
    let before: Value =
        serde_json::from_str(&lint(dir.path(), &["--format", "gitlab"]).stdout).unwrap();
    let migrations = dir.path().join("db/migrations");
    // Comment and blank lines at the top of the file, and an unrelated statement changed.
    let multi = migrations.join("0003_multiline.sql");
    let text = fs::read_to_string(&multi).unwrap();
    let edited = format!(
        "-- reviewed by the DBA\n\n\n{}",
        text.replace("lock_timeout = '2s'", "lock_timeout = '3s'")
    );
    assert_ne!(edited, text);
    fs::write(&multi, edited).unwrap();
    // Whitespace inside a flagged statement does not count either.
    let rename = migrations.join("0004_rename.sql");
    let text = fs::read_to_string(&rename).unwrap();
    fs::write(
        &rename,
        format!(
            "\n{}",
            text.replace("RENAME COLUMN note", "RENAME\n    COLUMN   note")
        ),
    )
    .unwrap();
    let after: Value =
        serde_json::from_str(&lint(dir.path(), &["--format", "gitlab"]).stdout).unwrap();

    let before = issues_by_rule(&before);
    let after = issues_by_rule(&after);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&b.0, &b.1), (&a.0, &a.1));
        assert_eq!(b.2, a.2, "fingerprint of {} in {} changed", b.0, b.1);
        // Lines added: 3 above the statement in 0003; in 0004 one above the rename and one
        // inside it, so the statement after it moves by 2.
        let shift = match b.0.as_str() {
            "set-not-null-scan" => 3,
            "rename-column" => 1,
            "unparsed-statement" => 2,
            _ => 0,
        };
        assert_eq!(a.3, b.3 + shift, "{} in {}", b.0, b.1);
    }

    // Changing the flagged statement itself does change its fingerprint.
    let text = fs::read_to_string(&multi).unwrap();
    fs::write(&multi, text.replace("customer_id", "customer_ref")).unwrap();
    let changed: Value =
        serde_json::from_str(&lint(dir.path(), &["--format", "gitlab"]).stdout).unwrap();
    let fp = |v: &[(String, String, String, u64)]| {
        v.iter()
            .find(|i| i.0 == "set-not-null-scan")
            .map(|i| i.2.clone())
            .unwrap()
    };
    assert_ne!(fp(&issues_by_rule(&changed)), fp(&after));
}

// ---------------------------------------------------------------------------------------------
// JUnit

#[test]
fn junit_is_well_formed_xml_with_one_test_case_per_file() {
    let text = report("junit");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("testsuite");
    assert_eq!(suite.attribute("name"), Some("lockstep"));
    assert_eq!(suite.attribute("tests"), Some(FILES.to_string().as_str()));
    // 0002, 0003, 0004 and 0007 have findings at or above warning; 0006 is binary.
    assert_eq!(suite.attribute("failures"), Some("4"));
    assert_eq!(suite.attribute("errors"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), FILES);
    let paths = fixture_paths();
    for c in &cases {
        assert_eq!(c.attribute("classname"), Some("lockstep"));
        let name = c.attribute("name").expect("name");
        assert_eq!(c.attribute("file"), Some(name));
        assert!(paths.contains(name), "{name}");
    }
    let case = |file: &str| {
        cases
            .iter()
            .find(|c| c.attribute("name").is_some_and(|n| n.ends_with(file)))
            .unwrap()
    };
    let failure = case("0002_add index.sql")
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert_eq!(failure.attribute("type"), Some("error"));
    let body = failure.text().unwrap();
    assert!(
        body.contains(r#"`"we<ird,tab:le%""x'"`"#),
        "escaped text reads back unchanged: {body}"
    );
    assert!(
        body.contains("db/migrations/0002_add index.sql:3:1: error[create-index-non-concurrently]")
    );
    assert!(body.contains("\n  help: "));
    let notes = case("0004_rename.sql")
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .expect("notes in system-out");
    assert!(notes.text().unwrap().contains("note[unparsed-statement]"));
    assert!(case("0006_binary.sql")
        .children()
        .any(|n| n.has_tag_name("error")));
    assert!(!case("0001_create_orders.sql")
        .children()
        .any(|n| n.is_element()));
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

#[test]
fn github_commands_are_one_line_each_and_escaped() {
    let text = report("github");
    let lines: Vec<&str> = text.lines().collect();
    let (summary, commands) = lines.split_last().unwrap();
    assert!(summary.starts_with("checked 7 files"), "{summary}");
    // 6 findings and 2 file problems.
    assert_eq!(commands.len(), 8);
    for l in commands {
        let (head, _message) = l
            .split_once("::")
            .map(|(_, rest)| rest)
            .and_then(|r| r.split_once("::"))
            .expect(l);
        let (cmd, props) = head.split_once(' ').expect(l);
        assert!(["error", "warning", "notice"].contains(&cmd), "{l}");
        for p in props.split(',') {
            let (k, v) = p.split_once('=').expect(l);
            assert!(
                ["file", "line", "col", "endLine", "endColumn", "title"].contains(&k),
                "{l}"
            );
            assert!(!v.contains(':') && !v.contains(','), "{l}");
        }
    }
    let index = commands
        .iter()
        .find(|l| l.contains("title=create-index-non-concurrently"))
        .unwrap();
    assert_eq!(
        *index,
        "::error file=db/migrations/0002_add index.sql,line=3,col=1,endLine=3,endColumn=13,\
         title=create-index-non-concurrently::`CREATE INDEX` without `CONCURRENTLY` blocks writes \
         to `\"we<ird,tab:le%25\"\"x'\"` while the index builds (SHARE lock)%0Ahelp: use \
         `CREATE INDEX CONCURRENTLY` in a migration that does not run in a transaction; or run \
         it online with an `index` playbook (`lockstep run`)"
    );
    // A multi-line finding has no columns.
    let multi = commands
        .iter()
        .find(|l| l.contains("title=set-not-null-scan"))
        .unwrap();
    assert!(
        multi.starts_with("::error file=db/migrations/0003_multiline.sql,line=3,endLine=4,title=")
    );
    assert!(commands
        .iter()
        .any(|l| l.starts_with("::error file=db/migrations/0006_binary.sql::binary file")));
    assert!(commands.iter().any(|l| l.starts_with("::notice ")));
}

// ---------------------------------------------------------------------------------------------
// --output

#[test]
fn output_writes_several_reports_in_one_run() {
    let dir = repo();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    // An older report is replaced.
    fs::write(out.join("gl.json"), "stale").unwrap();
    let run = lint(
        dir.path(),
        &[
            "--output",
            "gitlab=../out/gl.json",
            "-o",
            "junit=../out/junit report.xml",
        ],
    );
    assert_eq!(run.code, Some(EXIT_ERROR), "{}", run.stderr);
    // The terminal gets the text report: findings and the summary.
    assert_eq!(run.stdout, report("text"));
    assert!(run.stdout.contains("--> migrations/0002_add index.sql:3:1"));
    let gl = fs::read_to_string(out.join("gl.json")).unwrap();
    assert_eq!(gl, report("gitlab"));
    let junit = fs::read_to_string(out.join("junit report.xml")).unwrap();
    assert_eq!(junit, report("junit"));
    // No temporary file is left behind.
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["gl.json", "junit report.xml"]);
}

#[test]
fn output_without_a_format_uses_the_format_flag() {
    let dir = repo();
    let run = lint(
        dir.path(),
        &["--format", "sarif", "--output", "lockstep.sarif"],
    );
    assert_eq!(run.code, Some(EXIT_ERROR), "{}", run.stderr);
    assert!(
        run.stdout.ends_with("2 warnings, 1 note\n"),
        "{}",
        run.stdout
    );
    let sarif: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("db/lockstep.sarif")).unwrap())
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // `-` sends a format to standard output instead of the text report.
    let run = lint(
        dir.path(),
        &["--output", "github=-", "--output", "junit=j.xml"],
    );
    assert_eq!(run.stdout, report("github"));
    assert!(dir.path().join("db/j.xml").is_file());
}

#[test]
fn unwritable_output_is_an_error_naming_the_file() {
    let dir = repo();
    let run = lint(dir.path(), &["--output", "gitlab=no/such/dir/gl.json"]);
    assert_eq!(run.code, Some(EXIT_ERROR));
    assert!(run.stdout.is_empty(), "nothing is linted: {}", run.stdout);
    assert!(
        run.stderr.contains(
            "cannot create the report file no/such/dir/gl.json: no such file or directory"
        ),
        "{}",
        run.stderr
    );

    let run = lint(dir.path(), &["--output", "junit=migrations"]);
    assert_eq!(run.code, Some(EXIT_ERROR));
    assert!(
        run.stderr.contains("migrations: is a directory"),
        "{}",
        run.stderr
    );

    let run = lint(dir.path(), &["--output", "gitlb=gl.json"]);
    assert_eq!(run.code, Some(EXIT_ERROR));
    assert!(
        run.stderr.contains("unknown format `gitlb`"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_teaches_the_formats_and_output() {
    let out = Command::cargo_bin("lockstep")
        .expect("binary")
        .args(["lint", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "sarif",
        "gitlab",
        "junit",
        "github",
        "--output",
        "gl-code-quality-report.json",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
