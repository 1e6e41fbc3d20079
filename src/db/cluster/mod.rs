//! Throwaway PostgreSQL clusters for tests, `trace` and the demo: `initdb` into a temporary
//! directory, start on a free port with the socket in that directory, and stop and delete
//! everything when dropped (also while a test panics). As root, the server runs as the
//! unprivileged `postgres` user, since `initdb` refuses to run as root.
//!
//! The postmaster is lockstep's own child, in its own process group (a terminal's Ctrl-C or
//! hang-up reaches lockstep, which stops it, not the server directly), and a [`watchdog`]
//! stops it and removes the directory if lockstep disappears without doing so (SIGKILL).
//!
//! [`TempCluster::start`] gives trust authentication everywhere; [`TempCluster::builder`]
//! can require a password on TCP (`scram-sha-256`) and turn on TLS with a given certificate,
//! for tests of [`crate::db::connect`].

mod watchdog;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::db::connect::{ConnectError, ConnectOptions};
use watchdog::Watchdog;

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
    #[error("the server exited while starting ({0}); its log: {1}")]
    Exited(std::process::ExitStatus, String),
    #[error("no free TCP port: {0}")]
    Port(std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// Whether this process runs as root (its effective uid, read from /proc): servers then
/// run as the `postgres` user, since PostgreSQL (and pgbouncer) refuse to run as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// How to start a [`TempCluster`]: `TempCluster::builder().password("pw").ssl(cert, key).start()`.
#[derive(Clone, Default)]
pub struct TempClusterBuilder {
    password: Option<String>,
    ssl: Option<(String, String)>,
    settings: Vec<(String, String)>,
}

impl fmt::Debug for TempClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempClusterBuilder")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ssl", &self.ssl.is_some())
            .finish()
    }
}

impl TempClusterBuilder {
    /// Requires a password for TCP connections (`initdb --auth-host=scram-sha-256`) and makes
    /// it the `postgres` role's password. Unix-socket connections stay `trust`.
    pub fn password(mut self, password: impl Into<String>) -> TempClusterBuilder {
        self.password = Some(password.into());
        self
    }

