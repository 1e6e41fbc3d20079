//! Transactions on a connection.

use tokio_postgres::Client;

/// Runs `body` in a transaction opened with `begin` (`BEGIN …`, and any `SET LOCAL`): commits
/// when it succeeds, rolls back when it fails.
pub(crate) async fn in_transaction<T, E: From<tokio_postgres::Error>>(
    client: &Client,
    begin: &str,
    body: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    client.batch_execute(begin).await?;
    match body.await {
        Ok(v) => Ok(client.batch_execute("COMMIT").await.map(|()| v)?),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
