//! `lockstep demo`: the newcomer's first command works end to end on a small table.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

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

#[test]
fn a_terminated_demo_removes_its_throwaway_cluster() {
    let tmp = tempfile::Builder::new()
        .prefix("lockstep-demo-test-")
        .tempdir()
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["demo", "--rows", "2000000", "--writers", "1"])
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the cluster exists and the table is being loaded.
    let cluster_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("lockstep-pg-"))
            })
            .collect()
    };
    let start = std::time::Instant::now();
    while cluster_dirs().is_empty() || start.elapsed() < std::time::Duration::from_secs(3) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the demo ended before it was stopped"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no throwaway cluster appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("terminated: stopped; the throwaway PostgreSQL is removed"),
        "{stderr}"
    );
    assert!(
        cluster_dirs().is_empty(),
        "left behind: {:?}",
        cluster_dirs()
    );
}