    /// Turns TLS on (`ssl=on`) with this server certificate (PEM, leaf first, may include the
    /// chain) and its private key (PEM). Clients may still connect without TLS.
    pub fn ssl(
        mut self,
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> TempClusterBuilder {
        self.ssl = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// A server setting (`-c name=value`), e.g. `wal_level = logical`.
    pub fn setting(mut self, name: &str, value: &str) -> TempClusterBuilder {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Initializes and starts the cluster.
    pub fn start(self) -> Result<TempCluster, ClusterError> {
        let bin = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new()
            .prefix("lockstep-pg-")
            .tempdir()
            .map_err(ClusterError::TempDir)?;
        let run_as = if is_root() {
            let user = server_user()?;
            chown("postgres", dir.path())?;
            Some(user)
        } else {
            None
        };
        let watchdog = Watchdog::start(dir.path())?;
        let port = free_port()?;
        let mut c = TempCluster {
            dir,
            bin,
            port,
            run_as,
            server: None,
            watchdog,
            password_auth: self.password.is_some(),
            ssl: self.ssl.is_some(),
        };
        let data = c.data_dir().to_string_lossy().into_owned();
        let pwfile = c.dir.path().join("pwfile");
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let mut args = vec![
            "-D",
            &data,
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ];
        match &self.password {
            Some(password) => {
                c.write_private(&pwfile, password.as_bytes())?;
                args.extend([
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    &pwfile_arg,
                ]);
            }
            None => args.extend(["-A", "trust"]),
        }
        let init = c.run("initdb", &args);
        let _ = std::fs::remove_file(&pwfile);
        init?;
        let port = c.port.to_string();
        let socket_dir = c.socket_dir().to_string_lossy().into_owned();
        let mut server_args = vec![
            "-D".to_string(),
            data,
            "-p".to_string(),
            port,
            "-k".to_string(),
            socket_dir,
        ];
        let mut settings = vec![
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=50",
            // Logical decoding available, as on most managed services: online runs capture
            // changes through a slot by default.
            "wal_level=logical",
        ];
        if let Some((cert, key)) = &self.ssl {
            let data = c.data_dir();
            c.write_private(&data.join("server.crt"), cert.as_bytes())?;
            c.write_private(&data.join("server.key"), key.as_bytes())?;
            // Relative to the data directory.
            settings.extend([
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
            ]);
        }
        for s in settings {
            server_args.push("-c".to_string());
            server_args.push(s.to_string());
        }
        for (name, value) in &self.settings {
            server_args.push("-c".to_string());
            server_args.push(format!("{name}={value}"));
        }
        c.spawn_server(&server_args)?;
        c.wait_ready(Duration::from_secs(60))?;
        Ok(c)
    }
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct TempCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The `postgres` user when server commands run as that user.
    run_as: Option<ServerUser>,
    /// The postmaster, until stopped.
    server: Option<Child>,
    watchdog: Watchdog,
    password_auth: bool,
    ssl: bool,
}

impl TempCluster {
    /// Initializes and starts a cluster with trust authentication for the `postgres` role.
    pub fn start() -> Result<TempCluster, ClusterError> {
        TempCluster::builder().start()
    }

    /// Options: password authentication on TCP, TLS.
    pub fn builder() -> TempClusterBuilder {
        TempClusterBuilder::default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory holding everything (data directory, socket, log); deleted on
    /// drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on for TCP connections (`localhost` reaches it too).
    pub fn tcp_host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Whether TCP connections need the password given to [`TempClusterBuilder::password`].
    pub fn password_auth(&self) -> bool {
        self.password_auth
    }

    /// Whether the server accepts TLS.
    pub fn ssl(&self) -> bool {
        self.ssl
    }

    /// A libpq-style connection string for database `db` as the `postgres` superuser, over the
    /// unix socket (always trust authentication).
    pub fn conn_string(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db} application_name=lockstep",
            self.socket_dir().display(),
            self.port
        )
    }

    /// Like [`TempCluster::conn_string`], over TCP to [`TempCluster::tcp_host`]; add
    /// `password=…` when the cluster uses password authentication.
    pub fn tcp_conn_string(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.tcp_host(),
            self.port
        )
    }

    /// Resolved options for [`TempCluster::conn_string`], ignoring the process environment.
    pub fn connect_options(&self, db: &str) -> Result<ConnectOptions, ConnectError> {
        ConnectOptions::resolve_with(Some(&self.conn_string(db)), &|_| None, None)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(&user.name).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Starts the postmaster as a child of this process, in its own process group, as the
    /// server's user, its output into `server.log`; the watchdog learns its pid.
    fn spawn_server(&mut self, args: &[String]) -> Result<(), ClusterError> {
        let log_path = self.dir.path().join("server.log");
        let log = File::create(&log_path).map_err(|source| ClusterError::Write {
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| ClusterError::Write {
            path: log_path,
            source,
        })?;
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        let child = cmd.spawn().map_err(|source| ClusterError::Spawn {
            command: "postgres".into(),
            source,
        })?;
        self.watchdog.watch(child.id());
        self.server = Some(child);
        Ok(())
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

    /// Writes a file only its owner may read, owned by the server's user.
    fn write_private(&self, path: &Path, contents: &[u8]) -> Result<(), ClusterError> {
        let write_err = |source| ClusterError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        f.write_all(contents).map_err(write_err)?;
        drop(f);
        if let Some(user) = &self.run_as {
            chown(&user.name, path)?;
        }
        Ok(())
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Waits until the postmaster says it is ready in `postmaster.pid` (as `pg_ctl -w` does),
    /// or has exited.
    fn wait_ready(&mut self, limit: Duration) -> Result<(), ClusterError> {
        let start = Instant::now();
        let pid_file = self.data_dir().join("postmaster.pid");
        loop {
            let ready = std::fs::read_to_string(&pid_file)
                .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
            if ready {
                return Ok(());
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.server = None;
                return Err(ClusterError::Exited(status, self.server_log()));
            }
            if start.elapsed() > limit {
                return Err(ClusterError::NotReady(limit, self.server_log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The postmaster's process id, while it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Stops the server (immediately, with SIGQUIT: the cluster is thrown away anyway); kills
    /// it if it is still there after 30 s. Then releases the watchdog.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            signal(child.id(), "QUIT");
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if start.elapsed() > Duration::from_secs(30) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        self.watchdog.release();
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chown(user: &str, path: &Path) -> Result<(), ClusterError> {
    let status = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(path)
        .status()
        .map_err(|source| ClusterError::Spawn {
            command: "chown".into(),
            source,
        })?;
    if !status.success() {
        return Err(ClusterError::Failed {
            command: format!("chown {user}: {}", path.display()),
            stderr: String::new(),
        });
    }
    Ok(())
}

/// Whether a process exists and is not a zombie.
#[cfg(test)]
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // `pid (comm) state …`; comm may contain spaces and parentheses.
            let state = s.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Sends `signal` (a name for `kill -s`) to a process.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The unprivileged user the server runs as when lockstep runs as root.
#[derive(Debug)]
struct ServerUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// The `postgres` user's ids (`id -u`, `id -g`).
fn server_user() -> Result<ServerUser, ClusterError> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok(ServerUser {
            name: "postgres".into(),
            uid,
            gid,
        }),
        _ => Err(ClusterError::NoUser),
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::Port)?;
    let port = l.local_addr().map_err(ClusterError::Port)?.port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const INNER_TEST: &str = "db::cluster::tests::inner_round_trip_as_non_root";
    const INNER_ENV: &str = "LOCKSTEP_HARNESS_INNER";

    /// Start, connect, `SELECT 1`, drop; then the server and its directory must be gone.
    fn round_trip() {
        let cluster = TempCluster::start().expect("the cluster starts");
        let dir = cluster.dir().to_path_buf();
        let port = cluster.port();
        let options = cluster.connect_options("postgres").expect("options");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let client = options.connect().await.expect("connects");
            let row = client.query_one("SELECT 1", &[]).await.expect("query");
            assert_eq!(row.get::<_, i32>(0), 1);
        });
        drop(rt);
        drop(cluster);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections after drop"
        );
        assert!(!dir.exists(), "{} survived the drop", dir.display());
    }

    #[test]
    #[ignore = "run by harness_works_as_root_and_as_non_root as the postgres user"]
    fn inner_round_trip_as_non_root() {
        assert!(
            std::env::var_os(INNER_ENV).is_some(),
            "run by harness_works_as_root_and_as_non_root"
        );
        assert!(!is_root(), "the inner run must not be root");
        round_trip();
    }

    #[test]
    fn harness_works_as_root_and_as_non_root() {
        round_trip();
        if !is_root() {
            // The plain run above was the non-root path.
            return;
        }
        // As root: run the inner test again as `postgres`, from a copy of this test binary
        // that user can read and execute, with a temp dir it can write.
        let stage = tempfile::Builder::new()
            .prefix("lockstep-harness-")
            .tempdir()
            .expect("stage dir");
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod stage");
        let exe = stage.path().join("lockstep-tests");
        std::fs::copy(std::env::current_exe().expect("current exe"), &exe).expect("copy exe");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let tmp = stage.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmp");
        chown("postgres", &tmp).expect("chown tmp");
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args([INNER_TEST, "--exact", "--include-ignored", "--nocapture"])
            .env(INNER_ENV, "1")
            .env("TMPDIR", &tmp)
            .env("HOME", &tmp)
            .current_dir(&tmp)
            .output()
            .expect("runuser runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "inner run as postgres failed:\n{stdout}\n{stderr}"
        );
        // Nothing left behind in the non-root user's temp dir.
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .expect("read tmp")
            .flatten()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// Every postgres process whose parent is `pid`, and `pid`.
    fn server_processes(pid: u32) -> Vec<u32> {
        let mut out = vec![pid];
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|pp| pp.parse::<u32>().ok());
            if ppid == Some(pid) {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn drop_stops_the_server_and_every_backend() {
        let cluster = TempCluster::start().expect("the cluster starts");
        let pid = cluster.postmaster_pid().expect("postmaster");
        let processes = server_processes(pid);
        assert!(processes.len() > 1, "no backends of {pid}: {processes:?}");
        let dir = cluster.dir().to_path_buf();
        drop(cluster);
        let alive: Vec<u32> = processes
            .into_iter()
            .filter(|p| process_alive(*p))
            .collect();
        assert!(alive.is_empty(), "survived the drop: {alive:?}");
        assert!(!dir.exists());
    }

    #[test]
    fn the_watchdog_stops_the_server_when_its_owner_disappears() {
        let mut cluster = TempCluster::start().expect("the cluster starts");
        let mut server = cluster.server.take().expect("postmaster");
        let processes = server_processes(server.id());
        let port = cluster.port();
        let dir = cluster.dir().to_path_buf();
        // As if lockstep were killed: the pipe closes without `done`; this waits for the
        // watchdog to finish.
        cluster.watchdog.abandon();
        let exited = server.try_wait().expect("try_wait").is_some();
        if !exited {
            let _ = server.kill();
            let _ = server.wait();
        }
        assert!(exited, "the postmaster survived the watchdog");
        let alive: Vec<u32> = processes
            .into_iter()
            .filter(|p| process_alive(*p))
            .collect();
        assert!(alive.is_empty(), "survived the watchdog: {alive:?}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!dir.exists(), "{} survived the watchdog", dir.display());
    }

    #[test]
    fn password_and_ssl_builder_debug_hides_the_password() {
        let b = TempCluster::builder().password("Sw0rdf1sh-distinct");
        assert!(!format!("{b:?}").contains("Sw0rdf1sh"));
    }
}
