//! The fidelity oracle: a "kitchen-sink" table with every property a swap must carry over
//! (comments, statistics targets and options, storage and compression, collations, identity
//! and serial sequences with their options and grants, valid and NOT VALID checks, a
//! deferrable unique constraint, foreign keys in and out, partial, expression, INCLUDE and
//! opclass indexes, triggers in every state, a rule, row-level security with policies,
//! grants on the table and its columns, replica identity, a publication, extended
//! statistics, a dependent view), converted while a role that owns nothing writes to it
//! through the whole run, the swap and finalize, with a logical replication slot reading
//! the publication.
//!
//! Before and after, three independent descriptions of the table must agree, but for what
//! partitioning is meant to change: the catalog as this test reads it, `pg_dump
//! --schema-only`, and lockstep's own definition model (so that a property added to the
//! model later is compared without changing this test). The slot must have seen every
//! change of the writer exactly once, under the table's own name.

use std::collections::BTreeMap;

use super::*;

/// The kitchen-sink table (PostgreSQL 15 syntax). `{legacy_fk}` adds a NOT VALID foreign
/// key, which a partitioned table can have from PostgreSQL 18 on.
const KITCHEN: &str = r#"
CREATE ROLE kitchen_owner;
CREATE ROLE app_writer LOGIN;
CREATE ROLE reader;
CREATE TABLE suppliers (id bigint PRIMARY KEY);
INSERT INTO suppliers SELECT generate_series(1, 10);
CREATE TABLE kitchen (
  id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 2 CACHE 5),
  at timestamptz NOT NULL,
  account int NOT NULL DEFAULT 0,
  code text COLLATE "C" NOT NULL,
  payload text COMPRESSION pglz,
  amount numeric(12,2) CONSTRAINT kitchen_amount_positive CHECK (amount >= 0),
  supplier bigint CONSTRAINT kitchen_supplier_fk REFERENCES suppliers (id),
  legacy_supplier bigint,
  doubled int GENERATED ALWAYS AS (account * 2) STORED,
  serial_no serial,
  CONSTRAINT kitchen_pkey PRIMARY KEY (id, at),
  CONSTRAINT kitchen_code_at UNIQUE (code, at) DEFERRABLE INITIALLY DEFERRED
) WITH (fillfactor = 90);
ALTER TABLE kitchen OWNER TO kitchen_owner;
ALTER SEQUENCE kitchen_serial_no_seq OWNER TO kitchen_owner;
ALTER TABLE kitchen ALTER COLUMN payload SET STORAGE EXTERNAL;
INSERT INTO kitchen (at, account, code, payload, amount, supplier, legacy_supplier)
  SELECT '2024-01-01'::timestamptz + i * interval '37 minutes', i % 50, 'c' || i, 'p' || i, i % 5000, 1 + i % 10, 99
  FROM generate_series(1, 20000) i;
ALTER TABLE kitchen ADD CONSTRAINT kitchen_amount_small CHECK (amount < 4000) NOT VALID;
{legacy_fk}
CREATE TABLE kitchen_orders (id bigint PRIMARY KEY, kitchen_id bigint, kitchen_at timestamptz,
  CONSTRAINT kitchen_orders_kitchen_fk FOREIGN KEY (kitchen_id, kitchen_at) REFERENCES kitchen (id, at) ON DELETE CASCADE);
