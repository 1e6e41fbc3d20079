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
    let mut body = format!("BEGIN;\nSET LOCAL lock_timeout = '{lock_timeout_ms}ms';\n");
    for s in sql {
        body.push_str(s);
        body.push_str(";\n");
    }
    body.push_str("COMMIT;");
    let r = client.batch_execute(&body).await;
    if r.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    r
}
