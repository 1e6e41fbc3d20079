//! The run lock: one session advisory lock per table keeps two runners apart. This module
//! takes it (after making sure no transaction pooler sits between lockstep and the server,
//! since a pooled session would keep the lock after lockstep has gone), says who holds it
//! when it is taken, and ends a holder that is provably not a live runner (`--takeover`).
//!
//! A runner proves it is alive with a heartbeat: every [`BEAT`] its second connection
//! writes the time into `lockstep.runners`, a row per table. A holder that is neither
//! running a statement nor inside a transaction, and whose runner's heartbeat is older than
//! [`STALE`] (or came from a backend that no longer exists), is a leftover: a client killed behind a pooler, or a connection lost on the
//! network whose server session has not noticed yet.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::exec::{dberr, runner_session, EngineError};
use super::state;
use crate::db::pooler::{self, Finding};

/// How often a runner writes its heartbeat.
pub const BEAT: Duration = Duration::from_secs(2);
/// A heartbeat older than this is a runner gone (many beats missed, even on a busy host).
pub const STALE: Duration = Duration::from_secs(15);
/// Without any heartbeat (a runner of an older version), a holder idle this long is gone.
const IDLE_WITHOUT_BEAT: Duration = Duration::from_secs(60);
/// How long to wait for an ended backend to let go.
const LET_GO: Duration = Duration::from_secs(15);

/// The advisory-lock key of a table.
const KEY_SQL: &str = "hashtextextended('lockstep:' || $1, 0)";

/// Refuses to go on when `client` (a run's main connection) and `other` (its second one)
/// do not keep their sessions: a transaction or statement pooler sits in between. First
/// thing of every command that takes the run lock, before any other statement.
pub(crate) async fn refuse_pooler(
    client: &Client,
    other: Option<&Client>,
) -> Result<(), EngineError> {
    let Some(other) = other else { return Ok(()) };
    match pooler::probe(client, other).await {
        Ok(Finding::Direct) => Ok(()),
        Ok(Finding::Pooled(seen)) => Err(EngineError::Pooled(seen)),
        Err(e) => Err(dberr("checking for a connection pooler")(e)),
    }
}

/// Takes the run lock for `table` on `client` (the run's main connection). With
/// `takeover`, a holder that is not a live runner is ended first.
pub(crate) async fn acquire(
    client: &Client,
    table: &str,
    takeover: bool,
) -> Result<(), EngineError> {
    if !try_lock_a_moment(client, table).await? {
        let Some(found) = holder(client, table).await? else {
            // Let go between the two queries: try once more.
            if try_lock(client, table).await? {
                return runner_session(client).await;
            }
            return Err(busy(table, None, takeover));
        };
        if !takeover {
            return Err(busy(table, Some(found), false));
        }
        if let Some(why) = found.alive() {
            return Err(EngineError::State(format!(
                "--takeover refused: backend pid {} holds the run lock of {table}, and {why}. {}",
                found.pid,
                found.describe()
            )));
        }
        end(client, &found).await?;
        if !try_lock(client, table).await? {
            let now = holder(client, table).await?;
            return Err(busy(table, now, false));
        }
    }
    runner_session(client).await
}

