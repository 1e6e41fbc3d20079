//! A database of a throwaway cluster for integration tests: the test's own queries
//! (synchronous), playbook files, running `lockstep` to the end or in the background, and
//! waiting for states (never for fixed times).

#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use lockstep::db::cluster::TempCluster;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// A single-threaded runtime for a test's own queries.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Connects (on the current runtime) and drives the connection in the background.
pub async fn connect(conn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conn, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

pub const BIN: &str = env!("CARGO_BIN_EXE_lockstep");

pub fn cluster() -> TempCluster {
    TempCluster::start().expect("a throwaway PostgreSQL must start for this test")
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One database of a cluster, with a synchronous face for the test's own queries.
pub struct Db {
    pub url: String,
    pub rt: tokio::runtime::Runtime,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

impl Db {
    pub fn create(cluster: &TempCluster, name: &str) -> Db {
        let rt = rt();
        let admin_url = format!("{} application_name=tests", cluster.conn_string("postgres"));
        let url = cluster.conn_string(name);
        let test_url = format!("{url} application_name=tests");
        let client = rt.block_on(async {
            let admin = connect(&admin_url).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin
                .batch_execute(&format!("ALTER DATABASE {name} SET timezone TO 'UTC'"))
                .await
                .unwrap();
            connect(&test_url).await
        });
        Db {
            url,
            rt,
            client,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A connection string for the test's own extra connections (told apart from lockstep's
    /// by application_name).
    pub fn test_url(&self) -> String {
        format!("{} application_name=tests", self.url)
    }

    pub fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Row> {
        self.rt
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    pub fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.rt
            .block_on(self.client.query_one(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    pub fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--database-url")
            .arg(&self.url)
            .env("NO_COLOR", "1")
            .env_remove("LOCKSTEP_TEST_HOLD_AT")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null());
        c
    }

    /// Runs `lockstep ARGS --database-url …` to the end.
    pub fn lockstep(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `lockstep ARGS` in the background, holding at `hold` (if given).
    pub fn spawn(&self, args: &[&str], hold: Option<&str>) -> Running {
        let log = self.dir.path().join(format!(
            "run-{}.log",
            self.dir.path().read_dir().unwrap().count()
        ));
        let mut c = self.command(args);
        if let Some(h) = hold {
            c.env("LOCKSTEP_TEST_HOLD_AT", h);
        }
        c.stdout(Stdio::from(File::create(&log).unwrap()))
            .stderr(Stdio::from(
                File::create(log.with_extension("err")).unwrap(),
            ));
        Running {
            child: Some(c.spawn().unwrap()),
            log,
        }
    }

    /// The backend pid holding the run lock, if any.
    pub fn runner_pid(&self) -> Option<i32> {
        self.query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1",
            &[],
        )
        .first()
        .map(|r| r.get(0))
    }

    /// Waits until no backend holds the run lock (after killing a runner, its backend needs
    /// a moment to notice).
    pub fn wait_runner_gone(&self) {
        wait_for(
            "the killed runner's backend to exit",
            Duration::from_secs(20),
            || self.runner_pid().is_none(),
        );
    }

    /// Compares two relations row for row (in one snapshot); panics with samples on a
    /// difference. Returns the number of rows.
    pub fn assert_same_rows(&self, a: &str, b: &str) -> i64 {
        let rows = self.rt.block_on(async {
            let tx_sql = format!(
                "SELECT (SELECT count(*) FROM {a}), (SELECT count(*) FROM {b}),
                        (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x),
                        (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) x),
                        (SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) y LIMIT 5) x),
                        (SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y LIMIT 5) x)"
            );
            self.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .await
                .unwrap();
            let r = self.client.query_one(&tx_sql, &[]).await;
            self.client.batch_execute("COMMIT").await.unwrap();
            r.unwrap_or_else(|e| panic!("{tx_sql}: {e:?}"))
        });
        let (na, nb, only_a, only_b): (i64, i64, i64, i64) =
            (rows.get(0), rows.get(1), rows.get(2), rows.get(3));
        assert!(
            only_a == 0 && only_b == 0 && na == nb,
            "{a} ({na} rows) and {b} ({nb} rows) differ: {only_a} rows only in {a}, e.g. {:?}; {only_b} rows only in {b}, e.g. {:?}",
            rows.get::<_, Option<String>>(4),
            rows.get::<_, Option<String>>(5)
        );
        assert!(na > 0, "{a} is empty");
        na
    }

    /// Names of the relations in `schema`, sorted (to prove nothing is left behind).
    pub fn relations(&self, schema: &str) -> Vec<String> {
        self.query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = to_regnamespace($1) ORDER BY 1",
            &[&schema],
        )
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// `pg_get_indexdef` of every index of `table`, sorted.
    pub fn index_defs(&self, table: &str) -> Vec<String> {
        self.query(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass($1) ORDER BY 1",
            &[&table],
        )
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    pub fn lockstep_functions(&self) -> i64 {
        self.one("SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace('lockstep')")
    }
}

/// A `lockstep` process running in the background; killed when dropped.
pub struct Running {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Running {
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// SIGKILL (`Child::kill` on unix) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            let status = c.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "{status}"
            );
        }
    }

    pub fn output(&self) -> String {
        format!(
            "stdout: {}\nstderr: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}