INSERT INTO kitchen_orders SELECT i, id, at FROM (SELECT row_number() OVER () i, id, at FROM kitchen LIMIT 100) s;
CREATE INDEX kitchen_partial ON kitchen (account) WHERE amount > 0;
CREATE INDEX kitchen_expr ON kitchen (lower(code));
CREATE INDEX kitchen_incl ON kitchen (account) INCLUDE (amount);
CREATE INDEX kitchen_ops ON kitchen (code text_pattern_ops);
COMMENT ON TABLE kitchen IS 'everything a table can be';
COMMENT ON COLUMN kitchen.code IS 'the code';
COMMENT ON CONSTRAINT kitchen_amount_positive ON kitchen IS 'no debts';
COMMENT ON CONSTRAINT kitchen_amount_small ON kitchen IS 'small amounts';
COMMENT ON CONSTRAINT kitchen_code_at ON kitchen IS 'one code per moment';
COMMENT ON CONSTRAINT kitchen_pkey ON kitchen IS 'the key';
COMMENT ON CONSTRAINT kitchen_supplier_fk ON kitchen IS 'who supplies';
COMMENT ON INDEX kitchen_expr IS 'lower codes';
ALTER TABLE kitchen ALTER COLUMN payload SET STATISTICS 555;
ALTER TABLE kitchen ALTER COLUMN account SET (n_distinct = 100);
CREATE STATISTICS kitchen_stats (ndistinct, dependencies) ON account, code FROM kitchen;
ALTER STATISTICS kitchen_stats SET STATISTICS 300;
COMMENT ON STATISTICS kitchen_stats IS 'account and code';
CREATE TABLE kitchen_audit (n bigserial, op text, at timestamptz DEFAULT now());
CREATE FUNCTION kitchen_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.kitchen_audit (op) VALUES (TG_OP); RETURN NULL; END $$;
CREATE TRIGGER kitchen_audited AFTER INSERT OR DELETE ON kitchen FOR EACH ROW EXECUTE FUNCTION kitchen_audit();
CREATE TRIGGER kitchen_off AFTER UPDATE ON kitchen FOR EACH ROW EXECUTE FUNCTION kitchen_audit();
ALTER TABLE kitchen DISABLE TRIGGER kitchen_off;
CREATE TRIGGER kitchen_replica AFTER UPDATE ON kitchen FOR EACH ROW EXECUTE FUNCTION kitchen_audit();
ALTER TABLE kitchen ENABLE REPLICA TRIGGER kitchen_replica;
COMMENT ON TRIGGER kitchen_audited ON kitchen IS 'counts writes';
CREATE RULE kitchen_notify AS ON DELETE TO kitchen DO ALSO NOTIFY kitchen_changes;
COMMENT ON RULE kitchen_notify ON kitchen IS 'tells listeners';
ALTER TABLE kitchen ENABLE ROW LEVEL SECURITY;
CREATE POLICY kitchen_writers ON kitchen FOR ALL TO app_writer USING (true) WITH CHECK (account >= 0);
CREATE POLICY kitchen_readers ON kitchen AS RESTRICTIVE FOR SELECT TO reader USING (account < 40);
COMMENT ON POLICY kitchen_writers ON kitchen IS 'writers write';
GRANT SELECT, INSERT, DELETE ON kitchen TO app_writer;
GRANT UPDATE (payload) ON kitchen TO app_writer;
GRANT SELECT ON kitchen TO reader;
GRANT USAGE ON SEQUENCE kitchen_serial_no_seq TO app_writer;
GRANT SELECT ON SEQUENCE kitchen_id_seq TO reader;
GRANT INSERT ON kitchen_audit TO app_writer;
GRANT USAGE ON SEQUENCE kitchen_audit_n_seq TO app_writer;
ALTER TABLE kitchen REPLICA IDENTITY FULL;
CREATE PUBLICATION kitchen_pub FOR TABLE kitchen{pub_options};
CREATE VIEW kitchen_recent AS SELECT id, at, code FROM kitchen WHERE at > '2024-01-10';
GRANT SELECT ON kitchen_recent TO reader;
ANALYZE kitchen;
"#;

const LEGACY_FK: &str = "ALTER TABLE kitchen ADD CONSTRAINT kitchen_legacy_fk FOREIGN KEY (legacy_supplier) REFERENCES suppliers (id) NOT VALID;";

const PLAYBOOK: &str = "kind = \"partition\"
table = \"kitchen\"
[partition]
column = \"at\"
strategy = \"range\"
interval = \"1 month\"
premake = 1
[backfill]
batch_size = 2000
[swap]
lock_timeout = \"200ms\"
backoff = \"50ms\"
";

