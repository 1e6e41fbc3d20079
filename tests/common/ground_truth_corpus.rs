//! Ground-truth cases from the shapes the trace of real migration histories (the corpus at
//! `../shared/corpus`, `scripts/trace-truth.py`) found the lock model wrong about, and the
//! variants around each: dropping foreign keys, triggers, `ADD COLUMN` with constraints,
//! `DO` blocks, data-modifying CTEs, cascades, `REFERENCES t` without columns, timestamp
//! to timestamptz, the sources of queries, and a matrix of column type changes (on columns
//! with and without an index). They run on [`BASE`](super::BASE) plus [`EXTRA`].

/// Tables added to the shared base schema for these cases (all hold rows).
pub const EXTRA: &str = "
CREATE TABLE acct (id bigint PRIMARY KEY, email text UNIQUE, born timestamp, seen timestamp);
INSERT INTO acct SELECT g, 'e' || g, now(), now() FROM generate_series(1, 40) g;
CREATE TABLE post (id bigint PRIMARY KEY, acct_id bigint CONSTRAINT post_acct_fk REFERENCES acct,
                   editor_id bigint REFERENCES acct (id), body text, at timestamp);
INSERT INTO post SELECT g, g, g, 'b', now() FROM generate_series(1, 40) g;
CREATE TABLE vote (id int, post_id bigint REFERENCES post ON DELETE CASCADE,
                   acct_id bigint REFERENCES acct ON DELETE SET NULL);
INSERT INTO vote SELECT g, g, g FROM generate_series(1, 40) g;
CREATE TABLE tag (id int PRIMARY KEY, name varchar(50));
INSERT INTO tag SELECT g, 'n' || g FROM generate_series(1, 40) g;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER post_touch BEFORE UPDATE ON post FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW post_v AS SELECT id, v FROM solo;
CREATE MATERIALIZED VIEW tag_mv AS SELECT id, v FROM solo;
CREATE TABLE ty (id int, c_int int, c_small smallint, c_big bigint, c_vc10 varchar(10),
                 c_vc varchar, c_text text, c_num numeric(10,2), c_numu numeric,
                 c_ts timestamp, c_tstz timestamptz, c_ts3 timestamp(3), c_time time,
                 c_date date, c_bool boolean, c_json json, c_jsonb jsonb, c_uuid uuid,
                 c_char char(5), c_bit bit(4), c_cidr cidr, c_inet inet, c_real real,
                 c_dbl double precision, c_arr int[], c_tarr text[], c_intv interval,
                 c_bytea bytea, c_vbit varbit(8));
INSERT INTO ty SELECT g, g, g, g, 'v' || g, 'v' || g, 't' || g, g, g, now(), now(), now(),
                      now(), now(), true, '{}', '{}', gen_random_uuid(), 'c', B'1010',
                      '10.0.0.0/8', '10.0.0.1', g, g, ARRAY[g], ARRAY['x'], '1 day', 'x',
                      B'101'
               FROM generate_series(1, 30) g;
CREATE TABLE tyi (LIKE ty);
INSERT INTO tyi SELECT * FROM ty;
CREATE INDEX ON tyi (c_int); CREATE INDEX ON tyi (c_small); CREATE INDEX ON tyi (c_big);
CREATE INDEX ON tyi (c_vc10); CREATE INDEX ON tyi (c_vc); CREATE INDEX ON tyi (c_text);
CREATE INDEX ON tyi (c_num); CREATE INDEX ON tyi (c_numu); CREATE INDEX ON tyi (c_ts);
CREATE INDEX ON tyi (c_tstz); CREATE INDEX ON tyi (c_ts3); CREATE INDEX ON tyi (c_time);
CREATE INDEX ON tyi (c_date); CREATE INDEX ON tyi (c_uuid); CREATE INDEX ON tyi (c_char);
CREATE INDEX ON tyi (c_bit); CREATE INDEX ON tyi (c_cidr); CREATE INDEX ON tyi (c_inet);
CREATE INDEX ON tyi (c_real); CREATE INDEX ON tyi (c_dbl); CREATE INDEX ON tyi (c_intv);
CREATE INDEX ON tyi (c_bytea); CREATE INDEX ON tyi (c_vbit);;
";

