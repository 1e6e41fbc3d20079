//! What preflight refuses (leaving nothing behind), awkward identifiers, composite keys and
//! list partitions.

use super::*;

#[test]
fn unsupported_tables_are_refused_in_preflight_and_nothing_changes() {
    let cluster = cluster();
    let db = Db::create(&cluster, "refusals");
    db.exec(
        "CREATE TABLE audited (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER audit_changes AFTER INSERT ON audited REFERENCING NEW TABLE AS inserted FOR EACH ROW EXECUTE FUNCTION audit();
         CREATE TABLE skus (id bigint PRIMARY KEY, sku text NOT NULL, at timestamptz NOT NULL);
         CREATE UNIQUE INDEX skus_sku ON skus (sku);
         CREATE TABLE loose (id bigint PRIMARY KEY, at timestamptz);
         CREATE TABLE taken (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE TABLE taken_old (id bigint);
         CREATE TABLE crowded (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO crowded VALUES (1, '2024-01-05');
         CREATE TABLE bystander (x integer);
         CREATE INDEX crowded_p202401_pkey ON bystander (x);
         INSERT INTO audited SELECT i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;
         INSERT INTO skus SELECT i, 's' || i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;
         INSERT INTO loose SELECT i, '2024-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 100) i;
         CREATE EXTENSION btree_gist;
         CREATE TABLE bookings (id bigint PRIMARY KEY, room int NOT NULL, at timestamptz NOT NULL,
           EXCLUDE USING gist (room WITH =, at WITH =));
         CREATE TABLE temporary_data (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         ALTER TABLE temporary_data SET UNLOGGED;
         CREATE TABLE base (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE TABLE derived (extra int) INHERITS (base);
         CREATE TABLE summarized (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE MATERIALIZED VIEW summary AS SELECT count(*) FROM summarized;
         CREATE TABLE everything (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         CREATE PUBLICATION all_of_it FOR ALL TABLES;",
    );
    let relations = db.relations("public");
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger");
    for (table, why) in [
        (
            "audited",
            "trigger audit_changes is a row trigger with transition tables",
        ),
        (
            "skus",
            "unique index skus_sku does not include the partition column at",
        ),
        ("loose", "partition column at allows NULL"),
        (
            "bookings",
            "exclusion constraint bookings_room_at_excl cannot be carried over to a partitioned table",
        ),
        ("temporary_data", "public.temporary_data is UNLOGGED"),
        ("base", "public.base is inherited by public.derived"),
        (
            "summarized",
            "materialized view public.summary depends on the table",
        ),
        (
            "everything",
            "publication all_of_it publishes all tables: its subscribers would receive every row of the copy",
        ),
        ("taken", "public.taken_old already exists"),
        // The name the primary key of the copy's first partition would get.
        ("crowded", "public.crowded_p202401_pkey already exists"),
    ] {
        let pb = db.playbook(
            &format!("{table}.toml"),
            &format!(
                "kind = \"partition\"\ntable = \"{table}\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n"
            ),
        );
        let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
        assert_exit(&plan, 1);
        let stdout = String::from_utf8_lossy(&plan.stdout);
        assert!(
            stdout.contains("preflight: refused") && stdout.contains(why),
            "plan of {table}: {}",
            text(&plan)
        );
        let run = db.lockstep(&["run", pb.to_str().unwrap()]);
        assert_exit(&run, 1);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("preflight refused the conversion") && stderr.contains(why),
            "run of {table}: {}",
            text(&run)
        );
        assert!(!stderr.contains("shadow:"), "{stderr}");
    }
    assert_eq!(db.relations("public"), relations);
    let after: i64 = db.one("SELECT count(*) FROM pg_trigger");
    assert_eq!(after, triggers);
    let no_state: bool = db.one("SELECT to_regnamespace('lockstep') IS NULL");
    assert!(no_state, "a refused run created the lockstep schema");
    let rows: i64 = db.one("SELECT (SELECT count(*) FROM audited) + (SELECT count(*) FROM skus) + (SELECT count(*) FROM loose)");
    assert_eq!(rows, 300);
}

#[test]
fn awkward_identifiers_in_a_non_public_schema() {
    let cluster = cluster();
    let db = Db::create(&cluster, "idents");
    db.exec(
        r#"DO $$ BEGIN CREATE ROLE "Read Only"; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
           CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."Order ""Items""" (
               "Id"         bigserial PRIMARY KEY,
               "select"     text,
               "Created At" timestamptz NOT NULL,
               "user"       integer NOT NULL
           );
           CREATE INDEX "Order ""Items"" by select" ON "My Schema"."Order ""Items""" ("select", "user");
           CREATE VIEW "My Schema"."Big ""Orders""" AS
               SELECT "Id", "select" FROM "My Schema"."Order ""Items""" WHERE "user" > 5;
           GRANT SELECT ON "My Schema"."Order ""Items""" TO "Read Only";
           INSERT INTO "My Schema"."Order ""Items""" ("select", "Created At", "user")
               SELECT CASE WHEN i % 9 = 0 THEN NULL ELSE 'it''s "' || i || '"' END,
                      '2024-01-01'::timestamptz + i * interval '17 minutes', i % 10
               FROM generate_series(1, 20000) i;
           CREATE TABLE "My Schema".expected AS SELECT * FROM "My Schema"."Order ""Items""";"#,
    );
    let t = r#""My Schema"."Order ""Items""""#;
    let pb = db.playbook(
        "odd.toml",
        r#"kind = "partition"
table = '"My Schema"."Order ""Items"""'

[partition]
column = "Created At"
strategy = "range"
interval = "1 month"

[backfill]
batch_size = 500
target_batch_ms = 50
"#,
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let kind: String = db.one(&format!(
        "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('{}')",
        t.replace('\'', "''")
    ));
    assert_eq!(kind, "p");
    let old = r#""My Schema"."Order ""Items""_old""#;
    db.assert_same_rows(t, r#""My Schema".expected"#);
    db.assert_same_rows(old, r#""My Schema".expected"#);
    // Writes after the swap: serial default, the view, the grant, the index name.
    let id: i64 = db.one(&format!(
        r#"INSERT INTO {t} ("select", "Created At", "user") VALUES ('after', '2024-03-03', 9) RETURNING "Id""#
    ));
    assert!(id > 20_000);
    let in_view: i64 =
        db.one(r#"SELECT count(*) FROM "My Schema"."Big ""Orders""" WHERE "select" = 'after'"#);
    assert_eq!(in_view, 1);
    let granted: bool = db.one(&format!(
        "SELECT has_table_privilege('Read Only', '{}', 'SELECT')",
        t.replace('\'', "''")
    ));
    assert!(granted);
    let index: String =
        db.one(r#"SELECT pg_get_indexdef('"My Schema"."Order ""Items"" by select"'::regclass)"#);
    assert!(
        index.contains(r#"ON ONLY "My Schema"."Order ""Items""" USING btree ("select", "user")"#),
        "{index}"
    );
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 0);
    let gone: bool = db.one(&format!(
        "SELECT to_regclass('{}') IS NULL",
        old.replace('\'', "''")
    ));
    assert!(gone);
    let rows: i64 = db.one(&format!("SELECT count(*) FROM {t}"));
    assert_eq!(rows, 20_001);
    db.exec(&format!(
        r#"INSERT INTO "My Schema".expected SELECT * FROM {t} WHERE "Id" = {id}"#
    ));
    db.assert_same_rows(t, r#""My Schema".expected"#);
}

#[test]
fn composite_keys_and_list_partitions() {
    let cluster = cluster();
    let db = Db::create(&cluster, "composite");
    db.exec(
        "CREATE TABLE ledger (
             tenant integer NOT NULL,
             id     bigint NOT NULL,
             at     timestamptz NOT NULL,
             amount integer,
             PRIMARY KEY (tenant, id)
         );
         INSERT INTO ledger SELECT i % 7, i, '2024-01-01'::timestamptz + i * interval '9 minutes', i FROM generate_series(1, 20000) i;
         CREATE TABLE expected_ledger AS SELECT * FROM ledger;
         CREATE TABLE accounts (
             id     bigint NOT NULL,
             region text NOT NULL,
             name   text,
             PRIMARY KEY (id, region)
         );
         INSERT INTO accounts SELECT i, (ARRAY['de', 'fr', 'us', 'br'])[i % 4 + 1], 'a' || i FROM generate_series(1, 5000) i;
         CREATE TABLE expected_accounts AS SELECT * FROM accounts;
         ANALYZE ledger, accounts;",
    );
    let pb = db.playbook(
        "ledger.toml",
        "kind = \"partition\"\ntable = \"ledger\"\n[partition]\ncolumn = \"at\"\nstrategy = \"range\"\ninterval = \"1 month\"\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 20\nmax_rows_per_second = 8000\n",
    );
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], None);
    // Writes while it runs: the partition key, each part of the primary key, deletes, inserts.
    let statements = [
        "WITH r AS (UPDATE ledger SET at = at + interval '40 days' WHERE (tenant, id) = (SELECT tenant, id FROM ledger WHERE id = $1) RETURNING *)
         UPDATE expected_ledger e SET at = r.at FROM r WHERE (e.tenant, e.id) = (r.tenant, r.id)",
        "WITH r AS (UPDATE ledger SET tenant = tenant + 100 WHERE id = $1 RETURNING *, tenant - 100 AS old_tenant)
         UPDATE expected_ledger e SET tenant = r.tenant FROM r WHERE (e.tenant, e.id) = (r.old_tenant, r.id)",
        "WITH r AS (UPDATE ledger SET id = id + 1000000 WHERE id = $1 RETURNING *)
         UPDATE expected_ledger e SET id = r.id FROM r WHERE e.id = r.id - 1000000 AND e.tenant = r.tenant",
        "WITH r AS (DELETE FROM ledger WHERE id = $1 RETURNING *)
         DELETE FROM expected_ledger e USING r WHERE (e.tenant, e.id) = (r.tenant, r.id)",
        "WITH r AS (INSERT INTO ledger VALUES ($1::bigint % 5, $1::bigint + 2000000, '2024-02-02', NULL) ON CONFLICT DO NOTHING RETURNING *)
         INSERT INTO expected_ledger SELECT * FROM r",
    ];
    let mut rng = fastrand::Rng::with_seed(3);
    let mut writes = 0;
    while run.try_wait().is_none() {
        let id = rng.i64(1..=20_000);
        let sql = statements[rng.usize(0..statements.len())];
        if let Err(e) = db.rt.block_on(db.client.execute(sql, &[&id])) {
            panic!("{sql}: {e:?}\nthe runner: {}", run.output());
        }
        writes += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(run.try_wait().unwrap().success(), "{}", run.output());
    assert!(writes > 200, "only {writes} writes during the run");
    assert_exact_copy(&run.output());
    db.assert_same_rows("ledger", "expected_ledger");
    let pk: String = db.one(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ledger'::regclass AND contype = 'p'",
    );
    assert_eq!(pk, "PRIMARY KEY (tenant, id, at)");
    db.exec(
        "WITH r AS (UPDATE ledger SET tenant = 50, at = at - interval '300 days' WHERE id = 77 RETURNING *)
         UPDATE expected_ledger e SET tenant = r.tenant, at = r.at FROM r WHERE e.id = 77;",
    );
    // Swapped back: every change since the swap (the workload's, and a move of the
    // partition key, part of the composite key) reaches the original table.
    assert_exit(&db.lockstep(&["rollback"]), 0);
    db.assert_same_rows("ledger", "expected_ledger");

    // A list of regions, and a DEFAULT partition for the others.
    let pb = db.playbook(
        "accounts.toml",
        "kind = \"partition\"\ntable = \"accounts\"\n[partition]\ncolumn = \"region\"\nstrategy = \"list\"\nnaming = \"{table}_{start}\"\n[[partition.lists]]\nname = \"eu\"\nvalues = [\"de\", \"fr\"]\n[[partition.lists]]\nname = \"us\"\nvalues = [\"us\"]\n",
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    db.assert_same_rows("accounts", "expected_accounts");
    let spread: Vec<(String, i64)> = db
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM accounts GROUP BY 1 ORDER BY 1",
            &[],
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        spread,
        [
            ("accounts_default".to_string(), 1250),
            ("accounts_eu".to_string(), 2500),
            ("accounts_us".to_string(), 1250)
        ]
    );
    db.exec("UPDATE accounts SET region = 'us' WHERE id = 4; UPDATE expected_accounts SET region = 'us' WHERE id = 4;");
    assert_exit(&db.lockstep(&["rollback"]), 0);
    db.assert_same_rows("accounts", "expected_accounts");
}
