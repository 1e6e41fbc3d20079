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
//! requires `verify-full`. TLS is OpenSSL, through `postgres-openssl`.
//!
//! The password never appears in [`ConnectOptions::describe`], its `Debug` output or any
//! [`ConnectError`].

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::{
    ChannelBinding, SslMode as PgSslMode, SslNegotiation, TargetSessionAttrs,
};
use tokio_postgres::{Client, NoTls};

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 5432;
/// `application_name` when none is given.
pub const DEFAULT_APPLICATION_NAME: &str = "lockstep";
/// `connect_timeout` when none is given (libpq waits forever).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the system service file lives when `PGSYSCONFDIR` is not set (Debian's libpq).
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The parameters understood, with their environment variables.
const PARAMETERS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("dbname", Some("PGDATABASE")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("options", Some("PGOPTIONS")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("service", Some("PGSERVICE")),
];

/// libpq parameters that lockstep does not implement: naming one is an error rather than
/// silently connecting differently from what was asked.
const UNSUPPORTED: &[&str] = &[
    "client_encoding",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "max_protocol_version",
    "min_protocol_version",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "servicefile",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslkeylogfile",
    "sslpassword",
    "sslsni",
    "tcp_user_timeout",
];

/// Why connecting (or working out how to connect) failed. Every message is one line and
/// none contains the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid connection string: {0}")]
    Syntax(String),
    #[error("unknown connection parameter `{key}` (in {origin})")]
    UnknownParameter { key: String, origin: String },
    #[error("connection parameter `{key}` (in {origin}) is not supported by lockstep")]
    UnsupportedParameter { key: String, origin: String },
    #[error("invalid `{key}` (in {origin}): {reason}")]
    InvalidValue {
        key: String,
        origin: String,
        reason: String,
    },
    #[error("{0}")]
    Service(String),
    #[error("cannot determine the user name to connect as: set PGUSER or `user` in the URL")]
    NoUser,
    #[error("cannot connect to {target}: connection refused (is the server running on that host and accepting TCP connections on port {port}?)")]
    Refused { target: String, port: u16 },
    #[error("cannot connect to {target}: no server is listening on socket {} (is the server running locally and accepting connections on that socket?)", .socket.display())]
    NoSocket { target: String, socket: PathBuf },
    #[error("cannot connect to {target}: timed out after {seconds}s (connect_timeout)")]
    Timeout { target: String, seconds: u64 },
    #[error("cannot connect to {target}: the server asks for a password and none was given (put it in the URL, PGPASSWORD or ~/.pgpass)")]
    PasswordRequired { target: String },
    /// An error the server sent (authentication failed, database does not exist, …).
    #[error("cannot connect to {target}: {message}")]
    Server {
        target: String,
        /// The SQLSTATE.
        code: String,
        message: String,
    },
    #[error("cannot connect to {target}: {message}")]
    Tls { target: String, message: String },
    /// Name resolution, unreachable network, connection reset, …
    #[error("cannot connect to {target}: {message}")]
    Network { target: String, message: String },
}

/// `sslmode`, with libpq's six values.
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
#[derive(Debug, Clone)]
enum Origin {
    Url,
    ConnString,
    Service { file: PathBuf, line: usize },
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Url => f.write_str("the URL"),
            Origin::ConnString => f.write_str("the connection string"),
            Origin::Service { file, line } => {
                write!(f, "service file {}, line {line}", file.display())
            }
            Origin::Env(var) => f.write_str(var),
        }
    }
}

/// Parameter values before defaults, each with where it came from.
#[derive(Default)]
struct Raw {
    values: HashMap<&'static str, (String, Origin)>,
}

impl Raw {
    fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The value if given and not empty.
    fn get(&self, key: &str) -> Option<(&str, &Origin)> {
        self.values
            .get(key)
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, o)| (v.as_str(), o))
    }
}

