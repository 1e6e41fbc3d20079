#!/bin/sh
# What the reverse sync costs the writers after the swap, until `lockstep finalize`, measured
# with pgbench (a C client) and the real lockstep: the demo's write mix (60 % inserts, 30 %
# updates, 10 % deletes, single rows, autocommit) on a 200,000-row table converted to monthly
# partitions (KIND=rebuild: rebuilt as it is, a plain table again), with
#
#   none       the table as it is, before any run (the baseline)
#   swapped    after the swap with no reverse trigger (dropped by hand): what the new
#              table itself costs, as after `lockstep finalize`
#   sync       after the swap with `[swap] reverse = "sync"` (trigger capture): a trigger
#              applies every change to the old table in the writer's transaction
#   deferred   after the swap with `reverse = "deferred"` (trigger capture): a trigger logs
#              the changed keys; `lockstep rollback` applies them (its time is reported)
#   logical    after the swap with `reverse = "logical"` (logical capture, the default where
#              the server allows it): nothing on the writers' path; a replication slot keeps
#              the changes and `lockstep rollback` applies them
#
# After each variant the run is rolled back, so every round starts from the plain table
# (`rollback_s`: how long the rollback took, the changes since the swap applied first).
#
#   cargo build --release && sh bench/reverse_overhead.sh     # 2 clients, 3 rounds of 8 s
#   CLIENTS=4 SECONDS_EACH=15 LOCKSTEP=target/release/lockstep sh bench/reverse_overhead.sh
#   KIND=rebuild sh bench/reverse_overhead.sh
#
# Starts its own throwaway PostgreSQL (fsync off) and removes it afterwards.
set -eu
bin="${LOCKSTEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
lockstep="$(realpath "${LOCKSTEP:-target/release/lockstep}")"
clients="${CLIENTS:-2}"
secs="${SECONDS_EACH:-8}"
kind="${KIND:-partition}"
. "$(dirname "$0")/throwaway_pg.sh"
pg_start -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=logical
url="host=127.0.0.1 port=$port user=postgres dbname=postgres"
psql="$bin/psql -h 127.0.0.1 -p $port -U postgres -q -X postgres"
$psql <<'SQL'
CREATE TABLE t (id bigserial PRIMARY KEY, device_id int NOT NULL, recorded_at timestamptz NOT NULL, status text, payload jsonb);
INSERT INTO t (device_id, recorded_at, status, payload)
  SELECT g % 1000, now() - (g || ' seconds')::interval * 200, 'ok', jsonb_build_object('v', g) FROM generate_series(1, 200000) g;
CREATE INDEX ON t (device_id, recorded_at);
VACUUM ANALYZE t;
SQL
for mode in sync deferred logical; do
  capture=trigger
  [ "$mode" = logical ] && capture=logical
  section='[rebuild]'
  [ "$kind" = partition ] && section='[partition]
column = "recorded_at"
strategy = "range"
interval = "1 month"
premake = 2'
  cat > "$dir/$mode.toml" <<TOML
kind = "$kind"
table = "t"
$section
[capture]
mode = "$capture"
[swap]
reverse = "$mode"
TOML
done
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
pgbench() {
  "$bin/pgbench" -n -c "$clients" -j "$clients" -T "$secs" -M prepared -f "$dir/mix.pgb" -h 127.0.0.1 -p "$port" -U postgres postgres > "$dir/out" 2>&1 || true
  if grep -q "aborted" "$dir/out"; then
    echo "pgbench failed:" >&2
    cat "$dir/out" >&2
    exit 1
  fi
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out"
}
now() { python3 -c 'import time; print(time.time())'; }
run() {
  if [ "$1" = none ]; then
    echo "none $(pgbench)" >> "$dir/results"
    return
  fi
  toml=$1
  [ "$1" = swapped ] && toml=deferred
  "$lockstep" run "$dir/$toml.toml" --database-url "$url" > "$dir/run.log" 2>&1 || { cat "$dir/run.log" >&2; exit 1; }
  [ "$1" = swapped ] && $psql -c "DROP TRIGGER lockstep_reverse ON t; DROP TRIGGER lockstep_reverse_truncate ON t"
  echo "$1 $(pgbench)" >> "$dir/results"
  t0=$(now)
  "$lockstep" rollback --database-url "$url" > "$dir/rb.log" 2>&1 || { cat "$dir/rb.log" >&2; exit 1; }
  t1=$(now)
  echo "$1 $t0 $t1" >> "$dir/rollbacks"
}
# Rounds interleave the variants, so drift in the machine's speed hits all of them alike.
for round in 1 2 3; do
  for v in none swapped sync deferred logical; do
    run $v
  done
done
echo "pgbench, $clients clients, write mix of the demo, after the swap ($kind), median of 3 rounds of $secs s:"
printf '%-10s %10s %8s %10s %12s\n' variant tps ratio /swapped rollback_s
base=$(awk '$1 == "none" {print $2}' "$dir/results" | sort -n | sed -n 2p)
swapped=$(awk '$1 == "swapped" {print $2}' "$dir/results" | sort -n | sed -n 2p)
for v in none swapped sync deferred logical; do
  tps=$(awk -v v="$v" '$1 == v {print $2}' "$dir/results" | sort -n | sed -n 2p)
  rb=$(awk -v v="$v" '$1 == v {print $3 - $2}' "$dir/rollbacks" 2>/dev/null | sort -n | sed -n 2p)
  awk -v v="$v" -v t="$tps" -v b="$base" -v s="$swapped" -v r="${rb:--}" 'BEGIN { printf "%-10s %10.0f %7.2fx %9.2fx %12s\n", v, t, t / b, t / s, r }'
done
