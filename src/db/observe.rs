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

/// User tables (ordinary, partitioned, materialized views; temporary ones too) by oid.
pub async fn tables(client: &Client) -> Result<BTreeMap<i64, TableFile>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.oid::bigint, c.relname::text, c.relfilenode::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'",
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
    relation_locks(client, pid, true).await
}

/// The strongest relation lock `pid` holds or waits for on each relation, by oid: a
/// statement waiting for a lock shows the mode it asked for.
pub async fn lock_requests(
    client: &Client,
    pid: i32,
) -> Result<BTreeMap<i64, LockMode>, tokio_postgres::Error> {
    relation_locks(client, pid, false).await
}

async fn relation_locks(
    client: &Client,
    pid: i32,
    granted_only: bool,
) -> Result<BTreeMap<i64, LockMode>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT relation::bigint, mode FROM pg_locks
             WHERE pid = $1 AND locktype = 'relation' AND relation IS NOT NULL
               AND (granted OR NOT $2)",
            &[&pid, &granted_only],
        )
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let mode: String = r.get(1);
        if let Some(m) = LockMode::ALL.into_iter().find(|m| m.pg_name() == mode) {
            let e = out.entry(r.get::<_, i64>(0)).or_insert(m);
            *e = (*e).max(m);
        }
    }
    Ok(out)
}

/// Opens a transaction on `client` that holds a snapshot and `mode` on every user table
/// (materialized views cannot be locked), so that a statement of another session that
/// needs either waits for it (see [`waits_for_caller`]); `COMMIT` lets it go on. On an
/// error the transaction is rolled back.
pub async fn hold_all_tables(client: &Client, mode: LockMode) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await?;
    let held = lock_all_tables(client, mode).await;
    if held.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    held
}

async fn lock_all_tables(client: &Client, mode: LockMode) -> Result<(), tokio_postgres::Error> {
    let names: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !names.is_empty() {
        client
            .batch_execute(&format!(
                "LOCK TABLE {} IN {} MODE",
                names.join(", "),
                mode.sql_name()
            ))
            .await?;
    }
    Ok(())
}

/// The tables named `names` (unqualified, in any schema) and every table whose foreign
/// keys reference them, directly or through others: `(oid, qualified and quoted name)`,
/// the referencing tables first.
pub async fn referencing_closure(
    client: &Client,
    names: &[String],
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH RECURSIVE t(oid, depth) AS (
               SELECT c.oid, 0 FROM pg_class c
               WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'p')
               UNION
               SELECT f.conrelid, t.depth + 1 FROM pg_constraint f JOIN t ON f.confrelid = t.oid
               WHERE f.contype = 'f' AND f.conrelid <> f.confrelid AND t.depth < 20
             )
             SELECT c.oid::bigint, format('%I.%I', n.nspname, c.relname), max(t.depth) d
             FROM t JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
             GROUP BY 1, 2 ORDER BY d DESC, 2",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether backend `pid` waits for a lock the calling session holds.
pub async fn waits_for_caller(client: &Client, pid: i32) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT pg_backend_pid() = ANY (pg_blocking_pids($1))",
            &[&pid],
        )
        .await?
        .get(0))
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
    if can_flush_stats(client).await? {
        client
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .await?;
    }
    Ok(())
}

/// Whether the server can publish a backend's statistics on demand (PostgreSQL 15+): before
/// that, another session sees a statement's scans only some time after it ended.
pub async fn can_flush_stats(client: &Client) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pg_proc WHERE proname = 'pg_stat_force_next_flush'",
            &[],
        )
        .await?
        .is_some())
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

/// `SHOW TimeZone`.
pub async fn timezone(client: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(client.query_one("SHOW TimeZone", &[]).await?.get(0))
}

/// The server's major version (`server_version_num / 10000`).
pub async fn server_major(client: &Client) -> Result<u32, tokio_postgres::Error> {
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await?
        .get(0);
    Ok(v.trim().parse::<u32>().map_or(0, |n| n / 10000))
}
