#!/bin/sh
# What the change-capture trigger costs a writer, measured with pgbench (a C client, so the
# numbers are the server's): the demo's write mix (60 % inserts, 30 % updates, 10 % deletes,
# single rows, autocommit) on a 200,000-row table with no trigger, with a trigger that mirrors
# every write into a copy partitioned by month (16 partitions, like the demo's) in the same
# transaction, in the forms lockstep used before it logged keys instead, and with the
# key-logging trigger:
#
#   delete+insert   every update as a delete and an upsert, through the partitioned table
#   in place        an update that keeps the key as one UPDATE, through the partitioned table
#   routed          the same, written to the partition directly, oldest partition tested first
#   newest first    the same, newest partition tested first (new rows of time-series tables
#                   land in the newest partitions)
#   log             asynchronous capture (what lockstep generates): the trigger appends the
#                   changed keys to a bare log table, which the runner replays
#   log_set_path    the same with SET search_path on the function (not used: it cost the
#                   writers another 7 % to 19 % of their throughput in two runs)
#
#   sh bench/trigger_overhead.sh          # 2 clients, 3 rounds of 8 s per variant
#   CLIENTS=4 SECONDS_EACH=15 sh bench/trigger_overhead.sh
#
# Starts its own throwaway PostgreSQL (fsync off) and removes it afterwards.
set -eu
bin="${LOCKSTEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
clients="${CLIENTS:-2}"
secs="${SECONDS_EACH:-8}"
. "$(dirname "$0")/throwaway_pg.sh"
pg_start -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off
psql="$bin/psql -h 127.0.0.1 -p $port -U postgres -q -X postgres"
$psql <<'SQL'
CREATE TABLE t (id bigserial PRIMARY KEY, device_id int NOT NULL, recorded_at timestamptz NOT NULL, status text, payload jsonb);
INSERT INTO t (device_id, recorded_at, status, payload)
  SELECT g % 1000, now() - (g || ' seconds')::interval * 200, 'ok', jsonb_build_object('v', g) FROM generate_series(1, 200000) g;
CREATE INDEX ON t (device_id, recorded_at);
CREATE TABLE s (LIKE t INCLUDING DEFAULTS) PARTITION BY RANGE (recorded_at);
ALTER TABLE s ADD PRIMARY KEY (id, recorded_at);
DO $$ DECLARE d timestamptz; BEGIN
  FOR d IN SELECT generate_series(date_trunc('month', now() - interval '470 days'), now() + interval '1 month', interval '1 month') LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF s FOR VALUES FROM (%L) TO (%L)', 's_' || to_char(d, 'YYYYMM'), d, d + interval '1 month');
  END LOOP; END $$;
CREATE TABLE s_default PARTITION OF s DEFAULT;
INSERT INTO s SELECT * FROM t;
CREATE INDEX ON s (device_id, recorded_at);
VACUUM ANALYZE t; VACUUM ANALYZE s;
CREATE FUNCTION f_delete_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM s WHERE id = OLD.id AND recorded_at = OLD.recorded_at;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO s (id, device_id, recorded_at, status, payload) VALUES (NEW.id, NEW.device_id, NEW.recorded_at, NEW.status, NEW.payload)
      ON CONFLICT (id, recorded_at) DO UPDATE SET device_id = EXCLUDED.device_id, status = EXCLUDED.status, payload = EXCLUDED.payload;
  END IF;
  RETURN NULL;
END $f$;
-- The in-place and routed forms, generated the way lockstep generates them.
DO $gen$
DECLARE
  parts text[][] := (SELECT array_agg(ARRAY[quote_ident(c.relname), (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((.*)\) TO \((.*)\)'))[1], (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((.*)\) TO \((.*)\)'))[2]] ORDER BY c.relname)
                     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 's'::regclass AND c.relname <> 's_default');
  routed boolean;
  variant text;
  body text;
  fn text;
