//! The logical capture's decoder: a streaming replication connection on the run's slot,
//! read by a task of its own, which keeps the keys of the table's changed rows in memory,
//! transaction by transaction, until [`TriggerLog::pump`] writes them to the key log.
//!
//! - Only whole transactions are handed over: the keys of a transaction wait for its commit.
//! - The slot is confirmed (moved on) only up to the end of the last transaction whose keys
//!   are committed to the log: a runner killed at any point, or a stream that broke, starts
//!   again from there, and at worst logs a key twice (which costs a replay).
//! - "Everything up to now": a transaction that emits a logical decoding message with a token
//!   and commits synchronously; when the token comes out of the stream, every transaction that
//!   committed before it has too.
//! - Held keys are bounded: past [`HELD`] keys the reader stops reading (the server then
//!   waits, and the slot holds back WAL, which the run watches), unless someone waits for a
//!   token.
//!
//! [`TriggerLog::pump`]: super::capture::TriggerLog::pump

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::pgoutput::{self, Message, Value};
use crate::db::connect::{ConnectError, ConnectOptions};
use crate::db::replication::{Event, Receiver, ReplicationError, Sender};

/// Keys held before the reader waits for them to be written.
const HELD: usize = 200_000;
/// A status update at least this often (the server ends a silent stream after
/// `wal_sender_timeout`, 60 s by default).
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// The prefix of the run's logical decoding messages.
pub(crate) const PREFIX: &str = "lockstep";

/// Keys of whole transactions, handed over by [`Decoder::take`] or [`Decoder::peek`].
#[derive(Default, Debug)]
pub(crate) struct Batch {
    /// Keys, as text, in the log's column order.
    pub keys: Vec<Vec<Option<String>>>,
    /// The table was truncated (the keys are those after the last truncate).
    pub truncated: bool,
    /// The end of the last transaction in the batch.
    pub upto: Option<u64>,
}

#[derive(Default)]
struct State {
    held: Batch,
    /// The last token seen.
    token: u64,
    /// Where the slot may move (sent with the next status update).
    confirmed: u64,
    /// Someone waits for a token: the reader reads on past [`HELD`].
    waiting: usize,
    /// Why the stream stopped.
    failed: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    /// The reader handed over a transaction or a token, or the stream failed.
    progressed: Notify,
    /// Keys were taken (the reader may read on).
    taken: Notify,
    /// A status update is due now.
    confirm: Notify,
    /// One writer of held keys at a time: keys taken are confirmed in order.
    writing: tokio::sync::Mutex<()>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters more than losing the stream: go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until token `n` came out of the stream (`Ok(Err(why))`: the stream failed
    /// first); `check` runs every so often (the stop flags) and may end the wait with its
    /// error.
    pub(crate) async fn wait_for<E>(
        &self,
        n: u64,
        check: impl Fn() -> Result<(), E>,
    ) -> Result<Result<(), String>, E> {
        // Counted while this wait lasts, also when the wait is dropped before its end (a
        // count left behind would lift the bound on held keys for good).
        struct Waiting<'a>(&'a Shared);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.state().waiting -= 1;
            }
        }
        self.state().waiting += 1;
        let _waiting = Waiting(self);
        self.taken.notify_waiters();
        loop {
            let notified = self.progressed.notified();
            {
                let st = self.state();
                if st.token >= n {
                    return Ok(Ok(()));
                }
                if let Some(why) = &st.failed {
                    return Ok(Err(why.clone()));
                }
            }
            check()?;
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    fn fail(&self, why: String) {
        let mut st = self.state();
        if st.failed.is_none() {
            st.failed = Some(why);
        }
        drop(st);
        self.progressed.notify_waiters();
    }
}

