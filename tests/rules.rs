//! Every rule has docs and bad/good fixtures; bad fixtures fire exactly where marked.
//!
//! A fixture marks an expected finding with `-- expect: <rule>` on the line above the
//! statement (or comment) the finding belongs to.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use lockstep::lint::rules::RULES;
use lockstep::lint::{lint_source, Diagnostic, LintOptions, Severity};

fn fixture(rule: &str, kind: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(rule)
        .join(format!("{kind}.sql"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The line a finding belongs to: its statement's first line, or its own line.
fn anchor(d: &Diagnostic) -> usize {
    d.statement_lines.map_or(d.line, |(first, _)| first)
}

fn expected(src: &str, rule: &str) -> BTreeSet<usize> {
    let marker = format!("-- expect: {rule}");
    src.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == marker)
        .map(|(i, _)| i + 2)
        .collect()
}

/// Default options (PostgreSQL 15, default severities) with every rule on, so the rules
/// that are off by default are tested on their fixtures too.
fn all_rules() -> LintOptions {
    LintOptions {
        severities: RULES
            .iter()
            .map(|r| r.default_severity.or(Some(Severity::Warning)))
            .collect(),
        ..LintOptions::default()
    }
}

fn found(src: &str, rule: &str) -> BTreeSet<usize> {
    lint_source(src, &all_rules())
        .diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .map(anchor)
        .collect()
}

#[test]
fn registry_names_are_unique_kebab_case() {
    let mut seen = BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.name), "duplicate rule name {}", r.name);
        assert!(
            r.name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{} is not kebab-case",
            r.name
        );
    }
    assert!(RULES.len() >= 9);
}

#[test]
fn every_rule_has_docs_with_the_four_headings() {
    for r in RULES {
        for h in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
        ] {
            assert!(r.docs.contains(h), "{}: docs lack `{h}`", r.name);
        }
        assert!(
            !r.summary.is_empty() && !r.summary.ends_with('.'),
            "{}: summary",
            r.name
        );
    }
}

#[test]
fn bad_fixtures_fire_exactly_where_marked() {
    for r in RULES {
        let src = fixture(r.name, "bad");
        let want = expected(&src, r.name);
        assert!(
            !want.is_empty(),
            "{}: bad.sql has no `-- expect:` marker",
            r.name
        );
        assert_eq!(found(&src, r.name), want, "{}: findings in bad.sql", r.name);
    }
}

#[test]
fn good_fixtures_are_clean() {
    for r in RULES {
        let src = fixture(r.name, "good");
        let got = found(&src, r.name);
        assert!(
            got.is_empty(),
            "{}: good.sql fires on lines {got:?}",
            r.name
        );
    }
}

#[test]
fn findings_carry_help_and_house_style() {
    for r in RULES {
        let src = fixture(r.name, "bad");
        for d in lint_source(&src, &all_rules()).diagnostics {
            let first = d.message.chars().next().unwrap_or('X');
            assert!(
                !first.is_uppercase() && !d.message.ends_with('.'),
                "{}: message style: {}",
                d.rule,
                d.message
            );
            assert!(d.help.is_some(), "{}: finding without help", d.rule);
            assert!(d.line >= 1 && d.column >= 1);
        }
    }
}
