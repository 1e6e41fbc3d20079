#!/bin/sh
# How fast a large change log is replayed, on one connection (`workers = 1`) and in lanes
# (`workers = 2`: each connection replays the keys that hash to its lane), with the real
# lockstep on the same table in the same run.
#
# A rebuild of a 300,000-row table is stopped once its indexes are built (the test hook
# LOCKSTEP_TEST_HOLD_AT=replay, then SIGKILL); one UPDATE then changes every other row
# (150,000 logged changes), and `lockstep resume` replays them: the time from the resume's
# start until its verification starts is the replay's. Rounds alternate the two variants.
#
#   cargo build --release && sh bench/replay_lanes.sh
#   ROUNDS=5 CAPTURE=logical LOCKSTEP=target/release/lockstep sh bench/replay_lanes.sh
#
# Starts its own throwaway PostgreSQL (fsync off) and removes it afterwards.
set -eu
bin="${LOCKSTEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
lockstep="$(realpath "${LOCKSTEP:-target/release/lockstep}")"
rounds="${ROUNDS:-3}"
capture="${CAPTURE:-trigger}"
. "$(dirname "$0")/throwaway_pg.sh"
pg_start -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=logical
url="host=127.0.0.1 port=$port user=postgres dbname=postgres"
psql="$bin/psql -h 127.0.0.1 -p $port -U postgres -q -X -t -A postgres"
for w in 1 2; do
  cat > "$dir/w$w.toml" <<TOML
kind = "rebuild"
table = "t"
[rebuild]
[backfill]
workers = $w
[capture]
mode = "$capture"
TOML
done
now() { python3 -c 'import time; print(time.time())'; }
one() {
  w=$1
  $psql <<'SQL'
DROP TABLE IF EXISTS t, t_old CASCADE;
CREATE TABLE t (id bigserial PRIMARY KEY, device_id int NOT NULL, recorded_at timestamptz NOT NULL, status text, payload jsonb);
INSERT INTO t (device_id, recorded_at, status, payload)
  SELECT g % 1000, now() - (g || ' seconds')::interval * 200, 'ok', jsonb_build_object('v', g) FROM generate_series(1, 300000) g;
CREATE INDEX ON t (device_id, recorded_at);
VACUUM ANALYZE t;
SQL
  LOCKSTEP_TEST_HOLD_AT=replay "$lockstep" run "$dir/w$w.toml" --database-url "$url" > "$dir/run.log" 2>&1 &
  pid=$!
  # Held once the indexes are built and the first replay batch is done.
  until [ "$($psql -c "SELECT count(*) FROM lockstep.runs WHERE step = 'indexes'" 2>/dev/null)" = 1 ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/run.log" >&2; exit 1; }
    sleep 0.2
  done
  sleep 2
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  until [ "$($psql -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" = 0 ]; do sleep 0.1; done
  $psql -c "UPDATE t SET status = 'seen' WHERE id % 2 = 0" >/dev/null
  t0=$(now)
  "$lockstep" resume --database-url "$url" > "$dir/resume.log" 2>&1 &
  pid=$!
  # The replay is done when the verification starts. Watched in the run's output, not in
  # the database: a query every few milliseconds would be an application at work, and the
  # run gives way to it (duty_cycle).
  until grep -q "^verify: comparing" "$dir/resume.log"; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  t1=$(now)
  wait "$pid" || { cat "$dir/resume.log" >&2; exit 1; }
  "$lockstep" finalize --database-url "$url" > "$dir/fin.log" 2>&1 || { cat "$dir/fin.log" >&2; exit 1; }
  $psql -c "DROP SCHEMA lockstep CASCADE" >/dev/null
  lanes=$(grep -c "in 2 lanes" "$dir/resume.log" || true)
  echo "$w $t0 $t1 $lanes" >> "$dir/results"
  [ -n "${SHOW:-}" ] && cat "$dir/resume.log" >&2
  true
}
for round in $(seq "$rounds"); do
  for w in 1 2; do one $w; done
done
echo "replay of 150,000 logged changes (rebuild of a 300,000-row table, $capture capture), median of $rounds rounds:"
printf '%-22s %10s %8s %s\n' variant seconds ratio "said lanes"
base=$(awk '$1 == 1 {print $3 - $2}' "$dir/results" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
for w in 1 2; do
  s=$(awk -v w="$w" '$1 == w {print $3 - $2}' "$dir/results" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  said=$(awk -v w="$w" '$1 == w && $4 > 0 {n++} END {print n + 0}' "$dir/results")
  label="workers = $w"
  [ "$w" = 2 ] && label="workers = 2 (lanes)"
  awk -v l="$label" -v s="$s" -v b="$base" -v n="$said" -v r="$rounds" 'BEGIN { printf "%-22s %10.2f %7.2fx %s of %s\n", l, s, s / b, n, r }'
done
