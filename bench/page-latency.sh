#!/usr/bin/env bash
# Alert -> first page email latency of a release build on SQLite: one P1 at a time
# (L1 delay 0 s) posted to the generic endpoint by `loadgen page`, timed from just
# before the POST to the moment a real SMTP server (../shared/harness/smtp-sink.sh,
# aiosmtpd) accepted the page; the sink names each message by its arrival time in ms.
# Usage: bench/page-latency.sh [COUNT]   (default 300 alerts, 20 ms apart)
# TOCSIN_BIN=path (and LOADGEN_BIN=path) run other builds instead of building these.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness="$root/../shared/harness"
count=${1:-300}
binary=${TOCSIN_BIN:-$root/target/release/tocsin}
loadgen=${LOADGEN_BIN:-$root/target/release/loadgen}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
port=${PORT:-18081}
smtp_port=${SMTP_PORT:-12525}
bash "$harness/smtp-sink.sh" start "$smtp_port" "$work/mail" >/dev/null 2>&1
mkdir "$work/config"
# The default config already pages its L1 user (oncall-l1) by email with no delay.
sed -e 's/^transport = "spool".*/transport = "smtp"/' -e "s/^port = 25$/port = $smtp_port/" \
  "$root/config/tocsin.toml" > "$work/config/tocsin.toml"
cd "$work"
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$binary" serve &
pid=$!
trap 'kill $pid 2>/dev/null; bash "$harness/smtp-sink.sh" stop "$smtp_port" >/dev/null 2>&1; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
"$loadgen" --url "http://127.0.0.1:$port" page --maildir "$work/mail" --count "$count"
