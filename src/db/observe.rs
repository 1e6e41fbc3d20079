//! Reading what a statement did from PostgreSQL's own views: the relation locks a backend
//! holds (`pg_locks`), each table's storage file (`pg_class.relfilenode`, which changes when
//! a table is rewritten) and sequential-scan counters (`pg_stat_xact_user_tables` inside a
//! transaction, `pg_stat_user_tables` outside one).

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::sql::ir::LockMode;

/// A user table: its name (unqualified) and storage file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    pub name: String,
    pub relfilenode: i64,
}

/// User tables (ordinary, partitioned, materialized views) by oid.
pub async fn tables(client: &Client) -> Result<BTreeMap<i64, TableFile>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.oid::bigint, c.relname::text, c.relfilenode::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                TableFile {
                    name: r.get(1),
                    relfilenode: r.get(2),
                },
            )
        })
        .collect())
}

/// The strongest granted relation lock `pid` holds on each relation, by oid.
pub async fn locks(
    client: &Client,
    pid: i32,
) -> Result<BTreeMap<i64, LockMode>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT relation::bigint, mode FROM pg_locks
             WHERE pid = $1 AND locktype = 'relation' AND granted AND relation IS NOT NULL",
            &[&pid],
        )
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let oid: i64 = r.get(0);
        let mode: String = r.get(1);
        if let Some(m) = LockMode::ALL.into_iter().find(|m| m.pg_name() == mode) {
            let e = out.entry(oid).or_insert(m);
            *e = (*e).max(m);
        }
    }
    Ok(out)
}

/// Sequential scans per table oid: this transaction's (`xact`) or the cumulative ones.
pub async fn seq_scans(
    client: &Client,
    xact: bool,
) -> Result<BTreeMap<i64, i64>, tokio_postgres::Error> {
    let sql = if xact {
        "SELECT relid::bigint, coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables"
    } else {
        "SELECT relid::bigint, coalesce(seq_scan, 0) FROM pg_stat_user_tables"
    };
    if !xact {
        client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await?;
    }
    let rows = client.query(sql, &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Makes the backend of `client` publish its pending statistics before its next idle
/// moment (PostgreSQL 15+; a no-op on older servers, whose counters lag instead).
pub async fn flush_stats(client: &Client) -> Result<(), tokio_postgres::Error> {
    let has = client
        .query_opt(
            "SELECT 1 FROM pg_proc WHERE proname = 'pg_stat_force_next_flush'",
            &[],
        )
        .await?
        .is_some();
    if has {
        client
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .await?;
    }
    Ok(())
}

/// The backend's process id.
pub async fn backend_pid(client: &Client) -> Result<i32, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0))
}

/// `SHOW lock_timeout`.
pub async fn lock_timeout(client: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(client.query_one("SHOW lock_timeout", &[]).await?.get(0))
}

/// The server's major version (`server_version_num / 10000`).
pub async fn server_major(client: &Client) -> Result<u32, tokio_postgres::Error> {
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await?
        .get(0);
    Ok(v.trim().parse::<u32>().map_or(0, |n| n / 10000))
}