/// The decoder of a run's slot (its tasks stop when it is dropped).
pub(crate) struct Decoder {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    sender: Arc<tokio::sync::Mutex<Sender>>,
    /// Tells this decoder's tokens from any other's (a slot read again from its confirmed
    /// position may show tokens of an earlier runner).
    nonce: String,
    next_token: std::cell::Cell<u64>,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Why the decoder could not start.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StreamError {
    pub message: String,
    /// The connection was cut or the server was not ready (an administrator, a restart,
    /// the network, a slot still held by a stream that is ending): trying again may work.
    /// Otherwise the server (or a pooler in front of it) refused the stream.
    pub transient: bool,
}

impl From<ConnectError> for StreamError {
    fn from(e: ConnectError) -> Self {
        let transient = match &e {
            ConnectError::Refused { .. }
            | ConnectError::NoSocket { .. }
            | ConnectError::Timeout { .. }
            | ConnectError::Network { .. } => true,
            ConnectError::Server { code, .. } => transient_code(code.code()),
            _ => false,
        };
        StreamError {
            message: e.to_string(),
            transient,
        }
    }
}

impl From<ReplicationError> for StreamError {
    fn from(e: ReplicationError) -> Self {
        let transient = match &e {
            ReplicationError::Io(_) => true,
            ReplicationError::Server { code, .. } => transient_code(code),
            ReplicationError::Protocol(_) => false,
        };
        StreamError {
            message: e.to_string(),
            transient,
        }
    }
}

/// SQLSTATEs worth another try: operator intervention (57P01 an administrator ended the
/// connection, 57P02/57P03 a restart), a connection lost (08000, 08003, 08006) and "object
/// in use" (55006: the slot is still held by a stream that is ending). Not a protocol
/// violation (08P01: what pgbouncer answers a replication connection).
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "55006"
    )
}

/// How long a stream that keeps failing (cut, or refused for a moment) is tried again
/// before the step fails: a network that comes and goes, a server restarting.
pub(crate) const STREAM_PATIENCE: Duration = Duration::from_secs(10);

/// The tries at a stream that failed: the first again after 0.1 s, then twice as long each
/// time (2 s at most), for [`STREAM_PATIENCE`] from the first failure.
#[derive(Debug)]
pub(crate) struct Patience {
    since: Option<std::time::Instant>,
    next: Duration,
    /// Failures so far.
    pub failures: u32,
}

impl Patience {
    pub(crate) fn new() -> Self {
        Patience {
            since: None,
            next: Duration::from_millis(100),
            failures: 0,
        }
    }

    /// After a failure: how long to wait before the next try, or `None` once the stream
    /// has been failing for [`STREAM_PATIENCE`].
    pub(crate) fn after_failure(&mut self) -> Option<Duration> {
        self.failures += 1;
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= STREAM_PATIENCE {
            return None;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(2));
        Some(wait)
    }
}