/// [`try_lock`] for up to a second: a command that just ended leaves its server process
/// (and the lock with it) for a few milliseconds after its client is gone, and the next
/// command run right after it must not find the table busy.
async fn try_lock_a_moment(client: &Client, table: &str) -> Result<bool, EngineError> {
    for _ in 0..20 {
        if try_lock(client, table).await? {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    try_lock(client, table).await
}

async fn try_lock(client: &Client, table: &str) -> Result<bool, EngineError> {
    Ok(client
        .query_one(
            &format!("SELECT pg_try_advisory_lock({KEY_SQL})"),
            &[&table],
        )
        .await
        .map_err(dberr("advisory lock"))?
        .get(0))
}

fn busy(table: &str, holder: Option<Holder>, takeover_tried: bool) -> EngineError {
    EngineError::Busy {
        table: table.to_string(),
        holder: holder.map_or_else(
            || "its holder has just let go: try again".to_string(),
            |h| h.explain(takeover_tried),
        ),
    }
}

/// Ends the holder's backend and waits until it is gone.
async fn end(client: &Client, holder: &Holder) -> Result<(), EngineError> {
    let ended: bool = client
        .query_one("SELECT pg_terminate_backend($1)", &[&holder.pid])
        .await
        .map_err(|e| EngineError::State(format!(
            "--takeover could not end backend pid {} ({}): it takes the same role, a superuser or pg_signal_backend; ask an administrator to run `SELECT pg_terminate_backend({})`",
            holder.pid,
            e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()),
            holder.pid
        )))?
        .get(0);
    if !ended {
        return Err(EngineError::State(format!(
            "--takeover: backend pid {} could not be ended (it is gone, or not this role's to end)",
            holder.pid
        )));
    }
    let start = Instant::now();
    while start.elapsed() < LET_GO {
        let alive: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                &[&holder.pid],
            )
            .await
            .map_err(dberr("pg_stat_activity"))?
            .get(0);
        if !alive {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(EngineError::State(format!(
        "--takeover: backend pid {} was asked to end but is still there after {} s",
        holder.pid,
        LET_GO.as_secs()
    )))
}

/// The last heartbeat of a table's runner.
#[derive(Debug, Clone)]
pub struct Beat {
    /// `lockstep <version> (pid <os pid> on <host>)`.
    pub process: String,
    pub run_id: String,
    /// The runner's main backend (the one that took the lock).
    pub backend_pid: i32,
    /// Whether that backend still exists.
    pub backend_alive: bool,
    pub age: Duration,
}

/// The backend holding a table's run lock.
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: i32,
    pub user: String,
    /// `active`, `idle`, `idle in transaction` …
    pub state: String,
    pub in_transaction: bool,
    /// Since its last state change.
    pub idle: Duration,
    pub application: String,
    /// The client's address, or `local socket`.
    pub client: String,
    /// The heartbeat of the table's last runner, when one was recorded.
    pub beat: Option<Beat>,
}

impl Holder {
    /// Why the holder may be a live runner, or `None` when it is provably a leftover.
    pub fn alive(&self) -> Option<String> {
        if self.state == "active" {
            return Some("it is running a statement right now".to_string());
        }
        if self.in_transaction {
            return Some(format!("it is inside a transaction ({})", self.state));
        }
        match &self.beat {
            // A fresh heartbeat of a runner whose main backend is gone (and is not this
            // holder) is a runner killed a moment ago.
            Some(b) if b.age < STALE && (b.backend_alive || b.backend_pid == self.pid) => Some(format!(
                "its runner is alive: {} (run {}) reported {} s ago",
                b.process,
                b.run_id,
                b.age.as_secs()
            )),
            None if self.idle < IDLE_WITHOUT_BEAT => Some(format!(
                "no runner heartbeat is recorded and it has been idle for only {} s (a runner may be between two steps); try again after {} s of idleness",
                self.idle.as_secs(),
                IDLE_WITHOUT_BEAT.as_secs()
            )),
            _ => None,
        }
    }

    /// The holder in one sentence.
    pub fn describe(&self) -> String {
        let beat = match &self.beat {
            Some(b) => format!(
                "; last runner heartbeat: {} (run {}, backend pid {}) {} s ago",
                b.process,
                b.run_id,
                b.backend_pid,
                b.age.as_secs()
            ),
            None => "; no runner heartbeat recorded".to_string(),
        };
        format!(
            "Backend pid {}: user {}, {} for {} s, from {}, application `{}`{beat}",
            self.pid,
            self.user,
            self.state,
            self.idle.as_secs(),
            self.client,
            self.application
        )
    }

    /// What the user sees when the lock is taken: who, and what to do.
    fn explain(&self, takeover_tried: bool) -> String {
        let what = match self.alive() {
            Some(why) => format!("{why}: wait for it, or stop that runner (Ctrl-C or `lockstep pause`)"),
            None if takeover_tried => "it is still there after the takeover".to_string(),
            None => "it is not a live runner (a client killed behind a connection pooler, or a lost network connection, leaves its server session behind): `--takeover` on resume, rollback or finalize ends that backend and goes on".to_string(),
        };
        format!(
            "backend pid {} holds its run lock; {what}. {}",
            self.pid,
            self.describe()
        )
    }
}

/// The holder of `table`'s run lock, if any (any connection can ask).
pub async fn holder(client: &Client, table: &str) -> Result<Option<Holder>, EngineError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT a.pid, coalesce(a.usename::text, '?'), coalesce(a.state, '?'),
                        a.xact_start IS NOT NULL,
                        extract(epoch FROM now() - coalesce(a.state_change, a.backend_start))::float8,
                        coalesce(a.application_name, ''),
                        coalesce(host(a.client_addr), 'local socket')
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND ((l.classid::bigint << 32) | l.objid::bigint) = {KEY_SQL}
                 LIMIT 1"
            ),
            &[&table],
        )
        .await
        .map_err(dberr("pg_locks"))?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Holder {
        pid: r.get(0),
        user: r.get(1),
        state: r.get(2),
        in_transaction: r.get(3),
        idle: secs(r.get(4)),
        application: r.get(5),
        client: r.get(6),
        beat: beat(client, table).await,
    }))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The table's last heartbeat (none before any was written, or without the table).
async fn beat(client: &Client, table: &str) -> Option<Beat> {
    let r = client
        .query_opt(
            "SELECT process, run_id, backend_pid, extract(epoch FROM now() - beat_at)::float8,
                    EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid)
             FROM lockstep.runners r WHERE table_name = $1",
            &[&table],
        )
        .await
        .ok()??;
    Some(Beat {
        process: r.get(0),
        run_id: r.get(1),
        backend_pid: r.get(2),
        age: secs(r.get(3)),
        backend_alive: r.get(4),
    })
}

/// What the runner's heartbeat says of this process.
fn process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "an unknown host".to_string(), |h| h.trim().to_string());
    format!(
        "lockstep {} (pid {} on {host})",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    )
}

/// Runs `work` while writing the runner's heartbeat for `run_id` on `table` through
/// `beat_on` (a connection other than the main one, which is busy with long statements).
/// Without a second connection, `work` runs without a heartbeat.
pub(crate) async fn beating<T>(
    client: &Client,
    beat_on: Option<&Client>,
    table: &str,
    run_id: &str,
    work: impl Future<Output = T>,
) -> T {
    let Some(other) = beat_on else {
        return work.await;
    };
    let Ok(pid) = client.query_one("SELECT pg_backend_pid()", &[]).await else {
        return work.await;
    };
    let pid: i32 = pid.get(0);
    let me = process();
    let beats = async {
        if state::ensure_runners(other).await.is_err() {
            // No heartbeat table (no privilege to create it): work without one.
            return;
        }
        loop {
            let _ = other
                .execute(
                    "INSERT INTO lockstep.runners (table_name, run_id, backend_pid, process, beat_at)
                     VALUES ($1, $2, $3, $4, now())
                     ON CONFLICT (table_name) DO UPDATE
                     SET run_id = excluded.run_id, backend_pid = excluded.backend_pid,
                         process = excluded.process, beat_at = excluded.beat_at",
                    &[&table, &run_id, &pid, &me],
                )
                .await;
            tokio::time::sleep(BEAT).await;
        }
    };
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => r,
        () = beats => work.await,
    }
}
