//! `rebuild`: the same engine rebuilding a table into a new definition that is not
//! partitioned: a column of another type, a new constraint, rows written in the order of
//! another column, another fillfactor; under the workload, killed at every checkpoint then
//! resumed or rolled back; columns dropped, added and reordered, swapped back and forth;
//! a bloated table made compact; and what preflight refuses.

use super::*;

/// `events` with an index on `created_at`, which the rebuild writes its rows in the order
/// of.
fn setup(db: &Db, rows: i64) {
    setup_events(db, rows);
    db.exec("CREATE INDEX events_created ON events (created_at); ANALYZE events");
    let scattered: f32 = db.one(
        "SELECT abs(correlation) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'events' AND attname = 'created_at'",
    );
    assert!(scattered < 0.2, "created_at correlation {scattered} before");
}

fn playbook(extra: &str) -> String {
    format!(
        "kind = \"rebuild\"
table = \"events\"

[rebuild]
alter = [\"ALTER COLUMN amount TYPE numeric(14,2)\", \"ADD CONSTRAINT events_amount_positive CHECK (amount >= 0)\"]
order_by = [\"created_at\"]
fillfactor = 90

[backfill]
batch_size = 500
target_batch_ms = 50
{extra}
"
    )
}

/// After a completed rebuild: `events` has its new definition, its rows in the order of
/// `created_at` (a row changed during the run is copied again at the end, so the order
/// is only as good as `min_correlation`), and both tables hold what the workload
/// committed.
fn assert_rebuilt(db: &Db, min_correlation: f32) {
    let kinds: Vec<String> = db
        .query(
            "SELECT relkind::text || ' ' || format_type(a.atttypid, a.atttypmod)
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'amount'
             WHERE c.oid IN ('events'::regclass, 'events_old'::regclass) ORDER BY relname",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        ["r numeric(14,2)", "r numeric(12,2)"],
        "events, events_old"
    );
    db.assert_same_rows("events", "expected");
    assert_old_behind_by_the_log(db, "events_old", "expected");
    let check: String = db.one(
        "SELECT pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint
         WHERE conrelid = 'events'::regclass AND conname = 'events_amount_positive'",
    );
    assert_eq!(check, "CHECK ((amount >= (0)::numeric)) true");
    let options: Vec<String> =
        db.one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(options, ["fillfactor=90"]);
    // The rows were written in the order of created_at (the original order is scattered);
    // the statistics gathered before the swap say so.
    let correlation: f32 = db.one(
        "SELECT correlation FROM pg_stats WHERE schemaname = 'public' AND tablename = 'events' AND attname = 'created_at'",
    );
    assert!(
        correlation > min_correlation,
        "created_at correlation {correlation}"
    );
    let invalid: i64 = db.one("SELECT count(*) FROM pg_index WHERE NOT indisvalid");
    assert_eq!(invalid, 0, "INVALID indexes left");
    let indexes: Vec<String> = db.index_defs("events");
    assert_eq!(
        indexes,
        [
            "CREATE INDEX events_account ON public.events USING btree (account)",
            "CREATE INDEX events_created ON public.events USING btree (created_at)",
            "CREATE UNIQUE INDEX events_pkey ON public.events USING btree (id)",
        ]
    );
}

/// With `[swap] reverse = "sync"`: the old table is current after every write, and a value
/// it cannot hold is noted by the writer's trigger.
#[test]
fn a_rebuild_under_the_workload_loses_nothing_and_swaps_back() {
    let cluster = cluster();
    let db = Db::create(&cluster, "rebuild_workload");
    setup(&db, 20_000);
    let relations_before = db.relations("public");
    let indexes_before = db.index_defs("events");
    let pb = db.playbook(
        "pb.toml",
        &playbook(
            "max_rows_per_second = 10000\n[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\nreverse = \"sync\"",
        ),
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&plan, 0);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("rebuilt: ALTER COLUMN amount TYPE numeric(14,2); ADD CONSTRAINT events_amount_positive CHECK (amount >= 0); rows written in the order of created_at; WITH (fillfactor=90)"),
        "{}",
        text(&plan)
    );
    let wl = Workload::start(&db, 2);
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
    wl.wait_ops(300);
    let stats = wl.finish();
    stats.assert_clean();
    eprintln!("{}", stats.report("workload during the rebuild"));
    assert!(
        stats.worst() < Duration::from_secs(2),
        "{}",
        stats.report("the workload was blocked too long")
    );
    assert_rebuilt(&db, 0.6);
    // A value the old column type cannot hold makes the swap back refuse, until it is gone.
    db.exec("INSERT INTO events (created_at, amount) VALUES ('2024-03-03', 123456789012.5)");
    let refused = db.lockstep(&["rollback"]);
    assert_exit(&refused, 2);
    assert!(
        text(&refused).contains("the old table's column types cannot"),
        "{}",
        text(&refused)
    );
    db.exec(
        "DELETE FROM events WHERE amount > 1e10;
         DO $$ DECLARE t regclass; BEGIN
           SELECT c.oid INTO t FROM pg_class c
           WHERE c.relnamespace = 'lockstep'::regnamespace AND c.relname LIKE 'unsynced%';
           EXECUTE format('TRUNCATE %s', t);
         END $$",
    );
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_restored(&db, &relations_before, &indexes_before);
    // And it can be rebuilt again, and finalized.
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    assert_exit(&db.lockstep(&["finalize"]), 0);
    let old_gone: bool = db.one("SELECT to_regclass('events_old') IS NULL");
    assert!(old_gone);
    db.assert_same_rows("events", "expected");
    assert_eq!(db.lockstep_functions(), 0);
}

/// Starts a rebuild under the workload, kills it at `point`, then resumes or rolls back
/// while the workload goes on.
fn kill_at(cluster: &TempCluster, point: &str, rollback: bool) {
    let db = Db::create(
        cluster,
        &format!(
            "rb_{}_{}",
            point.replace('-', "_"),
            if rollback { "rb" } else { "res" }
        ),
    );
    setup(&db, 8_000);
    let relations_before = db.relations("public");
    let indexes_before = db.index_defs("events");
    let pb = db.playbook(
        "pb.toml",
        &playbook("[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\""),
    );
    let wl = Workload::start(&db, 2);
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some(point));
    db.wait_held(&mut run, point);
    run.kill9();
    db.wait_runner_gone();
    wl.wait_ops(200);
    let out = if rollback {
        db.lockstep(&["rollback"])
    } else {
        db.lockstep(&["resume"])
    };
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
    wl.wait_ops(200);
    let stats = wl.finish();
    stats.assert_clean();
    if rollback {
        assert_restored(&db, &relations_before, &indexes_before);
    } else {
        // The table the rows came from is in no order at all.
        assert_rebuilt(&db, 0.6);
        assert_exit(&db.lockstep(&["finalize"]), 0);
        db.assert_same_rows("events", "expected");
    }
}

