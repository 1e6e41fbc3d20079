//! Why connecting failed, as one line that names the server and never the password.

use std::error::Error as _;
use std::path::PathBuf;

use tokio_postgres::error::SqlState;

use super::tls::{self, Failure, Verify};
use super::{ConnectOptions, Host, Secret};

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
        code: SqlState,
        message: String,
    },
    #[error("cannot connect to {target}: {message}")]
    Tls { target: String, message: String },
    #[error("cannot connect to {target}: {seen} (is the host or the port wrong?)")]
    NotPostgres { target: String, seen: String },
    /// Name resolution, unreachable network, connection reset, …
    #[error("cannot connect to {target}: {message}")]
    Network { target: String, message: String },
}

impl ConnectOptions {
    /// One clear line for a failed connection attempt; `tls` is what the handshake was to
    /// verify and the verifier's record of why it refused, when TLS was tried.
    pub(super) fn classify(
        &self,
        e: &tokio_postgres::Error,
        tls: Option<(&Verify, &Failure)>,
    ) -> ConnectError {
        let target = self.target();
        if let Some(db) = e.as_db_error() {
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message = format!("{message} ({detail})");
            }
            return ConnectError::Server {
                target,
                code: db.code().clone(),
                message: self.redact(&message),
            };
        }
        // tokio-postgres says so when the handshake itself failed.
        let in_handshake = e.to_string().contains("TLS handshake");
        let mut source = e.source();
        while let Some(s) = source {
            let rustls_error = s.downcast_ref::<rustls::Error>().or_else(|| {
                s.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            });
            if let Some(r) = rustls_error {
                return ConnectError::Tls {
                    target,
                    message: self.tls_failure(tls, &tls::reason(r)),
                };
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if in_handshake {
                    let reason = match io.kind() {
                        std::io::ErrorKind::UnexpectedEof => {
                            "the server closed the connection during the TLS handshake".to_string()
                        }
                        _ => self.redact(&io.to_string()),
                    };
                    return ConnectError::Tls {
                        target,
                        message: self.tls_failure(tls, &reason),
                    };
                }
                return self.classify_io(io);
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

    pub(super) fn classify_io(&self, io: &std::io::Error) -> ConnectError {
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

    /// Defence in depth: no message carries the password, whatever produced it.
    pub(super) fn redact(&self, message: &str) -> String {
        let one_line = message.replace(['\n', '\r'], " ");
        match &self.password {
            Some(Secret(p)) if p.len() >= 4 => one_line.replace(p.as_str(), "********"),
            _ => one_line,
        }
    }
}
