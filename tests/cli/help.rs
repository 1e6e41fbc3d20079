//! Help and completions: every subcommand's `--help` shows examples, and the completion
//! scripts offer rule names where a rule is expected.

use super::*;

const SUBCOMMANDS: [&str; 14] = [
    "lint",
    "rules",
    "explain",
    "trace",
    "plan",
    "run",
    "status",
    "pause",
    "resume",
    "rollback",
    "finalize",
    "demo",
    "completions",
    "man",
];

#[test]
fn every_subcommand_help_has_examples() {
    let d = tmp();
    for sub in SUBCOMMANDS {
        let r = run(lockstep(d.path()).args([sub, "--help"]));
        assert_eq!(r.code, Some(0), "{sub}: {}", r.all());
        let examples = r
            .stdout
            .split_once("Examples")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("`lockstep {sub} --help` has no examples:\n{}", r.stdout));
        assert!(
            examples.contains(&format!("lockstep {sub}")),
            "`lockstep {sub} --help`: no example runs `lockstep {sub}`:\n{examples}"
        );
    }
}

/// What bash completes after `words` (the last one being completed).
fn bash_completes(d: &Path, words: &[&str]) -> Vec<String> {
    let script = run(lockstep(d).args(["completions", "bash"])).stdout;
    write(d, "lockstep.bash", &script);
    let cur = words.last().copied().unwrap_or("");
    let prev = words.len().checked_sub(2).map_or("", |i| words[i]);
    let program = format!(
        "source lockstep.bash; COMP_WORDS=({}); COMP_CWORD={}; _lockstep lockstep '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(program)
        .current_dir(d)
        .output()
        .expect("bash");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_rule_names() {
    let d = tmp();
    assert_eq!(
        bash_completes(d.path(), &["lockstep", "explain", "set-not"]),
        ["set-not-null-scan"]
    );
    let select = bash_completes(d.path(), &["lockstep", "lint", "--select", "prefer-"]);
    assert!(
        select.contains(&"prefer-bigint-id".to_string()) && select.len() == 4,
        "{select:?}"
    );
    let ignore = bash_completes(d.path(), &["lockstep", "lint", "--ignore", "missing-"]);
    assert_eq!(ignore, ["missing-lock-timeout"]);
    // Parsing keeps lockstep's own message for a misspelled rule.
    let r = run(lockstep(d.path()).args(["explain", "set-not-null"]));
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("did you mean `set-not-null-scan`"),
        "{}",
        r.stderr
    );
}
