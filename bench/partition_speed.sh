#!/bin/sh
# Online partitioning benchmark: lockstep's conversion against the naive one, same run.
#
#   sh bench/partition_speed.sh            # 5,000,000 rows
#   ROWS=1000000 sh bench/partition_speed.sh
#   WRITERS=0 sh bench/partition_speed.sh  # no workload
#   DUTY=1 sh bench/partition_speed.sh     # the playbook's [backfill] duty_cycle (default 0.6)
#   WORKERS=1 sh bench/partition_speed.sh  # the playbook's [backfill] workers (default 2)
#
# Starts a throwaway PostgreSQL, fills a telemetry table (bigint id, device id, timestamp,
# text, jsonb; primary key and one secondary index), times the naive conversion (one
# INSERT … SELECT into a partitioned copy that already has all its indexes), then runs a
# write workload and converts the table online with lockstep while it writes. Prints the
# ratio conversion time / naive time, the workload's throughput during the conversion
# relative to before it, the trigger's overhead on the workload (measured after the swap,
# with the reverse trigger doing the same work), and the worst foreground latency during
# the swap.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec target/release/lockstep demo --bench --rows "${ROWS:-5000000}" --writers "${WRITERS:-2}" ${DUTY:+--duty-cycle "$DUTY"} ${WORKERS:+--workers "$WORKERS"}