/// (set-up committed before, statement measured).
pub const CASES: &[(&str, &str)] = &[
    // Dropping a foreign key locks the referenced table too.
    ("", "ALTER TABLE post DROP CONSTRAINT post_acct_fk"),
    ("", "ALTER TABLE post DROP CONSTRAINT post_editor_id_fkey"),
    ("", "ALTER TABLE post DROP CONSTRAINT IF EXISTS post_acct_fk"),
    ("", "ALTER TABLE post DROP CONSTRAINT IF EXISTS no_such_fk"),
    ("", "ALTER TABLE post DROP COLUMN acct_id"),
    ("", "ALTER TABLE post DROP COLUMN editor_id"),
    ("", "ALTER TABLE post DROP COLUMN IF EXISTS editor_id"),
    ("", "ALTER TABLE vote DROP CONSTRAINT vote_post_id_fkey"),
    ("", "ALTER TABLE fkref DROP CONSTRAINT fkref_t_id_fkey"),
    ("", "ALTER TABLE owned DROP CONSTRAINT owned_u_id_fkey"),
    (
        "",
        "ALTER TABLE post DROP CONSTRAINT post_acct_fk, ADD CONSTRAINT post_acct_fk FOREIGN KEY (acct_id) REFERENCES acct (id) ON DELETE CASCADE",
    ),
    (
        "",
        "ALTER TABLE post DROP CONSTRAINT post_acct_fk, ADD CONSTRAINT post_acct_fk FOREIGN KEY (acct_id) REFERENCES acct (id) NOT VALID",
    ),
    ("", "ALTER TABLE post ALTER COLUMN acct_id TYPE int"),
    // A unique key or primary key that foreign keys reference.
    ("", "ALTER TABLE acct ALTER COLUMN id TYPE int"),
    ("", "ALTER TABLE acct ALTER COLUMN email TYPE varchar(200)"),
    ("", "ALTER TABLE acct ALTER COLUMN email TYPE varchar"),
    ("", "ALTER TABLE tag ALTER COLUMN id TYPE bigint"),
    ("", "ALTER TABLE post ALTER COLUMN id TYPE int"),
    // Triggers.
    ("", "DROP TRIGGER post_touch ON post"),
    ("", "DROP TRIGGER IF EXISTS post_touch ON post"),
    ("", "DROP TRIGGER IF EXISTS no_such_trigger ON post"),
    ("", "CREATE TRIGGER tag_touch BEFORE UPDATE ON tag FOR EACH ROW EXECUTE FUNCTION touch()"),
    ("", "CREATE OR REPLACE TRIGGER post_touch BEFORE UPDATE ON post FOR EACH ROW EXECUTE FUNCTION touch()"),
    ("", "ALTER TABLE post DISABLE TRIGGER post_touch"),
    ("", "ALTER TABLE post ENABLE TRIGGER ALL"),
    ("", "ALTER TRIGGER post_touch ON post RENAME TO post_touch2"),
    ("", "DROP FUNCTION touch() CASCADE"),
    // ADD COLUMN with constraints.
    ("", "ALTER TABLE tag ADD COLUMN slug text UNIQUE"),
    ("", "ALTER TABLE tag ADD COLUMN n int CHECK (n > 0)"),
    ("", "ALTER TABLE tag ADD COLUMN n int NOT NULL DEFAULT 1"),
    ("", "ALTER TABLE tag ADD COLUMN n int DEFAULT 1 CHECK (n > 0)"),
    ("", "ALTER TABLE tag ADD COLUMN n int NOT NULL DEFAULT 1 CHECK (n > 0)"),
    ("", "ALTER TABLE tag ADD COLUMN n serial UNIQUE"),
    ("", "ALTER TABLE tag ADD COLUMN n uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE"),
    ("", "ALTER TABLE tag ADD COLUMN acct_id bigint REFERENCES acct"),
    ("", "ALTER TABLE tag ADD COLUMN acct_id bigint REFERENCES acct (id) ON DELETE CASCADE"),
    ("", "ALTER TABLE tag ADD COLUMN acct_id bigint DEFAULT 1 REFERENCES acct"),
    ("", "ALTER TABLE tag ADD COLUMN acct_id bigint DEFAULT NULL REFERENCES acct"),
    ("", "ALTER TABLE tag ADD COLUMN IF NOT EXISTS name varchar(50)"),
    ("", "ALTER TABLE tag ADD COLUMN IF NOT EXISTS extra text"),
    ("", "ALTER TABLE tag ADD COLUMN a int, ADD COLUMN b int DEFAULT 0"),
    ("", "ALTER TABLE tag ADD COLUMN n int GENERATED ALWAYS AS (id * 2) STORED"),
    ("", "ALTER TABLE tag ADD COLUMN n bigint GENERATED BY DEFAULT AS IDENTITY"),
    ("", "ALTER TABLE tag ADD COLUMN at timestamptz NOT NULL DEFAULT now()"),
    ("", "ALTER TABLE tag ADD COLUMN at timestamptz DEFAULT clock_timestamp()"),
    ("", "ALTER TABLE tag ADD COLUMN n text DEFAULT 'x' NOT NULL"),
    ("", "ALTER TABLE solo ADD PRIMARY KEY (id)"),
    // Constraints on existing columns.
    ("", "ALTER TABLE tag ADD CONSTRAINT tag_name_key UNIQUE (name)"),
    ("", "ALTER TABLE tag ADD CONSTRAINT tag_name_chk CHECK (name <> '')"),
    ("", "ALTER TABLE tag ADD CONSTRAINT tag_name_chk CHECK (name <> '') NOT VALID"),
    ("", "ALTER TABLE tag ALTER COLUMN name SET NOT NULL"),
    ("", "ALTER TABLE tag ALTER COLUMN name DROP NOT NULL"),
    ("", "ALTER TABLE tag ALTER COLUMN name SET DEFAULT 'x'"),
    ("", "ALTER TABLE tag ALTER COLUMN name DROP DEFAULT"),
    ("", "ALTER TABLE tag RENAME TO label"),
    ("", "ALTER TABLE tag RENAME CONSTRAINT tag_pkey TO tag_pk"),
    ("", "ALTER INDEX tag_pkey RENAME TO tag_pk"),
    ("", "ALTER TABLE acct DROP CONSTRAINT acct_email_key"),
    ("", "ALTER TABLE post ADD CONSTRAINT post_tag_fk FOREIGN KEY (id) REFERENCES acct"),
    ("", "ALTER TABLE post ADD FOREIGN KEY (editor_id) REFERENCES acct (id) NOT VALID"),
    ("", "ALTER TABLE vote ADD FOREIGN KEY (acct_id) REFERENCES acct ON DELETE CASCADE"),
    // DO blocks with literal SQL.
    ("", "DO $$ BEGIN ALTER TABLE tag ADD COLUMN n int; END $$"),
    ("", "DO $$ BEGIN CREATE INDEX tag_name_idx ON tag (name); END $$"),
    (
        "",
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'tag_name_idx') THEN CREATE INDEX tag_name_idx ON tag (name); END IF; END $$",
    ),
    (
        "",
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'tag_pkey') THEN ALTER TABLE tag ADD COLUMN n int; END IF; END $$",
    ),
    (
        "",
        "DO $$ BEGIN ALTER TABLE tag ADD CONSTRAINT tag_name_key UNIQUE (name); EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    ),
    (
        "",
        "DO $$ BEGIN UPDATE tag SET name = 'y' WHERE id = 1; DELETE FROM solo WHERE id = 1; END $$",
    ),
    (
        "",
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM tag LOOP UPDATE tag SET name = 'z' WHERE id = r.id; END LOOP; END $$",
    ),
    ("", "DO $$ BEGIN EXECUTE 'ALTER TABLE tag ADD COLUMN n int'; END $$"),
    (
        "",
        "DO $$ BEGIN ALTER TABLE post DROP CONSTRAINT post_acct_fk; ALTER TABLE tag ALTER COLUMN name TYPE text; END $$",
    ),
    (
        "",
        "DO $$ BEGIN PERFORM 1; ALTER TABLE acct ALTER COLUMN born TYPE timestamptz; END $$",
    ),
    // Data-modifying CTEs.
    ("", "WITH gone AS (DELETE FROM solo WHERE id < 5 RETURNING id) SELECT count(*) FROM gone"),
    (
        "",
        "WITH moved AS (DELETE FROM solo WHERE id < 5 RETURNING id, v) INSERT INTO solo SELECT id + 1000, v FROM moved",
    ),
    ("", "WITH x AS (UPDATE tag SET name = 'q' RETURNING id) SELECT * FROM x"),
    ("", "WITH x AS (SELECT id FROM tag) UPDATE solo SET v = 'c' FROM x WHERE solo.id = x.id"),
    ("", "WITH x AS (SELECT id FROM tag WHERE id < 3) DELETE FROM solo USING x WHERE solo.id = x.id"),
    // Deletes and updates that reach the tables referencing them.
    ("", "DELETE FROM post WHERE id = 1"),
    (
        "DELETE FROM post WHERE acct_id = 1 OR editor_id = 1",
        "DELETE FROM acct WHERE id = 1",
    ),
    ("", "DELETE FROM acct WHERE id = -1"),
    ("", "DELETE FROM tag"),
    ("", "DELETE FROM u WHERE id = 1"),
    ("", "UPDATE acct SET email = 'x' WHERE id = 1"),
    ("", "UPDATE post SET body = 'x' WHERE id = 1"),
    ("", "UPDATE post SET acct_id = 2 WHERE id = 1"),
    ("", "UPDATE vote SET post_id = 2 WHERE id = 1"),
    ("", "INSERT INTO post (id, acct_id, body) VALUES (1000, 1, 'n')"),
    ("", "INSERT INTO vote VALUES (1000, 1, 1)"),
    ("", "INSERT INTO tag VALUES (1000, 'n') ON CONFLICT (id) DO NOTHING"),
    ("", "INSERT INTO tag VALUES (1, 'n') ON CONFLICT (id) DO UPDATE SET name = excluded.name"),
    ("", "TRUNCATE solo"),
    ("", "TRUNCATE vote"),
    ("", "TRUNCATE acct CASCADE"),
    ("", "TRUNCATE post, vote"),
    // Dropping objects others depend on.
    ("", "DROP TABLE vote"),
    ("", "DROP TABLE post CASCADE"),
    ("", "DROP TABLE IF EXISTS no_such_table"),
    ("", "DROP TABLE IF EXISTS vote"),
    ("", "DROP VIEW post_v"),
    ("", "DROP MATERIALIZED VIEW tag_mv"),
    ("", "DROP INDEX tyi_c_vc_idx CASCADE"),
    ("", "DROP INDEX IF EXISTS no_such_idx"),
    ("", "DROP TYPE mood CASCADE"),
    ("", "ALTER TABLE acct DROP CONSTRAINT acct_pkey CASCADE"),
    ("", "ALTER TABLE acct DROP COLUMN id CASCADE"),
    // REFERENCES without a column list means the primary key.
    ("", "CREATE TABLE likes (id int, post_id bigint REFERENCES post)"),
    ("", "CREATE TABLE likes (id int, acct_id bigint REFERENCES acct ON DELETE CASCADE)"),
    ("", "CREATE TABLE likes (id int, email text REFERENCES acct (email))"),
    ("", "CREATE TABLE likes (id int, a bigint, FOREIGN KEY (a) REFERENCES acct)"),
    ("", "CREATE TABLE likes (LIKE tag INCLUDING ALL)"),
    ("", "CREATE TABLE likes PARTITION OF parent FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')"),
    // timestamp to timestamptz with the session TimeZone UTC.
    ("", "ALTER TABLE acct ALTER COLUMN born TYPE timestamptz"),
    ("", "ALTER TABLE acct ALTER COLUMN born TYPE timestamptz USING born"),
    ("", "ALTER TABLE acct ALTER COLUMN born TYPE timestamptz USING born AT TIME ZONE 'UTC'"),
    (
        "",
        "ALTER TABLE acct ALTER COLUMN born TYPE timestamptz, ALTER COLUMN seen TYPE timestamptz",
    ),
    ("", "ALTER TABLE post ALTER COLUMN at TYPE timestamptz"),
    ("", "ALTER TABLE post ALTER COLUMN at TYPE timestamp(3)"),
    ("", "ALTER TABLE post ALTER COLUMN at TYPE timestamptz(3)"),
    // Queries read their sources.
    ("", "INSERT INTO solo SELECT id, name FROM tag"),
    ("", "INSERT INTO solo (id, v) SELECT p.id, a.email FROM post p JOIN acct a ON a.id = p.acct_id"),
    ("", "UPDATE solo SET v = tag.name FROM tag WHERE tag.id = solo.id"),
    ("", "UPDATE solo SET v = (SELECT name FROM tag WHERE tag.id = solo.id)"),
    ("", "DELETE FROM solo WHERE id IN (SELECT id FROM tag)"),
    ("", "DELETE FROM solo USING tag WHERE tag.id = solo.id"),
    ("", "CREATE TABLE copy AS SELECT * FROM tag"),
    ("", "CREATE TABLE copy AS SELECT t.id FROM tag t JOIN acct a ON a.id = t.id"),
    ("", "SELECT * INTO copy FROM tag"),
    ("", "CREATE MATERIALIZED VIEW acct_mv AS SELECT id, email FROM acct"),
    ("", "CREATE MATERIALIZED VIEW acct_mv AS SELECT id FROM acct WITH NO DATA"),
    ("", "CREATE VIEW acct_v AS SELECT id, email FROM acct"),
    ("", "CREATE OR REPLACE VIEW post_v AS SELECT id, v FROM solo"),
    ("", "REFRESH MATERIALIZED VIEW tag_mv"),
    ("", "SELECT count(*) FROM acct"),
    ("", "COMMENT ON COLUMN tag.name IS 'the name'"),
    ("", "ANALYZE tag"),
    ("", "GRANT SELECT ON tag TO PUBLIC"),
    ("", "ALTER TABLE tag OWNER TO CURRENT_USER"),
    // Indexes.
    ("", "CREATE INDEX tag_lower_idx ON tag (lower(name))"),
    ("", "CREATE UNIQUE INDEX tag_name_uidx ON tag (name) WHERE id > 0"),
    ("", "CREATE INDEX IF NOT EXISTS tag_pkey ON tag (id)"),
    ("", "CREATE INDEX parent_at_idx ON parent (at)"),
    ("", "CREATE INDEX parent_at_idx ON ONLY parent (at)"),
    ("", "CREATE INDEX post_acct_idx ON post USING hash (acct_id)"),
    ("", "CREATE INDEX tyi_gin ON tyi USING gin (c_jsonb)"),
    ("", "DROP INDEX tyi_c_int_idx"),
    ("", "ALTER INDEX tyi_c_int_idx SET (fillfactor = 80)"),
    ("", "REINDEX INDEX tyi_c_text_idx"),
    // A dropped column takes its indexes with it (expression indexes too).
    ("ALTER TABLE tyi DROP COLUMN c_text", "DROP INDEX IF EXISTS tyi_c_text_idx"),
    (
        "CREATE INDEX tag_lower_idx ON tag (lower(name)); ALTER TABLE tag DROP COLUMN name",
        "DROP INDEX IF EXISTS tag_lower_idx",
    ),
    (
        "ALTER TABLE acct DROP CONSTRAINT acct_email_key",
        "DROP INDEX IF EXISTS acct_email_key",
    ),
];

