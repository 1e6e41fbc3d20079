#!/bin/sh
# A migration of four statements on an existing table of 100 rows (CREATE INDEX
# CONCURRENTLY; ALTER TABLE ADD COLUMN; ADD CONSTRAINT … CHECK … NOT VALID; VALIDATE
# CONSTRAINT) rolled out to 1,000 schema targets (one database) and 30 database targets, by
# `lockstep fleet run` and by a sequential `psql -f` loop (one psql per target, the four
# statements in one file, ON_ERROR_STOP), in the same run on the same cluster. Each contender
# gets its own, identical set of targets. lockstep runs with concurrency 1 (its cost per
# target against psql's) and with CONCURRENCY (default 8) targets at once.
#
#   sh bench/fleet_speed.sh
#   SCHEMAS=200 DATABASES=10 CONCURRENCY=4 sh bench/fleet_speed.sh
#
# Prints a table of wall-clock seconds and ratios against the psql loop. Starts its own
# throwaway PostgreSQL (fsync off, max_connections 200) and removes it afterwards. Builds
# the release binary first (LOCKSTEP=path/to/lockstep uses that binary instead).
set -eu
cd "$(dirname "$0")/.."
if [ -z "${LOCKSTEP:-}" ]; then
  cargo build --release --quiet
  LOCKSTEP="$PWD/target/release/lockstep"
fi
lockstep="$LOCKSTEP"
bin="${LOCKSTEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
schemas="${SCHEMAS:-1000}"
databases="${DATABASES:-30}"
concurrency="${CONCURRENCY:-8}"
. bench/throwaway_pg.sh
pg_start -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
unset PGDATABASE DATABASE_URL PGSERVICE || true
psql="$bin/psql -q -X -v ON_ERROR_STOP=1"

mkdir -p "$dir/migrations"
echo "CREATE INDEX CONCURRENTLY items_v_idx ON items (v);" > "$dir/migrations/0001_index.sql"
echo "ALTER TABLE items ADD COLUMN note text;" > "$dir/migrations/0002_column.sql"
echo "ALTER TABLE items ADD CONSTRAINT items_v_check CHECK (v >= 0) NOT VALID;" > "$dir/migrations/0003_check.sql"
echo "ALTER TABLE items VALIDATE CONSTRAINT items_v_check;" > "$dir/migrations/0004_validate.sql"
cat "$dir"/migrations/*.sql > "$dir/all.sql"
items="CREATE TABLE items (id bigint PRIMARY KEY, v int); INSERT INTO items SELECT g, g % 100 FROM generate_series(1, 100) g;"

# The targets of one contender: DATABASES databases <p>_db_NN and SCHEMAS schemas of <p>_shared.
setup() {
  i=0
  while [ "$i" -lt "$databases" ]; do
    $psql -d postgres -c "CREATE DATABASE ${1}_db_$(printf %02d "$i")"
    $psql -d "${1}_db_$(printf %02d "$i")" -c "$items"
    i=$((i + 1))
  done
  $psql -d postgres -c "CREATE DATABASE ${1}_shared"
  $psql -d "${1}_shared" -c "DO \$\$ DECLARE s text; BEGIN FOR i IN 1..$schemas LOOP s := 'org_' || lpad(i::text, 4, '0'); EXECUTE format('CREATE SCHEMA %I', s); EXECUTE format('CREATE TABLE %I.items (id bigint PRIMARY KEY, v int)', s); EXECUTE format('INSERT INTO %I.items SELECT g, g %% 100 FROM generate_series(1, 100) g', s); END LOOP; END \$\$"
}

fleet() {
  cat > "$dir/$1.toml" <<EOF
migrations = "$dir/migrations"
[rollout]
canary = 1
wave_size = 0
concurrency = $2
[[targets.discover]]
url = "host=127.0.0.1 port=$port user=postgres dbname=postgres"
databases = "SELECT datname FROM pg_database WHERE datname LIKE '${1}\\\\_db\\\\_%' ORDER BY 1"
[[targets.discover]]
url = "host=127.0.0.1 port=$port user=postgres dbname=${1}_shared"
schemas = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'org\\\\_%' ORDER BY 1"
EOF
}

now() { python3 -c 'import time; print(time.monotonic())'; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }

for p in psql seq par; do setup "$p"; done
fleet seq 1
fleet par "$concurrency"

# The psql loop: one psql per target, the four statements in one file.
t0=$(now)
i=0
while [ "$i" -lt "$databases" ]; do
  $psql -d "psql_db_$(printf %02d "$i")" -f "$dir/all.sql"
  i=$((i + 1))
done
for s in $($psql -d psql_shared -At -c "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'org\\_%' ORDER BY 1"); do
  PGOPTIONS="$PGOPTIONS -c search_path=$s" $psql -d psql_shared -f "$dir/all.sql"
done
t1=$(now)
psql_s=$(elapsed "$t0" "$t1")

run_fleet() {
  t0=$(now)
  "$lockstep" fleet run "$dir/$1.toml" >"$dir/$1.out" 2>"$dir/$1.err" || { cat "$dir/$1.out" "$dir/$1.err"; exit 1; }
  t1=$(now)
  elapsed "$t0" "$t1"
}
seq_s=$(run_fleet seq)
par_s=$(run_fleet par)

# Every contender did the whole job.
check() {
  n=$($psql -d "${1}_shared" -At -c "SELECT count(*) FROM pg_constraint WHERE conname = 'items_v_check' AND convalidated")
  [ "$n" = "$schemas" ] || { echo "$1: $n of $schemas schemas migrated" >&2; exit 1; }
}
for p in psql seq par; do check "$p"; done

targets=$((schemas + databases))
printf '\n%s schema targets + %s database targets (%s in all), 4 statements each, PostgreSQL %s, %s cores\n\n' \
  "$schemas" "$databases" "$targets" "$($psql -d postgres -At -c 'SHOW server_version')" "$(nproc)"
printf '%-44s %10s %12s %10s\n' "contender" "seconds" "targets/s" "vs psql"
row() { python3 -c "print(f'{\"$1\":<44} {$2:>10.1f} {$targets / $2:>12.0f} {$3 / $2:>9.2f}x')"; }
row "psql -f loop, one target at a time" "$psql_s" "$psql_s"
row "lockstep fleet run, concurrency 1" "$seq_s" "$psql_s"
row "lockstep fleet run, concurrency $concurrency" "$par_s" "$psql_s"
printf '\n(vs psql > 1: faster than the psql loop.) lockstep also lints once, records every\nmigration on its target, and runs each statement under lock_timeout with retries.\n'
