//! The watchdog that stops a throwaway server when its owner disappears without stopping it.
//!
//! A server started by lockstep runs in its own process group, so the signals a terminal sends
//! to lockstep's group (Ctrl-C, closing the window) do not reach it; lockstep stops it on every
//! exit it sees (normal end, error, panic, SIGINT, SIGTERM, SIGHUP). For the exits it cannot
//! see (SIGKILL, an abort, a crash), a small `sh` process, started in its own process group
//! with those signals ignored, holds the read end of a pipe whose only write end is
//! lockstep's. lockstep writes the postmaster's pid into it, and `done` once it has stopped
//! the server itself. When the pipe closes without `done`, lockstep is gone: the watchdog
//! sends the postmaster SIGQUIT (immediate shutdown, which ends every backend), SIGKILL if it
//! is still there after 30 s, and removes the cluster's directory. It does not poll while
//! lockstep lives: it sleeps in `read`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::ClusterError;

/// `sh -c SCRIPT sh DIR`; see the module documentation.
const SCRIPT: &str = r#"
trap '' HUP INT TERM QUIT PIPE
dir=$1
pids=
while IFS= read -r line; do
  case $line in
    done) exit 0 ;;
    pid\ *) pids="$pids ${line#pid }" ;;
  esac
done
if [ -r "$dir/data/postmaster.pid" ]; then
  read -r p < "$dir/data/postmaster.pid" && pids="$pids $p"
fi
is_postgres() {
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = postgres ] || return 1
  read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 1
  [ "$state" != Z ]
}
for p in $pids; do is_postgres "$p" && kill -QUIT "$p" 2>/dev/null; done
i=0
while [ $i -lt 300 ]; do
  alive=
  for p in $pids; do is_postgres "$p" && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
  i=$((i + 1))
done
for p in $pids; do is_postgres "$p" && kill -KILL "$p" 2>/dev/null; done
rm -rf "$dir"
"#;

/// The running watchdog of one cluster.
#[derive(Debug)]
pub(super) struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog of the cluster in `dir` (removed, with the server, if lockstep
    /// disappears).
    pub(super) fn start(dir: &Path) -> Result<Watchdog, ClusterError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("sh")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| ClusterError::Spawn {
                command: "sh (the cluster's watchdog)".into(),
                source,
            })?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// Tells the watchdog the postmaster's pid.
    pub(super) fn watch(&mut self, pid: u32) {
        self.send(&format!("pid {pid}"));
    }

    /// lockstep has stopped the server itself: the watchdog exits without doing anything.
    pub(super) fn release(&mut self) {
        self.send("done");
        self.pipe = None;
        let _ = self.child.wait();
    }

    /// Closes the pipe without `done`, as if lockstep had been killed, and waits until the
    /// watchdog has stopped the server and removed the directory.
    #[cfg(test)]
    pub(super) fn abandon(&mut self) {
        self.pipe = None;
        let _ = self.child.wait();
    }

    fn send(&mut self, line: &str) {
        if let Some(pipe) = &mut self.pipe {
            let _ = writeln!(pipe, "{line}").and_then(|()| pipe.flush());
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if self.pipe.is_some() {
            self.release();
        }
    }
}
