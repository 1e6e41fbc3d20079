//! Is it PostgreSQL at all? When a connection fails with a protocol error ("bytes remaining
//! on stream", a TLS record that is no TLS, an early end of stream), the port is often
//! simply wrong: an SSH daemon, a web server, another database. A PostgreSQL server (and
//! every pooler in front of one) answers an `SSLRequest` with exactly one byte, `S` or `N`;
//! this asks once more, on a fresh connection, and says what answered instead.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the question may take.
const LIMIT: Duration = Duration::from_secs(3);

/// The startup packet's length (8) and the SSLRequest code (1234, 5679).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// What answered at `host:port` instead of PostgreSQL, or `None` when it is PostgreSQL (or
/// the question could not be asked: then the original error stands).
pub(super) async fn not_postgres(host: &str, port: u16) -> Option<String> {
    tokio::time::timeout(LIMIT, ask(host, port))
        .await
        .ok()
        .flatten()
}

async fn ask(host: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect((host, port)).await.ok()?;
    // Some servers speak first (SSH, SMTP, MySQL): read what is there before asking.
    let mut buf = [0u8; 64];
    let early = match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(n),
        _ => None,
    };
    let n = match early {
        Some(n) => n,
        None => {
            s.write_all(&SSL_REQUEST).await.ok()?;
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                // No answer at all within the limit: nothing to say for sure.
                _ => return None,
            }
        }
    };
    if early.is_none() && n == 1 && matches!(buf[0], b'S' | b'N' | b'E') {
        return None;
    }
    if n == 0 {
        return Some(
            "the server there closed the connection without answering the PostgreSQL handshake"
                .into(),
        );
    }
    Some(format!(
        "the server there does not speak the PostgreSQL protocol; it {} `{}`",
        if early.is_some() {
            "greeted with"
        } else {
            "answered"
        },
        printable(&buf[..n])
    ))
}

/// The first line of `bytes`, with anything unprintable as `.`.
fn printable(bytes: &[u8]) -> String {
    let line = bytes
        .split(|b| *b == b'\n' || *b == b'\r')
        .next()
        .unwrap_or(bytes);
    line.iter()
        .take(40)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_keeps_the_first_line_and_dots_the_rest() {
        assert_eq!(
            printable(b"SSH-2.0-OpenSSH_9.2\r\nmore"),
            "SSH-2.0-OpenSSH_9.2"
        );
        assert_eq!(printable(&[0x16, 0x03, b'a']), "..a");
    }
}
