//! Catalog facts beyond the table's own that some kinds need, each read by a function of its
//! own (the kinds call the ones they need); and the bounds of the data, for partitions.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::read::db;
use super::{Facts, FactsError};

/// An existing index, for `reindex` and `drop-index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// The constraint the index backs, if any.
    pub constraint: Option<String>,
    pub partitioned: bool,
}

/// Catalog facts beyond the table's own, read for the kind at hand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// `server_version_num`.
    pub server_version: i32,
    /// Names of the table's constraints.
    pub constraints: Vec<String>,
    /// Names of relations in the table's schema that a plan would create, found taken.
    pub taken: Vec<String>,
    /// `foreign-key`: the referenced table (quoted, qualified) and its primary key.
    pub referenced: Option<(String, Vec<String>)>,
    /// `reindex`, `drop-index`: the index.
    pub index: Option<IndexInfo>,
    /// `column-type`: views using the column.
    pub column_views: Vec<String>,
    /// `column-type`: CHECK constraints (name, definition) using the column.
    pub column_checks: Vec<(String, String)>,
    /// `column-type`: the column's default's sequence, if any (quoted, qualified), with its
    /// data type.
    pub column_sequence: Option<(String, String)>,
    /// Partitions of a partitioned table (quoted, qualified).
    pub partitions: Vec<String>,
}

/// `server_version_num`.
pub async fn server_version(client: &Client) -> Result<i32, FactsError> {
    Ok(client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(db)?
        .get(0))
}

/// The first column of `sql`'s rows, for the table's oid.
async fn texts(client: &Client, sql: &str, oid: u32) -> Result<Vec<String>, FactsError> {
    Ok(client
        .query(sql, &[&oid])
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The names of the table's constraints.
pub async fn constraint_names(client: &Client, f: &Facts) -> Result<Vec<String>, FactsError> {
    texts(
        client,
        "SELECT conname::text FROM pg_constraint WHERE conrelid = $1 ORDER BY 1",
        f.oid,
    )
    .await
}

/// The partitions of a partitioned table (quoted, qualified), by name.
pub async fn partitions(client: &Client, f: &Facts) -> Result<Vec<String>, FactsError> {
    texts(
        client,
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1 ORDER BY 1",
        f.oid,
    )
    .await
}

/// A table (quoted, qualified) and its primary key's columns, if the table exists.
pub async fn table_and_key(
    client: &Client,
    table: &str,
) -> Result<Option<(String, Vec<String>)>, FactsError> {
    Ok(client
        .query_opt(
            "SELECT c.oid::regclass::text,
                    coalesce((SELECT array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
                      FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p'), '{}')
             FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(db)?
        .map(|r| (r.get(0), r.get(1))))
}

/// The table's index `name`, if it has one.
pub async fn index(
    client: &Client,
    f: &Facts,
    name: &str,
) -> Result<Option<IndexInfo>, FactsError> {
    Ok(client
        .query_opt(
            "SELECT pg_get_indexdef(i.indexrelid),
                    (SELECT conname::text FROM pg_constraint WHERE conindid = i.indexrelid LIMIT 1),
                    ic.relkind = 'I'
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1 AND ic.relname = $2",
            &[&f.oid, &name],
        )
        .await
        .map_err(db)?
        .map(|r| IndexInfo {
            name: name.to_string(),
            definition: r.get(0),
            constraint: r.get(1),
            partitioned: r.get(2),
        }))
}

/// Views that use `column` of the table.
pub async fn column_views(
    client: &Client,
    f: &Facts,
    column: &str,
) -> Result<Vec<String>, FactsError> {
    Ok(client
        .query(
            "SELECT DISTINCT v.oid::regclass::text
             FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid JOIN pg_class v ON v.oid = rw.ev_class
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND a.attname = $2 AND v.oid <> $1
             ORDER BY 1",
            &[&f.oid, &column],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// CHECK constraints (name, definition) that use `column`.
pub async fn column_checks(
    client: &Client,
    f: &Facts,
    column: &str,
) -> Result<Vec<(String, String)>, FactsError> {
    Ok(client
        .query(
            "SELECT con.conname::text, pg_get_constraintdef(con.oid)
             FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
             WHERE con.conrelid = $1 AND con.contype = 'c' AND a.attname = $2
             ORDER BY 1",
            &[&f.oid, &column],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The sequence of `column`'s default (a serial, not an identity), with its data type.
pub async fn column_sequence(
    client: &Client,
    f: &Facts,
    column: &str,
) -> Result<Option<(String, String)>, FactsError> {
    Ok(client
        .query_opt(
            "SELECT s.seqrelid::regclass::text, format_type(s.seqtypid, NULL)
             FROM pg_sequence s WHERE s.seqrelid = to_regclass(pg_get_serial_sequence($1, $2))
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = $3 AND a.attname = $2 AND a.attidentity <> '')",
            &[&f.qualified(), &column, &f.oid],
        )
        .await
        .map_err(db)?
        .map(|r| (r.get(0), r.get(1))))
}

/// The options of the table's identity columns' sequences, by column, as an identity
/// column's definition gives them (`START WITH 1 INCREMENT BY 1 …`; the sequence's type is
/// the column's).
pub async fn identity_options(
    client: &Client,
    f: &Facts,
) -> Result<Vec<(String, String)>, FactsError> {
    pairs(
        client,
        f,
        "SELECT a.attname::text,
                    format('START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s',
                           s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                           CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END)
             FROM pg_attribute a
             JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
                             AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
             JOIN pg_sequence s ON s.seqrelid = d.objid
             WHERE a.attrelid = $1 AND a.attidentity <> ''
             ORDER BY 1",
    )
    .await
}

/// The names of the table's NOT NULL constraints, by column (PostgreSQL 18 names them;
/// nothing before).
pub async fn not_null_names(
    client: &Client,
    f: &Facts,
) -> Result<Vec<(String, String)>, FactsError> {
    if f.server_version < 180_000 {
        return Ok(Vec::new());
    }
    pairs(
        client,
        f,
        "SELECT a.attname::text, c.conname::text FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.conrelid = $1 AND c.contype = 'n'
             ORDER BY 1",
    )
    .await
}

/// Two text columns of a query on the table's oid (`$1`).
async fn pairs(client: &Client, f: &Facts, sql: &str) -> Result<Vec<(String, String)>, FactsError> {
    Ok(client
        .query(sql, &[&f.oid])
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The rows of a query that reads the table's data to plan (`what`, for messages: the
/// bounds of partitions), every column as text.
pub async fn data_rows(
    client: &Client,
    what: &str,
    sql: &str,
) -> Result<Vec<Vec<String>>, FactsError> {
    Ok(client
        .query(sql, &[])
        .await
        .map_err(|e| FactsError::Data {
            what: what.to_string(),
            message: match e.as_db_error() {
                Some(d) => format!("{} ({})", d.message(), d.code().code()),
                None => e.to_string(),
            },
        })?
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
        .collect())
}