fn invalid(key: &str, origin: &Origin, reason: impl Into<String>) -> ConnectError {
    ConnectError::InvalidValue {
        key: key.to_string(),
        origin: origin.to_string(),
        reason: reason.into(),
    }
}

/// The canonical name of a parameter, or the error for an unknown or unsupported one.
fn check_key(key: &str, origin: &Origin) -> Result<&'static str, ConnectError> {
    if let Some((name, _)) = PARAMETERS.iter().find(|(name, _)| *name == key) {
        return Ok(name);
    }
    if UNSUPPORTED.contains(&key) {
        return Err(ConnectError::UnsupportedParameter {
            key: key.to_string(),
            origin: origin.to_string(),
        });
    }
    Err(ConnectError::UnknownParameter {
        key: key.to_string(),
        origin: origin.to_string(),
    })
}

/// The unix socket directory used when no host is given: `/var/run/postgresql` if it
/// exists (Debian's libpq), else `/tmp` (upstream's).
pub fn default_socket_dir() -> PathBuf {
    let debian = Path::new("/var/run/postgresql");
    if debian.is_dir() {
        debian.to_path_buf()
    } else {
        PathBuf::from("/tmp")
    }
}

impl ConnectOptions {
    /// Resolves `url` (a URL or keyword/value string; `None` for none) with the process
    /// environment and `$HOME`.
    pub fn resolve(url: Option<&str>) -> Result<ConnectOptions, ConnectError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        ConnectOptions::resolve_with(url, &|key| std::env::var(key).ok(), home.as_deref())
    }

    /// Like [`ConnectOptions::resolve`], with the environment and the home directory (for
    /// `~/.pgpass`, `~/.pg_service.conf`, `~/.postgresql/root.crt`) given.
    pub fn resolve_with(
        url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<ConnectOptions, ConnectError> {
        let mut raw = Raw::default();
        if let Some(url) = url {
            let (pairs, origin) = if let Some(rest) = url
                .strip_prefix("postgresql://")
                .or_else(|| url.strip_prefix("postgres://"))
            {
                (parse_url(rest)?, Origin::Url)
            } else {
                (parse_keywords(url)?, Origin::ConnString)
            };
            for (key, value) in pairs {
                let key = check_key(&key, &origin)?;
                raw.values.insert(key, (value, origin.clone()));
            }
        }
        let service = match raw.values.get("service") {
            Some((name, _)) => Some(name.clone()),
            None => env("PGSERVICE"),
        }
        .filter(|s| !s.is_empty());
        if let Some(name) = &service {
            apply_service(&mut raw, name, env, home)?;
        }
        for (key, var) in PARAMETERS {
            if let Some(var) = var {
                if !raw.has(key) {
                    if let Some(value) = env(var) {
                        raw.values.insert(key, (value, Origin::Env(var)));
                    }
                }
            }
        }
        build(&raw, service, env, home)
    }

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
        match self.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, self.connect_once())
                .await
                .map_err(|_| ConnectError::Timeout {
                    target: self.target(),
                    seconds: limit.as_secs(),
                })?,
            None => self.connect_once().await,
        }
    }

    async fn connect_once(&self) -> Result<Client, ConnectError> {
        let mut config = self.pg_config();
        let tls = matches!(self.host, Host::Tcp(_)) && self.sslmode != SslMode::Disable;
        if !tls {
            config.ssl_mode(PgSslMode::Disable);
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| self.classify(&e, None))?;
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
        let failure = Arc::new(Mutex::new(None));
        let connector = self.tls_connector(&verify, &failure)?;
        let (client, connection) = config
            .connect(connector)
            .await
            .map_err(|e| self.classify(&e, Some((&verify, &failure))))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// What the TLS handshake checks, per `sslmode` and the root certificate file.
    fn verification(&self) -> Result<Verify, ConnectError> {
        let tls_err = |message: String| ConnectError::Tls {
            target: self.target(),
            message,
        };
        match self.sslmode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => Ok(Verify::Nothing),
            // libpq: `require` verifies the chain when the root certificate file exists.
            SslMode::Require => Ok(match &self.sslrootcert {
                Some(root @ RootCert::File { path, .. }) if path.is_file() => {
                    Verify::Chain(root.clone())
                }
                _ => Verify::Nothing,
            }),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let root = match &self.sslrootcert {
                    Some(RootCert::System) => RootCert::System,
                    Some(root @ RootCert::File { path, .. }) if path.is_file() => root.clone(),
                    Some(RootCert::File { path, .. }) => {
                        return Err(tls_err(format!(
                            "root certificate file {} does not exist; sslmode={} needs it (give one with sslrootcert, use sslrootcert=system, or use sslmode=require, which does not verify the server)",
                            path.display(),
                            self.sslmode
                        )))
                    }
                    None => {
                        return Err(tls_err(format!(
                            "no home directory to find ~/.postgresql/root.crt, and sslmode={} needs a root certificate (give one with sslrootcert)",
                            self.sslmode
                        )))
                    }
                };
                Ok(if self.sslmode == SslMode::VerifyFull {
                    Verify::Full(root)
                } else {
                    Verify::Chain(root)
                })
            }
        }
    }

    fn tls_connector(
        &self,
        verify: &Verify,
        failure: &Arc<Mutex<Option<String>>>,
    ) -> Result<MakeTlsConnector, ConnectError> {
        let setup = |what: &str, e: openssl::error::ErrorStack| ConnectError::Tls {
            target: self.target(),
            message: format!("{what}: {}", openssl_reason(&e)),
        };
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| setup("cannot set up TLS", e))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| setup("cannot set up TLS", e))?;
        match verify {
            Verify::Nothing => b.set_verify(SslVerifyMode::NONE),
            Verify::Chain(root) | Verify::Full(root) => {
                match root {
                    RootCert::System => b
                        .set_default_verify_paths()
                        .map_err(|e| setup("cannot load the system's root certificates", e))?,
                    RootCert::File { path, .. } => b.set_ca_file(path).map_err(|e| {
                        setup(
                            &format!("cannot load root certificate file {}", path.display()),
                            e,
                        )
                    })?,
                }
                let slot = Arc::clone(failure);
                b.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
                    if !ok {
                        if let Ok(mut s) = slot.lock() {
                            s.get_or_insert_with(|| ctx.error().error_string().to_string());
                        }
                    }
                    ok
                });
            }
        }
        let mut connector = MakeTlsConnector::new(b.build());
        let check_host = matches!(verify, Verify::Full(_));
        connector.set_callback(move |config, _domain| {
            config.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(connector)
    }

    /// One clear line for a failed connection attempt.
    fn classify(
        &self,
        e: &tokio_postgres::Error,
        tls: Option<(&Verify, &Arc<Mutex<Option<String>>>)>,
    ) -> ConnectError {
        let target = self.target();
        if let Some(db) = e.as_db_error() {
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message = format!("{message} ({detail})");
            }
            return ConnectError::Server {
                target,
                code: db.code().code().to_string(),
                message: self.redact(&message),
            };
        }
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return self.classify_io(io);
            }
            if let Some(ssl) = s.downcast_ref::<openssl::ssl::Error>() {
                return ConnectError::Tls {
                    target,
                    message: self.tls_failure(tls, ssl_reason(ssl)),
                };
            }
            if let Some(stack) = s.downcast_ref::<openssl::error::ErrorStack>() {
                return ConnectError::Tls {
                    target,
                    message: self.tls_failure(tls, openssl_reason(stack)),
                };
            }
            source = s.source();
        }
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        if text.contains("password missing") {
            return ConnectError::PasswordRequired { target };
        }
        if text.contains("server does not support TLS") {
            return ConnectError::Tls {
                target,
                message: format!(
                    "the server does not support TLS, and sslmode={} requires it",
                    self.sslmode
                ),
            };
        }
        ConnectError::Network {
            target,
            message: self.redact(&text),
        }
    }

    fn classify_io(&self, io: &std::io::Error) -> ConnectError {
        use std::io::ErrorKind;
        let target = self.target();
        match (&self.host, io.kind()) {
            (Host::Socket(dir), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                ConnectError::NoSocket {
                    target,
                    socket: dir.join(format!(".s.PGSQL.{}", self.port)),
                }
            }
            (Host::Tcp(_), ErrorKind::ConnectionRefused) => ConnectError::Refused {
                target,
                port: self.port,
            },
            (_, ErrorKind::TimedOut) if self.connect_timeout.is_some() => ConnectError::Timeout {
                target,
                seconds: self.connect_timeout.map_or(0, |t| t.as_secs()),
            },
            _ => ConnectError::Network {
                target,
                message: self.redact(&io.to_string()),
            },
        }
    }

    fn tls_failure(
        &self,
        tls: Option<(&Verify, &Arc<Mutex<Option<String>>>)>,
        reason: String,
    ) -> String {
        let Some((verify, failure)) = tls else {
            return format!("TLS handshake failed: {reason}");
        };
        let verified = failure.lock().ok().and_then(|s| s.clone());
        let Some(problem) = verified else {
            return format!("TLS handshake failed: {reason}");
        };
        let roots = match verify {
            Verify::Chain(RootCert::File { path, .. })
            | Verify::Full(RootCert::File { path, .. }) => {
                format!("root certificates from {}", path.display())
            }
            _ => "the system's root certificates".to_string(),
        };
        let host = match &self.host {
            Host::Tcp(h) => h.as_str(),
            Host::Socket(_) => "",
        };
        let hint = if problem.contains("mismatch") {
            format!("; the certificate does not name host `{host}`")
        } else {
            String::new()
        };
        format!(
            "the server's certificate failed verification (sslmode={}, {roots}): {problem}{hint}",
            self.sslmode
        )
    }

    /// Defence in depth: no message carries the password, whatever produced it.
    fn redact(&self, message: &str) -> String {
        let one_line = message.replace(['\n', '\r'], " ");
        match &self.password {
            Some(Secret(p)) if p.len() >= 4 => one_line.replace(p.as_str(), "********"),
            _ => one_line,
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

/// What the TLS handshake verifies.
#[derive(Debug)]
enum Verify {
    Nothing,
    Chain(RootCert),
    Full(RootCert),
}

fn openssl_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .iter()
        .find_map(|x| x.reason())
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

fn ssl_reason(e: &openssl::ssl::Error) -> String {
    if let Some(stack) = e.ssl_error() {
        return openssl_reason(stack);
    }
    if let Some(io) = e.io_error() {
        return io.to_string();
    }
    "the server closed the connection during the TLS handshake".to_string()
}

/// Applies defaults and checks every value.
fn build(
    raw: &Raw,
    service: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<ConnectOptions, ConnectError> {
    let mut warnings = Vec::new();
    let hostaddr = match raw.get("hostaddr") {
        Some((v, o)) => {
            if v.contains(',') {
                return Err(invalid("hostaddr", o, "lockstep connects to one host only"));
            }
            Some(v.trim().parse::<IpAddr>().map_err(|_| {
                invalid("hostaddr", o, format!("`{v}` is not a numeric IP address"))
            })?)
        }
        None => None,
    };
    let host = match raw.get("host") {
        Some((v, o)) if v.contains(',') => {
            return Err(invalid("host", o, "lockstep connects to one host only"));
        }
        Some((v, _)) if v.starts_with('/') => Host::Socket(PathBuf::from(v)),
        Some((v, _)) => Host::Tcp(v.to_string()),
        None => match hostaddr {
            Some(addr) => Host::Tcp(addr.to_string()),
            None => Host::Socket(default_socket_dir()),
        },
    };
    let port = match raw.get("port") {
        Some((v, o)) => match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ if v.contains(',') => {
                return Err(invalid("port", o, "lockstep connects to one host only"))
            }
            _ => {
                return Err(invalid(
                    "port",
                    o,
                    format!("`{v}` is not a port number (1-65535)"),
                ))
            }
        },
        None => DEFAULT_PORT,
    };
    let user = match raw.get("user") {
        Some((v, _)) => v.to_string(),
        None => default_user(env).ok_or(ConnectError::NoUser)?,
    };
    let dbname = raw
        .get("dbname")
        .map_or_else(|| user.clone(), |(v, _)| v.to_string());
    let application_name = raw
        .get("application_name")
        .or_else(|| raw.get("fallback_application_name"))
        .map_or(DEFAULT_APPLICATION_NAME, |(v, _)| v)
        .to_string();
    let sslrootcert = match raw.get("sslrootcert") {
        Some(("system", _)) => Some(RootCert::System),
        Some((v, _)) => Some(RootCert::File {
            path: PathBuf::from(v),
            explicit: true,
        }),
        None => home.map(|h| RootCert::File {
            path: h.join(".postgresql").join("root.crt"),
            explicit: false,
        }),
    };
    let sslmode = match raw.get("sslmode") {
        Some((v, o)) => SslMode::parse(v).ok_or_else(|| {
            invalid(
                "sslmode",
                o,
                format!(
                    "`{v}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            )
        })?,
        None if sslrootcert == Some(RootCert::System) => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if sslrootcert == Some(RootCert::System) && sslmode != SslMode::VerifyFull {
        let origin = raw
            .get("sslmode")
            .map_or(Origin::ConnString, |(_, o)| o.clone());
        return Err(invalid(
            "sslmode",
            &origin,
            format!("sslmode={sslmode} may not be used with sslrootcert=system (use verify-full)"),
        ));
    }
    if sslmode == SslMode::Allow {
        warnings.push(
            "sslmode=allow is treated as sslmode=prefer: TLS is tried first, then plain text"
                .to_string(),
        );
    }
    let ssl_negotiation = match raw.get("sslnegotiation") {
        None | Some(("postgres", _)) => SslNegotiation::Postgres,
        Some(("direct", _)) => SslNegotiation::Direct,
        Some((v, o)) => {
            return Err(invalid(
                "sslnegotiation",
                o,
                format!("`{v}` is not one of postgres, direct"),
            ))
        }
    };
    let connect_timeout = match raw.get("connect_timeout") {
        Some((v, o)) => {
            let secs: i64 = v.trim().parse().map_err(|_| {
                invalid(
                    "connect_timeout",
                    o,
                    format!("`{v}` is not a whole number of seconds"),
                )
            })?;
            // libpq: zero or negative waits forever; the minimum is 2 seconds.
            match u64::try_from(secs) {
                Ok(0) | Err(_) => None,
                Ok(s) => Some(Duration::from_secs(s.max(2))),
            }
        }
        None => Some(DEFAULT_CONNECT_TIMEOUT),
    };
    let target_session_attrs = match raw.get("target_session_attrs") {
        None | Some(("any", _)) => TargetSessionAttrs::Any,
        Some(("read-write", _)) => TargetSessionAttrs::ReadWrite,
        Some(("read-only", _)) => TargetSessionAttrs::ReadOnly,
        Some((v, o)) => {
            return Err(invalid(
                "target_session_attrs",
                o,
                format!("`{v}` is not one of any, read-write, read-only"),
            ))
        }
    };
    let channel_binding = match raw.get("channel_binding") {
        None | Some(("prefer", _)) => ChannelBinding::Prefer,
        Some(("disable", _)) => ChannelBinding::Disable,
        Some(("require", _)) => ChannelBinding::Require,
        Some((v, o)) => {
            return Err(invalid(
                "channel_binding",
                o,
                format!("`{v}` is not one of disable, prefer, require"),
            ))
        }
    };
    let options = raw.get("options").map(|(v, _)| v.to_string());
    let passfile = match raw.get("passfile") {
        Some((v, _)) => Some(PathBuf::from(v)),
        None => home.map(|h| h.join(".pgpass")),
    };
    let (mut password, mut password_source) = match raw.get("password") {
        Some((v, o)) => {
            let source = match o {
                Origin::Url | Origin::ConnString => PasswordSource::Explicit,
                Origin::Service { file, .. } => PasswordSource::ServiceFile(file.clone()),
                Origin::Env(_) => PasswordSource::Environment,
            };
            (Some(Secret(v.to_string())), Some(source))
        }
        None => (None, None),
    };
    let mut o = ConnectOptions {
        host,
        hostaddr,
        port,
        user,
        password: None,
        password_source: None,
        passfile,
        dbname,
        application_name,
        options,
        sslmode,
        sslrootcert,
        ssl_negotiation,
        connect_timeout,
        target_session_attrs,
        channel_binding,
        service,
        warnings,
    };
    if password.is_none() {
        if let Some(file) = &o.passfile {
            match lookup_pgpass(file, &o.pgpass_host(), o.port, &o.dbname, &o.user) {
                PgPass::Found(p) => {
                    password = Some(Secret(p));
                    password_source = Some(PasswordSource::PassFile(file.clone()));
                }
                PgPass::Ignored(warning) => o.warnings.push(warning),
                PgPass::NoMatch => {}
            }
        }
    }
    o.password = password;
    o.password_source = password_source;
    Ok(o)
}

/// The name of the effective uid, like libpq; else `USER`, then `LOGNAME`.
fn default_user(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    whoami::username()
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| env("USER").filter(|u| !u.is_empty()))
        .or_else(|| env("LOGNAME").filter(|u| !u.is_empty()))
}

/// Decodes `%XX` escapes (`+` stays a plus, as in libpq).
fn percent_decode(s: &str, what: &str) -> Result<String, ConnectError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(0) => {
                    return Err(ConnectError::Syntax(format!(
                        "the URL's {what} contains %00, which is not allowed"
                    )))
                }
                Some(b) => out.push(b),
                None => {
                    return Err(ConnectError::Syntax(format!(
                        "the URL's {what} has an invalid percent-encoding (`%` must be followed by two hex digits)"
                    )))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ConnectError::Syntax(format!("the URL's {what} is not UTF-8 once decoded")))
}

/// The part of a URL after `postgres://`, as (keyword, value) pairs in order; later pairs
/// override earlier ones.
fn parse_url(rest: &str) -> Result<Vec<(String, String)>, ConnectError> {
    let mut out = Vec::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    // The last `@` ends the user info, so an unencoded `@` in a password still works.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(info) = userinfo {
        let (user, password) = match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        };
        if !user.is_empty() {
            out.push(("user".into(), percent_decode(user, "user name")?));
        }
        if let Some(p) = password {
            out.push(("password".into(), percent_decode(p, "password")?));
        }
    }
    let port = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((addr, after)) = bracketed.split_once(']') else {
            return Err(ConnectError::Syntax(
                "the URL's IPv6 host has no closing `]`".into(),
            ));
        };
        if addr.is_empty() {
            return Err(ConnectError::Syntax(
                "the URL's IPv6 host is empty (`[]`)".into(),
            ));
        }
        out.push(("host".into(), addr.to_string()));
        if after.is_empty() {
            None
        } else if let Some(p) = after.strip_prefix(':') {
            Some(p)
        } else if after.starts_with(',') {
            return Err(ConnectError::Syntax(
                "the URL names several hosts; lockstep connects to one host only".into(),
            ));
        } else {
            return Err(ConnectError::Syntax(
                "unexpected text after the URL's IPv6 host (expected `:port`, `/dbname` or `?`)"
                    .into(),
            ));
        }
    } else {
        if hostport.contains(',') {
            return Err(ConnectError::Syntax(
                "the URL names several hosts; lockstep connects to one host only".into(),
            ));
        }
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if !host.is_empty() {
            out.push(("host".into(), percent_decode(host, "host")?));
        }
        port
    };
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        out.push(("port".into(), percent_decode(p, "port")?));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.push(("dbname".into(), percent_decode(db, "database name")?));
    }
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(ConnectError::Syntax(
                "a URL query parameter has no `=` (expected `?key=value&key=value`)".into(),
            ));
        };
        let key = percent_decode(key, "query parameter name")?;
        let value = percent_decode(value, "query parameter value")?;
        if key == "ssl" {
            // JDBC's spelling, which libpq accepts too.
            if value != "true" {
                return Err(invalid(
                    "ssl",
                    &Origin::Url,
                    "only `ssl=true` (meaning sslmode=require) is accepted",
                ));
            }
            out.push(("sslmode".into(), "require".into()));
        } else {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// A `key=value key='quoted \' value'` string (libpq's `conninfo_parse`).
fn parse_keywords(s: &str) -> Result<Vec<(String, String)>, ConnectError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_ws(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            // Name the key only if it is a known one: a stray word might be a password.
            let what = if PARAMETERS.iter().any(|(k, _)| *k == key) {
                format!("`{key}`")
            } else {
                format!("the word at character {}", start + 1)
            };
            return Err(ConnectError::Syntax(format!(
                "missing `=` after {what} (expected `key=value` pairs)"
            )));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConnectError::Syntax(format!(
                            "unterminated quoted value for `{key}`"
                        )))
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => {
                            return Err(ConnectError::Syntax(format!(
                                "unterminated quoted value for `{key}`"
                            )))
                        }
                    },
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Fills parameters not given explicitly from the service's section: the user's service
/// file first, the system one only if the user's has no such section (libpq's
/// `parseServiceInfo`).
fn apply_service(
    raw: &mut Raw,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<(), ConnectError> {
    let user_file = env("PGSERVICEFILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pg_service.conf")));
    let system_file = PathBuf::from(
        env("PGSYSCONFDIR")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_string()),
    )
    .join("pg_service.conf");
    let mut looked = Vec::new();
    for file in user_file.into_iter().chain([system_file]) {
        looked.push(file.display().to_string());
        if file.exists() && apply_service_file(raw, &file, name)? {
            return Ok(());
        }
    }
    Err(ConnectError::Service(format!(
        "definition of service `{name}` not found (looked in {})",
        looked.join(" and ")
    )))
}

