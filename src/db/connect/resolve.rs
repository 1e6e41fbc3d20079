//! From raw values to [`ConnectOptions`]: the service file, the environment, the
//! defaults, and the checks of every value.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{ChannelBinding, SslNegotiation, TargetSessionAttrs};

use super::conninfo::{check_key, invalid, parse_keywords, parse_url, Origin, Raw, PARAMETERS};
use super::pgpass::{lookup_pgpass, PgPass};
use super::service::apply_service;
use super::{
    ConnectError, ConnectOptions, Host, PasswordSource, RootCert, Secret, SslMode,
    DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT,
};

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
}

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