BEGIN
  FOREACH variant IN ARRAY ARRAY['in_place', 'routed', 'newest_first'] LOOP
    routed := variant <> 'in_place';
    body := '';
    DECLARE
      stmts text[] := ARRAY[
        'UPDATE %s SET device_id = NEW.device_id, status = NEW.status, payload = NEW.payload WHERE id = OLD.id AND recorded_at = OLD.recorded_at;',
        'DELETE FROM %s WHERE id = OLD.id AND recorded_at = OLD.recorded_at;',
        'INSERT INTO %s (id, device_id, recorded_at, status, payload) VALUES (NEW.id, NEW.device_id, NEW.recorded_at, NEW.status, NEW.payload) ON CONFLICT (id, recorded_at) DO UPDATE SET device_id = EXCLUDED.device_id, status = EXCLUDED.status, payload = EXCLUDED.payload;'];
      rows text[] := ARRAY['OLD', 'OLD', 'NEW'];
      r text[] := ARRAY[]::text[];
      x text;
      k int;
      p int;
      i int;
    BEGIN
      FOR k IN 1..3 LOOP
        IF NOT routed THEN
          x := format(stmts[k], 's');
        ELSE
          x := '';
          FOR p IN 1..array_length(parts, 1) LOOP
            i := CASE WHEN variant = 'newest_first' THEN array_length(parts, 1) + 1 - p ELSE p END;
            x := x || CASE WHEN p = 1 THEN 'IF ' ELSE ' ELSIF ' END
                   || format('%s.recorded_at >= %s AND %s.recorded_at < %s THEN ', rows[k], parts[i][2], rows[k], parts[i][3])
                   || format(stmts[k], parts[i][1]);
          END LOOP;
          x := x || ' ELSE ' || format(stmts[k], 's') || ' END IF;';
        END IF;
        r := r || x;
      END LOOP;
      fn := 'f_' || variant;
      EXECUTE format($t$CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.recorded_at IS NOT DISTINCT FROM OLD.recorded_at THEN
    %s
    IF FOUND THEN RETURN NULL; END IF;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN %s END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN %s END IF;
  RETURN NULL;
END $f$$t$, fn, r[1], r[2], r[3]);
    END;
  END LOOP;
END $gen$;
-- Asynchronous capture: the trigger only logs the changed keys to a bare heap; the runner
-- replays them. As lockstep generates it (SECURITY DEFINER, every name and operator
-- qualified), and the same with SET search_path.
CREATE TABLE lh (id bigint NOT NULL);
CREATE FUNCTION f_log() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $f$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    TRUNCATE public.lh;
    RETURN NULL;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    INSERT INTO public.lh (id) VALUES (NEW.id);
    RETURN NULL;
  END IF;
  INSERT INTO public.lh (id) VALUES (OLD.id);
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT (NEW.id::pg_catalog.text OPERATOR(pg_catalog.=) OLD.id::pg_catalog.text) THEN
    INSERT INTO public.lh (id) VALUES (NEW.id);
  END IF;
  RETURN NULL;
END $f$;
CREATE FUNCTION f_log_set_path() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.lh (id) VALUES (NEW.id);
    RETURN NULL;
  END IF;
  INSERT INTO public.lh (id) VALUES (OLD.id);
  IF TG_OP = 'UPDATE' AND NOT (NEW.id IS NOT DISTINCT FROM OLD.id) THEN
    INSERT INTO public.lh (id) VALUES (NEW.id);
  END IF;
  RETURN NULL;
END $f$;
SQL
cat > "$dir/mix.pgb" <<'PGB'
\set r random(1, 10)
\set id random(1, 200000)
\set dev random(0, 999)
\if :r <= 6
INSERT INTO t (device_id, recorded_at, status, payload) VALUES (:dev, now(), 'new', jsonb_build_object('v', (:r)::int));
\elif :r <= 9
UPDATE t SET status = 'seen', payload = payload || '{"seen": true}' WHERE id = :id;
\else
DELETE FROM t WHERE id = :id;
\endif
PGB
run() {
  $psql -c "DROP TRIGGER IF EXISTS capture ON t"
  [ "$1" = none ] || $psql -c "CREATE TRIGGER capture AFTER INSERT OR UPDATE OR DELETE ON t FOR EACH ROW EXECUTE FUNCTION f_$1()"
  "$bin/pgbench" -n -c "$clients" -j "$clients" -T "$secs" -M prepared -f "$dir/mix.pgb" -h 127.0.0.1 -p "$port" -U postgres postgres > "$dir/out" 2>&1 || true
  # A client that fails (a broken trigger) would leave the others to report a rate.
  if grep -q "aborted" "$dir/out"; then
    echo "pgbench failed with variant $1:" >&2
    cat "$dir/out" >&2
    exit 1
  fi
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out"
}
# Rounds interleave the variants, so drift in the machine's speed hits all of them alike.
for round in 1 2 3; do
  for v in none delete_insert in_place routed newest_first log log_set_path; do
    echo "$v $(run $v)" >> "$dir/results"
  done
done
echo "pgbench, $clients clients, write mix of the demo, median of 3 rounds of $secs s:"
printf '%-16s %10s %8s\n' variant tps ratio
base=$(awk '$1 == "none" {print $2}' "$dir/results" | sort -n | sed -n 2p)
for v in none delete_insert in_place routed newest_first log log_set_path; do
  tps=$(awk -v v="$v" '$1 == v {print $2}' "$dir/results" | sort -n | sed -n 2p)
  awk -v v="$v" -v t="$tps" -v b="$base" 'BEGIN { printf "%-16s %10.0f %7.2fx\n", v, t, t / b }'
done