/// Returns whether the file has the section.
fn apply_service_file(raw: &mut Raw, file: &Path, name: &str) -> Result<bool, ConnectError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConnectError::Service(format!("cannot read service file {}: {e}", file.display()))
    })?;
    let mut in_section = false;
    let mut found = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if in_section {
                break;
            }
            in_section = section
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(']'));
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let origin = Origin::Service {
            file: file.to_path_buf(),
            line: i + 1,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConnectError::Service(format!(
                "syntax error in {origin}: expected `key=value`"
            )));
        };
        let key = key.trim();
        if key == "service" {
            return Err(ConnectError::Service(format!(
                "nested service specifications are not supported ({origin})"
            )));
        }
        let key = check_key(key, &origin)?;
        if !raw.has(key) {
            raw.values.insert(key, (value.trim().to_string(), origin));
        }
    }
    Ok(found)
}

enum PgPass {
    Found(String),
    NoMatch,
    /// Not used; the warning says why.
    Ignored(String),
}

/// Looks up the password file (libpq's `passwordFromFile`). A missing or unreadable file is
/// no match; one with group or world permissions is ignored with a warning.
fn lookup_pgpass(file: &Path, host: &str, port: u16, dbname: &str, user: &str) -> PgPass {
    let Ok(meta) = std::fs::metadata(file) else {
        return PgPass::NoMatch;
    };
    if !meta.is_file() {
        return PgPass::Ignored(format!(
            "password file {} is not a plain file; ignoring it",
            file.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return PgPass::Ignored(format!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                file.display()
            ));
        }
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return PgPass::NoMatch;
    };
    match pgpass_find(&text, host, &port.to_string(), dbname, user) {
        Some(p) => PgPass::Found(p),
        None => PgPass::NoMatch,
    }
}

