//! Integration points outside the linter itself: `lockstep completions`, `lockstep man`,
//! the pre-commit hook manifest, the GitLab CI/CD component and the GitHub Actions example
//! (both install the `lockstep-cli` wheel pinned to lockstep's version), and the wheel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde::Deserialize;
use serde_norway::Value;

const SHELLS: &[&str] = &["bash", "zsh", "fish", "powershell", "elvish"];

fn lockstep() -> Command {
    Command::cargo_bin("lockstep").expect("binary built")
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every YAML document in `text` (a GitLab component file holds two).
fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

fn yaml(text: &str) -> Value {
    let mut docs = yaml_documents(text);
    assert_eq!(docs.len(), 1, "expected one YAML document");
    docs.remove(0)
}

/// `v[key]` as a string, failing the test with the key's name when absent.
fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{key}` missing or not a string in {v:?}"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = lockstep()
        .args(args)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        out.stderr.is_empty(),
        "{args:?} wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

// ---- completions ----

#[test]
fn completions_for_every_shell_mention_subcommands_and_flags() {
    for shell in SHELLS {
        let script = stdout_of(&["completions", shell]);
        assert!(script.len() > 500, "{shell}: script too short");
        for word in [
            "lockstep",
            "lint",
            "explain",
            "pg-version",
            "fail-on",
            "stdin-filename",
        ] {
            assert!(script.contains(word), "{shell}: script lacks `{word}`");
        }
    }
}

#[test]
fn bash_completion_defines_and_registers_a_function() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("_lockstep()"));
    assert!(script.contains("complete -F _lockstep"));
}

#[test]
fn zsh_completion_is_a_compdef_file() {
    let script = stdout_of(&["completions", "zsh"]);
    assert!(script.starts_with("#compdef lockstep"), "{}", &script[..40]);
}

#[test]
fn completions_reject_an_unknown_shell_with_exit_2() {
    lockstep()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("invalid value 'tcsh'"))
        .stderr(predicate::str::contains("bash"));
}

#[test]
fn completions_require_a_shell() {
    lockstep().arg("completions").assert().code(2).stdout("");
}

#[test]
fn completions_help_says_where_to_put_each_script() {
    let help = stdout_of(&["completions", "--help"]);
    for line in [
        "~/.local/share/bash-completion/completions/lockstep",
        "_lockstep",
        "~/.config/fish/completions/lockstep.fish",
        "$PROFILE",
        "elvish",
    ] {
        assert!(help.contains(line), "help lacks `{line}`:\n{help}");
    }
}

#[test]
fn completions_into_a_closed_pipe_exit_quietly() {
    // A pipe whose reading end is closed before lockstep starts: every write fails with
    // EPIPE (clap_complete itself would panic on that).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    for shell in SHELLS {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("lockstep"))
            .args(["completions", shell])
            .stdout(writer.try_clone().expect("clone pipe"))
            .output()
            .expect("run lockstep");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{shell}: {stderr}");
        assert!(stderr.is_empty(), "{shell}: {stderr}");
    }
}

// ---- man ----

#[test]
fn man_prints_a_roff_page_listing_the_subcommands() {
    let page = stdout_of(&["man"]);
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("a .TH line");
    assert!(th.starts_with(".TH lockstep 1"), "{th}");
    assert!(th.contains(env!("CARGO_PKG_VERSION")), "{th}");
    for part in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        "lockstep\\-lint(1)",
        "lockstep\\-completions(1)",
    ] {
        assert!(page.contains(part), "page lacks `{part}`");
    }
    assert!(
        !page.contains("lockstep\\-help"),
        "clap's help subcommand is listed"
    );
}

#[test]
fn man_lint_prints_the_page_of_the_lint_subcommand() {
    let page = stdout_of(&["man", "lint"]);
    assert!(page.contains(".TH lockstep-lint 1"), "{}", &page[..200]);
    assert!(page.contains("\\fBlockstep lint\\fR"));
    assert!(page.contains("\\-\\-pg\\-version"));
    assert!(page.contains("\\-\\-fail\\-on"));
}

#[test]
fn man_of_an_unknown_subcommand_is_an_error() {
    lockstep()
        .args(["man", "frobnicate"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("`frobnicate`"))
        .stderr(predicate::str::contains("lint"));
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    lockstep()
        .args(["man", "--dir"])
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    for name in [
        "lockstep.1",
        "lockstep-lint.1",
        "lockstep-rules.1",
        "lockstep-explain.1",
        "lockstep-completions.1",
        "lockstep-man.1",
    ] {
        let text = fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH "), "{name} is not a roff page");
    }
    assert!(!out.join("lockstep-help.1").exists());
}

#[test]
fn man_dir_and_subcommand_conflict() {
    lockstep()
        .args(["man", "lint", "--dir", "x"])
        .assert()
        .code(2);
}

// ---- pre-commit ----

#[test]
fn pre_commit_hooks_manifest_declares_the_lockstep_hooks() {
    let doc = yaml(&read(".pre-commit-hooks.yaml"));
    let hooks = doc.as_sequence().expect("a list of hooks");
    let hook = |id: &str| {
        hooks
            .iter()
            .find(|h| h.get("id").and_then(Value::as_str) == Some(id))
            .unwrap_or_else(|| panic!("no hook `{id}`"))
    };

    let main = hook("lockstep");
    assert_eq!(str_at(main, "entry"), "lockstep lint");
    assert_eq!(str_at(main, "language"), "rust");
    assert_eq!(str_at(main, "files"), "\\.sql$");
    assert_eq!(main["pass_filenames"], Value::Bool(true));
    assert_eq!(main["require_serial"], Value::Bool(true));

    let dir = hook("lockstep-dir");
    assert_eq!(str_at(dir, "entry"), "lockstep lint");
    assert_eq!(str_at(dir, "language"), "rust");
    assert_eq!(dir["pass_filenames"], Value::Bool(false));
    assert_eq!(dir["args"][0].as_str(), Some("migrations/"));

    for h in hooks {
        str_at(h, "name");
        // The entry must run a subcommand that exists.
        let entry = str_at(h, "entry");
        let sub = entry.split_whitespace().nth(1).expect("a subcommand");
        lockstep().args([sub, "--help"]).assert().success();
    }
}

#[test]
fn pre_commit_language_rust_can_install_from_the_repo_root() {
    // pre-commit runs `cargo install --bins --path .` in the hook repository.
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("name = \"lockstep\""));
}

// ---- GitLab CI/CD component ----

#[test]
fn gitlab_component_has_a_spec_header_and_a_job() {
    let text = read("templates/lockstep-lint.yml");
    let docs = yaml_documents(&text);
    assert_eq!(
        docs.len(),
        2,
        "a component is a spec document, `---`, then the jobs"
    );

    let inputs = &docs[0]["spec"]["inputs"];
    assert!(inputs.is_mapping(), "spec.inputs missing");
    let default = |name: &str| {
        inputs
            .get(name)
            .unwrap_or_else(|| panic!("no input `{name}`"))
            .get("default")
            .unwrap_or_else(|| panic!("input `{name}` has no default"))
            .clone()
    };
    assert_eq!(default("stage").as_str(), Some("test"));
    assert_eq!(default("migrations").as_str(), Some("migrations/"));
    // The wheel from PyPI, pinned to the component's own version: seconds, no compiler.
    assert!(default("image")
        .as_str()
        .is_some_and(|i| i.starts_with("python:")));
    assert!(default("install")
        .as_str()
        .is_some_and(|i| i.contains(r#""lockstep-cli${LOCKSTEP_VERSION:+==$LOCKSTEP_VERSION}""#)));
    assert_eq!(docs[0]["spec"]["component"][0].as_str(), Some("version"));
    assert_eq!(default("fail_on").as_str(), Some(""));
    assert_eq!(default("args").as_str(), Some(""));
    assert_eq!(default("allow_failure"), Value::Bool(false));

    // Every `$[[ inputs.x ]]` used in the job is declared.
    let mut rest = text.as_str();
    while let Some(i) = rest.find("$[[ inputs.") {
        let name: String = rest[i + 11..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        assert!(
            inputs.get(&name).is_some(),
            "`inputs.{name}` is not declared"
        );
        rest = &rest[i + 11..];
    }

    let job = &docs[1]["lockstep-lint"];
    assert!(job.is_mapping(), "job `lockstep-lint` missing");
    assert_eq!(str_at(job, "stage"), "$[[ inputs.stage ]]");
    assert_eq!(str_at(job, "image"), "$[[ inputs.image ]]");
    assert_eq!(job["variables"]["GIT_DEPTH"].as_str(), Some("0"));

    let rule = &job["rules"][0];
    assert_eq!(
        str_at(rule, "if"),
        "$CI_PIPELINE_SOURCE == \"merge_request_event\""
    );
    let paths: Vec<&str> = rule["changes"]["paths"]
        .as_sequence()
        .expect("rules[0].changes.paths")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        paths.contains(&"$[[ inputs.migrations ]]**/*.sql"),
        "{paths:?}"
    );

    let script: Vec<&str> = job["script"]
        .as_sequence()
        .expect("script")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let lint = script
        .iter()
        .find(|l| l.starts_with("lockstep lint"))
        .expect("a `lockstep lint` line");
    for part in [
        "--changed-since \"$CI_MERGE_REQUEST_DIFF_BASE_SHA\"",
        "--output gitlab=gl-code-quality-report.json",
        "--output junit=lockstep-junit.xml",
        "$[[ inputs.args ]]",
    ] {
        assert!(lint.contains(part), "lint command lacks `{part}`: {lint}");
    }
    assert!(lint.ends_with("$[[ inputs.migrations ]]"), "{lint}");
    assert!(!lint.contains('\n'), "folded into one line: {lint:?}");

    let before: Vec<&str> = job["before_script"]
        .as_sequence()
        .expect("before_script")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(before.contains(&"$[[ inputs.install ]]"), "{before:?}");
    assert_eq!(
        job["variables"]["LOCKSTEP_COMPONENT_VERSION"].as_str(),
        Some("$[[ component.version ]]")
    );
    let set = before
        .iter()
        .position(|s| s.starts_with("export LOCKSTEP_VERSION="))
        .expect("LOCKSTEP_VERSION is set");
    let install = before
        .iter()
        .position(|s| *s == "$[[ inputs.install ]]")
        .expect("the install input runs");
    assert!(set < install, "{before:?}");

    let artifacts = &job["artifacts"];
    assert_eq!(str_at(artifacts, "when"), "always");
    assert_eq!(
        artifacts["reports"]["codequality"].as_str(),
        Some("gl-code-quality-report.json")
    );
    assert_eq!(
        artifacts["reports"]["junit"].as_str(),
        Some("lockstep-junit.xml")
    );
}

// ---- GitHub Actions example ----

#[test]
fn github_actions_example_lints_changed_migrations_and_uploads_sarif() {
    let doc = yaml(&read("examples/github-actions/lockstep.yml"));
    assert!(
        doc["on"]["pull_request"].is_mapping(),
        "runs on pull requests"
    );
    let job = &doc["jobs"]["lint"];
    assert_eq!(
        job["permissions"]["security-events"].as_str(),
        Some("write"),
        "upload-sarif needs security-events: write"
    );
    let steps = job["steps"].as_sequence().expect("steps");
    let uses = |prefix: &str| {
        steps
            .iter()
            .find(|s| {
                s.get("uses")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no step using {prefix}"))
    };

    let checkout = uses("actions/checkout@");
    assert_eq!(checkout["with"]["fetch-depth"].as_u64(), Some(0));

    // The wheel from PyPI, pinned to this version of lockstep.
    assert_eq!(
        doc["env"]["LOCKSTEP_VERSION"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let install = steps
        .iter()
        .find(|s| s["name"].as_str() == Some("Install lockstep"))
        .expect("an install step");
    assert_eq!(
        install["run"].as_str().map(str::trim),
        Some(
            r#"pip install --quiet --disable-pip-version-check "lockstep-cli==$LOCKSTEP_VERSION""#
        )
    );

    let lint = steps
        .iter()
        .filter_map(|s| s.get("run").and_then(Value::as_str))
        .find(|r| r.starts_with("lockstep lint"))
        .expect("a `lockstep lint` step");
    for part in [
        "--changed-since \"origin/$BASE_REF\"",
        "--output github=-",
        "--output sarif=lockstep.sarif",
        "migrations/",
    ] {
        assert!(lint.contains(part), "lint step lacks `{part}`: {lint}");
    }
    let lint_step = steps
        .iter()
        .find(|s| s.get("run").and_then(Value::as_str) == Some(lint))
        .expect("lint step");
    assert_eq!(
        lint_step["env"]["BASE_REF"].as_str(),
        Some("${{ github.base_ref }}")
    );

    let upload = uses("github/codeql-action/upload-sarif@");
    assert_eq!(
        upload["with"]["sarif_file"].as_str(),
        Some("lockstep.sarif")
    );
    assert!(
        str_at(upload, "if").contains("!cancelled()"),
        "uploads after a failing lint too"
    );
}

#[test]
fn github_actions_example_is_not_an_active_workflow() {
    assert!(!repo_file(".github/workflows/lockstep.yml").exists());
}

#[test]
fn the_wheel_is_lockstep_cli_carrying_the_binary() {
    let py = read("pyproject.toml");
    assert!(py.contains("name = \"lockstep-cli\""));
    assert!(py.contains("bindings = \"bin\""));
    assert!(
        py.contains("dynamic = [\"version\"]"),
        "the version comes from Cargo.toml"
    );
}
