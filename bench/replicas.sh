#!/usr/bin/env bash
# Scale-out behind a round-robin balancer: one PostgreSQL, a release build run as 1
# and then 3 replicas behind nginx (Debian's package, round-robin upstream), the same
# wrk load through nginx each time (2 threads, 30 connections, 10 s): distinct P3
# alerts (bench/distinct.lua), then distinct alerts with one in ten a critical alert
# repeated across replicas (bench/repeats.lua); then the duplicates the database holds.
# Each replica count starts on a fresh database.
# Usage: flock /tmp/cargo.lock bench/replicas.sh   (needs wrk, nginx, psql;
#        PG=postgres://postgres@127.0.0.1:5432 by default; TOCSIN_BIN=another build
#        to compare, e.g. one of the commit before; REPLICAS="3" runs only that count;
#        EXTRA_TOML='…' appends to the replicas' config, e.g. an [[inhibit]] rule;
#        CONNECTIONS=90 loads with more connections than the default 30)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pg=${PG:-postgres://postgres@127.0.0.1:5432}
bin=${TOCSIN_BIN:-$root/target/release/tocsin}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
pids=()
db=""
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  [ -n "$db" ] && psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null
  db=""
}
trap 'stop; rm -rf "$work"' EXIT
lb=18180
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
cat >> "$work/config/tocsin.toml" <<'TOML'

[[rules]]
name = "shared hosts"
match = ['resource=~"shared-.*"']
group_by = ["resource"]
TOML

printf '%s\n' "${EXTRA_TOML:-}" >> "$work/config/tocsin.toml"

nginx_conf() { # ports...
  {
    echo "worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.log error;"
    echo "events { worker_connections 1024; }"
    echo "http { access_log off; upstream tocsin {"
    for port in "$@"; do echo "  server 127.0.0.1:$port;"; done
    echo "  keepalive 64; }"
    echo "  server { listen 127.0.0.1:$lb; location / { proxy_pass http://tocsin;"
    echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
  } > "$work/nginx.conf"
}

run() { # replicas
  local replicas=$1 ports=()
  db="bench_replicas_$$_$replicas"
  psql -q "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
  for i in $(seq "$replicas"); do ports+=($((18180 + i))); done
  for port in "${ports[@]}"; do
    (cd "$work" && TOCSIN_LISTEN=127.0.0.1:$port TOCSIN_STORAGE_URL="$pg/$db" RUST_LOG=error \
      exec "$bin" serve) &
    pids+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  done
  nginx_conf "${ports[@]}"
  nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
  pids+=($!)
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$lb/readyz" >/dev/null && break; sleep 0.1; done
  load() { wrk -t2 -c"${CONNECTIONS:-30}" -d10s --latency -s "$root/bench/$1" "http://127.0.0.1:$lb" \
    | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors' | sed 's/^/   /'; }
  echo "== $replicas replica(s) behind nginx round-robin: distinct P3 alerts"
  load distinct.lua
  echo "== $replicas replica(s): distinct alerts, 1 in 10 a critical alert repeated across replicas"
  load repeats.lua
  local q="psql -tA $pg/$db -c"
  echo "== $replicas replica(s): in the database"
  echo "   alerts (rows, accepted): $($q 'SELECT COUNT(*), SUM(count) FROM alerts')"
  echo "   duplicate firing alerts per identity: $($q "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM alerts WHERE status = 'firing' GROUP BY source, dedup_key) d")"
  echo "   duplicate open incidents per group key: $($q "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM incidents WHERE status <> 'resolved' AND group_key IS NOT NULL GROUP BY group_key) d")"
  echo "   pages twice (incident, user, channel, step): $($q "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM notifications WHERE kind = 'page' GROUP BY incident_id, user_id, channel, step) d")"
  echo "   open incidents, pages: $($q "SELECT (SELECT COUNT(*) FROM incidents WHERE status <> 'resolved'), (SELECT COUNT(*) FROM notifications WHERE kind = 'page')")"
  stop
}
for replicas in ${REPLICAS:-1 3}; do run "$replicas"; done