impl Decoder {
    /// Opens a replication connection and streams `slot` (confirmed up to `confirmed`) with
    /// `publication`; `keys` are the key columns, in the log's order.
    pub(crate) async fn start(
        connect: &ConnectOptions,
        slot: &str,
        publication: &str,
        confirmed: u64,
        keys: Vec<String>,
    ) -> Result<Decoder, StreamError> {
        let conn = connect.connect_replication().await?;
        let publication = crate::playbook::names::quote_ident(publication);
        let (rx, tx) = conn
            .start_logical(
                slot,
                &[
                    ("proto_version", "1"),
                    ("publication_names", &publication),
                    ("messages", "true"),
                ],
            )
            .await?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                confirmed,
                ..State::default()
            }),
            progressed: Notify::new(),
            taken: Notify::new(),
            confirm: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        });
        let sender = Arc::new(tokio::sync::Mutex::new(tx));
        let nonce = format!(
            "{}.{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let reader = tokio::spawn(read(shared.clone(), rx, keys, format!("sync:{nonce}:")));
        let statuses = tokio::spawn(report(shared.clone(), sender.clone()));
        Ok(Decoder {
            shared,
            tasks: vec![reader, statuses],
            sender,
            nonce,
            next_token: std::cell::Cell::new(0),
        })
    }

    /// Why the stream stopped, if it did.
    pub(crate) fn failed(&self) -> Option<String> {
        self.shared.state().failed.clone()
    }

    /// A token for [`Decoder::wait_for`]: the content of a logical decoding message.
    pub(crate) fn token(&self) -> (u64, String) {
        let n = self.next_token.get() + 1;
        self.next_token.set(n);
        (n, format!("sync:{}:{n}", self.nonce))
    }

    /// Waits until token `n` came out of the stream (`Ok(Err(why))`: the stream failed
    /// first); `check` runs every so often (the stop flags) and may end the wait with its
    /// error.
    pub(crate) async fn wait_for<E>(
        &self,
        n: u64,
        check: impl Fn() -> Result<(), E>,
    ) -> Result<Result<(), String>, E> {
        self.shared.wait_for(n, check).await
    }

    /// Takes the held keys (with the writing lock held: confirm them with
    /// [`Decoder::confirm`] once they are committed, before the guard goes).
    pub(crate) async fn take(&self) -> (Batch, tokio::sync::MutexGuard<'_, ()>) {
        let guard = self.shared.writing.lock().await;
        let batch = std::mem::take(&mut self.shared.state().held);
        self.shared.taken.notify_waiters();
        (batch, guard)
    }

    /// A copy of the held keys, which stay held (for a transaction that may roll back).
    pub(crate) async fn peek(&self) -> (Batch, tokio::sync::MutexGuard<'_, ()>) {
        let guard = self.shared.writing.lock().await;
        let st = self.shared.state();
        let batch = Batch {
            keys: st.held.keys.clone(),
            truncated: st.held.truncated,
            upto: st.held.upto,
        };
        drop(st);
        (batch, guard)
    }

    /// The slot may move to `lsn` (the keys up to there are in the log).
    pub(crate) fn confirm(&self, lsn: u64) {
        let mut st = self.shared.state();
        if lsn > st.confirmed {
            st.confirmed = lsn;
            drop(st);
            self.shared.confirm.notify_one();
        }
    }

    /// Gives up on the stream (keys taken could not be written): the next start reads the
    /// slot again from its confirmed position.
    pub(crate) fn abandon(&self, why: &str) {
        self.shared.fail(why.to_string());
    }

    /// Ends the stream: a last status update, then the connection closes.
    pub(crate) async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        let confirmed = self.shared.state().confirmed;
        let mut s = self.sender.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = s.status(confirmed).await;
            let _ = s.finish().await;
        })
        .await;
    }
}

/// The reading task: decodes the stream into held keys.
async fn read(shared: Arc<Shared>, mut rx: Receiver, keys: Vec<String>, tokens: String) {
    let mut decoding = Decoding {
        keys,
        tokens,
        positions: HashMap::new(),
        pending: Vec::new(),
        pending_truncate: false,
        in_transaction: false,
    };
    loop {
        // Held keys bounded, unless someone waits for a token (which may lie behind them).
        loop {
            let taken = shared.taken.notified();
            {
                let st = shared.state();
                if st.held.keys.len() < HELD || st.waiting > 0 {
                    break;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), taken).await;
        }
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(e) => return shared.fail(e.to_string()),
        };
        match event {
            Event::Data { data, .. } => {
                let message = match pgoutput::parse(&data) {
                    Ok(m) => m,
                    Err(e) => return shared.fail(e.to_string()),
                };
                if let Err(why) = decoding.apply(&shared, message) {
                    return shared.fail(why);
                }
            }
            Event::Keepalive { end, reply } => {
                decoding.idle_until(&shared, end);
                if reply {
                    shared.confirm.notify_one();
                }
            }
            Event::End => return shared.fail("the server ended the replication stream".into()),
        }
    }
}

/// The status task: tells the server where the slot may move, when asked and every
/// [`STATUS_EVERY`].
async fn report(shared: Arc<Shared>, sender: Arc<tokio::sync::Mutex<Sender>>) {
    loop {
        let _ = tokio::time::timeout(STATUS_EVERY, shared.confirm.notified()).await;
        let confirmed = shared.state().confirmed;
        let sent = sender.lock().await.status(confirmed).await;
        if let Err(e) = sent {
            return shared.fail(e.to_string());
        }
    }
}

/// What the reader knows between messages.
struct Decoding {
    /// The key columns.
    keys: Vec<String>,
    /// What this decoder's tokens start with.
    tokens: String,
    /// Per relation id: where each key column is in its rows.
    positions: HashMap<u32, Vec<usize>>,
    /// The keys of the transaction being read.
    pending: Vec<Vec<Option<String>>>,
    pending_truncate: bool,
    /// Between a transaction's begin and its commit.
    in_transaction: bool,
}

