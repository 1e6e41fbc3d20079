//! `lockstep demo`: the newcomer's first command works end to end on a small table.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

/// `lockstep demo ARGS`, without colours.
fn demo(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("lockstep")
        .unwrap()
        .arg("demo")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn demo_converts_a_busy_table_and_checks_it_row_for_row() {
    let out = demo(&[
        "--rows",
        "30000",
        "--writers",
        "1",
        "--measure",
        "1",
        "--bench",
    ]);
    let raw_stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{raw_stdout}\n{stderr}");
    // Everything fits 100 columns; the report is wrapped, so read it with its lines joined.
    for line in raw_stdout.lines().chain(stderr.lines()) {
        assert!(line.chars().count() <= 100, "over 100 columns: {line}");
    }
    let stdout = raw_stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        stdout.contains("telemetry and telemetry_old are identical, row for row"),
        "{stdout}"
    );
    assert!(
        stdout.contains("partitioned by month on recorded_at"),
        "{stdout}"
    );
    assert!(stdout.contains("workload errors: 0"), "{stdout}");
    // The cluster is gone at the end: no command to run on it is suggested.
    assert!(!stdout.contains("lockstep finalize"), "{stdout}");
    // The bench converts once with no workload (then swaps back) and once under it.
    assert!(
        stdout.contains("lockstep, no workload:") && stdout.contains("conversion / naive:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lockstep, 1 writer, duty cycle 0.6:")
            && stdout.contains("workload throughput during / before:"),
        "{stdout}"
    );
    // Progress went to stderr, one line per step when not on a terminal, then counts: the
    // copy's rows with a short rate, and the index builds counted as one step.
    for step in [
        "shadow:",
        "capture:",
        "backfill:",
        "indexes:",
        "verify:",
        "swap:",
    ] {
        assert!(stderr.contains(step), "{step} missing in:\n{stderr}");
    }
    assert!(
        stderr.lines().any(|l| l.starts_with("backfill: ")
            && l.contains(" rows (")
            && l.contains(" rows/s")
            && !l.contains(".0000")),
        "{stderr}"
    );
    let index_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("indexes: "))
        .collect();
    assert!(
        index_lines.iter().any(|l| l.ends_with(" indexes (100%)")),
        "{stderr}"
    );
    assert!(
        index_lines.len() <= 6,
        "one line per index build: {index_lines:?}"
    );
}

/// Without a workload nothing but lockstep uses the database: the demo's own connection
/// that reads the run's status is the run's, and the conversion never rests for the duty
/// cycle (which it says when it does).
#[test]
fn demo_without_a_workload_never_rests() {
    let out = demo(&["--rows", "30000", "--writers", "0", "--measure", "0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("backfill:"), "{stderr}");
    assert!(
        !stderr.contains("the application is busy") && !stdout.contains("the application is busy"),
        "the conversion rested with no workload:\n{stdout}\n{stderr}"
    );
}
