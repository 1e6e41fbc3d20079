//! Reading the messages of PostgreSQL's built-in logical decoding plugin `pgoutput`
//! (protocol version 1), as `pg_logical_slot_peek_binary_changes` returns them: only what
//! the logical capture needs (which rows of which table changed, and where transactions
//! end). The format is PostgreSQL's "Logical Replication Message Formats".

use thiserror::Error;

/// A message that cannot be read: the slot's output is not what pgoutput writes.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unreadable logical decoding message ({0})")]
pub struct DecodeError(pub String);

/// One column value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A value stored out of line that the change did not touch: pgoutput leaves it out.
    Unchanged,
    /// The value in its text form.
    Text(String),
}

/// One message, as far as capture cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A table's description (sent before its first change in a decoding session).
    Relation { id: u32, columns: Vec<String> },
    /// A changed row: the rows that carry its keys (for an update that changes the key, the
    /// old key and then the new row).
    Change {
        relation: u32,
        rows: Vec<Vec<Value>>,
    },
    /// `TRUNCATE` of these tables.
    Truncate { relations: Vec<u32> },
    /// The start of a transaction.
    Begin,
    /// The end of a transaction: the position after its commit record.
    Commit { end_lsn: u64 },
    /// A logical decoding message (`pg_logical_emit_message`; sent with the plugin's
    /// `messages` option).
    Logical { prefix: String, content: Vec<u8> },
    /// Anything else (origin, type).
    Other,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| DecodeError(format!("message ends early at byte {}", self.at)))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.at..];
        let n = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| DecodeError("unterminated string".into()))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.u16()?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' | b'b' => {
                    let len = self.u32()? as usize;
                    Value::Text(String::from_utf8_lossy(self.take(len)?).into_owned())
                }
                k => return Err(DecodeError(format!("unknown column kind {k:#x}"))),
            });
        }
        Ok(out)
    }

    /// A row after its marker byte (`K`, `O` or `N`).
    fn marked_tuple(&mut self) -> Result<(u8, Vec<Value>), DecodeError> {
        let mark = self.u8()?;
        if !matches!(mark, b'K' | b'O' | b'N') {
            return Err(DecodeError(format!("unknown row marker {mark:#x}")));
        }
        Ok((mark, self.tuple()?))
    }
}

/// Reads one message.
pub fn parse(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf, at: 0 };
    Ok(match r.u8()? {
        b'R' => {
            let id = r.u32()?;
            let _schema = r.string()?;
            let _name = r.string()?;
            let _identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let _flags = r.u8()?;
                columns.push(r.string()?);
                let _type = r.u32()?;
                let _typmod = r.u32()?;
            }
            Message::Relation { id, columns }
        }
        b'I' => {
            let relation = r.u32()?;
            let (_, row) = r.marked_tuple()?;
            Message::Change {
                relation,
                rows: vec![row],
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let (mark, first) = r.marked_tuple()?;
            let rows = if mark == b'N' {
                vec![first]
            } else {
                let (_, new) = r.marked_tuple()?;
                vec![first, new]
            };
            Message::Change { relation, rows }
        }
        b'D' => {
            let relation = r.u32()?;
            let (_, old) = r.marked_tuple()?;
            Message::Change {
                relation,
                rows: vec![old],
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            let mut relations = Vec::new();
            for _ in 0..n {
                relations.push(r.u32()?);
            }
            Message::Truncate { relations }
        }
        b'B' => {
            let _final_lsn = r.u64()?;
            let _time = r.u64()?;
            let _xid = r.u32()?;
            Message::Begin
        }
        b'C' => {
            let _flags = r.u8()?;
            let _commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            Message::Commit { end_lsn }
        }
        b'M' => {
            let _flags = r.u8()?;
            let _lsn = r.u64()?;
            let prefix = r.string()?;
            let n = r.u32()? as usize;
            let content = r.take(n)?.to_vec();
            Message::Logical { prefix, content }
        }
        _ => Message::Other,
    })
}

/// An LSN from its printed form.
pub fn lsn_parse(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Vec<u8> {
        let mut v = vec![b't'];
        v.extend((s.len() as u32).to_be_bytes());
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn reads_an_update_that_changes_the_key() {
        let mut m = vec![b'U'];
        m.extend(16_385u32.to_be_bytes());
        m.push(b'K');
        m.extend(2u16.to_be_bytes());
        m.extend(text("2"));
        m.push(b'n');
        m.push(b'N');
        m.extend(2u16.to_be_bytes());
        m.extend(text("3"));
        m.push(b'u');
        assert_eq!(
            parse(&m),
            Ok(Message::Change {
                relation: 16_385,
                rows: vec![
                    vec![Value::Text("2".into()), Value::Null],
                    vec![Value::Text("3".into()), Value::Unchanged]
                ]
            })
        );
    }

    #[test]
    fn a_cut_message_is_an_error_not_a_panic() {
        let mut m = vec![b'I'];
        m.extend(1u32.to_be_bytes());
        m.push(b'N');
        m.extend(1u16.to_be_bytes());
        m.push(b't');
        m.extend(100u32.to_be_bytes());
        m.extend(b"abc");
        assert!(parse(&m).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&[b'C', 0, 1]).is_err());
        let mut m = vec![b'M', 1];
        m.extend(7u64.to_be_bytes());
        m.extend(b"lockstep\0");
        m.extend(3u32.to_be_bytes());
        m.extend(b"s:1");
        assert_eq!(
            parse(&m),
            Ok(Message::Logical {
                prefix: "lockstep".into(),
                content: b"s:1".to_vec()
            })
        );
        assert!(parse(&m[..m.len() - 1]).is_err());
    }

    #[test]
    fn lsns_read_back_as_printed() {
        assert_eq!(lsn_parse("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(lsn_parse("nonsense"), None);
    }
}
