//! The `events` table, the write workload that mirrors every committed write into
//! `expected`, and the checks after a swap or a rollback.

use super::*;

pub const EVENTS: &str = "
DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    account    integer NOT NULL DEFAULT 0,
    payload    text,
    amount     numeric(12,2)
);
CREATE INDEX events_account ON events (account);
CREATE VIEW recent_events AS SELECT id, created_at, account FROM events WHERE created_at >= '2024-03-01';
GRANT SELECT ON events TO reader;
GRANT SELECT ON recent_events TO reader;
";

/// Creates `events` with `rows` rows over six months of 2024 (some payloads NULL) and the
/// workload's side table `expected` holding the same rows.
pub fn setup_events(db: &Db, rows: i64) {
    db.exec(EVENTS);
    db.exec(&format!(
        "INSERT INTO events (created_at, account, payload, amount)
         SELECT '2024-01-01'::timestamptz + (i * 37 % 4344) * interval '1 hour' + (i % 60) * interval '1 second',
                i % 500,
                CASE WHEN i % 7 = 0 THEN NULL ELSE 'payload ' || i END,
                (i % 10000) / 100.0
         FROM generate_series(1, {rows}) i;
         CREATE TABLE expected (LIKE events);
         ALTER TABLE expected ADD PRIMARY KEY (id);
         INSERT INTO expected SELECT * FROM events;
         ANALYZE events;"
    ));
}

pub fn events_playbook(extra: &str) -> String {
    format!(
        "kind = \"partition\"
table = \"events\"

[partition]
column = \"created_at\"
strategy = \"range\"
interval = \"1 month\"
premake = 2

[backfill]
batch_size = 500
target_batch_ms = 50
{extra}
"
    )
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub counts: BTreeMap<&'static str, u64>,
    pub worst: BTreeMap<&'static str, Duration>,
    /// Errors from the database: none are expected.
    pub errors: Vec<String>,
    /// A write that touched no row, or a read that found none, for a row the workload knows
    /// to exist.
    pub anomalies: Vec<String>,
}

impl Stats {
    pub fn worst(&self) -> Duration {
        self.worst.values().copied().max().unwrap_or_default()
    }

    pub fn merge(&mut self, o: Stats) {
        for (k, v) in o.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in o.worst {
            let w = self.worst.entry(k).or_default();
            *w = (*w).max(v);
        }
        self.errors.extend(o.errors);
        self.anomalies.extend(o.anomalies);
    }

    pub fn assert_clean(&self) {
        assert!(
            self.errors.is_empty(),
            "workload errors: {:?}",
            &self.errors[..self.errors.len().min(10)]
        );
        assert!(
            self.anomalies.is_empty(),
            "workload anomalies: {:?}",
            &self.anomalies[..self.anomalies.len().min(10)]
        );
        for kind in [
            "insert", "update", "pair", "move", "rekey", "delete", "read",
        ] {
            assert!(
                self.counts.get(kind).copied().unwrap_or(0) > 0,
                "the workload never did a {kind}: {:?}",
                self.counts
            );
        }
    }

    pub fn report(&self, label: &str) -> String {
        let worst: Vec<String> = self
            .worst
            .iter()
            .map(|(k, v)| format!("{k} {:.0} ms", v.as_secs_f64() * 1000.0))
            .collect();
        format!(
            "{label}: {} ops ({:?}); worst latency: {}",
            self.counts.values().sum::<u64>(),
            self.counts,
            worst.join(", ")
        )
    }
}

/// Writers on `events`, each on its own connection and its own set of rows, each write
/// mirrored into `expected` in the same statement (so in the same transaction). Inserts,
/// updates (also of NULLs), updates moving a row to another partition, updates of the
/// primary key, deletes and reads, as fast as a 2 ms pause between operations allows.
pub struct Workload {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Stats>>,
}

impl Workload {
    /// Starts `writers` writers on the rows now in `expected`.
    pub fn start(db: &Db, writers: u64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let ids: Vec<i64> = db
            .query("SELECT id FROM expected ORDER BY id", &[])
            .iter()
            .map(|r| r.get(0))
            .collect();
        let threads = (0..writers)
            .map(|w| {
                let live: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|i| *i as u64 % writers == w)
                    .collect();
                let url = db.test_url();
                let stop = stop.clone();
                let ops = ops.clone();
                std::thread::spawn(move || {
                    rt().block_on(async move {
                        let client = connect(&url).await;
                        writer(&client, live, w, &stop, &ops).await
                    })
                })
            })
            .collect();
        let w = Workload { stop, ops, threads };
        w.wait_ops(50);
        w
    }

    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Waits until the workload has committed `n` more operations.
    pub fn wait_ops(&self, n: u64) {
        let target = self.ops() + n;
        wait_for(
            &format!("{n} more workload operations"),
            Duration::from_secs(60),
            || self.ops() >= target,
        );
    }

    pub fn finish(self) -> Stats {
        self.stop.store(true, Ordering::SeqCst);
        let mut s = Stats::default();
        for t in self.threads {
            s.merge(t.join().expect("a workload thread panicked"));
        }
        s
    }
}

