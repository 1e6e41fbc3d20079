//! The statements the database has run against a table, from `pg_stat_statements`: what
//! the query check (`playbook/queries/`) reads before a change that can break queries.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::read::resolve;
use super::FactsError;
use crate::sql::ir::ObjName;

/// What `pg_stat_statements` shows of the statements that mention a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statements {
    /// The table's schema and name, as stored.
    pub schema: String,
    pub name: String,
    /// Whether the table's unqualified name resolves to it on the search_path of the role
    /// lockstep connects as (then unqualified names in the texts count as the table).
    pub unqualified: bool,
    /// That search_path, for messages.
    pub search_path: String,
    /// Normalized texts (`$1` for constants) that mention the table's name, each with its
    /// calls summed over the roles that ran it.
    pub texts: Vec<(String, i64)>,
    /// Entries whose text this role may not read (`<insufficient privilege>`: statements of
    /// other roles, without `pg_read_all_stats`).
    pub hidden: i64,
    /// Entries without a text (pg_stat_statements discards its query-text file when it
    /// cannot keep it).
    pub missing: i64,
}

/// Why the statements cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatementsError {
    #[error("pg_stat_statements is not installed in this database (CREATE EXTENSION pg_stat_statements; needs shared_preload_libraries)")]
    NotInstalled,
    #[error("pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and restart the server")]
    NotLoaded,
    #[error("this role may not read pg_stat_statements ({0}): grant it pg_read_all_stats, or EXECUTE on the extension's functions")]
    Denied(String),
    #[error(transparent)]
    Facts(#[from] FactsError),
}

/// What the texts of other roles read as without `pg_read_all_stats`.
const HIDDEN: &str = "<insufficient privilege>";

/// Reads the statements of the current database whose text mentions `table`'s name (a
/// case-insensitive substring: the query check parses them to tell which really use it).
pub async fn statements(client: &Client, table: &ObjName) -> Result<Statements, StatementsError> {
    let (_, oid) = resolve(client, table).await?;
    let row = client
        .query_one(
            "SELECT n.nspname::text, c.relname::text,
                    coalesce(to_regclass(quote_ident(c.relname::text)) = c.oid, false),
                    current_setting('search_path'),
                    (SELECT e.extnamespace::regnamespace::text FROM pg_extension e
                      WHERE e.extname = 'pg_stat_statements')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(|e| StatementsError::Facts(super::read::db(e)))?;
    let mut out = Statements {
        schema: row.get(0),
        name: row.get(1),
        unqualified: row.get(2),
        search_path: row.get(3),
        ..Statements::default()
    };
    let schema: Option<String> = row.get(4);
    let schema = schema.ok_or(StatementsError::NotInstalled)?;
    // `regnamespace::text` quotes the schema where it needs quotes.
    let sql = format!(
        "SELECT query, sum(calls)::bigint, count(*)::bigint FROM {schema}.pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND (query IS NULL OR query = $1 OR strpos(lower(query), lower($2)) > 0)
         GROUP BY query ORDER BY 2 DESC, 1"
    );
    let rows = client
        .query(&sql, &[&HIDDEN, &out.name])
        .await
        .map_err(|e| match e.code() {
            Some(c) if *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE => {
                StatementsError::NotLoaded
            }
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => StatementsError::Denied(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string()),
            ),
            _ => StatementsError::Facts(super::read::db(e)),
        })?;
    for r in rows {
        let query: Option<String> = r.get(0);
        let entries: i64 = r.get(2);
        match query {
            None => out.missing += entries,
            Some(q) if q == HIDDEN => out.hidden += entries,
            Some(q) => out.texts.push((q, r.get(1))),
        }
    }
    Ok(out)
}
