//! A throwaway pgbouncer in front of a throwaway cluster, for the pooler tests. The
//! Debian package `pgbouncer` provides it (`.ci/run` installs it); `LOCKSTEP_PGBOUNCER`
//! names another binary. pgbouncer refuses to run as root: as root it runs as `postgres`,
//! like the cluster.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lockstep::db::cluster::{is_root, TempCluster};

use super::db::{connect, rt, wait_for};

/// A running pgbouncer; stopped when dropped.
pub struct Bouncer {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("LOCKSTEP_PGBOUNCER") {
        return PathBuf::from(p);
    }
    for p in [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "pgbouncer is needed for the pooler tests: `apt-get install pgbouncer` (.ci/run does), or set LOCKSTEP_PGBOUNCER to its path"
    );
}

impl Bouncer {
    /// Starts pgbouncer with `pool_mode` (`session`, `transaction` or `statement`) in front
    /// of `cluster`, every database passed through, trust authentication.
    pub fn start(cluster: &TempCluster, pool_mode: &str) -> Bouncer {
        let dir = tempfile::Builder::new()
            .prefix("lockstep-pgbouncer-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path();
        std::fs::write(
            d.join("users.txt"),
            "\"postgres\" \"\"\n\"app_writer\" \"\"\n",
        )
        .unwrap();
        let ini = format!(
            "[databases]\n* = host={socket} port={pgport}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {d}/users.txt\npool_mode = {pool_mode}\ndefault_pool_size = 4\nmax_client_conn = 100\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits,options\n",
            socket = cluster.socket_dir().display(),
            pgport = cluster.port(),
            d = d.display(),
        );
        std::fs::write(d.join("pgbouncer.ini"), ini).unwrap();
        let mut c = if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(d)
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the pgbouncer directory");
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary());
            c
        } else {
            Command::new(binary())
        };
        let child = c
            .arg(d.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Bouncer { child, dir, port };
        let url = b.url("postgres");
        let rt = rt();
        wait_for(
            "pgbouncer to accept connections",
            Duration::from_secs(30),
            || {
                rt.block_on(async {
                    tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .is_ok()
                })
            },
        );
        // A connection that works, not just a listening socket.
        rt.block_on(async { connect(&url).await.simple_query("SELECT 1").await.unwrap() });
        b
    }

    /// A connection string for `db` through the pooler.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }

    /// Like [`Bouncer::url`], as another user.
    pub fn url_as(&self, db: &str, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={db}", self.port)
    }

    /// pgbouncer's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // runuser passes the signal on; pgbouncer's own pid is in its pid file.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