impl Decoding {
    /// A keepalive: the server has sent everything it decoded up to `end`. Outside a
    /// transaction, every commit before `end` has come out of the stream, so once the keys
    /// held now are in the log, the slot may move to `end` (while only other tables are
    /// written, the slot would otherwise hold back their WAL).
    fn idle_until(&self, shared: &Shared, end: u64) {
        if self.in_transaction {
            return;
        }
        let mut st = shared.state();
        if st.held.upto.is_none_or(|u| u < end) {
            st.held.upto = Some(end);
        }
    }

    fn apply(&mut self, shared: &Shared, message: Message) -> Result<(), String> {
        match message {
            Message::Begin => self.in_transaction = true,
            Message::Relation { id, columns } => {
                let pos: Option<Vec<usize>> = self
                    .keys
                    .iter()
                    .map(|k| columns.iter().position(|c| c == k))
                    .collect();
                let pos = pos.ok_or("the table's description lacks a key column")?;
                self.positions.insert(id, pos);
            }
            Message::Change { relation, rows } => {
                let pos = self
                    .positions
                    .get(&relation)
                    .ok_or("a change before its table's description")?;
                for tuple in &rows {
                    if let Some(key) = key_of(pos, tuple)? {
                        self.pending.push(key);
                    }
                }
            }
            Message::Truncate { relations } => {
                // The publication holds the table alone.
                if !relations.is_empty() {
                    self.pending.clear();
                    self.pending_truncate = true;
                }
            }
            Message::Commit { end_lsn } => {
                self.in_transaction = false;
                let mut st = shared.state();
                if std::mem::take(&mut self.pending_truncate) {
                    st.held.keys.clear();
                    st.held.truncated = true;
                }
                st.held.keys.append(&mut self.pending);
                st.held.upto = Some(st.held.upto.map_or(end_lsn, |u| u.max(end_lsn)));
                drop(st);
                shared.progressed.notify_waiters();
            }
            Message::Logical { prefix, content } if prefix == PREFIX => {
                let token = std::str::from_utf8(&content)
                    .ok()
                    .and_then(|c| c.strip_prefix(self.tokens.as_str()))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = token {
                    let mut st = shared.state();
                    st.token = st.token.max(n);
                    drop(st);
                    shared.progressed.notify_waiters();
                }
            }
            Message::Logical { .. } | Message::Other => {}
        }
        Ok(())
    }
}