/// The password of the first line matching `host:port:dbname:user`.
fn pgpass_find(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    'lines: for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        for want in [host, port, dbname, user] {
            match pgpass_field(rest, want) {
                Some(after) => rest = after,
                None => continue 'lines,
            }
        }
        // The password runs to the next unescaped `:` or the end of the line.
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(e) => password.push(e),
                    None => password.push('\\'),
                },
                c => password.push(c),
            }
        }
        return Some(password);
    }
    None
}

/// If the field at the start of `line` matches `want` (`*` matches anything), the rest of
/// the line after its `:`.
fn pgpass_field<'a>(line: &'a str, want: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut field = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => field.push(chars.next()?.1),
            ':' => return (field == want).then(|| &line[i + 1..]),
            c => field.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Vec<(String, String)> {
        parse_keywords(s).expect("parses")
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keyword_quoting_follows_libpq() {
        assert_eq!(
            kw(r"host=db  port = 5433 password='a b\'c' dbname=x\ y user=''"),
            pairs(&[
                ("host", "db"),
                ("port", "5433"),
                ("password", "a b'c"),
                ("dbname", "x y"),
                ("user", ""),
            ])
        );
        assert!(matches!(
            parse_keywords("password='abc"),
            Err(ConnectError::Syntax(m)) if m.contains("unterminated") && !m.contains("abc")
        ));
        let err = parse_keywords("host=x hunter2").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn url_parts_are_decoded() {
        assert_eq!(
            parse_url("u%40x:p%3Aw@[::1]:5433/my%20db?sslmode=require&application_name=a%26b")
                .unwrap(),
            pairs(&[
                ("user", "u@x"),
                ("password", "p:w"),
                ("host", "::1"),
                ("port", "5433"),
                ("dbname", "my db"),
                ("sslmode", "require"),
                ("application_name", "a&b"),
            ])
        );
        assert_eq!(
            parse_url("%2Ftmp%2Fsock/db").unwrap(),
            pairs(&[("host", "/tmp/sock"), ("dbname", "db")])
        );
        assert_eq!(
            parse_url("u:p@ss@h/db").unwrap(),
            pairs(&[
                ("user", "u"),
                ("password", "p@ss"),
                ("host", "h"),
                ("dbname", "db")
            ])
        );
        assert!(parse_url("h/db?x=%zz").is_err());
        assert!(parse_url("a,b/db").is_err());
    }

    #[test]
    fn pgpass_matching() {
        let text = "# comment\n\
                    db\\:1:*:*:bob:colon\\:pw\n\
                    *:5432:app:*:first\n\
                    *:5432:app:*:second\n\
                    localhost:*:*:*:local\\\\pw\n";
        assert_eq!(
            pgpass_find(text, "db:1", "5432", "x", "bob").as_deref(),
            Some("colon:pw")
        );
        assert_eq!(
            pgpass_find(text, "h", "5432", "app", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_find(text, "localhost", "1", "x", "u").as_deref(),
            Some("local\\pw")
        );
        assert_eq!(pgpass_find(text, "other", "1", "x", "u"), None);
        // `*` is a wildcard only as a whole field.
        assert_eq!(pgpass_find("a*:*:*:*:pw", "ab", "1", "d", "u"), None);
    }
}