#[test]
fn a_rebuild_killed_at_every_checkpoint_resumes() {
    let cluster = cluster();
    for point in kills::HOLD_POINTS {
        kill_at(&cluster, point, false);
    }
}

#[test]
fn a_rebuild_killed_at_every_checkpoint_rolls_back() {
    let cluster = cluster();
    for point in kills::HOLD_POINTS {
        kill_at(&cluster, point, true);
    }
}

const ITEMS: &str = "
CREATE TABLE items (
    id     bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100) PRIMARY KEY,
    flag   boolean NOT NULL DEFAULT false,
    legacy text,
    name   text NOT NULL,
    qty    integer NOT NULL DEFAULT 0
);
COMMENT ON COLUMN items.name IS 'what it is';
INSERT INTO items (flag, legacy, name, qty)
  SELECT i % 2 = 0, 'old ' || i, 'item ' || i, i FROM generate_series(1, 5000) i;
CREATE INDEX items_name ON items (name);
";

/// The columns of `table`: name, type, NOT NULL, default, comment.
fn columns_of(db: &Db, table: &str) -> Vec<String> {
    db.query(
        "SELECT format('%s %s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                       CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                       CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text
                            ELSE coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') END,
                       coalesce(' -- ' || col_description(a.attrelid, a.attnum), ''))
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[&table],
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn columns_are_dropped_added_and_reordered_and_the_rebuild_swaps_back_and_forth() {
    let cluster = cluster();
    let db = Db::create(&cluster, "rebuild_columns");
    db.exec(ITEMS);
    let before = columns_of(&db, "items");
    let pb = db.playbook(
        "pb.toml",
        "kind = \"rebuild\"
table = \"items\"
[rebuild]
columns = [\"id\", \"qty\", \"name\", \"flag\"]
alter = [\"ALTER COLUMN qty TYPE bigint\", \"ADD COLUMN tag uuid NOT NULL DEFAULT gen_random_uuid()\",
         \"ADD CONSTRAINT items_name_key UNIQUE (name)\"]
[swap]
lock_timeout = \"200ms\"
backoff = \"50ms\"
",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_exact_copy(&text(&out));
    assert_eq!(
        columns_of(&db, "items"),
        [
            "id bigint not null identity d",
            "qty bigint not null default 0",
            "name text not null -- what it is",
            "flag boolean not null default false",
            "tag uuid not null default gen_random_uuid()",
        ]
    );
    // No dropped column is left in the new table: its columns were made in their order.
    let holes: i64 = db.one(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attisdropped",
    );
    assert_eq!(holes, 0);
    assert_eq!(columns_of(&db, "items_old"), before);
    let same: i64 = db.one(
        "SELECT count(*) FROM (SELECT id, qty, name, flag FROM items EXCEPT SELECT id, qty, name, flag FROM items_old) x",
    );
    assert_eq!(same, 0);
    let tags: i64 = db.one("SELECT count(DISTINCT tag) FROM items");
    assert_eq!(tags, 5000);
    let unique: String = db.one(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'items'::regclass AND conname = 'items_name_key'",
    );
    assert_eq!(unique, "UNIQUE (name)");
    // Writes after the swap are logged for the old table, not applied to it yet (the
    // identity goes on above every id).
    let id: i64 = db.one("INSERT INTO items (name, qty) VALUES ('new', 7) RETURNING id");
    assert!(id > 5099, "{id}");
    db.exec("UPDATE items SET qty = 70 WHERE id = 150; DELETE FROM items WHERE id = 151");
    let rows = |table: &str| -> String {
        db.one(&format!(
            "SELECT string_agg(format('%s %s %s %s', id, name, qty, coalesce(legacy, '-')), ', ' ORDER BY id) FROM {table} WHERE id IN (150, 151, {id})"
        ))
    };
    assert_eq!(
        rows("items_old"),
        "150 item 51 51 old 51, 151 item 52 52 old 52"
    );
    // Swapped back: the changes are applied, the dropped column's values kept for the rows
    // whose key stayed, empty for the new row.
    assert_exit(&db.lockstep(&["rollback"]), 0);
    assert_eq!(columns_of(&db, "items"), before);
    assert_eq!(
        rows("items"),
        format!("150 item 51 70 old 51, {id} new 7 -")
    );
    let legacy: i64 = db.one("SELECT count(*) FROM items WHERE legacy LIKE 'old %'");
    assert_eq!(legacy, 4999);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM items"), 5000);
    let id2: i64 = db.one("INSERT INTO items (name) VALUES ('newer') RETURNING id");
    assert!(id2 > id, "{id2} <= {id}");
    // Again, and for good.
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    assert_exit(&db.lockstep(&["finalize"]), 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM items"), 5001);
    assert!(db.one::<bool>("SELECT to_regclass('items_old') IS NULL"));
    assert_eq!(db.lockstep_functions(), 0);
}

#[test]
fn what_cannot_be_rebuilt_is_refused_in_preflight() {
    let cluster = cluster();
    let db = Db::create(&cluster, "rebuild_refusals");
    db.exec(ITEMS);
    db.exec("CREATE INDEX items_qty ON items (qty)");
    let relations = db.relations("public");
    for (section, why) in [
        (
            "columns = [\"id\", \"name\", \"flag\", \"legacy\"]",
            "index items_qty uses qty, which the rebuild drops",
        ),
        (
            "alter = [\"DROP COLUMN flag\", \"ALTER COLUMN nope TYPE integer\"]",
            "`rebuild.alter[1]` does not work on public.items: column \"nope\"",
        ),
        (
            "alter = [\"ADD COLUMN must integer NOT NULL\"]",
            "new column must is NOT NULL without a default",
        ),
        (
            "order_by = [\"legacy\"]",
            "`rebuild.order_by`: legacy allows NULL",
        ),
        (
            "order_by = [\"qty\", \"flag\"]",
            "`rebuild.order_by`: no index of public.items starts with (qty, flag)",
        ),
        (
            "alter = [\"ALTER COLUMN qty TYPE text\"]\nreverse_using = { qty = \"qty::nonsense\" }",
            "`rebuild.reverse_using` does not work on public.items: type \"nonsense\" does not exist",
        ),
        (
            "alter = [\"ALTER COLUMN id TYPE text\"]",
            "`rebuild.alter[0]` does not work on public.items: identity column type must be smallint, integer, or bigint",
        ),
    ] {
        let pb = db.playbook(
            "pb.toml",
            &format!("kind = \"rebuild\"\ntable = \"items\"\n[rebuild]\n{section}\n"),
        );
        let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
        assert_exit(&plan, 1);
        assert!(
            String::from_utf8_lossy(&plan.stdout).contains(why),
            "{section}: {}",
            text(&plan)
        );
    }
    assert_eq!(db.relations("public"), relations);
    assert!(db.one::<bool>("SELECT to_regnamespace('lockstep') IS NULL"));
}

#[test]
fn a_bloated_table_is_made_compact() {
    let cluster = cluster();
    let db = Db::create(&cluster, "rebuild_bloat");
    setup_events(&db, 30_000);
    // Half the rows updated twice: about as many dead rows as live ones.
    db.exec(
        "UPDATE events SET payload = payload || '!' WHERE id % 2 = 0;
         UPDATE events SET payload = payload || '!' WHERE id % 2 = 0;
         UPDATE expected SET payload = payload || '!!' WHERE id % 2 = 0",
    );
    db.exec("VACUUM events");
    let bloated: i64 = db.one("SELECT pg_relation_size('events')");
    let pb = db.playbook(
        "pb.toml",
        "kind = \"rebuild\"\ntable = \"events\"\n[rebuild]\n[swap]\nlock_timeout = \"200ms\"\n",
    );
    let plan = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("rebuilt as it is"),
        "{}",
        text(&plan)
    );
    let wl = Workload::start(&db, 1);
    assert_exit(&db.lockstep(&["run", pb.to_str().unwrap()]), 0);
    wl.wait_ops(100);
    wl.finish().assert_clean();
    let compact: i64 = db.one("SELECT pg_relation_size('events')");
    assert!(
        (compact as f64) < 0.7 * bloated as f64,
        "{compact} bytes, {bloated} before"
    );
    db.assert_same_rows("events", "expected");
    assert_old_behind_by_the_log(&db, "events_old", "expected");
}

/// The partitioning strategy of `table` (`r`, `l`, `h`), or `-` when it is not partitioned.
fn strategy(db: &Db, table: &str) -> String {
    db.one(&format!(
        "SELECT coalesce((SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = '{table}'::regclass), '-')"
    ))
}

#[test]
fn a_partitioned_table_is_partitioned_again_another_way_then_unpartitioned() {
    let cluster = cluster();
    let db = Db::create(&cluster, "repartition");
    setup_events(&db, 8_000);
    let swap = "[swap]\nlock_timeout = \"200ms\"\nbackoff = \"50ms\"\n";
    let monthly = db.playbook("monthly.toml", &events_playbook(swap));
    assert_exit(&db.lockstep(&["run", monthly.to_str().unwrap()]), 0);
    assert_exit(&db.lockstep(&["finalize"]), 0);
    assert_eq!(strategy(&db, "events"), "r");
    for (name, section, want) in [
        (
            "hash.toml",
            "[rebuild.partition]\ncolumn = \"id\"\nstrategy = \"hash\"\nmodulus = 4\nnaming = \"{table}_h{n}\"\n",
            "h",
        ),
        ("plain.toml", "", "-"),
    ] {
        let pb = db.playbook(
            name,
            &format!("kind = \"rebuild\"\ntable = \"events\"\n[rebuild]\n{section}[backfill]\nbatch_size = 500\n{swap}"),
        );
        let wl = Workload::start(&db, 2);
        let out = db.lockstep(&["run", pb.to_str().unwrap()]);
        assert_exit(&out, 0);
        assert_exact_copy(&text(&out));
        wl.wait_ops(200);
        wl.finish().assert_clean();
        assert_eq!(strategy(&db, "events"), want, "{name}");
        db.assert_same_rows("events", "expected");
        assert_old_behind_by_the_log(&db, "events_old", "expected");
        assert_exit(&db.lockstep(&["finalize"]), 0);
        db.assert_same_rows("events", "expected");
    }
    let relkind: String =
        db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(relkind, "r");
    // Nothing of the partitioned tables is left.
    assert_eq!(
        db.relations("public")
            .into_iter()
            .filter(|r| r.starts_with("events"))
            .collect::<Vec<_>>(),
        ["events", "events_account", "events_id_seq", "events_pkey"]
    );
    let view_ok: bool = db.one(
        "SELECT (SELECT count(*) FROM recent_events) = (SELECT count(*) FROM events WHERE created_at >= '2024-03-01')",
    );
    assert!(view_ok);
}
