//! Is there a transaction (or statement) pooler between lockstep and PostgreSQL?
//!
//! A runner keeps session state: the run's advisory lock, session settings, and the
//! statements its driver prepares. Behind a pooler in transaction or statement mode
//! (pgbouncer `pool_mode = transaction`, for example) each transaction may run on another
//! server connection: prepared statements vanish or collide, and the advisory lock stays on
//! a server connection after lockstep has gone. [`probe`] finds out with two connections,
//! before anything is changed, and says what it saw.
//!
//! 1. The first connection sets a session variable to a random token and reads its backend
//!    pid.
//! 2. The second connection opens a transaction (which pins it to one server connection)
//!    and reads its pid and the variable: the same pid, or the token, means both clients
//!    share one server connection. A pooler hands the most recently released server
//!    connection out next, so this is what pgbouncer shows at once.
//! 3. While the second one keeps its transaction open, the first reads its pid and the
//!    variable again: another pid, a lost token, or no answer at all (a pool of one server
//!    connection waits for the transaction) means its session is not its own.
//!
//! Every query is a simple query (no prepared statement), so the probe itself works
//! through any pooler.

use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

/// How long the first connection may wait for an answer while the second holds a
/// transaction open: far above a round trip, short enough not to annoy.
const WAIT: Duration = Duration::from_secs(5);

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Each connection has a server session of its own.
    Direct,
    /// The connections do not keep their sessions: what was seen.
    Pooled(String),
}

/// The first row's columns of a simple query's answer.
async fn one_row(client: &Client, sql: &str) -> Result<Vec<Option<String>>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .unwrap_or_default())
}

/// (backend pid, the probe variable) of a connection.
async fn session(client: &Client) -> Result<(String, String), tokio_postgres::Error> {
    let row = one_row(
        client,
        "SELECT pg_backend_pid()::text, current_setting('lockstep.probe', true)",
    )
    .await?;
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok((get(0), get(1)))
}

/// Probes `a` and `b` (two connections made the same way, neither in a transaction).
/// Errors are the connections' own (a lost connection, for example); a pooler that
/// refuses a multi-statement transaction (statement mode) is a finding, not an error.
pub async fn probe(a: &Client, b: &Client) -> Result<Finding, tokio_postgres::Error> {
    let token = format!("{:016x}", fastrand::u64(..));
    let first = one_row(
        a,
        &format!("SELECT pg_backend_pid()::text, set_config('lockstep.probe', '{token}', false)"),
    )
    .await?;
    let pid_a = first.first().cloned().flatten().unwrap_or_default();

    if let Err(e) = b.simple_query("BEGIN").await {
        return Ok(Finding::Pooled(format!(
            "a second connection could not open a transaction ({}): a pooler in statement mode",
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string())
        )));
    }
    let finding = pinned(a, b, &pid_a, &token).await;
    // Whatever happened, end the second connection's transaction.
    let _ = b.simple_query("ROLLBACK").await;
    let _ = a
        .simple_query("SELECT set_config('lockstep.probe', '', false)")
        .await;
    finding
}

/// Steps 2 and 3, with `b` inside a transaction.
async fn pinned(
    a: &Client,
    b: &Client,
    pid_a: &str,
    token: &str,
) -> Result<Finding, tokio_postgres::Error> {
    let (pid_b, seen_b) = session(b).await?;
    if pid_b == pid_a || seen_b == token {
        return Ok(Finding::Pooled(format!(
            "two connections of lockstep were served by the same server backend (pid {pid_b})"
        )));
    }
    match tokio::time::timeout(WAIT, session(a)).await {
        Err(_) => Ok(Finding::Pooled(format!(
            "a connection got no answer for {} s while another held a transaction open: its server connection was handed to the other client",
            WAIT.as_secs()
        ))),
        Ok(r) => {
            let (pid_again, seen_again) = r?;
            if pid_again != pid_a || seen_again != token {
                Ok(Finding::Pooled(format!(
                    "a connection's session changed between two statements (server backend pid {pid_a}, then {pid_again})"
                )))
            } else {
                Ok(Finding::Direct)
            }
        }
    }
}
