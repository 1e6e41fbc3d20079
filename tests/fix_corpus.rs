//! `lockstep lint --fix` on a copy of every project of the corpus of real migration
//! histories (`../shared/corpus`): no file may end up with a statement its migration tool
//! cannot run (`concurrently-in-transaction`) that it did not have before, or with a
//! statement lockstep can no longer read.
//!
//! Slow (it lints the whole corpus three times), so opt-in:
//!
//! ```sh
//! cargo test --release --test fix_corpus -- --ignored --nocapture
//! ```
//! It skips with a message when the corpus is absent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

#[path = "common/corpus.rs"]
mod common_corpus;
use common_corpus::corpus;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let target = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

fn lockstep(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("lockstep")
        .expect("binary")
        .current_dir(dir)
        .args(["lint", "--no-config"])
        .args(args)
        .output()
        .expect("run")
}

/// Per file: (concurrently-in-transaction findings, unparsed-statement notes).
fn blockers(dir: &Path, project: &str) -> BTreeMap<String, (usize, usize)> {
    let out = lockstep(dir, &["--format", "json", project]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let mut m = BTreeMap::new();
    for f in v["files"].as_array().expect("files") {
        let count = |rule: &str| {
            f["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter(|x| x["rule"] == rule)
                .count()
        };
        m.insert(
            f["path"].as_str().expect("path").to_string(),
            (
                count("concurrently-in-transaction"),
                count("unparsed-statement"),
            ),
        );
    }
    m
}

#[test]
#[ignore = "slow: lints the whole corpus three times; run with --ignored"]
fn fixing_every_corpus_file_never_breaks_its_migration_tool() {
    let Some(corpus) = corpus() else { return };
    let work = tempfile::tempdir().expect("tmp");
    let mut projects: Vec<String> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    projects.sort();
    assert!(projects.len() >= 20, "{projects:?}");
    let mut problems = Vec::new();
    println!("project                          files  fixed  blocked before  blocked after");
    for p in &projects {
        copy_dir(&corpus.join(p), &work.path().join(p));
        let before = blockers(work.path(), p);
        let fixed = lockstep(work.path(), &["--fix", p]);
        let stderr = String::from_utf8_lossy(&fixed.stderr);
        assert!(fixed.status.code().is_some_and(|c| c <= 2), "{p}: {stderr}");
        let after = blockers(work.path(), p);
        let changed = stderr
            .lines()
            .find(|l| l.starts_with("fixed "))
            .unwrap_or("fixed 0 findings")
            .to_string();
        let sum = |m: &BTreeMap<String, (usize, usize)>| m.values().map(|v| v.0).sum::<usize>();
        println!(
            "{p:32} {:5}  {changed:28}  {:3} -> {:3}",
            after.len(),
            sum(&before),
            sum(&after)
        );
        for (file, (cit, unparsed)) in &after {
            let (cit0, unparsed0) = before.get(file).copied().unwrap_or_default();
            if *cit > cit0 {
                problems.push(format!(
                    "{file}: concurrently-in-transaction {cit0} -> {cit}"
                ));
            }
            if *unparsed > unparsed0 {
                problems.push(format!(
                    "{file}: unparsed-statement {unparsed0} -> {unparsed}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} files broken by --fix:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
