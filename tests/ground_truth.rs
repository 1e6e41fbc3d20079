//! The lint lock model against real PostgreSQL: every statement of the ground-truth table
//! in the rule catalogue runs in `BEGIN … ROLLBACK` on a throwaway cluster; the locks it
//! holds (`pg_locks`, modes above ACCESS SHARE), the tables it rewrites (`relfilenode`) and scans
//! (`pg_stat_xact_user_tables`) must equal the lint report's prediction.

use std::collections::{BTreeMap, BTreeSet};

use lockstep::db::cluster::TempCluster;
use lockstep::lint::catalog::Catalog;
use lockstep::lint::{check, prepare, LintOptions};
use lockstep::sql::ir::LockMode;
use tokio_postgres::{Client, NoTls};

const BASE: &str = "
CREATE TABLE u (id int PRIMARY KEY, email text);
INSERT INTO u SELECT g, 'e' || g FROM generate_series(1, 50) g;
CREATE TABLE t (id int PRIMARY KEY, u_id int, a varchar(100), s text, n numeric(10,2),
                c cidr, i int, note text);
INSERT INTO t SELECT g, g, 'a' || g, 's' || g, g, '10.0.0.0/8', g, 'x' FROM generate_series(1, 50) g;
CREATE INDEX t_i_idx ON t (i);
CREATE TABLE fkref (id int, t_id int REFERENCES t (id));
CREATE TABLE solo (id int, v text);
INSERT INTO solo SELECT g, 'v' FROM generate_series(1, 50) g;
CREATE TABLE mvsrc (id int);
CREATE MATERIALIZED VIEW mv AS SELECT id FROM mvsrc;
CREATE TABLE parent (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE part1 PARTITION OF parent FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE loose (id int, at date);
INSERT INTO loose VALUES (1, '2021-06-01');
CREATE TYPE mood AS ENUM ('a');
CREATE TABLE child (id int, u_id int);
INSERT INTO child SELECT g, g FROM generate_series(1, 50) g;
CREATE TABLE owned (id int, u_id int REFERENCES u (id));
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
";

/// (set-up committed before, statement measured).
const CASES: &[(&str, &str)] = &[
    ("", "ALTER TABLE t ADD COLUMN c1 int"),
    ("", "ALTER TABLE t ADD COLUMN c1 int NOT NULL DEFAULT 0"),
    ("", "ALTER TABLE t ADD COLUMN c1 timestamptz DEFAULT now()"),
    ("", "ALTER TABLE t ADD COLUMN c1 uuid DEFAULT gen_random_uuid()"),
    ("", "ALTER TABLE t ADD COLUMN c1 bigserial"),
    ("", "ALTER TABLE t ADD COLUMN c1 int GENERATED ALWAYS AS IDENTITY"),
    ("", "ALTER TABLE t ADD COLUMN c1 int GENERATED ALWAYS AS (i + 1) STORED"),
    ("", "ALTER TABLE t ALTER COLUMN a TYPE varchar(200)"),
    ("", "ALTER TABLE t ALTER COLUMN a TYPE text"),
    ("", "ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2)"),
    ("", "ALTER TABLE t ALTER COLUMN c TYPE inet"),
    ("", "ALTER TABLE t ALTER COLUMN a TYPE varchar(50)"),
    ("", "ALTER TABLE t ALTER COLUMN s TYPE varchar(300)"),
    ("", "ALTER TABLE t ALTER COLUMN n TYPE numeric(10,3)"),
    ("", "ALTER TABLE t ALTER COLUMN i TYPE bigint"),
    ("", "ALTER TABLE t ALTER COLUMN id TYPE bigint"),
    ("", "ALTER TABLE t ALTER COLUMN note SET NOT NULL"),
    (
        "ALTER TABLE t ADD CONSTRAINT t_note_nn CHECK (note IS NOT NULL)",
        "ALTER TABLE t ALTER COLUMN note SET NOT NULL",
    ),
    ("ALTER TABLE t ALTER COLUMN note SET NOT NULL", "ALTER TABLE t ALTER COLUMN note DROP NOT NULL"),
    ("", "ALTER TABLE t ALTER COLUMN note SET DEFAULT 'y'"),
    ("", "ALTER TABLE t RENAME COLUMN note TO memo"),
    ("", "ALTER TABLE t DROP COLUMN note"),
    ("", "ALTER TABLE t ENABLE ROW LEVEL SECURITY"),
    ("", "ALTER TABLE t ALTER COLUMN i SET STATISTICS 500"),
    ("", "ALTER TABLE t SET (fillfactor = 70)"),
    ("", "COMMENT ON TABLE t IS 'orders'"),
    ("", "CREATE STATISTICS t_stats ON i, n FROM t"),
    ("", "ALTER TABLE t ADD CONSTRAINT t_i_pos CHECK (i > 0)"),
    ("", "ALTER TABLE t ADD CONSTRAINT t_i_pos CHECK (i > 0) NOT VALID"),
    (
        "ALTER TABLE t ADD CONSTRAINT t_i_pos CHECK (i > 0) NOT VALID",
        "ALTER TABLE t VALIDATE CONSTRAINT t_i_pos",
    ),
    ("", "ALTER TABLE child ADD CONSTRAINT child_u_fk FOREIGN KEY (u_id) REFERENCES u (id)"),
    (
        "",
        "ALTER TABLE child ADD CONSTRAINT child_u_fk FOREIGN KEY (u_id) REFERENCES u (id) NOT VALID",
    ),
    (
        "ALTER TABLE child ADD CONSTRAINT child_u_fk FOREIGN KEY (u_id) REFERENCES u (id) NOT VALID",
        "ALTER TABLE child VALIDATE CONSTRAINT child_u_fk",
    ),
    ("", "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a)"),
    (
        "CREATE UNIQUE INDEX t_a_uidx ON t (a)",
        "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_uidx",
    ),
    ("", "CREATE INDEX t_n_idx ON t (n)"),
    ("", "DROP INDEX t_i_idx"),
    ("", "REINDEX INDEX t_i_idx"),
    ("", "REINDEX TABLE t"),
    ("", "CREATE TRIGGER t_trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg()"),
    (
        "CREATE TRIGGER t_trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg()",
        "ALTER TABLE t DISABLE TRIGGER t_trg",
    ),
    (
        "",
        "ALTER TABLE parent ATTACH PARTITION loose FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')",
    ),
    ("", "ALTER TABLE parent DETACH PARTITION part1"),
    ("", "CLUSTER t USING t_pkey"),
    ("", "ALTER TABLE solo SET UNLOGGED"),
    ("", "REFRESH MATERIALIZED VIEW mv"),
    ("", "DROP TABLE owned"),
    ("", "ALTER TYPE mood ADD VALUE 'b'"),
    ("", "LOCK TABLE t IN SHARE MODE"),
    ("", "UPDATE solo SET v = 'w'"),
    ("", "DELETE FROM solo"),
    ("", "INSERT INTO solo VALUES (0, 'z')"),
];

#[derive(Debug, PartialEq, Eq)]
struct Effect {
    locks: BTreeMap<String, LockMode>,
    rewrites: BTreeSet<String>,
    scans: BTreeSet<String>,
}

fn mode_from_pg(s: &str) -> Option<LockMode> {
    LockMode::ALL.into_iter().find(|m| m.pg_name() == s)
}

fn predict(setup: &str, stmt: &str) -> Effect {
    let opts = LintOptions::default();
    let earlier = format!("{BASE}\n{setup};");
    let (_, catalog) = check(&earlier, prepare(&earlier), &opts, Catalog::default());
    let src = format!("{stmt};");
    let (r, _) = check(&src, prepare(&src), &opts, catalog);
    let report = &r.locks[0].report;
    let mut locks = BTreeMap::new();
    for l in &report.locks {
        let name = if l.via_index {
            format!("<table of index {}>", l.table)
        } else {
            l.table.to_string()
        };
        let e = locks.entry(name).or_insert(l.mode);
        *e = (*e).max(l.mode);
    }
    Effect {
        locks,
        rewrites: report.rewrites.iter().map(|t| t.to_string()).collect(),
        scans: report.scans.iter().map(|t| t.to_string()).collect(),
    }
}

async fn observe(client: &Client, setup: &str, stmt: &str) -> Effect {
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
    client.batch_execute(stmt).await.unwrap_or_else(|e| {
        panic!(
            "{stmt}: {}",
            e.as_db_error()
                .map_or(e.to_string(), |d| d.message().to_string())
        )
    });
    let mut locks = BTreeMap::new();
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
        // ACCESS SHARE (plain reads of other tables) is not part of the model.
        if let (Some((name, _)), Some(m)) = (
            before.get(&oid),
            mode_from_pg(&mode).filter(|m| *m > LockMode::AccessShare),
        ) {
            let e = locks.entry(name.clone()).or_insert(m);
            *e = (*e).max(m);
        }
    }
    let mut rewrites = BTreeSet::new();
    for r in client
        .query("SELECT oid::bigint, relfilenode::bigint FROM pg_class", &[])
        .await
        .expect("relfilenode")
    {
        let oid: i64 = r.get(0);
        if let Some((name, node)) = before.get(&oid) {
            if *node != r.get::<_, i64>(1) && *node != 0 {
                rewrites.insert(name.clone());
            }
        }
    }
    let scans_after = scan_counts(client).await;
    let scans = scans_after
        .iter()
        .filter(|(name, n)| scans_before.get(*name).copied().unwrap_or(0) < **n)
        .map(|(name, _)| name.clone())
        .filter(|n| before.values().any(|(b, _)| b == n))
        .collect();
    client.batch_execute("ROLLBACK").await.expect("rollback");
    Effect {
        locks,
        rewrites,
        scans,
    }
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
        let base = connect(&cluster, "base").await;
        base.batch_execute(BASE).await.expect("base schema");
        drop(base);
        let mut mismatches = Vec::new();
        for (i, (setup, stmt)) in CASES.iter().enumerate() {
            let db = format!("case_{i}");
            admin
                .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE base"))
                .await
                .expect("create case db");
            let client = connect(&cluster, &db).await;
            let seen = observe(&client, setup, stmt).await;
            let predicted = predict(setup, stmt);
            if seen != predicted {
                mismatches.push(format!(
                    "{stmt}\n    postgres: {seen:?}\n    lockstep: {predicted:?}"
                ));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} of {} statements differ:\n{}",
            mismatches.len(),
            CASES.len(),
            mismatches.join("\n")
        );
    });
}
