#!/bin/sh
# The shadow engine's benchmarks, side by side in one run on one throwaway PostgreSQL:
#
#   rebuild vs pg_repack  a bloated table (ROWS rows, half of them updated and vacuumed, so
#                         about half its space is dead) made compact by `kind = "rebuild"`
#                         with nothing in `[rebuild]` and by pg_repack, each on its own
#                         identical copy, each while WRITERS pgbench clients write to it (60 %
#                         inserts, 30 % updates, 10 % deletes, single rows): time, the
#                         writers' throughput during it relative to before it, their worst
#                         latency, and the size afterwards
#   the swap              the lock hold time lockstep reports for its swap, and the writers'
#                         worst latency over the whole rebuild (the swap included)
#   backfill              `kind = "backfill"` against one plain UPDATE of the same rows, on
#                         an identical table of each size in BACKFILL_ROWS: rows per second
#   partition             `lockstep demo --bench` (PARTITION_ROWS rows): the conversion
#                         against the naive one, the writers' throughput during it
#
#   sh bench/rebuild.sh
#   ROWS=1000000 BACKFILL_ROWS="300000 3000000" PARTITION_ROWS=1000000 sh bench/rebuild.sh
#   PARTITION_ROWS=0 sh bench/rebuild.sh      # leave out the partition demo
#   WRITERS=4 sh bench/rebuild.sh
#   DUTY=1 sh bench/rebuild.sh                # the rebuild's [backfill] duty_cycle (default 0.6)
#   BACKFILL_ROWS=" " sh bench/rebuild.sh     # leave out the backfills
#   REBUILD_LOG=/tmp/rebuild.log sh bench/rebuild.sh   # keep the rebuild's output, timed
#
# Needs pg_repack for the PostgreSQL it uses (Debian: postgresql-15-repack); without it the
# pg_repack column is left out. Starts its own PostgreSQL (default settings, fsync on) and
# removes it afterwards. The machine's load average is printed with the table: the figures
# that matter are the ratios, measured in the same run.
set -eu
cd "$(dirname "$0")/.."
bin="${LOCKSTEP_PG_BIN:-/usr/lib/postgresql/15/bin}"
rows="${ROWS:-5000000}"
writers="${WRITERS:-2}"
backfill_rows="${BACKFILL_ROWS:-300000 3000000 10000000}"
partition_rows="${PARTITION_ROWS:-5000000}"
# LOCKSTEP_BIN: a lockstep binary to measure instead of building this checkout's.
if [ -z "${LOCKSTEP_BIN:-}" ]; then
  cargo build --release --quiet
fi
lockstep="${LOCKSTEP_BIN:-$PWD/target/release/lockstep}"
pgb_pid=
bench_cleanup() {
  [ -n "$pgb_pid" ] && kill "$pgb_pid" 2>/dev/null || true
}
. bench/throwaway_pg.sh
pg_start -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_size=4GB
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
psql="$bin/psql -h 127.0.0.1 -p $port -U postgres -q -X -v ON_ERROR_STOP=1 postgres"
repack=""
if [ -x "$bin/pg_repack" ] && $psql -c "CREATE EXTENSION pg_repack" 2>/dev/null; then
  repack="$bin/pg_repack"
fi
ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# A bloated table: ROWS rows, half of them updated (a new version each), vacuumed.
bloated() {
  $psql <<SQL
CREATE TABLE $1 (id bigserial PRIMARY KEY, device_id int NOT NULL, recorded_at timestamptz NOT NULL, status text, payload jsonb);
INSERT INTO $1 (device_id, recorded_at, status, payload)
  SELECT g % 1000, timestamptz '2024-01-01' + g * interval '1 second', 'ok', jsonb_build_object('v', g) FROM generate_series(1, $rows) g;
CREATE INDEX ON $1 (device_id, recorded_at);
UPDATE $1 SET status = 'seen' WHERE id % 2 = 0;
VACUUM ANALYZE $1;
SQL
}

# The writers' script for table $1.
mix() {
  cat > "$dir/mix_$1.pgb" <<PGB
\set r random(1, 10)
\set id random(1, $rows)
\set dev random(0, 999)
\if :r <= 6
INSERT INTO $1 (device_id, recorded_at, status, payload) VALUES (:dev, now(), 'new', jsonb_build_object('v', (:r)::int));
\elif :r <= 9
UPDATE $1 SET status = 'again', payload = payload || '{"seen": true}' WHERE id = :id;
\else
DELETE FROM $1 WHERE id = :id;
\endif
PGB
}

