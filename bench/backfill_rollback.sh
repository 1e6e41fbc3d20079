#!/bin/sh
# Backfill rollback benchmark: a backfill that writes two columns of 270,000 rows (a `where`
# picks them, as backfills usually pick part of a table) of a 2,000,000-row table (rows of
# about 450 bytes), then the application changes another column of 11 % of the rows and a
# backfilled column of 2 %, then `lockstep rollback`; by an older lockstep and by the one of
# this tree, in the same run on the same data (each in its own copy of one database). Prints
# the time of the backfill and of the rollback, the size of the undo data, and what the
# rollback left: rows restored, rows that kept the application's value of the backfilled
# column it changed (right), rows that kept a backfilled value in a column nobody changed
# since (wrong: the older rollback kept whole rows when any column changed), and the undo
# data left.
#
#   sh bench/backfill_rollback.sh                 # builds the older lockstep once
#   ROWS=100000 TABLE_ROWS=500000 sh bench/backfill_rollback.sh
#   OLD=/path/to/lockstep sh bench/backfill_rollback.sh   # compare with that binary instead
#   BASE=<git revision> sh bench/backfill_rollback.sh     # build that revision as the older
#
# The older lockstep is by default the revision before the per-column undo data (its undo
# table held whole rows as jsonb, its rollback restored a row only if the whole row was
# unchanged, in chunks of 5000 joined through a text[] key, and deleted the undo data as it
# went); it is built once into target/bench-base (git archive + cargo build --release: a few
# minutes the first time). Starts its own throwaway PostgreSQL (default durability settings,
# no other clients: a quiet database) and removes it afterwards.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
rows="${ROWS:-270000}"
table_rows="${TABLE_ROWS:-2000000}"
base="${BASE:-ae02f4973e24882961e51a5d9be0b7fe1a718421}"
bin="${LOCKSTEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"

cargo build --release --quiet
new="$root/target/release/lockstep"
if [ -n "${OLD:-}" ]; then
  old="$OLD"
  old_name="$OLD"
else
  src="$root/target/bench-base/src-$base"
  if [ ! -f "$src/Cargo.toml" ]; then
    mkdir -p "$src"
    git archive "$base" | tar -x -C "$src"
  fi
  echo "building lockstep $base (once) ..." >&2
  CARGO_TARGET_DIR="$root/target/bench-base/target" cargo build --release --quiet --manifest-path "$src/Cargo.toml"
  old="$root/target/bench-base/target/release/lockstep"
  old_name=$(printf '%.7s' "$base")
fi

. bench/throwaway_pg.sh
pg_start -c listen_addresses=''
psql() { "$bin/psql" -h "$dir" -p "$port" -U postgres -q -X -v ON_ERROR_STOP=1 "$@"; }

psql postgres -c "CREATE DATABASE seed"
psql seed <<SQL
-- Rows of about 450 bytes; every row whose grp is below $rows of the table's $table_rows
-- is backfilled.
CREATE TABLE items (id bigserial PRIMARY KEY, grp int NOT NULL, val text, flag text, n int,
                    note text, payload jsonb, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO items (grp, val, n, note, payload)
  SELECT (g::bigint * 7919) % $table_rows, 'v' || g, g, repeat(md5(g::text), 10),
         jsonb_build_object('g', g, 'tags', jsonb_build_array('a', 'b'))
  FROM generate_series(1, $table_rows) g;
CREATE INDEX items_grp_idx ON items (grp);
SQL
psql seed -c "VACUUM ANALYZE items"
cat >"$dir/backfill.toml" <<EOF
kind = "backfill"
table = "items"
[update]
set = "flag = 'done:' || val, n = n + 1"
where = "grp < $rows"
EOF

now() { date +%s.%N; }

# measure NAME BINARY: prints "backfill_s rollback_s undo_bytes restored right wrong left_bytes"
# (restored: both backfilled columns back; right: `flag` keeps the application's value;
# wrong: a backfilled value kept in a column the application did not change)
measure() {
  db="db_$1"
  psql postgres -c "CREATE DATABASE $db TEMPLATE seed"
  url="host=$dir port=$port user=postgres dbname=$db"
  t0=$(now)
  "$2" run "$dir/backfill.toml" --database-url "$url" >"$dir/$1-run.log" 2>&1
  t1=$(now)
  undo=$(psql "$db" -Atc "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.relnamespace = 'lockstep'::regnamespace AND c.relname LIKE 'undo%' AND c.relkind = 'r'")
  # The application, after the backfill: another column of 11 % of the rows, a backfilled
  # column of 2 %.
  psql "$db" -c "UPDATE items SET val = val || '!' WHERE id % 100 < 11" \
             -c "UPDATE items SET flag = 'app' WHERE id % 100 IN (11, 12)" \
             -c "VACUUM ANALYZE items"
  t2=$(now)
  "$2" rollback --database-url "$url" >"$dir/$1-rollback.log" 2>&1
  t3=$(now)
  left=$(psql "$db" -Atc "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.relnamespace = 'lockstep'::regnamespace AND c.relname LIKE 'undo%' AND c.relkind = 'r'")
  counts=$(psql "$db" -AtF ' ' -c "SELECT count(*) FILTER (WHERE flag IS NULL AND n = id),
      count(*) FILTER (WHERE flag = 'app'),
      count(*) FILTER (WHERE n <> id OR flag <> 'app')
    FROM items WHERE grp < $rows")
  echo "$t0 $t1 $t2 $t3" | awk '{ printf "%.2f %.2f ", $2 - $1, $4 - $3 }'
  echo "$undo $counts $left"
}

echo "lockstep $old_name ..." >&2
set -- $(measure old "$old")
o_run=$1 o_rb=$2 o_undo=$3 o_restored=$4 o_right=$5 o_wrong=$6 o_left=$7
echo "lockstep of this tree ..." >&2
set -- $(measure new "$new")
n_run=$1 n_rb=$2 n_undo=$3 n_restored=$4 n_right=$5 n_wrong=$6 n_left=$7

ratio() { echo "$1 $2" | awk '{ if ($1 > 0) printf "%.3fx", $2 / $1; else print "-" }'; }
mb() { echo "$1" | awk '{ printf "%.1f MB", $1 / 1048576 }'; }
printf '\nbackfill of %s of %s rows (2 columns), then rollback; PostgreSQL %s\n\n' "$rows" "$table_rows" "$("$bin/postgres" --version | awk '{print $3}')"
printf '%-44s %16s %16s %9s\n' "" "$old_name" "this tree" "new/old"
printf '%-44s %16s %16s %9s\n' "backfill (lockstep run)" "$(printf '%.1f s' "$o_run")" "$(printf '%.1f s' "$n_run")" "$(ratio "$o_run" "$n_run")"
printf '%-44s %16s %16s %9s\n' "undo data after the backfill" "$(mb "$o_undo")" "$(mb "$n_undo")" "$(ratio "$o_undo" "$n_undo")"
printf '%-44s %16s %16s %9s\n' "rollback (lockstep rollback)" "$(printf '%.1f s' "$o_rb")" "$(printf '%.1f s' "$n_rb")" "$(ratio "$o_rb" "$n_rb")"
printf '%-44s %16s %16s\n' "rows restored" "$o_restored" "$n_restored"
printf '%-44s %16s %16s\n' "rows kept: their backfilled column changed" "$o_right" "$n_right"
printf '%-44s %16s %16s\n' "rows kept a value whose column did not change" "$o_wrong" "$n_wrong"
printf '%-44s %16s %16s\n' "undo data after the rollback" "$(mb "$o_left")" "$(mb "$n_left")"
