//! `rules` and `explain`.

use super::*;

const RULE_NAMES: [&str; 9] = [
    "create-index-non-concurrently",
    "add-foreign-key-validating",
    "add-check-validating",
    "set-not-null-scan",
    "add-column-volatile-default",
    "missing-lock-timeout",
    "concurrently-in-transaction",
    "unparsed-statement",
    "unused-ignore",
];

/// Rule names as listed by `lockstep rules`.
fn listed_rules(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_lists_every_rule() {
    let d = tmp();
    let r = run(lockstep(d.path()).arg("rules"));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let listed = listed_rules(&r.stdout);
    for name in RULE_NAMES {
        assert!(
            listed.iter().any(|l| l == name),
            "`{name}` missing from:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains(&format!(
            "\n{} rules. `lockstep explain <rule>`",
            listed.len()
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().any(
        |l| l.starts_with("unparsed-statement") && l.split_whitespace().nth(1) == Some("note")
    ));
    assert!(r.stdout.lines().any(
        |l| l.starts_with("set-not-null-scan") && l.split_whitespace().nth(1) == Some("error")
    ));
}

#[test]
fn explain_has_the_four_sections() {
    let d = tmp();
    let r = run(lockstep(d.path()).args(["explain", "set-not-null-scan"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with("# set-not-null-scan\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Default severity: error"));
    let mut at = 0;
    for h in [
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Use instead",
    ] {
        let i = r.stdout[at..]
            .find(&format!("\n{h}\n"))
            .unwrap_or_else(|| panic!("`{h}` missing or out of order:\n{}", r.stdout));
        at += i + 1;
    }
}

#[test]
fn core_rules_have_an_explanation() {
    let d = tmp();
    for name in RULE_NAMES {
        let e = run(lockstep(d.path()).args(["explain", name]));
        assert_eq!(e.code, Some(0), "explain {name}: {}", e.all());
        assert!(e.stdout.starts_with(&format!("# {name}\n")));
        for h in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
        ] {
            assert!(e.stdout.contains(h), "explain {name} lacks `{h}`");
        }
    }
}

#[test]
fn every_listed_rule_has_an_explanation() {
    let d = tmp();
    let r = run(lockstep(d.path()).arg("rules"));
    for name in listed_rules(&r.stdout) {
        let e = run(lockstep(d.path()).args(["explain", &name]));
        assert_eq!(e.code, Some(0), "explain {name}: {}", e.all());
        assert!(e.stdout.starts_with(&format!("# {name}\n")));
        for h in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
        ] {
            assert!(e.stdout.contains(h), "explain {name} lacks `{h}`");
        }
    }
}

#[test]
fn explain_misspelled_rule_suggests() {
    let d = tmp();
    lockstep(d.path())
        .args(["explain", "set-not-nul"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("unknown rule `set-not-nul`"))
        .stderr(predicate::str::contains(
            "did you mean `set-not-null-scan`?",
        ));
    lockstep(d.path())
        .args(["explain", "zzz"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown rule `zzz`"))
        .stderr(predicate::str::contains("did you mean").not());
}

#[test]
fn help_and_version_exit_0() {
    let d = tmp();
    lockstep(d.path())
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("lint"));
    lockstep(d.path())
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("lockstep "));
    lockstep(d.path())
        .args(["lint", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes:"));
}

#[test]
fn missing_subcommand_is_a_usage_error() {
    let d = tmp();
    lockstep(d.path()).assert().code(2);
    lockstep(d.path())
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
}