# Starts the writers on table $1, logging every transaction (prefix $2).
writers_start() {
  "$bin/pgbench" -n -c "$writers" -j "$writers" -T 36000 -M prepared -f "$dir/mix_$1.pgb" \
    -l --log-prefix="$dir/$2" -h 127.0.0.1 -p "$port" -U postgres postgres >/dev/null 2>&1 &
  pgb_pid=$!
}

writers_stop() {
  # pgbench buffers its log and a TERM loses the buffer: two seconds more, so that the
  # window's last transactions are written. (A background job ignores INT.)
  sleep 2
  kill -TERM "$pgb_pid" 2>/dev/null || true
  wait "$pgb_pid" 2>/dev/null || true
  pgb_pid=
}

# Transactions per second in the log $1.* between epoch milliseconds $2 and $3, and the worst
# latency (ms) of those.
window() {
  cat "$dir/$1".* | awk -v from="$2" -v to="$3" '
    { t = $5 * 1000 + int($6 / 1000); if (t >= from && t <= to) { n++; if ($3 > worst) worst = $3 } }
    END { printf "%.1f %.1f\n", n * 1000 / (to - from), worst / 1000 }'
}

# Writers alone on $1 for 10 s: their throughput.
baseline() {
  writers_start "$1" "base_$1"
  sleep 2
  a=$(ms); sleep 10; b=$(ms)
  writers_stop
  window "base_$1" "$a" "$b" | cut -d' ' -f1
}

size() { $psql -At -c "SELECT pg_total_relation_size('$1')"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "filling two identical bloated tables of $rows rows ..."
bloated t_lockstep
[ -n "$repack" ] && bloated t_repack
mix t_lockstep
[ -n "$repack" ] && mix t_repack
size_before=$(size t_lockstep)

# lockstep
cat > "$dir/rebuild.toml" <<TOML
kind = "rebuild"
table = "public.t_lockstep"
[rebuild]
TOML
if [ -n "${DUTY:-}" ]; then
  printf '[backfill]\nduty_cycle = %s\n' "$DUTY" >> "$dir/rebuild.toml"
fi
base_l=$(baseline t_lockstep)
writers_start t_lockstep run_lockstep
sleep 1
a=$(ms)
# Each line of the run's output with the seconds since it started: where the time goes.
"$lockstep" run "$dir/rebuild.toml" 2>&1 | python3 -u -c '
import sys, time
start = time.monotonic()
for line in sys.stdin:
    sys.stdout.write(f"{time.monotonic() - start:7.2f}s {line}")
' > "$dir/lockstep.out"
grep -q "swap: the lock was held" "$dir/lockstep.out" || { cat "$dir/lockstep.out"; exit 1; }
"$lockstep" finalize >> "$dir/lockstep.out" 2>&1 || { cat "$dir/lockstep.out"; exit 1; }
b=$(ms)
writers_stop
set -- $(window run_lockstep "$a" "$b")
tps_l=$1 worst_l=$2
time_l=$((b - a))
size_l=$(size t_lockstep)
[ -n "${REBUILD_LOG:-}" ] && cp "$dir/lockstep.out" "$REBUILD_LOG"
held=$(sed -n 's/.*swap: the lock was held \([0-9.]*\) ms.*/\1/p' "$dir/lockstep.out" | tail -1)
if grep -q 's capture: logical decoding' "$dir/lockstep.out"; then capture=logical; else capture=trigger; fi

# pg_repack
if [ -n "$repack" ]; then
  base_r=$(baseline t_repack)
  writers_start t_repack run_repack
  sleep 1
  a=$(ms)
  "$repack" -h 127.0.0.1 -p "$port" -U postgres -d postgres -t public.t_repack > "$dir/repack.out" 2>&1 || { cat "$dir/repack.out"; exit 1; }
  b=$(ms)
  writers_stop
  set -- $(window run_repack "$a" "$b")
  tps_r=$1 worst_r=$2
  time_r=$((b - a))
  size_r=$(size t_repack)
fi

# backfill: kind = "backfill" against one UPDATE, on identical tables.
: > "$dir/backfill"
for n in $backfill_rows; do
  for t in bf_lockstep bf_update; do
    $psql <<SQL
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id bigserial PRIMARY KEY, device_id int NOT NULL, status text);
INSERT INTO $t (device_id) SELECT g % 1000 FROM generate_series(1, $n) g;
VACUUM ANALYZE $t;
SQL
  done
  cat > "$dir/backfill.toml" <<TOML