fn kitchen(db: &Db) {
    let v: i32 = db.one("SELECT current_setting('server_version_num')::int");
    // PostgreSQL 18 refuses UPDATE and DELETE on a table whose replica identity holds a
    // generated column that its publication does not publish.
    let pub_options = if v >= 180_000 {
        " WITH (publish_generated_columns = stored)"
    } else {
        ""
    };
    db.exec(
        &KITCHEN
            .replace("{legacy_fk}", if v >= 180_000 { LEGACY_FK } else { "" })
            .replace("{pub_options}", pub_options),
    );
}

/// The table as the catalog describes it, one line per property, sorted; independent of
/// lockstep's own reading of the catalog.
const DEFINITION: &str = r#"
WITH t AS (SELECT 'public.kitchen'::regclass AS oid)
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('column %s %s %s collation=%s notnull=%s identity=%s generated=%s default=%s storage=%s compression=%s statistics=%s options=%s comment=%s acl=%s',
           a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), co.collname, a.attnotnull,
           a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attstorage,
           a.attcompression, a.attstattarget, a.attoptions, col_description(a.attrelid, a.attnum),
           (SELECT array_agg(x ORDER BY x) FROM unnest(a.attacl::text[]) x)) AS line
    FROM t JOIN pg_attribute a ON a.attrelid = t.oid LEFT JOIN pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('constraint %s %s %s valid=%s deferrable=%s deferred=%s comment=%s', c.conname, c.contype,
           pg_get_constraintdef(c.oid), c.convalidated, c.condeferrable, c.condeferred,
           obj_description(c.oid, 'pg_constraint'))
    FROM t JOIN pg_constraint c ON c.conrelid = t.oid WHERE c.conparentid = 0
  UNION ALL
  SELECT format('inbound %s %s %s valid=%s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid), c.convalidated)
    FROM t JOIN pg_constraint c ON c.confrelid = t.oid WHERE c.conparentid = 0 AND c.conrelid <> t.oid
  UNION ALL
  SELECT format('index %s %s replident=%s comment=%s', ic.relname,
           replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '), i.indisreplident,
           obj_description(i.indexrelid, 'pg_class'))
    FROM t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class ic ON ic.oid = i.indexrelid
  UNION ALL
  SELECT format('trigger %s %s enabled=%s comment=%s', tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled,
           obj_description(tg.oid, 'pg_trigger'))
    FROM t JOIN pg_trigger tg ON tg.tgrelid = t.oid WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT format('rule %s %s enabled=%s comment=%s', r.rulename, pg_get_ruledef(r.oid), r.ev_enabled,
           obj_description(r.oid, 'pg_rewrite'))
    FROM t JOIN pg_rewrite r ON r.ev_class = t.oid
  UNION ALL
  SELECT format('policy %s %s %s %s %s %s comment=%s', p.policyname, p.permissive, p.roles, p.cmd, p.qual,
           p.with_check, (SELECT obj_description(pp.oid, 'pg_policy') FROM pg_policy pp
                          WHERE pp.polrelid = 'public.kitchen'::regclass AND pp.polname = p.policyname))
    FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = 'kitchen'
  UNION ALL
  SELECT format('table owner=%s acl=%s rls=%s forced=%s replident=%s comment=%s tablespace=%s persistence=%s',
           pg_get_userbyid(c.relowner), (SELECT array_agg(x ORDER BY x) FROM unnest(c.relacl::text[]) x),
           c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
           obj_description(c.oid, 'pg_class'), c.reltablespace, c.relpersistence)
    FROM t JOIN pg_class c ON c.oid = t.oid
  UNION ALL
  SELECT format('statistics %s %s target=%s owner=%s comment=%s', s.stxname, pg_get_statisticsobjdef(s.oid),
           s.stxstattarget, pg_get_userbyid(s.stxowner), obj_description(s.oid, 'pg_statistic_ext'))
    FROM t JOIN pg_statistic_ext s ON s.stxrelid = t.oid
  UNION ALL
  SELECT format('publication %s', p.pubname) FROM pg_publication_tables p
    WHERE p.schemaname = 'public' AND p.tablename = 'kitchen'
  UNION ALL
  SELECT format('sequence %s of %s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owner=%s acl=%s',
           s.seqrelid::regclass, a.attname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
           s.seqcycle, pg_get_userbyid(sc.relowner), (SELECT array_agg(x ORDER BY x) FROM unnest(sc.relacl::text[]) x))
    FROM t JOIN pg_depend dep ON dep.refobjid = t.oid AND dep.classid = 'pg_class'::regclass
    JOIN pg_sequence s ON s.seqrelid = dep.objid JOIN pg_class sc ON sc.oid = s.seqrelid
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.refobjsubid
  UNION ALL
  SELECT format('view %s %s acl=%s', v.oid::regclass, pg_get_viewdef(v.oid), v.relacl)
    FROM t JOIN pg_depend dep ON dep.refobjid = t.oid AND dep.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class AND v.oid <> t.oid
    GROUP BY v.oid
) lines
"#;