/// A matrix of column type changes, generated: `(column, new type)` for each of the two
/// tables with the same columns and rows, `ty` (no indexes) and `tyi` (an index on each).
pub const TYPE_CHANGES: &[(&str, &str)] = &[
    ("c_int", "bigint"),
    ("c_int", "smallint"),
    ("c_int", "numeric"),
    ("c_int", "text"),
    ("c_small", "int"),
    ("c_big", "int"),
    ("c_big", "numeric(20,0)"),
    ("c_vc10", "varchar(20)"),
    ("c_vc10", "varchar(5)"),
    ("c_vc10", "varchar"),
    ("c_vc10", "text"),
    ("c_vc10", "char(10)"),
    ("c_vc", "text"),
    ("c_vc", "varchar(100)"),
    ("c_text", "varchar"),
    ("c_text", "varchar(255)"),
    ("c_text", "char(20)"),
    ("c_num", "numeric(12,2)"),
    ("c_num", "numeric(10,3)"),
    ("c_num", "numeric(8,2)"),
    ("c_num", "numeric"),
    ("c_numu", "numeric(20,4)"),
    ("c_num", "double precision"),
    ("c_ts", "timestamptz"),
    ("c_ts", "timestamp(3)"),
    ("c_ts", "timestamp(6)"),
    ("c_ts", "date"),
    ("c_tstz", "timestamp"),
    ("c_tstz", "timestamptz(3)"),
    ("c_ts3", "timestamp"),
    ("c_ts3", "timestamp(6)"),
    ("c_ts3", "timestamp(1)"),
    ("c_time", "time(3)"),
    ("c_time", "timetz"),
    ("c_date", "timestamp"),
    ("c_bool", "int USING c_bool::int"),
    ("c_json", "jsonb"),
    ("c_jsonb", "json"),
    ("c_uuid", "text"),
    ("c_char", "char(10)"),
    ("c_char", "varchar(5)"),
    ("c_char", "text"),
    ("c_bit", "varbit"),
    ("c_bit", "bit(8) USING c_bit::bit(8)"),
    ("c_vbit", "varbit(16)"),
    ("c_vbit", "varbit"),
    ("c_cidr", "inet"),
    ("c_inet", "text"),
    ("c_real", "double precision"),
    ("c_dbl", "real"),
    ("c_arr", "bigint[]"),
    ("c_tarr", "varchar[]"),
    ("c_intv", "interval(3)"),
    ("c_bytea", "text"),
    ("c_int", "bigint USING c_int::bigint"),
    ("c_vc10", "varchar(20) USING c_vc10"),
];
