//! `lockstep demo`: the newcomer's first command works end to end on a small table.

#[test]
fn demo_converts_a_busy_table_and_checks_it_row_for_row() {
    let out = assert_cmd::Command::cargo_bin("lockstep")
        .unwrap()
        .args([
            "demo",
            "--rows",
            "30000",
            "--writers",
            "1",
            "--measure",
            "1",
            "--bench",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("telemetry and telemetry_old are identical, row for row"),
        "{stdout}"
    );
    assert!(
        stdout.contains("partitioned by month on recorded_at"),
        "{stdout}"
    );
    assert!(stdout.contains("workload errors: 0"), "{stdout}");
    assert!(stdout.contains("lockstep conversion / naive:"), "{stdout}");
    // Progress went to stderr, one step per line when not on a terminal.
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
}
