//! The statements of the ground-truth table in the rule catalogue (RULES.md), with the
//! schema they run against. Shared by the ground-truth and trace tests.

pub const BASE: &str = "
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
pub const CASES: &[(&str, &str)] = &[
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
    // Valid statements the SQL parser rejects, read by the recognizer.
    (
        "",
        "ALTER TABLE fkref ALTER CONSTRAINT fkref_t_id_fkey DEFERRABLE INITIALLY DEFERRED",
    ),
    (
        "",
        "CREATE TABLE gap_fk (id int, u_id int, FOREIGN KEY (u_id) REFERENCES u (id) ON DELETE SET NULL (u_id))",
    ),
    (
        "",
        "CREATE TABLE gap_like (LIKE t INCLUDING ALL) WITH (toast.autovacuum_enabled = false)",
    ),
    (
        "",
        "CREATE TABLE part_gap PARTITION OF parent FOR VALUES FROM ('2022-01-01') TO ('2023-01-01') USING heap",
    ),
];