/// `pg_dump --schema-only` of the table, without its comments and blank lines, and with the
/// changes partitioning is meant to make put back: the access method a partitioned table
/// has none of, `PARTITION BY`, `ONLY`, its storage parameters (which move to its
/// partitions).
fn dump(db: &Db) -> String {
    let bin = lockstep::db::cluster::find_bin_dir().expect("PostgreSQL binaries");
    let url = db.url.replace("application_name=lockstep", "");
    let out = std::process::Command::new(bin.join("pg_dump"))
        .args([
            "--schema-only",
            "--table",
            "public.kitchen",
            "--dbname",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("--")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && *l != "SET default_table_access_method = heap;"
        })
        .map(|l| {
            if l == "PARTITION BY RANGE (at);" {
                "WITH (fillfactor='90');".to_string()
            } else {
                l.replace(" ON ONLY ", " ON ")
                    .replace("ALTER TABLE ONLY ", "ALTER TABLE ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// lockstep's definition model of the table, as JSON, without what partitioning is meant
/// to change (the table's oid and kind, its size, its storage parameters, which move to the
/// partitions; the publication's partition-root publishing) or what is not a property of
/// the table.
fn model(db: &Db) -> serde_json::Value {
    let f = db
        .rt
        .block_on(lockstep::playbook::facts::read(
            &db.client,
            &lockstep::sql::ir::ObjName::new("kitchen"),
        ))
        .or_else(|_| {
            db.rt.block_on(lockstep::playbook::facts::read_table(
                &db.client,
                &lockstep::sql::ir::ObjName::new("kitchen"),
                true,
            ))
        })
        .unwrap();
    let mut v = serde_json::to_value(f).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "oid",
        "partitioned",
        "rows_estimate",
        "total_bytes",
        "reloptions",
        "refusals",
        "access_method",
    ] {
        o.remove(k);
    }
    for p in o["publications"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("via_root");
    }
    v
}

/// The three descriptions.
fn describe(db: &Db) -> (String, String, serde_json::Value) {
    (db.one(DEFINITION), dump(db), model(db))
}

fn assert_same(
    before: &(String, String, serde_json::Value),
    after: &(String, String, serde_json::Value),
) {
    let diff = |a: &str, b: &str| {
        let a: Vec<&str> = a.lines().collect();
        let b: Vec<&str> = b.lines().collect();
        let gone: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
        let new: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
        // The same lines in another order: show where the order starts to differ.
        let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
        let around = |l: &[&str]| l[at.saturating_sub(4)..(at + 8).min(l.len())].join("\n");
        format!(
            "lost: {gone:#?}\ngained: {new:#?}\nfirst difference at line {at}, before:\n{}\nafter:\n{}",
            around(&a),
            around(&b)
        )
    };
    assert!(
        before.0 == after.0,
        "the catalog differs:\n{}",
        diff(&before.0, &after.0)
    );
    assert!(
        before.1 == after.1,
        "pg_dump differs:\n{}",
        diff(&before.1, &after.1)
    );
    assert!(
        before.2 == after.2,
        "lockstep's model differs:\n{}",
        diff(
            &serde_json::to_string_pretty(&before.2).unwrap(),
            &serde_json::to_string_pretty(&after.2).unwrap()
        )
    );
}

/// What the role that owns nothing did, and what failed.
#[derive(Debug, Default)]
struct Written {
    inserted: Vec<String>,
    updated: Vec<String>,
    deleted: Vec<String>,
    errors: Vec<String>,
}

/// A writer connected as `app_writer`: inserts (identity ids, RLS checked, the audit
/// trigger firing), updates of the one column it may update, deletes (the rule firing), of
/// its own rows only, until stopped.
fn writer(db: &Db, stop: Arc<AtomicBool>) -> JoinHandle<Written> {
    let url = db.url.replace("user=postgres", "user=app_writer");
    std::thread::spawn(move || {
        rt().block_on(async move {
            let c = connect(&format!("{url} application_name=workload")).await;
            let mut w = Written::default();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let code = format!("w{n}");
                let at = format!("2024-{:02}-15 12:00:00+00", 1 + n % 12);
                let r = match n % 4 {
                    0 | 1 => c
                        .execute(
                            "INSERT INTO kitchen (at, account, code, payload, amount, supplier)
                             VALUES ($1::text::timestamptz, 7, $2, 'fresh', 5, 3)",
                            &[&at, &code],
                        )
                        .await
                        .map(|_| w.inserted.push(code.clone())),
                    2 => {
                        let victim = format!("w{}", n - 1);
                        c.execute(
                            "UPDATE kitchen SET payload = 'changed' WHERE code = $1",
                            &[&victim],
                        )
                        .await
                        .map(|rows| {
                            if rows > 0 {
                                w.updated.push(victim)
                            }
                        })
                    }
                    _ => {
                        let victim = format!("w{}", n - 2);
                        c.execute("DELETE FROM kitchen WHERE code = $1", &[&victim])
                            .await
                            .map(|rows| {
                                if rows > 0 {
                                    w.deleted.push(victim)
                                }
                            })
                    }
                };
                if let Err(e) = r {
                    w.errors.push(format!("{code}: {e:?}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            w
        })
    })
}

/// Changes a logical slot has (left there), from its pgoutput messages: per operation, the
/// relation's name and the `code` of the row.
fn decoded(db: &Db, slot: &str) -> Vec<(char, String, String)> {
    // Decoding reads up to the flushed end of the WAL, and the test cluster commits without
    // waiting for the flush: one commit that waits flushes every one before it.
    db.exec("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT");
    let rows = db.query(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
             'proto_version', '1', 'publication_names', 'kitchen_pub')",
        &[&slot],
    );
    let mut relations: BTreeMap<u32, (String, Vec<String>)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in rows {
        let m: Vec<u8> = r.get(0);
        let mut p = Pgoutput { b: &m, at: 1 };
        match m[0] {
            b'R' => {
                let id = p.u32();
                let _schema = p.cstring();
                let name = p.cstring();
                p.at += 1;
                let n = p.u16();
                let cols = (0..n)
                    .map(|_| {
                        p.at += 1;
                        let c = p.cstring();
                        p.at += 8;
                        c
                    })
                    .collect();
                relations.insert(id, (name, cols));
            }
            op @ (b'I' | b'U' | b'D') => {
                let id = p.u32();
                // The last tuple of the message: the new row, or the deleted one.
                let mut values = Vec::new();
                while p.at < m.len() {
                    p.at += 1; // 'N', 'K' or 'O'
                    values = p.tuple();
                }
                let (name, cols) = &relations[&id];
                let code = cols
                    .iter()
                    .position(|c| c == "code")
                    .and_then(|i| values.get(i).cloned().flatten())
                    .unwrap_or_default();
                out.push((op as char, name.clone(), code));
            }
            _ => {}
        }
    }
    out
}

/// A reader of pgoutput messages.
struct Pgoutput<'a> {
    b: &'a [u8],
    at: usize,
}

impl Pgoutput<'_> {
    fn u16(&mut self) -> u16 {
        let v = u16::from_be_bytes([self.b[self.at], self.b[self.at + 1]]);
        self.at += 2;
        v
    }

    fn u32(&mut self) -> u32 {
        let v = u32::from_be_bytes(self.b[self.at..self.at + 4].try_into().unwrap());
        self.at += 4;
        v
    }

    fn cstring(&mut self) -> String {
        let end = self.b[self.at..].iter().position(|&c| c == 0).unwrap() + self.at;
        let s = String::from_utf8_lossy(&self.b[self.at..end]).into_owned();
        self.at = end + 1;
        s
    }

    fn tuple(&mut self) -> Vec<Option<String>> {
        let n = self.u16();
        (0..n)
            .map(|_| {
                let kind = self.b[self.at];
                self.at += 1;
                if kind == b't' {
                    let len = self.u32() as usize;
                    let s = String::from_utf8_lossy(&self.b[self.at..self.at + len]).into_owned();
                    self.at += len;
                    Some(s)
                } else {
                    None
                }
            })
            .collect()
    }
}

fn logical_cluster() -> TempCluster {
    TempCluster::builder()
        .setting("wal_level", "logical")
        .start()
        .expect("a throwaway PostgreSQL must start for this test")
}

#[test]
fn a_swap_carries_over_everything_a_table_is_for_a_role_that_owns_nothing_and_for_cdc() {
    let cluster = logical_cluster();
    let db = Db::create(&cluster, "kitchen");
    kitchen(&db);
    db.exec("SELECT pg_create_logical_replication_slot('kitchen_slot', 'pgoutput')");
    let before = describe(&db);
    let pb = db.playbook("pb.toml", PLAYBOOK);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&db, stop.clone());
    wait_for("the writer to write", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen WHERE code LIKE 'w%'") > 5
    });
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    // Until finalize, the old table is kept current, and writes go on.
    wait_for("writes after the swap", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen_audit WHERE at > now() - interval '1 second'")
            > 5
    });
    assert_exit(&db.lockstep(&["finalize"]), 0);
    let audited_before_stop: i64 = db.one("SELECT count(*) FROM kitchen_audit");
    wait_for("writes after finalize", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen_audit") > audited_before_stop + 5
    });
    stop.store(true, Ordering::SeqCst);
    let written = w.join().unwrap();
    assert!(
        written.errors.is_empty(),
        "the role that owns nothing could not write: {:?}",
        &written.errors[..written.errors.len().min(5)]
    );
    assert!(
        written.inserted.len() > 20 && !written.deleted.is_empty() && !written.updated.is_empty(),
        "{written:?}"
    );
    let partitioned: bool =
        db.one("SELECT relkind = 'p' FROM pg_class WHERE oid = 'kitchen'::regclass");
    assert!(partitioned);
    // The storage parameters went to every partition.
    let without: i64 = db.one(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'kitchen'::regclass AND NOT coalesce(c.reloptions @> '{fillfactor=90}', false)",
    );
    assert_eq!(without, 0, "partitions without the table's fillfactor");
    assert_same(&before, &describe(&db));
    each_change_decoded_once(&db, &written);
}

