#!/bin/sh
# Change capture benchmark: logical decoding against the trigger, same binary, same run.
#
#   sh bench/capture.sh                 # 300,000 rows, 2 writers, 2 runs of each capture
#   ROWS=1000000 RUNS=3 sh bench/capture.sh
#   LOCKSTEP=/path/to/lockstep sh bench/capture.sh   # another binary (default: build release)
#
# Runs `lockstep demo --rows ROWS --writers WRITERS --measure 3 --capture MODE` with the
# modes alternating (trigger, logical, trigger, …) so that a change in the machine's load
# affects both, and prints one row per run: the conversion's time, the writers' throughput
# during the conversion and after the swap (until finalize) relative to before it, the
# swap's lock hold time and the writers' worst latency while the swap ran. Every run ends
# with the demo's row-for-row check of both tables.
set -eu
cd "$(dirname "$0")/.."
ROWS=${ROWS:-300000}
WRITERS=${WRITERS:-2}
RUNS=${RUNS:-2}
if [ -z "${LOCKSTEP:-}" ]; then
  cargo build --release --quiet
  LOCKSTEP=target/release/lockstep
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "lockstep demo --rows $ROWS --writers $WRITERS --measure 3; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | capture | conversion | writers during / before | after the swap / before | swap lock held | worst writer latency at the swap | rows identical |"
echo "|---|---|---|---|---|---|---|---|"
i=1
while [ "$i" -le "$RUNS" ]; do
  for mode in trigger logical; do
    if ! "$LOCKSTEP" demo --rows "$ROWS" --writers "$WRITERS" --measure 3 --capture "$mode" >"$out" 2>&1; then
      echo "| $i | $mode | failed: $(tail -1 "$out") | | | | | |"
      continue
    fi
    # The demo's summary wraps long lines: join them before reading.
    all=$(tr '\n' ' ' <"$out" | tr -s ' ')
    pick() { printf '%s' "$all" | grep -o "$1" | tail -1 | sed "s/$2//"; }
    conv=$(pick 'conversion took [0-9.]* s' 'conversion took ')
    during=$(pick 'ops/s during ([0-9.]*x' '.*(')
    after=$(pick 'until finalize ([0-9.]*x' '.*(')
    held=$(pick 'swap: the lock was held [0-9.]* ms' '.*held ')
    worst=$(pick 'worst foreground latency while the swap ran: [0-9.]* ms' '.*ran: ')
    same=no
    case "$all" in *"are identical, row for row"*) same=yes ;; esac
    echo "| $i | $mode | $conv | $during | $after | $held | $worst | $same |"
  done
  i=$((i + 1))
done
