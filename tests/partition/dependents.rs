//! Sequences, identity, grants, foreign keys and views carried over by the swap and back by
//! a rollback; TRUNCATE captured before and after the swap.

use super::*;

#[test]
fn dependents_are_carried_over() {
    let cluster = cluster();
    let db = Db::create(&cluster, "dependents");
    db.exec(
        "DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE items (
             id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             sku        text NOT NULL,
             price      numeric(10,2) NOT NULL,
             doubled    numeric GENERATED ALWAYS AS (price * 2) STORED,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX items_sku ON items (sku);
         CREATE TABLE item_notes (
             id      serial PRIMARY KEY,
             item_id bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
             note    text
         );
         CREATE VIEW pricey_items AS SELECT id, sku, price FROM items WHERE price > 50;
         CREATE VIEW cheap_items WITH (security_barrier) AS
             SELECT id, sku, price FROM items WHERE price < 10 WITH LOCAL CHECK OPTION;
         GRANT SELECT, INSERT ON items TO reader;
         GRANT UPDATE (price) ON items TO reader;
         INSERT INTO items (sku, price) SELECT 'sku' || i, (i % 100) + 0.5 FROM generate_series(1, 20000) i;
         INSERT INTO item_notes (item_id, note) SELECT i, 'note ' || i FROM generate_series(1, 19000, 10) i;
         -- The sequence is ahead of the data: ids of deleted rows are never handed out again.
         DELETE FROM items WHERE id > 19990;
         CREATE TABLE expected AS SELECT * FROM items;
         ANALYZE items;",
    );
    let old_oid: u32 = db.one("SELECT 'items'::regclass::oid");
    let pb = db.playbook(
        "items.toml",
        "kind = \"partition\"\ntable = \"items\"\n[partition]\ncolumn = \"id\"\nstrategy = \"hash\"\nmodulus = 4\n[backfill]\nbatch_size = 500\ntarget_batch_ms = 50\nworkers = 1\n[swap]\nreverse = \"sync\"\n",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'items'::regclass");
    assert_eq!(kind, "p");
    db.assert_same_rows("items", "expected");

    // Identity: new rows get ids above every id the old table ever handed out.
    let ids: Vec<i64> = db
        .query(
            "INSERT INTO items (sku, price) VALUES ('new1', 99), ('new2', 1) RETURNING id",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(ids.iter().all(|id| *id > 20_000), "{ids:?}");
    let doubled: String = db.one("SELECT doubled::text FROM items WHERE sku = 'new1'");
    assert_eq!(doubled, "198.00", "the generated column");
    // The reverse trigger (`reverse = "sync"`) wrote them to the old table too, with the
    // same ids.
    let in_old: i64 =
        db.one("SELECT count(*) FROM items_old WHERE sku IN ('new1', 'new2') AND id > 20000");
    assert_eq!(in_old, 2);

    // Grants: exactly the ones the old table had.
    let privileges: Vec<bool> = db
        .query(
            "SELECT has_table_privilege('reader', 'items', p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(privileges, [true, true, false, false]);
    let column_privileges: Vec<bool> = db
        .query(
            "SELECT has_column_privilege('reader', 'items', c, 'UPDATE') FROM unnest(ARRAY['price', 'sku']) c",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(column_privileges, [true, false], "column privileges");
    // View options (security_barrier, the check option) are kept.
    let options: Vec<String> =
        db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'cheap_items'::regclass");
    assert_eq!(options, ["security_barrier=true", "check_option=local"]);
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO cheap_items (sku, price) VALUES ('dear', 500)"),
        )
        .expect_err("the check option refuses rows the view would not show");
    assert_eq!(err.code().map(|c| c.code()), Some("44000"), "{err:?}");

    // The inbound foreign key points at the new table, validated, and enforced.
    let (target, validated): (u32, bool) = {
        let r = &db.query(
            "SELECT confrelid::oid, convalidated FROM pg_constraint WHERE conname = 'item_notes_item_id_fkey'",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    let new_oid: u32 = db.one("SELECT 'items'::regclass::oid");
    assert_ne!(new_oid, old_oid);
    assert_eq!(target, new_oid, "the foreign key references the new table");
    assert!(validated, "the foreign key is validated");
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO item_notes (item_id) VALUES (19995)"),
        )
        .expect_err("a note for an item that does not exist must be refused");
    assert_eq!(err.code().map(|c| c.code()), Some("23503"), "{err:?}");
    db.exec("DELETE FROM items WHERE id = 11");
    let notes: i64 = db.one("SELECT count(*) FROM item_notes WHERE item_id = 11");
    assert_eq!(notes, 0, "ON DELETE CASCADE is kept");

    // The view reads the new table.
    let (view, direct): (i64, i64) = {
        let r = &db.query(
            "SELECT (SELECT count(*) FROM pricey_items), (SELECT count(*) FROM items WHERE price > 50)",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!(view, direct);
    let view_on_new: bool = db.one(
        "SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                        WHERE r.ev_class = 'pricey_items'::regclass AND d.refobjid = 'items'::regclass)
            AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                        WHERE r.ev_class = 'pricey_items'::regclass AND d.refobjid = 'items_old'::regclass)",
    );
    assert!(view_on_new);
    let sees_new: i64 = db.one("SELECT count(*) FROM pricey_items WHERE sku = 'new1'");
    assert_eq!(sees_new, 1);

    // Finalize drops the old table (nothing depends on it any more); all still works.
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 0);
    let gone: bool = db.one("SELECT to_regclass('items_old') IS NULL");
    assert!(gone);
    let id: i64 = db.one("INSERT INTO items (sku, price) VALUES ('new3', 60) RETURNING id");
    assert!(id > ids[1]);
    db.exec(&format!("INSERT INTO item_notes (item_id) VALUES ({id})"));
    let seen: i64 = db.one("SELECT count(*) FROM pricey_items WHERE sku = 'new3'");
    assert_eq!(seen, 1);
}

#[test]
fn dependents_follow_a_rollback_after_the_swap() {
    let cluster = cluster();
    let db = Db::create(&cluster, "dependents_back");
    db.exec(
        "DO $$ BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE vendors (
             id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             name text NOT NULL
         );
         CREATE TABLE vendor_orders (
             id        bigserial PRIMARY KEY,
             vendor_id integer NOT NULL REFERENCES vendors (id)
         );
         CREATE VIEW vendor_names WITH (security_barrier) AS SELECT id, name FROM vendors;
         GRANT SELECT ON vendors TO reader;
         GRANT UPDATE (name) ON vendors TO reader;
         INSERT INTO vendors (name) SELECT 'v' || i FROM generate_series(1, 5000) i;
         INSERT INTO vendor_orders (vendor_id) SELECT i FROM generate_series(1, 5000, 3) i;
         CREATE TABLE expected AS SELECT * FROM vendors;
         ANALYZE vendors;",
    );
    let original: u32 = db.one("SELECT 'vendors'::regclass::oid");
    let relations = db.relations("public");
    let pb = db.playbook(
        "vendors.toml",
        "kind = \"partition\"\ntable = \"vendors\"\n[partition]\ncolumn = \"id\"\nstrategy = \"range\"\ninterval = 1000\n[backfill]\nbatch_size = 500\n",
    );
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    // Rows written while swapped: ids from the new table's identity.
    let swapped_ids: Vec<i32> = db
        .query(
            "WITH r AS (INSERT INTO vendors (name) VALUES ('while swapped 1'), ('while swapped 2') RETURNING *)
             INSERT INTO expected SELECT * FROM r RETURNING id",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(swapped_ids.iter().all(|id| *id > 5000), "{swapped_ids:?}");
    db.exec(&format!(
        "INSERT INTO vendor_orders (vendor_id) VALUES ({})",
        swapped_ids[0]
    ));

    let out = db.lockstep(&["rollback"]);
    assert_exit(&out, 0);
    // The swap back is timed like the swap, and both are kept with the run.
    assert!(
        text(&out).contains("swap back: the lock was held "),
        "{}",
        text(&out)
    );
    let swaps: Vec<String> = db
        .query(
            "SELECT a->>'what' FROM lockstep.runs, jsonb_array_elements(swaps) WITH ORDINALITY AS x(a, n)
              WHERE a->>'held_ms' IS NOT NULL AND a->>'error' IS NULL ORDER BY n",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(swaps, ["swap", "swap back"]);
    let oid: u32 = db.one("SELECT 'vendors'::regclass::oid");
    assert_eq!(oid, original, "the original table is back");
    db.assert_same_rows("vendors", "expected");
    assert_eq!(db.relations("public"), relations);
    let (target, validated): (u32, bool) = {
        let r = &db.query(
            "SELECT confrelid::oid, convalidated FROM pg_constraint WHERE conname = 'vendor_orders_vendor_id_fkey'",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!((target, validated), (original, true));
    let err = db
        .rt
        .block_on(
            db.client
                .batch_execute("INSERT INTO vendor_orders (vendor_id) VALUES (999999)"),
        )
        .expect_err("the foreign key is enforced");
    assert_eq!(err.code().map(|c| c.code()), Some("23503"));
    // The identity goes on above the ids handed out while swapped.
    let id: i32 = db.one("INSERT INTO vendors (name) VALUES ('after rollback') RETURNING id");
    assert!(id > swapped_ids[1], "{id} <= {}", swapped_ids[1]);
    let seen: i64 = db.one("SELECT count(*) FROM vendor_names WHERE name LIKE 'while swapped%' OR name = 'after rollback'");
    assert_eq!(seen, 3);
    let options: Vec<String> =
        db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'vendor_names'::regclass");
    assert_eq!(options, ["security_barrier=true"]);
    let privileges: (bool, bool) = {
        let r = &db.query(
            "SELECT has_table_privilege('reader', 'vendors', 'SELECT'), has_column_privilege('reader', 'vendors', 'name', 'UPDATE')",
            &[],
        )[0];
        (r.get(0), r.get(1))
    };
    assert_eq!(privileges, (true, true));
    assert_eq!(db.lockstep_functions(), 0);
}

#[test]
fn truncate_is_captured_before_and_after_the_swap() {
    let cluster = cluster();
    let db = Db::create(&cluster, "trunc");
    setup_events(&db, 3000);
    let pb = db.playbook("p.toml", &events_playbook(""));
    let pb = pb.to_str().unwrap();
    // Before the swap: TRUNCATE on the original empties the copy through the capture trigger.
    let mut run = db.spawn(&["run", pb], Some("backfill"));
    wait_for("the first batch", Duration::from_secs(60), || {
        db.one::<bool>("SELECT to_regclass('lockstep.runs') IS NOT NULL")
            && db.one::<i64>("SELECT count(*) FROM lockstep.runs WHERE rows_copied > 0") > 0
    });
    run.kill9();
    db.exec("TRUNCATE events; INSERT INTO events (created_at, account) VALUES ('2024-02-02', 1)");
    assert_exit(&db.lockstep(&["resume"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events"), 1);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 1);
    // After the swap: TRUNCATE on the new table empties the old one (once the changes
    // since the swap are applied: `sync-back`, or a rollback), so a rollback does not bring
    // the rows back.
    db.exec("TRUNCATE events");
    assert_exit(&db.lockstep(&["sync-back"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events_old"), 0);
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM events"), 0);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'lockstep%'"),
        0
    );
}