async fn writer(
    c: &Client,
    mut live: Vec<i64>,
    seed: u64,
    stop: &AtomicBool,
    ops: &AtomicU64,
) -> Stats {
    let mut rng = fastrand::Rng::with_seed(seed + 7);
    let mut s = Stats::default();
    while !stop.load(Ordering::SeqCst) {
        let roll = rng.u32(0..100);
        let kind: &'static str = match roll {
            0..=24 => "insert",
            25..=44 => "update",
            45..=54 => "move",
            55..=64 => "rekey",
            65..=74 if live.len() > 100 => "delete",
            75..=84 => "pair",
            _ => "read",
        };
        let pick = rng.usize(0..live.len());
        let id = live[pick];
        let t0 = Instant::now();
        let result: Result<(), tokio_postgres::Error> = async {
            match kind {
                "insert" => {
                    let hours = rng.i32(-700..7000);
                    let account = rng.i32(0..500);
                    let payload = (rng.u8(..) >= 52).then(|| format!("new {hours}"));
                    let cents = rng.i32(0..1_000_000);
                    let row = c
                        .query_one(
                            "WITH r AS (INSERT INTO events (created_at, account, payload, amount)
                                        VALUES ('2024-01-01'::timestamptz + $1::int * interval '1 hour', $2, $3, $4::int / 100.0)
                                        RETURNING *)
                             INSERT INTO expected SELECT * FROM r RETURNING id",
                            &[&hours, &account, &payload, &cents],
                        )
                        .await?;
                    live.push(row.get(0));
                }
                "update" => {
                    let payload = (rng.u8(..) >= 64).then(|| format!("upd {}", rng.u32(..)));
                    let n = c
                        .execute(
                            "WITH r AS (UPDATE events SET payload = $2, amount = amount + 1 WHERE id = $1 RETURNING *)
                             UPDATE expected e SET payload = r.payload, amount = r.amount FROM r WHERE e.id = r.id",
                            &[&id, &payload],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("update of id {id} touched {n} rows"));
                    }
                }
                "pair" => {
                    // Two neighbouring rows in one transaction, the higher key first (the
                    // copy locks rows in key order), with a little work in between.
                    let other = live[(pick + 1) % live.len()];
                    let sql = "WITH r AS (UPDATE events SET account = account + 1 WHERE id = $1 RETURNING *)
                               UPDATE expected e SET account = r.account FROM r WHERE e.id = r.id";
                    c.batch_execute("BEGIN").await?;
                    let r: Result<(), tokio_postgres::Error> = async {
                        for row in [id.max(other), id.min(other)] {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                            let n = c.execute(sql, &[&row]).await?;
                            if n != 1 {
                                s.anomalies.push(format!("pair update of id {row} touched {n} rows"));
                            }
                        }
                        c.batch_execute("COMMIT").await
                    }
                    .await;
                    if r.is_err() {
                        let _ = c.batch_execute("ROLLBACK").await;
                    }
                    r?;
                }
                "move" => {
                    // Changes the partition key: usually another month, sometimes outside
                    // every range (the DEFAULT partition).
                    let days = rng.i32(-60..60);
                    let n = c
                        .execute(
                            "WITH r AS (UPDATE events SET created_at = created_at + $2::int * interval '1 day' WHERE id = $1 RETURNING *)
                             UPDATE expected e SET created_at = r.created_at FROM r WHERE e.id = r.id",
                            &[&id, &days],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("move of id {id} touched {n} rows"));
                    }
                }
                "rekey" => {
                    // Changes the primary key.
                    let rows = c
                        .query(
                            "WITH r AS (UPDATE events SET id = nextval('events_id_seq') WHERE id = $1 RETURNING id)
                             UPDATE expected e SET id = r.id FROM r WHERE e.id = $1 RETURNING e.id",
                            &[&id],
                        )
                        .await?;
                    match rows.as_slice() {
                        [r] => live[pick] = r.get(0),
                        _ => s
                            .anomalies
                            .push(format!("rekey of id {id} touched {} rows", rows.len())),
                    }
                }
                "delete" => {
                    let n = c
                        .execute(
                            "WITH r AS (DELETE FROM events WHERE id = $1 RETURNING id)
                             DELETE FROM expected e USING r WHERE e.id = r.id",
                            &[&id],
                        )
                        .await?;
                    if n != 1 {
                        s.anomalies.push(format!("delete of id {id} touched {n} rows"));
                    }
                    live.swap_remove(pick);
                }
                _ => {
                    let n = c
                        .query("SELECT id FROM events WHERE id = $1", &[&id])
                        .await?
                        .len();
                    if n != 1 {
                        s.anomalies.push(format!("read of id {id} found {n} rows"));
                    }
                    c.query(
                        "SELECT count(*) FROM events WHERE account = $1",
                        &[&rng.i32(0..500)],
                    )
                    .await?;
                }
            }
            Ok(())
        }
        .await;
        let took = t0.elapsed();
        match result {
            Ok(()) => {
                *s.counts.entry(kind).or_default() += 1;
                let w = s.worst.entry(kind).or_default();
                *w = (*w).max(took);
                ops.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                s.errors.push(format!("{kind} of id {id}: {e:?}"));
                if s.errors.len() > 50 {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s
}

/// The reverse log of the run after its swap (`[swap] reverse = "deferred"`), if any.
pub fn reverse_log(db: &Db) -> Option<String> {
    db.query(
        "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'lockstep'::regnamespace AND c.relname LIKE 'rlog%'",
        &[],
    )
    .first()
    .map(|r| r.get(0))
}

/// After a swap, the old table holds what the workload committed (`expected`) but for the
/// rows changed since: their keys (`id`) wait in the reverse log for a rollback to apply
/// them. With no reverse log, the old table equals `expected`. With a reverse slot
/// (`reverse = "logical"`), `lockstep sync-back` applies what it kept first.
pub fn assert_old_behind_by_the_log(db: &Db, old: &str, expected: &str) {
    let slot: bool = db.one(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND slot_name LIKE 'lockstep\\_r\\_%')",
    );
    if slot {
        let out = db.lockstep(&["sync-back"]);
        assert_exit(&out, 0);
        assert_eq!(
            reverse_log(db).map(|l| db.one::<i64>(&format!("SELECT count(*) FROM {l}"))),
            Some(0)
        );
    }
    match reverse_log(db) {
        None => {
            db.assert_same_rows(old, expected);
        }
        Some(log) => {
            let not_logged =
                |t: &str| format!("(SELECT * FROM {t} WHERE id NOT IN (SELECT id FROM {log})) {t}");
            db.assert_same_rows(&not_logged(old), &not_logged(expected));
        }
    }
}

/// After a completed run: `events` is partitioned and `events_old` is not, `events` equal
/// to what the workload committed, `events_old` too but for the changes since the swap
/// (in the reverse log).
pub fn assert_swapped(db: &Db) {
    let kinds: Vec<String> = db
        .query(
            "SELECT relkind::text FROM pg_class WHERE oid IN ('events'::regclass, 'events_old'::regclass) ORDER BY relname",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["p", "r"], "events, events_old");
    db.assert_same_rows("events", "expected");
    assert_old_behind_by_the_log(db, "events_old", "expected");
    let partitions: i64 =
        db.one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass");
    assert!(partitions >= 6, "{partitions} partitions");
    // Statistics were gathered before the swap, for every partition that has rows (read
    // from the catalog: `pg_stat_user_tables.last_analyze` comes from PostgreSQL 14's
    // statistics collector, which may lose a message on a busy machine).
    let unanalyzed: i64 = db.one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.reltuples > 0
           AND NOT EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid)",
    );
    assert_eq!(unanalyzed, 0, "partitions without statistics");
    // Autovacuum, off while the copy was filled, is on again.
    let no_autovacuum: i64 = db.one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass
           AND 'autovacuum_enabled=off' = ANY (coalesce(c.reloptions, '{}'))",
    );
    assert_eq!(no_autovacuum, 0, "partitions with autovacuum off");
    // The secondary index is on the new table, attached in every partition (so valid), and
    // no INVALID index is left anywhere.
    let index: String = db.one(
        "SELECT pg_get_indexdef('events_account'::regclass) || ' ' || indisvalid FROM pg_index WHERE indexrelid = 'events_account'::regclass",
    );
    assert_eq!(
        index,
        "CREATE INDEX events_account ON ONLY public.events USING btree (account) true"
    );
    let invalid: i64 = db.one("SELECT count(*) FROM pg_index WHERE NOT indisvalid");
    assert_eq!(invalid, 0, "INVALID indexes left");
}

/// After a rollback: the original `events` is back as it was, with every committed write.
pub fn assert_restored(db: &Db, relations_before: &[String], indexes_before: &[String]) {
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r");
    db.assert_same_rows("events", "expected");
    assert_eq!(
        db.relations("public"),
        relations_before,
        "relations in public"
    );
    assert_eq!(db.index_defs("events"), indexes_before, "indexes of events");
    let pk: String = db.one(
        "SELECT conname::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'p'",
    );
    assert_eq!(pk, "events_pkey PRIMARY KEY (id)");
    let triggers: i64 = db.one(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
    );
    assert_eq!(triggers, 0, "triggers left on events");
    assert_eq!(
        db.lockstep_functions(),
        0,
        "functions left in schema lockstep"
    );
    let seq: String = db.one("SELECT pg_get_serial_sequence('events', 'id')");
    assert_eq!(seq, "public.events_id_seq");
    let view_ok: bool =
        db.one("SELECT (SELECT count(*) FROM recent_events) = (SELECT count(*) FROM events WHERE created_at >= '2024-03-01')");
    assert!(view_ok);
    let granted: bool = db.one("SELECT has_table_privilege('reader', 'events', 'SELECT')");
    assert!(granted);
}
