//! The streaming replication protocol, for logical decoding: `START_REPLICATION SLOT …
//! LOGICAL` on a replication connection ([`ConnectOptions::connect_replication`]), then
//! `XLogData` and keepalive messages from the server, and status updates back.
//!
//! The server decodes the slot's WAL once, as it is written, and sends each change as it
//! reaches a commit; reading the slot through the SQL functions instead decodes it again from
//! the slot's restart point on every read.
//!
//! [`ConnectOptions::connect_replication`]: crate::db::connect::ConnectOptions::connect_replication

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::db::connect::replication::{error_fields, Io};

/// The largest message accepted from the server (a decoded change carries one row).
const MAX_MESSAGE: usize = 1 << 30;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("replication connection: {0}")]
    Io(#[from] io::Error),
    #[error("replication connection: {message} (SQLSTATE {code})")]
    Server { code: String, message: String },
    #[error("replication connection: {0}")]
    Protocol(String),
}

/// Reads one backend message: its tag and body.
pub(crate) async fn read_message<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_sub(4))
        .filter(|l| *l <= MAX_MESSAGE)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message of invalid length {len} from the server"),
            )
        })?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok((head[0], body))
}

/// A replication connection after its start-up.
pub struct ReplicationConn {
    stream: Box<dyn Io>,
}

impl ReplicationConn {
    pub(crate) fn new(stream: Box<dyn Io>) -> ReplicationConn {
        ReplicationConn { stream }
    }

    /// Runs a replication command that answers with rows (or none): the rows' values as text.
    pub async fn command(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        let mut buf = BytesMut::new();
        frontend::query(sql, &mut buf)?;
        self.stream.write_all(&buf).await?;
        self.stream.flush().await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            let (tag, body) = read_message(&mut self.stream).await?;
            match tag {
                b'D' => rows.push(data_row(&body)?),
                b'E' => failed = Some(server_error(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Starts streaming the logical slot `slot` from where it was confirmed last, with the
    /// output plugin's `options` (names and values, quoted here).
    pub async fn start_logical(
        mut self,
        slot: &str,
        options: &[(&str, &str)],
    ) -> Result<(Receiver, Sender), ReplicationError> {
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("\"{}\" '{}'", k.replace('"', "\"\""), v.replace('\'', "''")))
            .collect();
        let sql = format!(
            "START_REPLICATION SLOT \"{}\" LOGICAL 0/0 ({})",
            slot.replace('"', "\"\""),
            opts.join(", ")
        );
        let mut buf = BytesMut::new();
        frontend::query(&sql, &mut buf)?;
        self.stream.write_all(&buf).await?;
        self.stream.flush().await?;
        loop {
            let (tag, body) = read_message(&mut self.stream).await?;
            match tag {
                // CopyBothResponse: streaming starts.
                b'W' => break,
                b'E' => return Err(server_error(&body)),
                b'N' | b'S' => {}
                other => {
                    return Err(ReplicationError::Protocol(format!(
                        "unexpected message {:?} after START_REPLICATION",
                        other as char
                    )))
                }
            }
        }
        let (r, w) = tokio::io::split(self.stream);
        Ok((
            Receiver {
                r: BufReader::with_capacity(256 * 1024, r),
            },
            Sender { w },
        ))
    }
}

/// What the server streams.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Output of the decoding plugin; `end` is the server's WAL end when it was sent.
    Data { start: u64, end: u64, data: Vec<u8> },
    /// The server is alive; `reply`: it wants a status update now.
    Keepalive { end: u64, reply: bool },
    /// The server ended the stream.
    End,
}

/// The reading half of a streaming replication connection.
pub struct Receiver {
    r: BufReader<ReadHalf<Box<dyn Io>>>,
}

impl Receiver {
    /// The next message of the stream.
    pub async fn recv(&mut self) -> Result<Event, ReplicationError> {
        loop {
            let (tag, body) = read_message(&mut self.r).await?;
            match tag {
                b'd' => return parse_copy_data(body),
                b'c' | b'C' => return Ok(Event::End),
                b'E' => return Err(server_error(&body)),
                // Notices, parameter changes.
                _ => {}
            }
        }
    }
}

/// The writing half: status updates.
pub struct Sender {
    w: WriteHalf<Box<dyn Io>>,
}

impl Sender {
    /// Tells the server that everything up to `flushed` is safe on our side: the slot may
    /// move there.
    pub async fn status(&mut self, flushed: u64) -> Result<(), ReplicationError> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64)
            - PG_EPOCH_OFFSET_MICROS;
        let mut payload = BytesMut::with_capacity(34);
        payload.put_u8(b'r');
        payload.put_u64(flushed);
        payload.put_u64(flushed);
        payload.put_u64(flushed);
        payload.put_i64(micros);
        payload.put_u8(0);
        let mut buf = BytesMut::new();
        frontend::CopyData::new(&payload[..])?.write(&mut buf);
        self.w.write_all(&buf).await?;
        self.w.flush().await?;
        Ok(())
    }

