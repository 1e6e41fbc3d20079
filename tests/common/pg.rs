//! What the database tests share: a runtime and a connection to a throwaway cluster.

use tokio_postgres::{Client, NoTls};

/// A single-threaded runtime for a test's own queries.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Connects (on the current runtime) and drives the connection in the background.
pub async fn connect(conn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conn, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
