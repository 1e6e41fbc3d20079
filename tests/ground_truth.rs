//! The lint lock model against real PostgreSQL: every statement of the ground-truth cases
//! (`tests/common/ground_truth_cases.rs`: the rule catalogue's table, and the shapes the
//! trace of real migration histories found) runs in `BEGIN … ROLLBACK` on a throwaway
//! cluster, on tables that hold rows; the locks it takes (`pg_locks`), the tables it
//! rewrites (`relfilenode`) and scans (`pg_stat_xact_user_tables`) must agree with the
//! lint report's prediction, as `lockstep trace` judges agreement (`trace::compare`): every
//! lock above ACCESS SHARE predicted with its mode, every lock predicted as always taken
//! taken, rewrites and scans as predicted, give or take those predicted as possible.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeMap;

use lockstep::db::cluster::TempCluster;
use lockstep::lint::catalog::Catalog;
use lockstep::lint::{check, prepare, LintOptions};
use lockstep::sql::ir::LockMode;
use lockstep::trace::{compare, Effect};
use tokio_postgres::{Client, NoTls};

#[path = "common/ground_truth_cases.rs"]
mod cases;
#[path = "common/ground_truth_corpus.rs"]
mod corpus_cases;

/// The base schema of every case.
fn base() -> String {
    format!("{}\n{}", cases::BASE, corpus_cases::EXTRA)
}

/// Every case: the rule catalogue's, the corpus causes', and the type-change matrix on a
/// table without and with an index on the column.
fn all_cases() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cases::CASES
        .iter()
        .chain(corpus_cases::CASES)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    for table in ["ty", "tyi"] {
        for (column, ty) in corpus_cases::TYPE_CHANGES {
            out.push((
                String::new(),
                format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE {ty}"),
            ));
        }
    }
    out
}

fn mode_from_pg(s: &str) -> Option<LockMode> {
    LockMode::ALL.into_iter().find(|m| m.pg_name() == s)
}

fn options() -> LintOptions {
    LintOptions {
        // The statements run with TimeZone UTC (set on each connection below).
        timezone: Some("UTC".into()),
        ..LintOptions::default()
    }
}

fn predict(setup: &str, stmt: &str) -> Effect {
    let opts = options();
    let earlier = format!("{}\n{setup};", base());
    let (_, catalog) = check(&earlier, prepare(&earlier), &opts, Catalog::default());
    let src = format!("{stmt};");
    let (r, _) = check(&src, prepare(&src), &opts, catalog);
    assert_eq!(r.locks.len(), 1, "{stmt}: one statement");
    Effect::of(&r.locks[0])
}

/// What `stmt` did, or PostgreSQL's message when it failed.
async fn observe(client: &Client, setup: &str, stmt: &str) -> Result<Effect, String> {
    if !setup.is_empty() {
        client.batch_execute(setup).await.expect("setup");
    }
    client.batch_execute("BEGIN").await.expect("begin");
    let rels = client
        .query(
            "SELECT c.oid::bigint, c.relname::text, c.relfilenode::bigint FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm')",
            &[],
        )
        .await
        .expect("pg_class");
    let before: BTreeMap<i64, (String, i64)> = rels
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                (r.get::<_, String>(1), r.get::<_, i64>(2)),
            )
        })
        .collect();
    let scans_before = scan_counts(client).await;
    if let Err(e) = client.batch_execute(stmt).await {
        client.batch_execute("ROLLBACK").await.expect("rollback");
        return Err(e
            .as_db_error()
            .map_or(e.to_string(), |d| d.message().to_string()));
    }
    let mut seen = Effect::default();
    for r in client
        .query(
            "SELECT relation::bigint, mode FROM pg_locks
             WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted",
            &[],
        )
        .await
        .expect("pg_locks")
    {
        let oid: i64 = r.get(0);
        let mode: String = r.get(1);
        if let (Some((name, _)), Some(m)) = (before.get(&oid), mode_from_pg(&mode)) {
            seen.touched.insert(name.clone());
            if m > LockMode::AccessShare {
                let e = seen.locks.entry(name.clone()).or_insert(m);
                *e = (*e).max(m);
            }
        }
    }
    for r in client
        .query("SELECT oid::bigint, relfilenode::bigint FROM pg_class", &[])
        .await
        .expect("relfilenode")
    {
        let oid: i64 = r.get(0);
        if let Some((name, node)) = before.get(&oid) {
            if *node != r.get::<_, i64>(1) && *node != 0 {
                seen.rewrites.insert(name.clone());
            }
        }
    }
    let scans_after = scan_counts(client).await;
    seen.scans = scans_after
        .iter()
        .filter(|(name, n)| scans_before.get(*name).copied().unwrap_or(0) < **n)
        .map(|(name, _)| name.clone())
        .filter(|n| before.values().any(|(b, _)| b == n))
        .collect();
    client.batch_execute("ROLLBACK").await.expect("rollback");
    Ok(seen)
}

async fn scan_counts(client: &Client) -> BTreeMap<String, i64> {
    client
        .query(
            "SELECT relname::text, coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables",
            &[],
        )
        .await
        .expect("pg_stat_xact_user_tables")
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect()
}

async fn connect(cluster: &TempCluster, db: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(&cluster.conn_string(db), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

#[test]
fn lock_model_matches_postgresql() {
    let cluster = TempCluster::start().expect("a throwaway PostgreSQL must start for this test");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin = connect(&cluster, "postgres").await;
        admin
            .batch_execute("CREATE DATABASE base")
            .await
            .expect("create base");
        let base_db = connect(&cluster, "base").await;
        base_db.batch_execute(&base()).await.expect("base schema");
        drop(base_db);
        // Cases without a set-up share one database: each runs in BEGIN … ROLLBACK.
        admin
            .batch_execute("CREATE DATABASE shared TEMPLATE base")
            .await
            .expect("create shared db");
        let shared = connect(&cluster, "shared").await;
        shared
            .batch_execute("SET timezone TO 'UTC'")
            .await
            .expect("timezone");
        let cases = all_cases();
        let mut mismatches = Vec::new();
        for (i, (setup, stmt)) in cases.iter().enumerate() {
            let own;
            let client = if setup.is_empty() {
                &shared
            } else {
                let db = format!("case_{i}");
                admin
                    .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE base"))
                    .await
                    .expect("create case db");
                own = connect(&cluster, &db).await;
                own.batch_execute("SET timezone TO 'UTC'")
                    .await
                    .expect("timezone");
                &own
            };
            let seen = match observe(client, setup, stmt).await {
                Ok(seen) => seen,
                Err(e) => {
                    mismatches.push(format!("{stmt}\n    failed: {e}"));
                    continue;
                }
            };
            let predicted = predict(setup, stmt);
            if !compare(&predicted, &seen, &BTreeMap::new()) {
                mismatches.push(format!(
                    "{stmt}\n    postgres: {seen:?}\n    lockstep: {predicted:?}"
                ));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} of {} statements differ:\n{}",
            mismatches.len(),
            cases.len(),
            mismatches.join("\n")
        );
    });
}
