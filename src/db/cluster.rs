//! Throwaway PostgreSQL clusters for tests, `trace` and the demo: `initdb` into a temporary
//! directory, start on a free port with the socket in that directory, and stop and delete
//! everything when dropped (also while a test panics). As root, the server runs as the
//! unprivileged `postgres` user, since `initdb` refuses to run as root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no PostgreSQL server binaries found (set LOCKSTEP_PG_BIN, put pg_config on PATH, or install postgresql-15)")]
    NoBinaries,
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("running as root, but there is no unprivileged `postgres` user to run the server as")]
    NoUser,
    #[error("the server did not accept connections within {0:?}; its log: {1}")]
    NotReady(Duration, String),
    #[error("no free TCP port: {0}")]
    Port(std::io::Error),
}

/// Finds the directory with `initdb`, `pg_ctl` and `postgres`: `LOCKSTEP_PG_BIN`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("LOCKSTEP_PG_BIN").map(PathBuf::from) {
        return has_server(&d).then_some(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn is_root() -> bool {
    // The effective uid of this process, read from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct TempCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `Some("postgres")` when server commands run as that user.
    run_as: Option<String>,
    stopped: bool,
}

impl TempCluster {
    /// Initializes and starts a cluster with trust authentication for the `postgres` role.
    pub fn start() -> Result<TempCluster, ClusterError> {
        let bin = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new()
            .prefix("lockstep-pg-")
            .tempdir()
            .map_err(ClusterError::TempDir)?;
        let run_as = if is_root() {
            let ok = Command::new("id")
                .arg("-u")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(ClusterError::NoUser);
            }
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .map_err(|source| ClusterError::Spawn {
                    command: "chown".into(),
                    source,
                })?;
            if !status.success() {
                return Err(ClusterError::Failed {
                    command: "chown postgres".into(),
                    stderr: String::new(),
                });
            }
            Some("postgres".to_string())
        } else {
            None
        };
        let port = free_port()?;
        let mut c = TempCluster {
            dir,
            bin,
            port,
            run_as,
            stopped: true,
        };
        let data = c.data_dir();
        c.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
        )?;
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50",
            c.port,
            c.socket_dir().display()
        );
        let log = c.dir.path().join("server.log");
        c.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| match e {
            ClusterError::Failed { .. } => ClusterError::NotReady(
                Duration::from_secs(60),
                std::fs::read_to_string(&log).unwrap_or_default(),
            ),
            other => other,
        })?;
        c.stopped = false;
        c.wait_ready(Duration::from_secs(30))?;
        Ok(c)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string for database `db` as the `postgres` superuser.
    pub fn conn_string(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db} application_name=lockstep",
            self.socket_dir().display(),
            self.port
        )
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ClusterError::Spawn {
                command: tool.into(),
                source,
            })?;
        if !out.status.success() {
            return Err(ClusterError::Failed {
                command: tool.into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), ClusterError> {
        let start = Instant::now();
        let port = self.port.to_string();
        let sock = self.socket_dir().to_string_lossy().into_owned();
        loop {
            let ok = self
                .command("pg_isready")
                .args(["-h", &sock, "-p", &port, "-U", "postgres", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if start.elapsed() > limit {
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(ClusterError::NotReady(limit, log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (immediately: the cluster is thrown away anyway).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::Port)?;
    let port = l.local_addr().map_err(ClusterError::Port)?.port();
    Ok(port)
}
