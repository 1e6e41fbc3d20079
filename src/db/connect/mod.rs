//! Connecting to PostgreSQL the way libpq (psql, pg_dump, …) does.
//!
//! # Where the parameters come from
//!
//! [`ConnectOptions::resolve`] takes the URL or connection string the user gave (from
//! `--database-url` or `DATABASE_URL`; the caller picks), in either libpq form:
//!
//! - a URL: `postgres://user:password@host:port/dbname?sslmode=verify-full&…` (also
//!   `postgresql://`; percent-encoding; `[::1]` for IPv6; `host=/socket/dir` in the query;
//!   `ssl=true` means `sslmode=require`);
//! - keyword/value: `host=db port=5432 user=app password='a b\'c' dbname=app` (values in
//!   single quotes, backslash escapes).
//!
//! Each parameter then takes the first value found in this order, which is libpq's
//! (`conninfo_add_defaults` in `fe-connect.c`):
//!
//! 1. the URL or connection string;
//! 2. the service file section named by `service=` or `PGSERVICE`: `PGSERVICEFILE` (else
//!    `~/.pg_service.conf`), and only if the section is not there, `PGSYSCONFDIR/pg_service.conf`
//!    (`PGSYSCONFDIR` defaults to `/etc/postgresql-common`, as in Debian's libpq);
//! 3. the environment: `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//!    `PGAPPNAME`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGPASSFILE`,
//!    `PGOPTIONS`, `PGTARGETSESSIONATTRS`, `PGCHANNELBINDING`, `PGSSLNEGOTIATION`;
//! 4. the defaults: host = the unix socket directory `/var/run/postgresql` if it exists, else
//!    `/tmp`; port 5432; user = the name of the effective uid (`USER`/`LOGNAME` if it has none);
//!    dbname = user; `application_name` = `fallback_application_name`, else `lockstep`;
//!    `sslmode=prefer` (`verify-full` with `sslrootcert=system`); `connect_timeout` 10 s.
//!
//! An empty value counts as given (it stops the search) and then means the default, as in
//! libpq.
//!
//! When no password results, the password file is read (`passfile`/`PGPASSFILE`, else
//! `~/.pgpass`): `hostname:port:database:username:password` lines, `*` matching anything, `\:`
//! and `\\` escapes, `#` comments, the first matching line wins. `localhost` matches TCP
//! connections to `localhost` and unix-socket connections through the default socket
//! directory; other socket directories match by their path. A file with any group or world
//! permission is ignored with a warning ([`ConnectOptions::warnings`]), as libpq does.
//!
//! # TLS
//!
//! `sslmode` is honoured for TCP connections (and, as in libpq, ignored for unix sockets):
//! `disable`; `allow` is treated like `prefer` (with a warning); `prefer` tries TLS without
//! verifying the certificate and falls back to plain text if the server has no TLS; `require`
//! needs TLS and verifies nothing, unless the root certificate file exists (`sslrootcert`,
//! default `~/.postgresql/root.crt`), in which case it verifies the chain like `verify-ca`;
//! `verify-ca` checks the chain against the root certificates; `verify-full` also checks that
//! the certificate names the host. `sslrootcert=system` uses the system's trusted roots and
//! requires `verify-full`. TLS is rustls (pure Rust; the `ring` provider), through
//! `tokio-postgres-rustls`; the system's roots are read by `rustls-native-certs`.
//!
//! The password never appears in [`ConnectOptions::describe`], its `Debug` output or any
//! [`ConnectError`].

//!
//! # Layout
//!
//! `conninfo` reads URLs and keyword/value strings, `service` the service files, `pgpass` the
//! password file, `resolve` applies the environment and the defaults, `tls` builds the rustls
//! connector for each `sslmode`, and `error` turns a failed attempt into one clear line.

mod conninfo;
mod error;
mod pgpass;
mod protocol;
pub(crate) mod replication;
mod resolve;
mod service;
mod tls;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::{
    ChannelBinding, SslMode as PgSslMode, SslNegotiation, TargetSessionAttrs,
};
use tokio_postgres::{Client, NoTls};

pub use error::ConnectError;
pub use resolve::default_socket_dir;

use pgpass::{lookup_pgpass, PgPass};

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 5432;
/// `application_name` when none is given.
pub const DEFAULT_APPLICATION_NAME: &str = "lockstep";
/// `connect_timeout` when none is given (libpq waits forever).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the system service file lives when `PGSYSCONFDIR` is not set (Debian's libpq).
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Treated like [`SslMode::Prefer`].
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address.
    Tcp(String),
    /// A directory holding the server's unix socket (`.s.PGSQL.<port>`).
    Socket(PathBuf),
}

/// The root certificates that verify the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file: `sslrootcert=…`, or the default `~/.postgresql/root.crt` (which may not
    /// exist).
    File { path: PathBuf, explicit: bool },
    /// `sslrootcert=system`: the system's trusted roots.
    System,
}

/// Where the password came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The URL or connection string.
    Explicit,
    /// The service file.
    ServiceFile(PathBuf),
    /// `PGPASSWORD`.
    Environment,
    /// The password file (`~/.pgpass`).
    PassFile(PathBuf),
}

