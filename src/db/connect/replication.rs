//! A replication connection (`replication=database`): the same parameters, TLS and
//! authentication as [`ConnectOptions::connect`], spoken by hand, because the streaming part
//! of the protocol (`CopyBoth`) is not something tokio-postgres offers. What is spoken after
//! the start-up is in [`crate::db::replication`].
//!
//! Authentication: trust, password, md5 and SCRAM-SHA-256 (without channel binding: the
//! `-PLUS` variant is not offered, and `channel_binding=require` is refused). `sslmode` is
//! honoured as for a normal connection (`prefer` falls back to plain text when the server
//! has no TLS); `sslnegotiation=direct` is not: the connection asks for TLS the classic way.

use std::io;

use bytes::BytesMut;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::config::ChannelBinding;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::{ConnectError, ConnectOptions, Host, SslMode};
use crate::db::replication::{read_message, ReplicationConn};

/// A byte stream to the server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl ConnectOptions {
    /// Opens a replication connection (for logical decoding) to the same server, database
    /// and role, under `connect_timeout`.
    pub async fn connect_replication(&self) -> Result<ReplicationConn, ConnectError> {
        self.within_timeout(self.replication_once()).await
    }

    async fn replication_once(&self) -> Result<ReplicationConn, ConnectError> {
        if self.channel_binding == ChannelBinding::Require {
            return Err(ConnectError::Tls {
                target: self.target(),
                message: "channel_binding=require is not supported for replication connections"
                    .into(),
            });
        }
        let io_err = |e: io::Error| self.classify_io(&e);
        let mut stream: Box<dyn Io> = match &self.host {
            Host::Socket(dir) => {
                let path = dir.join(format!(".s.PGSQL.{}", self.port));
                Box::new(
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(io_err)?,
                )
            }
            Host::Tcp(host) => {
                let tcp = match self.hostaddr {
                    Some(addr) => TcpStream::connect((addr, self.port)).await,
                    None => TcpStream::connect((host.as_str(), self.port)).await,
                }
                .map_err(io_err)?;
                let _ = tcp.set_nodelay(true);
                self.maybe_tls(tcp, host).await?
            }
        };
        self.startup(&mut stream).await?;
        Ok(ReplicationConn::new(stream))
    }

    /// Asks for TLS when `sslmode` wants it, and wraps the stream.
    async fn maybe_tls(&self, mut tcp: TcpStream, host: &str) -> Result<Box<dyn Io>, ConnectError> {
        if self.sslmode == SslMode::Disable {
            return Ok(Box::new(tcp));
        }
        let io_err = |e: io::Error| self.classify_io(&e);
        let mut buf = BytesMut::new();
        frontend::ssl_request(&mut buf);
        tcp.write_all(&buf).await.map_err(io_err)?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await.map_err(io_err)?;
        let tls_err = |message: String| ConnectError::Tls {
            target: self.target(),
            message,
        };
        match answer[0] {
            b'S' => {}
            b'N' if matches!(self.sslmode, SslMode::Allow | SslMode::Prefer) => {
                return Ok(Box::new(tcp))
            }
            b'N' => {
                return Err(tls_err(format!(
                    "the server does not support TLS, and sslmode={} requires it",
                    self.sslmode
                )))
            }
            other => {
                return Err(tls_err(format!(
                    "unexpected answer {other:#04x} to the TLS request"
                )))
            }
        }
        let verify = self.verification()?;
        let failure = super::tls::Failure::default();
        let mut make = self.tls_connector(&verify, &failure)?;
        let connect = MakeTlsConnect::<TcpStream>::make_tls_connect(&mut make, host)
            .map_err(|e| tls_err(e.to_string()))?;
        match connect.connect(tcp).await {
            Ok(s) => Ok(Box::new(s)),
            Err(e) => {
                let seen = failure.lock().ok().and_then(|f| f.clone());
                Err(tls_err(seen.unwrap_or_else(|| e.to_string())))
            }
        }
    }

    /// The start-up message with `replication=database`, the authentication, and the
    /// messages up to the first `ReadyForQuery`.
    async fn startup(&self, s: &mut Box<dyn Io>) -> Result<(), ConnectError> {
        let io_err = |e: io::Error| self.classify_io(&e);
        let mut params: Vec<(&str, &str)> = vec![
            ("user", self.user.as_str()),
            ("database", self.dbname.as_str()),
            ("application_name", self.application_name.as_str()),
            ("replication", "database"),
            ("client_encoding", "UTF8"),
        ];
        if let Some(o) = &self.options {
            params.push(("options", o.as_str()));
        }
        let mut buf = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut buf).map_err(io_err)?;
        send(s, &mut buf).await.map_err(io_err)?;
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            let (tag, body) = read_message(s).await.map_err(io_err)?;
            let rest = body.get(4..).unwrap_or_default();
            match tag {
                b'R' => {
                    let code = i32_at(&body, 0);
                    match code {
                        0 => {}
                        3 => {
                            let pw = self.password_bytes()?;
                            frontend::password_message(pw, &mut buf).map_err(io_err)?;
                            send(s, &mut buf).await.map_err(io_err)?;
                        }
                        5 => {
                            let pw = self.password_bytes()?;
                            let salt: [u8; 4] = body
                                .get(4..8)
                                .and_then(|b| b.try_into().ok())
                                .ok_or_else(|| self.protocol("a short md5 request"))?;
                            let hashed = md5_hash(self.user.as_bytes(), pw, salt);
                            frontend::password_message(hashed.as_bytes(), &mut buf)
                                .map_err(io_err)?;
                            send(s, &mut buf).await.map_err(io_err)?;
                        }
                        10 => {
                            let offered: Vec<&[u8]> = rest
                                .split(|b| *b == 0)
                                .filter(|m| !m.is_empty())
                                .collect();
                            if !offered.contains(&sasl::SCRAM_SHA_256.as_bytes()) {
                                return Err(
                                    self.protocol("the server offers no SASL mechanism lockstep speaks")
                                );
                            }
                            let pw = self.password_bytes()?;
                            let sc = sasl::ScramSha256::new(
                                pw,
                                sasl::ChannelBinding::unsupported(),
                            );
                            frontend::sasl_initial_response(
                                sasl::SCRAM_SHA_256,
                                sc.message(),
                                &mut buf,
                            )
                            .map_err(io_err)?;
                            send(s, &mut buf).await.map_err(io_err)?;
                            scram = Some(sc);
                        }
                        11 => {
                            let sc = scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("a SASL step out of order"))?;
                            sc.update(rest).map_err(io_err)?;
                            frontend::sasl_response(sc.message(), &mut buf).map_err(io_err)?;
                            send(s, &mut buf).await.map_err(io_err)?;
                        }
                        12 => {
                            let sc = scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("a SASL step out of order"))?;
                            sc.finish(rest).map_err(io_err)?;
                        }
                        other => {
                            return Err(self.protocol(&format!(
                                "authentication method {other} is not supported for replication connections"
                            )))
                        }
                    }
                }
                b'E' => {
                    let (code, message) = error_fields(&body);
                    return Err(ConnectError::Server {
                        target: self.target(),
                        code: SqlState::from_code(&code),
                        message: self.redact(&message),
                    });
                }
                b'Z' => return Ok(()),
                // ParameterStatus, BackendKeyData, NoticeResponse.
                _ => {}
            }
        }
    }

    fn password_bytes(&self) -> Result<&[u8], ConnectError> {
        self.password
            .as_ref()
            .map(|p| p.0.as_bytes())
            .ok_or_else(|| ConnectError::PasswordRequired {
                target: self.target(),
            })
    }

    fn protocol(&self, message: &str) -> ConnectError {
        ConnectError::Network {
            target: self.target(),
            message: message.to_string(),
        }
    }
}

async fn send(s: &mut Box<dyn Io>, buf: &mut BytesMut) -> io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await?;
    buf.clear();
    Ok(())
}

/// The big-endian `i32` at `at` (0 when the body is too short).
pub(crate) fn i32_at(body: &[u8], at: usize) -> i32 {
    body.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes)
}

/// The SQLSTATE and the message of an `ErrorResponse` body.
pub(crate) fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        let value = String::from_utf8_lossy(&tail[..end]).into_owned();
        match kind {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_read_code_and_message_and_survive_cut_bodies() {
        let body = b"SERROR\0C42704\0Mreplication slot \"x\" does not exist\0\0";
        assert_eq!(
            error_fields(body),
            (
                "42704".to_string(),
                "replication slot \"x\" does not exist".to_string()
            )
        );
        assert_eq!(error_fields(b"C123"), ("123".to_string(), String::new()));
        assert_eq!(error_fields(b""), (String::new(), String::new()));
        assert_eq!(i32_at(b"\0\0", 0), 0);
    }
}
