#!/usr/bin/env bash
# Ingest throughput and latency of a release build on SQLite (every 202 committed):
# wrk, 2 threads, 32 connections, 10 s, distinct alerts (P3 and P1) then duplicates.
# Usage: bench/ingest.sh   (needs wrk: apt-get install wrk)
# On PostgreSQL: TOCSIN_STORAGE_URL=postgres://postgres@127.0.0.1:5432/bench bench/ingest.sh
# (an empty database: the run's alerts stay in it).
# TOCSIN_BIN=path runs another build (an A/B comparison) instead of building this one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${TOCSIN_BIN:-$root/target/release/tocsin}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
port=${PORT:-18080}
cd "$work"
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$binary" serve &
pid=$!
# Wait for it to exit before removing its files (its outbox may still be writing).
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
run() { echo "== $1"; shift; wrk -t2 -c32 -d10s --latency "$@" "http://127.0.0.1:$port" | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'; }
SEVERITY=warning run "distinct alerts, P3 (alert rows only)" -s "$root/bench/distinct.lua"
SEVERITY=critical run "distinct alerts, P1 (alert + incident + timeline rows)" -s "$root/bench/distinct.lua"
# The P1 run leaves its pages to send (tens of thousands at a time): measured while the
# outbox writes them, duplicates would share the CPU with it. Wait until no page is due
# and unsent (at most 120 s; the wait is printed).
query() {
  if [ -z "${TOCSIN_STORAGE_URL:-}" ]; then sqlite3 "$work/data/tocsin.db" "$1"; else psql -tA "$TOCSIN_STORAGE_URL" -c "$1"; fi
}
unsent="SELECT count(*) FROM notifications WHERE status = 'sending' OR (status = 'pending' AND due_at <= $(date +%s)000 + 1000)"
started=$(date +%s)
while [ "$(query "$unsent")" != 0 ] && [ $(($(date +%s) - started)) -lt 120 ]; do sleep 1; done
echo "== the outbox sent the P1 run's pages in $(($(date +%s) - started)) s more ($(query "$unsent") left unsent)"
run "duplicates of one alert" -s "$root/bench/duplicate.lua"
echo "== resident memory after the runs: $(ps -o rss= -p $pid) KiB"
echo "== alerts stored: $(query 'select count(*), sum(count) from alerts')"
