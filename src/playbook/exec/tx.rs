//! Transactions under the playbook's `lock_timeout`.

use tokio_postgres::Client;

pub(crate) use crate::db::tx::in_transaction;

/// `BEGIN` with the playbook's lock_timeout.
pub(crate) fn begin_with_lock_timeout(lock_timeout_ms: u64) -> String {
    format!("BEGIN; SET LOCAL lock_timeout = '{lock_timeout_ms}ms'")
}

/// Runs `sql` in one transaction after `SET LOCAL lock_timeout`; a single statement that
/// cannot run in a transaction block (`… CONCURRENTLY …`) runs alone under the timeout.
pub(crate) async fn try_tx(
    client: &Client,
    sql: &[String],
    lock_timeout_ms: u64,
) -> Result<(), tokio_postgres::Error> {
    if sql.len() == 1 && sql[0].contains(" CONCURRENTLY ") {
        client
            .batch_execute(&format!("SET lock_timeout = '{lock_timeout_ms}ms'"))
            .await?;
        let r = client.batch_execute(&sql[0]).await;
        client.batch_execute("RESET lock_timeout").await?;
        return r;
    }
    let body = format!(
        "BEGIN;\nSET LOCAL lock_timeout = '{lock_timeout_ms}ms';\n{}COMMIT;",
        script(sql)
    );
    let r = client.batch_execute(&body).await;
    if r.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    r
}

/// Statements as one script, each ended by `;`.
fn script(sql: &[String]) -> String {
    sql.iter().map(|s| format!("{s};\n")).collect()
}

/// How one attempt at a locking transaction went, timed by the client: from sending the
/// `LOCK` statements to their grant, and from the grant to the end of the transaction
/// (`COMMIT` done, or the rollback after a failure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timed {
    pub waited: std::time::Duration,
    /// `None` when the locks were not granted.
    pub held: Option<std::time::Duration>,
}

/// Like [`try_tx`] for a transaction that begins with the statements `locks`: they are sent
/// first and alone, so that the time the locks were held is known apart from the time
/// spent waiting for them. `inside` runs right after the grant, before `rest`.
pub(crate) async fn try_tx_timed<E: From<tokio_postgres::Error>>(
    client: &Client,
    locks: &[String],
    rest: &[String],
    lock_timeout_ms: u64,
    inside: impl AsyncFnOnce() -> Result<(), E>,
) -> (Result<(), E>, Timed) {
    let start = std::time::Instant::now();
    let first = format!(
        "{};\n{}",
        begin_with_lock_timeout(lock_timeout_ms),
        script(locks)
    );
    if let Err(e) = client.batch_execute(&first).await {
        let _ = client.batch_execute("ROLLBACK").await;
        let timed = Timed {
            waited: start.elapsed(),
            held: None,
        };
        return (Err(e.into()), timed);
    }
    let granted = std::time::Instant::now();
    let r = match inside().await {
        Ok(()) => client
            .batch_execute(&format!("{}COMMIT;", script(rest)))
            .await
            .map_err(E::from),
        Err(e) => Err(e),
    };
    if r.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    let timed = Timed {
        waited: granted - start,
        held: Some(granted.elapsed()),
    };
    (r, timed)
}