/// Every change of the writer reached the slot `kitchen_slot` exactly once, under the
/// table's name (the writer's last commits may reach the WAL a moment after it stopped).
fn each_change_decoded_once(db: &Db, written: &Written) {
    let ops = [
        ('I', &written.inserted),
        ('U', &written.updated),
        ('D', &written.deleted),
    ];
    let mut changes = Vec::new();
    wait_for(
        "the writer's changes in the slot",
        Duration::from_secs(30),
        || {
            changes = decoded(db, "kitchen_slot");
            ops.iter().all(|(op, codes)| {
                codes
                    .iter()
                    .all(|w| changes.iter().any(|c| c.0 == *op && c.2 == *w))
            })
        },
    );
    let names: std::collections::BTreeSet<&str> = changes.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["kitchen"],
        "relations decoded"
    );
    for (op, codes) in ops {
        let seen: Vec<&String> = changes.iter().filter(|c| c.0 == op).map(|c| &c.2).collect();
        let mut want: Vec<&String> = codes.iter().collect();
        let mut got = seen.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{op} changes decoded");
    }
}

#[test]
fn a_rollback_after_the_swap_gives_back_the_table_as_it_was() {
    let cluster = logical_cluster();
    let db = Db::create(&cluster, "kitchen_back");
    kitchen(&db);
    let before = describe(&db);
    let pb = db.playbook("pb.toml", PLAYBOOK);
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_same(&before, &describe(&db));
    // And it can be converted again: nothing of the first run is in the way.
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    assert_exit(&db.lockstep(&["finalize"]), 0);
    assert_same(&before, &describe(&db));
}

