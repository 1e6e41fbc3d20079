//! `docs/rules/`: one page per rule, exactly what `lockstep explain <rule>` prints, and a
//! `README.md` index. The pages are generated, never edited by hand; after changing a rule's
//! documentation, regenerate them with
//!
//! ```sh
//! LOCKSTEP_BLESS=1 cargo test --test rule_docs
//! ```
//!
//! Without `LOCKSTEP_BLESS`, this test fails when a page is missing, stale or left over.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lockstep::lint::rules::RULES;

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules")
}

fn explain(rule: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["explain", rule])
        .output()
        .expect("run lockstep explain");
    assert!(out.status.success(), "lockstep explain {rule} failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn index() -> String {
    let mut s = String::from(
        "# lockstep rules\n\n\
         Generated from the rules' own documentation (`lockstep explain <rule>` prints the same\n\
         text); regenerate with `LOCKSTEP_BLESS=1 cargo test --test rule_docs`.\n\n\
         | rule | default severity | what it flags |\n|---|---|---|\n",
    );
    for r in RULES {
        let sev = r.default_severity.map_or("off", |s| s.as_str());
        s.push_str(&format!(
            "| [`{}`]({}.md) | {sev} | {} |\n",
            r.name,
            r.name,
            r.summary.replace('|', "\\|")
        ));
    }
    s
}

#[test]
fn rule_pages_are_current() {
    let mut want: BTreeMap<String, String> = RULES
        .iter()
        .map(|r| (format!("{}.md", r.name), explain(r.name)))
        .collect();
    want.insert("README.md".into(), index());
    let dir = docs_dir();
    if std::env::var_os("LOCKSTEP_BLESS").is_some() {
        std::fs::create_dir_all(&dir).expect("create docs/rules");
        for entry in std::fs::read_dir(&dir).expect("read docs/rules").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !want.contains_key(&name) {
                std::fs::remove_file(entry.path()).expect("remove a left-over page");
            }
        }
        for (name, text) in &want {
            std::fs::write(dir.join(name), text).expect("write a page");
        }
        return;
    }
    let mut problems = Vec::new();
    for (name, text) in &want {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(have) if have == *text => {}
            Ok(_) => problems.push(format!("docs/rules/{name} is stale")),
            Err(_) => problems.push(format!("docs/rules/{name} is missing")),
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !want.contains_key(&name) {
            problems.push(format!("docs/rules/{name} is not a rule's page"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nregenerate with: LOCKSTEP_BLESS=1 cargo test --test rule_docs",
        problems.join("\n")
    );
}
