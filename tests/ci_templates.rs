//! The CI integrations install the wheel (`lockstep-cli` on PyPI) pinned to lockstep's own
//! version: the GitLab component through its `component.version`, the GitHub Actions example
//! through `LOCKSTEP_VERSION`, which must be this crate's version.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;

use serde::Deserialize;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn documents(rel: &str) -> Vec<serde_norway::Value> {
    let text = read(rel);
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde_norway::Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

#[test]
fn the_github_example_pins_this_version_of_the_wheel() {
    let doc = &documents("examples/github-actions/lockstep.yml")[0];
    assert_eq!(
        doc["env"]["LOCKSTEP_VERSION"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let steps = doc["jobs"]["lint"]["steps"].as_sequence().expect("steps");
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
}

#[test]
fn the_gitlab_component_pins_its_own_version_of_the_wheel() {
    let docs = documents("templates/lockstep-lint.yml");
    let spec = &docs[0]["spec"];
    assert_eq!(spec["component"][0].as_str(), Some("version"));
    let install = spec["inputs"]["install"]["default"]
        .as_str()
        .expect("install");
    assert!(install.contains(r#""lockstep-cli${LOCKSTEP_VERSION:+==$LOCKSTEP_VERSION}""#));
    let job = &docs[1]["lockstep-lint"];
    assert_eq!(
        job["variables"]["LOCKSTEP_COMPONENT_VERSION"].as_str(),
        Some("$[[ component.version ]]")
    );
    let before: Vec<&str> = job["before_script"]
        .as_sequence()
        .expect("before_script")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    let set = before
        .iter()
        .position(|s| s.starts_with("export LOCKSTEP_VERSION="))
        .expect("LOCKSTEP_VERSION is set");
    let run = before
        .iter()
        .position(|s| *s == "$[[ inputs.install ]]")
        .expect("the install input runs");
    assert!(set < run);
}

#[test]
fn the_wheel_is_lockstep_cli_with_the_binary() {
    let py = read("pyproject.toml");
    assert!(py.contains("name = \"lockstep-cli\""));
    assert!(py.contains("bindings = \"bin\""));
    assert!(
        py.contains("dynamic = [\"version\"]"),
        "the version comes from Cargo.toml"
    );
}
