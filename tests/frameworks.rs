//! One fixture directory per migration framework (`tests/fixtures/frameworks/<name>/`), each
//! with an `expected.toml` listing, per file, the framework lockstep must recognise, how the
//! tool runs each section (direction and transaction), and the transaction-related findings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use lockstep::files::{discover, exclude_set, lint_all, FileReport};
use lockstep::lint::{rules::RULES, LintOptions};

const RULES_CHECKED: &[&str] = &[
    "concurrently-in-transaction",
    "add-enum-value-in-transaction",
    "transaction-nesting",
    "create-index-non-concurrently",
    "drop-index-non-concurrently",
    "unparsed-statement",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frameworks")
}

fn options() -> LintOptions {
    LintOptions {
        severities: RULES
            .iter()
            .map(|r| {
                RULES_CHECKED
                    .contains(&r.name)
                    .then_some(lockstep::lint::Severity::Warning)
            })
            .collect(),
        ..LintOptions::default()
    }
}

fn lint_dir(dir: &Path, opts: &LintOptions) -> Vec<FileReport> {
    let (inputs, errors) = discover(
        &[dir.to_path_buf()],
        dir,
        dir,
        &exclude_set(&[]).unwrap(),
        None,
    );
    assert!(errors.is_empty(), "{errors:?}");
    lint_all(&inputs, opts)
}

fn relative(r: &FileReport, dir: &Path) -> String {
    Path::new(&r.path)
        .strip_prefix(dir)
        .unwrap_or(Path::new(&r.path))
        .to_string_lossy()
        .replace('\\', "/")
}

fn describe(r: &FileReport) -> Vec<String> {
    r.sections
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.direction.as_str(),
                if s.transaction {
                    "in transaction"
                } else {
                    "without transaction"
                }
            )
        })
        .collect()
}

fn findings(r: &FileReport) -> Vec<String> {
    r.diagnostics
        .iter()
        .map(|d| format!("{}@{}", d.rule, d.line))
        .collect()
}

fn check_framework(name: &str) {
    let dir = fixtures().join(name);
    let expected: toml::Table = std::fs::read_to_string(dir.join("expected.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let files = expected["file"].as_array().unwrap();
    let reports = lint_dir(&dir, &options());
    let got: Vec<String> = reports.iter().map(|r| relative(r, &dir)).collect();
    let want: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(got, want, "{name}: files and their order");
    for (r, f) in reports.iter().zip(files) {
        let path = relative(r, &dir);
        assert!(r.problem.is_none(), "{name}/{path}: {:?}", r.problem);
        assert_eq!(
            r.framework.name(),
            f["framework"].as_str().unwrap(),
            "{name}/{path}: framework"
        );
        let sections: Vec<&str> = f["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(describe(r), sections, "{name}/{path}: sections");
        let want: Vec<&str> = f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(findings(r), want, "{name}/{path}: findings");
        for d in &r.diagnostics {
            // Liquibase rollback lines lie inside their changeset: take the narrowest.
            let section = r
                .sections
                .iter()
                .filter(|s| (s.line..=s.end_line).contains(&d.line))
                .min_by_key(|s| s.end_line - s.line)
                .expect("every finding lies in a section");
            let marked =
                d.message.ends_with(" (down section)") || d.message.ends_with(" (verify section)");
            assert_eq!(
                marked,
                section.direction.as_str() != "up",
                "{name}/{path}: {}",
                d.message
            );
        }
        if let Some(hint) = f.get("hint").and_then(|h| h.as_str()) {
            let d = r
                .diagnostics
                .iter()
                .find(|d| d.rule == "concurrently-in-transaction")
                .expect("a finding to carry the hint");
            assert!(
                d.help.as_deref().unwrap_or("").contains(hint),
                "{name}/{path}: help {:?} should mention {hint:?}",
                d.help
            );
            assert!(
                !d.message.contains("assume_in_transaction"),
                "{name}/{path}: the message names the framework's reason: {}",
                d.message
            );
        }
    }
}

macro_rules! frameworks {
    ($($test:ident => $dir:literal),* $(,)?) => {
        $(#[test] fn $test() { check_framework($dir); })*

        #[test]
        fn every_fixture_directory_has_a_test() {
            let mut dirs: Vec<String> = std::fs::read_dir(fixtures())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            dirs.sort();
            let mut tested = vec![$($dir.to_string()),*];
            tested.sort();
            assert_eq!(dirs, tested);
        }
    };
}

frameworks! {
    flyway => "flyway",
    golang_migrate => "golang-migrate",
    goose => "goose",
    dbmate => "dbmate",
    sqlx => "sqlx",
    diesel => "diesel",
    prisma => "prisma",
    liquibase => "liquibase",
    atlas => "atlas",
    sqitch => "sqitch",
}

#[test]
fn down_sections_can_be_skipped() {
    let dir = fixtures().join("goose");
    let opts = LintOptions {
        lint_down: false,
        ..options()
    };
    let reports = lint_dir(&dir, &opts);
    let last = reports.last().unwrap();
    assert_eq!(findings(last), vec!["concurrently-in-transaction@3"]);
    assert!(!last.sections[1].linted && last.sections[0].linted);
}

#[test]
fn down_sections_do_not_change_the_replayed_schema() {
    // goose's first file drops `orders` in its down section; the later index on `orders` must
    // still see an existing table (so the non-concurrent build is flagged).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_a.sql"),
        "-- +goose Up\nCREATE TABLE orders (id int);\n-- +goose Down\nDROP TABLE orders;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_b.sql"),
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX orders_id_idx ON orders (id);\n",
    )
    .unwrap();
    let reports = lint_dir(dir.path(), &options());
    assert_eq!(
        findings(&reports[1]),
        vec!["create-index-non-concurrently@3"]
    );
}

#[test]
fn forced_framework_overrides_detection() {
    let dir = fixtures().join("golang-migrate");
    let opts = LintOptions {
        framework: Some(lockstep::framework::Framework::Plain),
        ..options()
    };
    let reports = lint_dir(&dir, &opts);
    assert!(reports
        .iter()
        .all(|r| r.framework.name() == "none" && describe(r) == ["up without transaction"]));
    assert!(reports.iter().all(|r| r.diagnostics.is_empty()));
}

#[test]
fn placeholders_do_not_break_parsing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__p.sql"),
        "CREATE TABLE ${schema}.orders (id int);\n\
         ALTER TABLE {{ .Schema }}.orders ADD COLUMN note text;\n\
         GRANT SELECT ON orders TO :reader;\n\
         SET search_path = :'schema';\n",
    )
    .unwrap();
    let reports = lint_dir(dir.path(), &options());
    assert_eq!(reports[0].statements, 4);
    assert_eq!(findings(&reports[0]), Vec::<String>::new());
    // The report shows the file as written.
    assert!(reports[0].source.contains("${schema}"));
}
