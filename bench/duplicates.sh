#!/usr/bin/env bash
# Duplicates, then distinct P3 alerts, on a fresh daemon with the shipped config:
# wrk -t2 -c32 8 s each. A quick A/B of the per-request cost, without the P1 run and
# its outbox. Usage: TOCSIN_BIN=path bench/duplicates.sh   (PORT to move it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${TOCSIN_BIN:-$root/target/release/tocsin}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
port=${PORT:-18181}
work=$(mktemp -d)
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
cd "$work"
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$binary" serve &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
for script in duplicate distinct; do
  echo "== $script"
  SEVERITY=warning wrk -t2 -c32 -d8s --latency -s "$root/bench/$script.lua" "http://127.0.0.1:$port" |
    grep -E 'Requests/sec|99%|Non-2xx'
done