const COLUMN_TYPE: &str = "kind = \"column-type\"
table = \"kitchen\"
[column_type]
column = \"serial_no\"
type = \"bigint\"
[backfill]
batch_size = 2000
[swap]
lock_timeout = \"200ms\"
backoff = \"50ms\"
";

/// What a column-type conversion of `serial_no` to bigint is meant to change: the column's
/// type and its sequence's.
fn widened(d: &(String, String, serde_json::Value)) -> (String, String, serde_json::Value) {
    let catalog =
        d.0.replace(
            "column 10 serial_no integer ",
            "column 10 serial_no bigint ",
        )
        .replace(
            "of serial_no start=1 increment=1 min=1 max=2147483647 ",
            "of serial_no start=1 increment=1 min=1 max=9223372036854775807 ",
        );
    let dump =
        d.1.replace(
            "    serial_no integer NOT NULL",
            "    serial_no bigint NOT NULL",
        )
        .replace(
            "CREATE SEQUENCE public.kitchen_serial_no_seq\n    AS integer\n",
            "CREATE SEQUENCE public.kitchen_serial_no_seq\n",
        );
    let mut model = d.2.clone();
    for c in model["columns"].as_array_mut().unwrap() {
        if c["name"] == "serial_no" {
            c["type_sql"] = "bigint".into();
        }
    }
    (catalog, dump, model)
}