    /// Ends the stream politely (the server then ends its side).
    pub async fn finish(&mut self) -> Result<(), ReplicationError> {
        let mut buf = BytesMut::new();
        frontend::copy_done(&mut buf);
        frontend::terminate(&mut buf);
        self.w.write_all(&buf).await?;
        self.w.flush().await?;
        Ok(())
    }
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
}

/// A `CopyData` message of the stream.
fn parse_copy_data(body: Vec<u8>) -> Result<Event, ReplicationError> {
    let short = || ReplicationError::Protocol("a cut message in the stream".into());
    match body.first() {
        Some(b'w') => {
            let start = u64_at(&body, 1).ok_or_else(short)?;
            let end = u64_at(&body, 9).ok_or_else(short)?;
            if body.len() < 25 {
                return Err(short());
            }
            let mut data = body;
            data.drain(..25);
            Ok(Event::Data { start, end, data })
        }
        Some(b'k') => {
            let end = u64_at(&body, 1).ok_or_else(short)?;
            let reply = *body.get(17).ok_or_else(short)? == 1;
            Ok(Event::Keepalive { end, reply })
        }
        other => Err(ReplicationError::Protocol(format!(
            "unknown stream message {:?}",
            other.map(|b| *b as char)
        ))),
    }
}

fn server_error(body: &[u8]) -> ReplicationError {
    let (code, message) = error_fields(body);
    ReplicationError::Server { code, message }
}

/// A `DataRow` body: its values as text.
fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, ReplicationError> {
    let short = || ReplicationError::Protocol("a cut row".into());
    let n = body
        .get(0..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(short)?;
    let mut at = 2;
    let mut row = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let len = crate::db::connect::replication::i32_at(body, at);
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let end = at + len as usize;
        let v = body.get(at..end).ok_or_else(short)?;
        row.push(Some(String::from_utf8_lossy(v).into_owned()));
        at = end;
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_messages_parse_and_cut_ones_are_errors() {
        let mut w = vec![b'w'];
        w.extend(7u64.to_be_bytes());
        w.extend(9u64.to_be_bytes());
        w.extend(0i64.to_be_bytes());
        w.extend(b"BEGIN");
        assert_eq!(
            parse_copy_data(w.clone()).unwrap(),
            Event::Data {
                start: 7,
                end: 9,
                data: b"BEGIN".to_vec()
            }
        );
        let mut k = vec![b'k'];
        k.extend(5u64.to_be_bytes());
        k.extend(0i64.to_be_bytes());
        k.push(1);
        assert_eq!(
            parse_copy_data(k.clone()).unwrap(),
            Event::Keepalive {
                end: 5,
                reply: true
            }
        );
        for cut in [&w[..20], &k[..17], &[][..], &[b'x'][..]] {
            assert!(parse_copy_data(cut.to_vec()).is_err());
        }
    }

    #[test]
    fn data_rows_read_nulls_and_refuse_cut_ones() {
        let mut b = 2u16.to_be_bytes().to_vec();
        b.extend((-1i32).to_be_bytes());
        b.extend(2i32.to_be_bytes());
        b.extend(b"ok");
        assert_eq!(data_row(&b).unwrap(), vec![None, Some("ok".to_string())]);
        assert!(data_row(&b[..b.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn messages_of_impossible_length_are_errors_not_allocations() {
        let mut r: &[u8] = &[b'd', 0x7f, 0xff, 0xff, 0xff];
        assert!(read_message(&mut r).await.is_err());
        let mut r: &[u8] = &[b'd', 0, 0, 0, 2];
        assert!(read_message(&mut r).await.is_err());
    }
}
