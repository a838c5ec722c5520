#!/usr/bin/env bash
# CPU time a release build spends per alert at a fixed rate, well below saturation:
# steadier than throughput on this shared 2-core machine, whose speed moves by up to
# 35% between runs. Serves on SQLite with the default config (a P1 pages its demo
# user by email, spool transport), sends RATE alerts/s for SECONDS with loadgen, waits
# for the outbox to send every page, and reads the process's user + system time from /proc.
# Usage: bench/cpu-per-alert.sh [critical|warning] [RATE] [SECONDS]   (SPOOL_ON_TMPFS=1: see below)
# TOCSIN_BIN / LOADGEN_BIN run other builds (alternate two to compare them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
severity=${1:-critical}
rate=${2:-2000}
seconds=${3:-10}
binary=${TOCSIN_BIN:-$root/target/release/tocsin}
loadgen=${LOADGEN_BIN:-$root/target/release/loadgen}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
port=${PORT:-18090}
cd "$work"
# SPOOL_ON_TMPFS=1 puts the spool's email files on tmpfs (the database stays on
# disk): on an ext4 that earlier runs' deleted files left fragmented, creating
# 20,000 files a run cost more each run than everything else measured here.
spool=""
if [ -n "${SPOOL_ON_TMPFS:-}" ]; then
  spool=$(mktemp -d /dev/shm/tocsin-spool.XXXXXX)
  mkdir -p data && ln -s "$spool" data/outbox
fi
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$binary" serve &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work" ${spool:+"$spool"}' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(ticks)
report=$("$loadgen" --url "http://127.0.0.1:$port" ingest --concurrency 16 --seconds "$seconds" \
  --rate "$rate" --severity "$severity" | grep -E '^requests')
echo "$report"
# A rate the daemon cannot keep up with sends fewer: count what was accepted.
alerts=$(sed -E 's/.*accepted 202: ([0-9]+).*/\1/' <<<"$report")
# The outbox sends the last pages: wait until none is due and unsent (at most 60 s).
unsent="SELECT count(*) FROM notifications WHERE status = 'sending' OR (status = 'pending' AND due_at <= $(date +%s)000 + 1000)"
for _ in $(seq 60); do [ "$(sqlite3 data/tocsin.db "$unsent")" = 0 ] && break; sleep 1; done
after=$(ticks)
hz=$(getconf CLK_TCK)
echo "cpu: $(( (after - before) * 1000000 / hz / alerts )) us per $severity alert ($((after - before)) ticks of 1/$hz s, $alerts alerts)"