#[test]
fn a_column_type_conversion_keeps_the_column_order_and_everything_else() {
    let cluster = logical_cluster();
    let db = Db::create(&cluster, "kitchen_type");
    kitchen(&db);
    // A rebuilt (not partitioned) table can keep an exclusion constraint.
    db.exec(
        "ALTER TABLE kitchen ADD CONSTRAINT kitchen_code_excl EXCLUDE USING btree (code WITH =)",
    );
    db.exec("SELECT pg_create_logical_replication_slot('kitchen_slot', 'pgoutput')");
    let before = describe(&db);
    let pb = db.playbook("pb.toml", COLUMN_TYPE);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&db, stop.clone());
    wait_for("the writer to write", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen WHERE code LIKE 'w%'") > 5
    });
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    let audited: i64 = db.one("SELECT count(*) FROM kitchen_audit");
    wait_for("writes after the swap", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen_audit") > audited + 5
    });
    assert_exit(&db.lockstep(&["finalize"]), 0);
    stop.store(true, Ordering::SeqCst);
    let written = w.join().unwrap();
    assert!(
        written.errors.is_empty(),
        "the role that owns nothing could not write: {:?}",
        &written.errors[..written.errors.len().min(5)]
    );
    assert_same(&widened(&before), &describe(&db));
    each_change_decoded_once(&db, &written);
}

/// A rebuild of the kitchen sink while the role that owns nothing writes to it, with the
/// pgoutput slot reading: `extra` is the `[rebuild]` table's content, `check` looks at the
/// database after finalize. Returns the descriptions before and after.
fn rebuild_kitchen(
    name: &str,
    extra: &str,
    check: impl FnOnce(&Db),
) -> (
    (String, String, serde_json::Value),
    (String, String, serde_json::Value),
) {
    let cluster = logical_cluster();
    let db = Db::create(&cluster, name);
    kitchen(&db);
    db.exec("SELECT pg_create_logical_replication_slot('kitchen_slot', 'pgoutput')");
    let before = describe(&db);
    let pb = db.playbook(
        "pb.toml",
        &format!(
            "kind = \"rebuild\"\ntable = \"kitchen\"\n[rebuild]\n{extra}\n[backfill]\nbatch_size = 2000\n[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\n"
        ),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&db, stop.clone());
    wait_for("the writer to write", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen WHERE code LIKE 'w%'") > 5
    });
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    let audited: i64 = db.one("SELECT count(*) FROM kitchen_audit");
    wait_for("writes after the swap", Duration::from_secs(30), || {
        db.one::<i64>("SELECT count(*) FROM kitchen_audit") > audited + 5
    });
    assert_exit(&db.lockstep(&["finalize"]), 0);
    stop.store(true, Ordering::SeqCst);
    let written = w.join().unwrap();
    assert!(
        written.errors.is_empty(),
        "the role that owns nothing could not write: {:?}",
        &written.errors[..written.errors.len().min(5)]
    );
    each_change_decoded_once(&db, &written);
    check(&db);
    (before, describe(&db))
}

