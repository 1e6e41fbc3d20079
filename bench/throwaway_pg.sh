# Sourced by the benchmarks: a throwaway PostgreSQL from the server binaries in $bin, in a
# new temporary directory ($dir, port $port), stopped and removed when the script exits.
#
#   . "$(dirname "$0")/throwaway_pg.sh"
#   pg_start -c listen_addresses=127.0.0.1 -c fsync=off
#
# Run as root, the server runs as postgres. A script with more to clean up (a background
# workload) defines `bench_cleanup` before it calls pg_start: it runs first.

# Runs a command as postgres when run as root (each argument kept whole).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    _cmd=""
    for _a in "$@"; do
      _cmd="$_cmd '$(printf '%s' "$_a" | sed "s/'/'\\\\''/g")'"
    done
    su postgres -s /bin/sh -c "$_cmd"
  else
    "$@"
  fi
}

pg_stop() {
  if command -v bench_cleanup >/dev/null 2>&1; then bench_cleanup || true; fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

# Starts the server with the settings given (`-c name=value` …) and sets $dir and $port.
pg_start() {
  dir=$(mktemp -d)
  trap pg_stop EXIT
  trap 'exit 1' INT TERM
  # The server (postgres) reads its socket directory; benchmarks that log into $dir as
  # another user than postgres write there too.
  [ "$(id -u)" = 0 ] && chown postgres "$dir" && chmod 777 "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start -o "-p $port -k $dir $*" >/dev/null
  export PGOPTIONS="-c client_min_messages=warning"
}
