//! Processes, read from /proc: which PostgreSQL processes belong to a run (found by the
//! temporary directory its cluster lives in), whether they are alive, and waiting for a state.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

fn read(pid: u32, what: &str) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/{what}"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// Every process id.
pub fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `(comm, state, ppid)` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(String, String, u32)> {
    let s = read(pid, "stat")?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// The command line (arguments joined by spaces; for a PostgreSQL backend, its title:
/// `postgres: postgres postgres [local] SELECT`).
pub fn cmdline(pid: u32) -> String {
    read(pid, "cmdline").unwrap_or_default()
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state, _)| state != "Z" && state != "X")
}

/// The `postgres` processes of clusters under `dir`: each postmaster (its `-D` names a data
/// directory below `dir`) and the processes it started.
pub fn postgres_under(dir: &Path) -> Vec<u32> {
    let dir = dir.to_string_lossy().into_owned();
    let all: Vec<(u32, String, u32)> = pids()
        .into_iter()
        .filter_map(|p| {
            let (comm, state, ppid) = stat(p)?;
            (comm == "postgres" && state != "Z").then_some((p, comm, ppid))
        })
        .collect();
    let masters: Vec<u32> = all
        .iter()
        .filter(|(p, _, _)| cmdline(*p).contains(&dir))
        .map(|(p, _, _)| *p)
        .collect();
    let mut out = masters.clone();
    out.extend(
        all.iter()
            .filter(|(_, _, ppid)| masters.contains(ppid))
            .map(|(p, _, _)| *p),
    );
    out
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
