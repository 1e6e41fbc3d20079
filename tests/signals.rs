//! Nothing is left running: `lockstep trace` and `lockstep demo` stop their throwaway
//! PostgreSQL on SIGINT, SIGTERM and SIGHUP (and exit with 128 + the signal), and when they
//! are killed outright (SIGKILL) the cluster's watchdog stops it. Each run gets its own TMPDIR,
//! so the `postgres` processes of that run are those whose data directory is below it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/procs.rs"]
mod procs;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// States are waited for this long at most (a busy machine starts a cluster slowly).
const LIMIT: Duration = Duration::from_secs(180);

fn lockstep(tmp: &Path, work: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(args)
        .current_dir(work)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lockstep")
}

fn cluster_dirs(tmp: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("lockstep-pg-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a backend of the run shows `tag` in its title (a statement of that kind runs).
fn wait_for_statement(child: &mut Child, tmp: &Path, tag: &str) {
    procs::wait_for(LIMIT, &format!("a backend running {tag}"), || {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "lockstep ended before it was stopped"
        );
        procs::postgres_under(tmp)
            .into_iter()
            .any(|p| procs::cmdline(p).contains(tag))
    });
}

/// Sends `signal`, then checks the exit and that no `postgres` process of the run and no
/// cluster directory is left (at once for a handled signal; after the watchdog for SIGKILL).
fn stop_and_check(mut child: Child, tmp: &Path, signal: &str, command: &str) {
    let before = procs::postgres_under(tmp);
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let left = || -> Vec<u32> {
        let mut left: Vec<u32> = before
            .iter()
            .copied()
            .filter(|p| procs::alive(*p))
            .collect();
        left.extend(procs::postgres_under(tmp));
        left
    };
    if signal == "KILL" {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{stderr}");
        procs::wait_for(LIMIT, "the watchdog to stop the server", || {
            left().is_empty() && cluster_dirs(tmp).is_empty()
        });
        return;
    }
    let (code, name) = match signal {
        "INT" => (130, "interrupted (SIGINT)"),
        "TERM" => (143, "terminated (SIGTERM)"),
        "HUP" => (129, "hung up (SIGHUP)"),
        other => panic!("no such case: {other}"),
    };
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{command} {name}: stopped; the throwaway PostgreSQL is removed"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // lockstep stopped the server before it exited.
    assert!(left().is_empty(), "left running: {:?}", left());
    assert!(
        cluster_dirs(tmp).is_empty(),
        "left behind: {:?}",
        cluster_dirs(tmp)
    );
}

fn trace_stopped_by(signal: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tempfile::tempdir().expect("work");
    std::fs::write(work.path().join("sleep.sql"), "SELECT pg_sleep(600);\n").expect("write");
    let mut child = lockstep(
        tmp.path(),
        work.path(),
        &["trace", "--no-config", "--throwaway", "sleep.sql"],
    );
    wait_for_statement(&mut child, tmp.path(), "SELECT");
    stop_and_check(child, tmp.path(), signal, "trace");
}

#[test]
fn trace_stops_its_cluster_on_sigint() {
    trace_stopped_by("INT");
}

#[test]
fn trace_stops_its_cluster_on_sigterm() {
    trace_stopped_by("TERM");
}

#[test]
fn trace_stops_its_cluster_on_sighup() {
    trace_stopped_by("HUP");
}

#[test]
fn a_killed_trace_leaves_nothing_running() {
    trace_stopped_by("KILL");
}

/// The demo, stopped while it loads its table.
fn demo_stopped_by(signal: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tempfile::tempdir().expect("work");
    let mut child = lockstep(
        tmp.path(),
        work.path(),
        &["demo", "--rows", "50000000", "--writers", "1"],
    );
    wait_for_statement(&mut child, tmp.path(), "INSERT");
    stop_and_check(child, tmp.path(), signal, "demo");
}

#[test]
fn demo_stops_its_cluster_on_sigint() {
    demo_stopped_by("INT");
}

#[test]
fn demo_stops_its_cluster_on_sigterm() {
    demo_stopped_by("TERM");
}

#[test]
fn demo_stops_its_cluster_on_sighup() {
    demo_stopped_by("HUP");
}

#[test]
fn a_killed_demo_leaves_nothing_running() {
    demo_stopped_by("KILL");
}

/// SIGTERM while the cluster is still being created: the demo finishes starting it (the
/// signal is remembered), then removes it.
#[test]
fn demo_terminated_while_starting_removes_its_cluster() {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tempfile::tempdir().expect("work");
    let mut child = lockstep(tmp.path(), work.path(), &["demo", "--rows", "50000000"]);
    procs::wait_for(LIMIT, "the cluster's directory", || {
        assert!(child.try_wait().expect("try_wait").is_none());
        !cluster_dirs(tmp.path()).is_empty()
    });
    assert!(
        procs::postgres_under(tmp.path()).is_empty(),
        "the server was already up: this test must signal during start-up"
    );
    stop_and_check(child, tmp.path(), "TERM", "demo");
}