#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Fully resolved connection parameters. `Debug` and [`ConnectOptions::describe`] never show
/// the password.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    host: Host,
    hostaddr: Option<IpAddr>,
    port: u16,
    user: String,
    password: Option<Secret>,
    password_source: Option<PasswordSource>,
    passfile: Option<PathBuf>,
    dbname: String,
    application_name: String,
    options: Option<String>,
    sslmode: SslMode,
    sslrootcert: Option<RootCert>,
    ssl_negotiation: SslNegotiation,
    connect_timeout: Option<Duration>,
    target_session_attrs: TargetSessionAttrs,
    channel_binding: ChannelBinding,
    service: Option<String>,
    warnings: Vec<String>,
}

/// Where a raw parameter value came from.
impl ConnectOptions {
    /// One line naming the server, for messages: `postgres@localhost:5432/app
    /// (sslmode=verify-full)`. Never the password.
    pub fn describe(&self) -> String {
        let how = match self.host {
            Host::Socket(_) => "unix socket".to_string(),
            Host::Tcp(_) => format!("sslmode={}", self.sslmode),
        };
        format!("{} ({how})", self.target())
    }

    /// `user@host:port/dbname`.
    fn target(&self) -> String {
        let host = match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => h.clone(),
            Host::Socket(dir) => dir.display().to_string(),
        };
        format!("{}@{host}:{}/{}", self.user, self.port, self.dbname)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn hostaddr(&self) -> Option<IpAddr> {
        self.hostaddr
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    pub fn sslrootcert(&self) -> Option<&RootCert> {
        self.sslrootcert.as_ref()
    }

    /// `None`: wait forever.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The service whose section was applied.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub fn password_source(&self) -> Option<&PasswordSource> {
        self.password_source.as_ref()
    }

    /// Things the caller should tell the user (an ignored password file, `sslmode=allow`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The same connection to another database (the password file is consulted again if the
    /// password came from it).
    pub fn with_dbname(&self, dbname: &str) -> ConnectOptions {
        let mut o = self.clone();
        o.dbname = dbname.to_string();
        if matches!(o.password_source, None | Some(PasswordSource::PassFile(_))) {
            o.password = None;
            o.password_source = None;
            if let Some(file) = &o.passfile {
                let found = lookup_pgpass(file, &o.pgpass_host(), o.port, &o.dbname, &o.user);
                if let PgPass::Found(password) = found {
                    o.password = Some(Secret(password));
                    o.password_source = Some(PasswordSource::PassFile(file.clone()));
                }
            }
        }
        o
    }

    /// The same connection with another `application_name`.
    pub fn with_application_name(&self, name: &str) -> ConnectOptions {
        let mut o = self.clone();
        o.application_name = name.to_string();
        o
    }

    /// The host as the password file sees it.
    fn pgpass_host(&self) -> String {
        match &self.host {
            Host::Socket(dir) if *dir == default_socket_dir() => "localhost".to_string(),
            Host::Socket(dir) => dir.display().to_string(),
            Host::Tcp(h) => h.clone(),
        }
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        match &self.host {
            Host::Tcp(h) => c.host(h),
            Host::Socket(dir) => c.host_path(dir),
        };
        if let Some(addr) = self.hostaddr {
            c.hostaddr(addr);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .target_session_attrs(self.target_session_attrs)
            .channel_binding(self.channel_binding)
            .ssl_negotiation(self.ssl_negotiation);
        if let Some(password) = &self.password {
            c.password(password.0.as_bytes());
        }
        if let Some(options) = &self.options {
            c.options(options);
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        c
    }

    /// Opens a connection; its I/O runs on a task spawned with `tokio::spawn` (so call this
    /// inside a tokio runtime). May be called any number of times.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        self.within_timeout(self.connect_once()).await
    }

    /// `attempt`, given up after `connect_timeout`.
    async fn within_timeout<T>(
        &self,
        attempt: impl std::future::Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, ConnectError> {
        match self.connect_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, attempt)
                    .await
                    .map_err(|_| ConnectError::Timeout {
                        target: self.target(),
                        seconds: limit.as_secs(),
                    })?
            }
            None => attempt.await,
        }
    }

    async fn connect_once(&self) -> Result<Client, ConnectError> {
        let mut config = self.pg_config();
        let tls = matches!(self.host, Host::Tcp(_)) && self.sslmode != SslMode::Disable;
        if !tls {
            config.ssl_mode(PgSslMode::Disable);
            let (client, connection) = match config.connect(NoTls).await {
                Ok(c) => c,
                Err(e) => return Err(self.explain(self.classify(&e, None)).await),
            };
            tokio::spawn(async move {
                let _ = connection.await;
            });
            return Ok(client);
        }
        config.ssl_mode(match self.sslmode {
            SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });
        let verify = self.verification()?;
        let failure = tls::Failure::default();
        let connector = self.tls_connector(&verify, &failure)?;
        let (client, connection) = match config.connect(connector).await {
            Ok(c) => c,
            Err(e) => {
                return Err(self
                    .explain(self.classify(&e, Some((&verify, &failure))))
                    .await)
            }
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

impl ConnectOptions {
    /// A network or TLS failure over TCP may be a server that is not PostgreSQL at all:
    /// ask it, and say so when it is not.
    async fn explain(&self, e: ConnectError) -> ConnectError {
        let Host::Tcp(host) = &self.host else {
            return e;
        };
        if !matches!(e, ConnectError::Network { .. } | ConnectError::Tls { .. }) {
            return e;
        }
        match protocol::not_postgres(host, self.port).await {
            Some(seen) => ConnectError::NotPostgres {
                target: self.target(),
                seen,
            },
            None => e,
        }
    }
}

/// Whether this connection uses TLS (`pg_stat_ssl`).
pub async fn ssl_in_use(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
            &[],
        )
        .await?;
    row.try_get(0)
}