#[test]
fn a_rebuild_with_no_change_carries_over_everything() {
    let (before, after) = rebuild_kitchen("kitchen_rebuild", "", |_| {});
    assert_same(&before, &after);
}

#[test]
fn a_rebuild_with_actions_changes_only_what_it_says() {
    // `account` moves after `code`; a column and a check are added; pages are left a fifth
    // free.
    let order = [
        "id",
        "at",
        "code",
        "account",
        "payload",
        "amount",
        "supplier",
        "legacy_supplier",
        "doubled",
        "serial_no",
    ];
    let section = format!(
        "columns = {order:?}\nalter = [\"ADD COLUMN note text DEFAULT 'n'\", \"ADD CONSTRAINT kitchen_note_short CHECK (length(note) < 100)\"]\nfillfactor = 80"
    );
    let (before, after) = rebuild_kitchen("kitchen_rebuild_actions", &section, |db| {
        let options: Vec<String> =
            db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'kitchen'::regclass");
        assert_eq!(options, ["fillfactor=80"]);
        let notes: i64 = db.one("SELECT count(*) FROM kitchen WHERE note = 'n'");
        assert!(notes > 20_000, "{notes}");
        let holes: i64 = db.one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'kitchen'::regclass AND attisdropped",
        );
        assert_eq!(holes, 0);
    });
    let added = |l: &str| l.contains(" note ") || l.contains("kitchen_note_short");
    // The catalog: the same but for the columns' numbers (and the order extended
    // statistics list their columns in, which is the columns' order).
    let place = |name: &str| order.iter().position(|c| *c == name).unwrap() + 1;
    let mut catalog: Vec<String> = before
        .0
        .lines()
        .map(|l| {
            let l = l.replace("ON account, code FROM", "ON code, account FROM");
            match l.strip_prefix("column ") {
                Some(rest) => {
                    let (_, rest) = rest.split_once(' ').unwrap();
                    let name = rest.split(' ').next().unwrap();
                    format!("column {} {rest}", place(name))
                }
                None => l,
            }
        })
        .collect();
    catalog.sort();
    let mut kept: Vec<&str> = after.0.lines().filter(|l| !added(l)).collect();
    kept.sort_unstable();
    assert_eq!(kept, catalog.iter().map(String::as_str).collect::<Vec<_>>());
    // pg_dump: the same lines in another order, the table's fillfactor aside.
    let lines = |d: &str, from: &str, to: &str| {
        let mut v: Vec<String> = d
            .lines()
            .filter(|l| !added(l))
            .map(|l| l.trim_end_matches(',').replace(from, to))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        lines(&after.1, "fillfactor='80'", "fillfactor='90'"),
        lines(&before.1, "ON account, code FROM", "ON code, account FROM")
    );
    // lockstep's model: the columns in their new order, the new column and check aside.
    let mut want = before.2.clone();
    let cols = want["columns"].as_array().unwrap().clone();
    want["columns"] = order
        .iter()
        .map(|n| cols.iter().find(|c| c["name"] == *n).unwrap().clone())
        .collect();
    for s in want["statistics"].as_array_mut().unwrap() {
        let d = s["definition"]
            .as_str()
            .unwrap()
            .replace("ON account, code FROM", "ON code, account FROM");
        s["definition"] = d.into();
    }
    let mut got = after.2.clone();
    got["columns"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "note");
    got["checks"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "kitchen_note_short");
    assert_same(
        &(String::new(), String::new(), want),
        &(String::new(), String::new(), got),
    );
}
