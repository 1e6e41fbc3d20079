//! What a new table would be: the statements that make it, run in a transaction that is
//! rolled back, and the columns PostgreSQL made of them. A rebuild's preflight learns from
//! it what its actions do to the columns, and that every statement of the new table works,
//! before anything is changed.

use tokio_postgres::Client;

use super::read::{columns, db};
use super::{Column, FactsError};

/// Why the statements did not all work: the first one that failed, and PostgreSQL's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub statement: usize,
    pub message: String,
}

/// Runs `statements` in one transaction under `lock_timeout_ms`, reads the columns of
/// `table` (quoted, qualified) as they made it, and rolls everything back.
pub async fn try_statements(
    client: &Client,
    lock_timeout_ms: u64,
    statements: &[String],
    table: &str,
) -> Result<Result<Vec<Column>, Failed>, FactsError> {
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"
        ))
        .await
        .map_err(db)?;
    let result = async {
        for (i, s) in statements.iter().enumerate() {
            if let Err(e) = client.batch_execute(s).await {
                let message = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string());
                return Ok(Err(Failed {
                    statement: i,
                    message,
                }));
            }
        }
        let row = client
            .query_one(
                "SELECT to_regclass($1)::oid, current_setting('server_version_num')::int",
                &[&table],
            )
            .await
            .map_err(db)?;
        let Some(oid) = row.get::<_, Option<u32>>(0) else {
            return Err(FactsError::NoTable(table.to_string()));
        };
        // Definitions read as `read_table` reads them: every name qualified.
        client
            .batch_execute("SET LOCAL search_path = pg_catalog")
            .await
            .map_err(db)?;
        columns(client, oid, row.get(1)).await.map(Ok)
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
}