/// The key of a decoded row; `None` for the old row of an update that kept its key.
fn key_of(pos: &[usize], tuple: &[Value]) -> Result<Option<Vec<Option<String>>>, String> {
    let mut key = Vec::with_capacity(pos.len());
    for &p in pos {
        match tuple.get(p) {
            Some(Value::Text(t)) => key.push(Some(t.clone())),
            Some(Value::Null) => return Ok(None),
            _ => {
                return Err(
                    "a key value stored out of line was left out of a change; use [capture] mode = \"trigger\"".into(),
                )
            }
        }
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream cut by the server or the network is tried again; a refusal (a pooler's
    /// protocol violation, a missing privilege) is not.
    #[test]
    fn only_a_cut_or_a_busy_slot_is_worth_another_try() {
        let server = |code: &str| {
            StreamError::from(ReplicationError::Server {
                code: code.into(),
                message: "m".into(),
            })
            .transient
        };
        assert!(server("57P01"), "terminated by an administrator");
        assert!(server("55006"), "slot active for another process");
        assert!(server("08006"), "connection failure");
        assert!(
            !server("08P01"),
            "pgbouncer's unsupported startup parameter"
        );
        assert!(!server("42501"), "no REPLICATION privilege");
        let cut = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        assert!(StreamError::from(ReplicationError::Io(cut)).transient);
        assert!(!StreamError::from(ReplicationError::Protocol("x".into())).transient);
        assert!(
            StreamError::from(ConnectError::Network {
                target: "t".into(),
                message: "reset".into()
            })
            .transient
        );
        assert!(
            !StreamError::from(ConnectError::PasswordRequired { target: "t".into() }).transient
        );
    }

    /// Tries go on, further and further apart, until the stream has failed for the whole
    /// patience.
    #[test]
    fn patience_backs_off_and_ends() {
        let mut p = Patience::new();
        assert_eq!(p.after_failure(), Some(Duration::from_millis(100)));
        assert_eq!(p.after_failure(), Some(Duration::from_millis(200)));
        for _ in 0..10 {
            p.after_failure();
        }
        assert_eq!(p.next, Duration::from_secs(2));
        p.since = Some(std::time::Instant::now() - STREAM_PATIENCE);
        assert_eq!(p.after_failure(), None);
        assert_eq!(p.failures, 13);
    }

    fn shared() -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            progressed: Notify::new(),
            taken: Notify::new(),
            confirm: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    fn decoding() -> Decoding {
        Decoding {
            keys: vec!["id".into()],
            tokens: "sync:n:".into(),
            positions: HashMap::new(),
            pending: Vec::new(),
            pending_truncate: false,
            in_transaction: false,
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn keys_are_held_per_whole_transaction_and_a_truncate_drops_the_ones_before() {
        let s = shared();
        let mut d = decoding();
        let change = |id: &str| Message::Change {
            relation: 1,
            rows: vec![vec![text("x"), text(id)]],
        };
        assert!(
            d.apply(&s, change("1")).is_err(),
            "a change before its relation"
        );
        d.apply(
            &s,
            Message::Relation {
                id: 1,
                columns: vec!["v".into(), "id".into()],
            },
        )
        .unwrap();
        d.apply(&s, change("1")).unwrap();
        assert!(s.state().held.keys.is_empty(), "nothing before the commit");
        d.apply(&s, Message::Commit { end_lsn: 10 }).unwrap();
        d.apply(&s, change("2")).unwrap();
        d.apply(&s, Message::Truncate { relations: vec![1] })
            .unwrap();
        d.apply(&s, change("3")).unwrap();
        d.apply(&s, Message::Commit { end_lsn: 20 }).unwrap();
        let st = s.state();
        assert_eq!(st.held.keys, vec![vec![Some("3".to_string())]]);
        assert!(st.held.truncated);
        assert_eq!(st.held.upto, Some(20));
    }

    #[test]
    fn tokens_count_only_with_the_run_prefix_and_this_decoders_nonce() {
        let s = shared();
        let mut d = decoding();
        let msg = |prefix: &str, content: &str| Message::Logical {
            prefix: prefix.into(),
            content: content.as_bytes().to_vec(),
        };
        d.apply(&s, msg("other", "sync:n:5")).unwrap();
        d.apply(&s, msg(PREFIX, "flush")).unwrap();
        d.apply(&s, msg(PREFIX, "sync:m:9")).unwrap();
        assert_eq!(s.state().token, 0);
        d.apply(&s, msg(PREFIX, "sync:n:3")).unwrap();
        d.apply(&s, msg(PREFIX, "sync:n:2")).unwrap();
        assert_eq!(s.state().token, 3);
    }

    #[test]
    fn a_keepalive_moves_the_slot_on_only_outside_a_transaction() {
        let s = shared();
        let mut d = decoding();
        d.idle_until(&s, 50);
        assert_eq!(s.state().held.upto, Some(50), "only other tables written");
        d.apply(&s, Message::Begin).unwrap();
        d.idle_until(&s, 80);
        assert_eq!(s.state().held.upto, Some(50), "a transaction is being read");
        d.apply(&s, Message::Commit { end_lsn: 70 }).unwrap();
        d.idle_until(&s, 60);
        assert_eq!(s.state().held.upto, Some(70), "never backwards");
        d.idle_until(&s, 90);
        assert_eq!(s.state().held.upto, Some(90));
    }

    #[test]
    fn a_wait_dropped_before_its_end_stops_counting() {
        let s = shared();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let wait = s.wait_for(1, || Ok::<_, ()>(()));
            let _ = tokio::time::timeout(Duration::from_millis(50), wait).await;
        });
        assert_eq!(s.state().waiting, 0);
    }

    #[test]
    fn an_old_row_without_its_key_is_no_key_and_an_unchanged_key_is_an_error() {
        assert_eq!(key_of(&[0], &[Value::Null]), Ok(None));
        assert!(key_of(&[0], &[Value::Unchanged]).is_err());
        assert!(key_of(&[3], &[text("1")]).is_err());
    }
}