kind = "backfill"
table = "public.bf_lockstep"
[update]
set = "status = 'unknown'"
where = "status IS NULL"
TOML
  a=$(ms)
  "$lockstep" run "$dir/backfill.toml" > "$dir/backfill.out" 2>&1 || { cat "$dir/backfill.out"; exit 1; }
  b=$(ms)
  "$lockstep" finalize >/dev/null 2>&1 || true
  a2=$(ms)
  $psql -c "UPDATE bf_update SET status = 'unknown' WHERE status IS NULL"
  b2=$(ms)
  echo "$n $((b - a)) $((b2 - a2))" >> "$dir/backfill"
  $psql -c "DROP TABLE bf_lockstep; DROP TABLE bf_update"
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$partition_rows" != 0 ]; then
  echo "partition demo, $partition_rows rows ..."
  "$lockstep" demo --bench --rows "$partition_rows" --writers "$writers" > "$dir/demo.out" 2>&1 || { cat "$dir/demo.out"; exit 1; }
fi

echo
echo "PostgreSQL $($psql -At -c 'SHOW server_version'), $writers writers, load average at the end of the rebuilds and backfills: $load"
echo
echo "rebuild of a bloated table ($rows rows, half updated; $(numfmt --to=iec "$size_before") with indexes)"
printf '%-34s %14s %14s %8s\n' "" lockstep pg_repack ratio
row() { printf '%-34s %14s %14s %8s\n' "$1" "$2" "$3" "$4"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}x' if b else '-')" "$1" "$2"; }
if [ -n "$repack" ]; then
  row "time (s)" "$(echo "$time_l" | awk '{printf "%.1f", $1/1000}')" "$(echo "$time_r" | awk '{printf "%.1f", $1/1000}')" "$(ratio "$time_l" "$time_r")"
  row "writers' tps, during / before" "$(ratio "$tps_l" "$base_l")" "$(ratio "$tps_r" "$base_r")" "$(ratio "$(python3 -c "print($tps_l / $base_l)")" "$(python3 -c "print($tps_r / $base_r)")")"
  row "writers' worst latency (ms)" "$worst_l" "$worst_r" "$(ratio "$worst_l" "$worst_r")"
  row "size afterwards" "$(numfmt --to=iec "$size_l")" "$(numfmt --to=iec "$size_r")" "$(ratio "$size_l" "$size_r")"
else
  echo "(pg_repack not installed for this PostgreSQL: lockstep alone)"
  row "time (s)" "$(echo "$time_l" | awk '{printf "%.1f", $1/1000}')" "" ""
  row "writers' tps, during / before" "$(ratio "$tps_l" "$base_l")" "" ""
  row "writers' worst latency (ms)" "$worst_l" "" ""
  row "size afterwards" "$(numfmt --to=iec "$size_l")" "" ""
fi
row "swap: lock held (ms)" "${held:-?}" "" ""
row "lockstep's capture" "$capture" "" ""
row "lockstep's duty_cycle" "${DUTY:-0.6 (default)}" "" ""
echo
echo "backfill: kind = \"backfill\" against one UPDATE of the same rows"
printf '%-12s %16s %16s %8s\n' rows "lockstep rows/s" "UPDATE rows/s" ratio
while read -r n tl tu; do
  printf '%-12s %16.0f %16.0f %8s\n' "$n" "$(python3 -c "print($n * 1000 / $tl)")" "$(python3 -c "print($n * 1000 / $tu)")" "$(ratio "$tu" "$tl")"
done < "$dir/backfill"
if [ "$partition_rows" != 0 ]; then
  echo
  echo "partition (lockstep demo --bench --rows $partition_rows --writers $writers):"
  sed -n '/conversion took/,$p' "$dir/demo.out"
fi
